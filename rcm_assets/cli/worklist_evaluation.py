"""`rcm worklist evaluate`: what the worklist's top K would have caught, for a revenue-cycle director.

Reads the stored worklists of the days, labels each listed claim version with its first adjudication known
now (silver remittances), and compares each day's top K with K random claims and with the naive rule
"flag claims without the prior authorisation their payer requires". Writes the per-day table
(worklist_evaluation_<start>_<end>.csv) and the plot (.png) and prints the totals.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from rcm_assets.cli.console import EXIT_OK, UsageError, say, utc_today
from rcm_assets.cli.evaluation import days, read_lake
from rcm_assets.lib import settings
from rcm_assets.lib import worklist as worklist_lib
from rcm_assets.lib.exports import write_atomic

WORKLIST_COLUMNS = ["claim_id", "claim_version", "expected_loss", "expected_payment", "billed_amount",
                    "prior_auth_missing", "denial_probability"]
OUTCOME_COLUMNS = ["claim_id", "adjudicated_at", "updated_at", "denied", "claim_status"]  # status: reversals never label


def default_output_dir() -> Path:
    return settings.data_dir() / "landing_out" / "evaluation"


def evaluate(start: date, end: date, k: int, out: Path | None, min_labelled_share: float = 0.5) -> int:
    if start > end:
        raise UsageError(f"start {start} is after end {end}")
    if k < 1:
        raise UsageError(f"--k must be at least 1, got {k}")
    lake = settings.lake_url()
    keys = days(start, end)
    listed = read_lake(lake, ["predictions", "worklist"], keys, columns=WORKLIST_COLUMNS)
    if listed.empty:
        raise UsageError(f"no predictions/worklist partitions between {start} and {end}: materialize them first "
                         f"(rcm predict --date D, or rcm backfill --select predictions ...)")
    versions = read_lake(lake, ["gold", "claim_features"], keys, columns=["claim_id", "claim_version", "submitted_at"])
    outcomes = read_lake(lake, ["silver", "remittances"], days(start, utc_today()), columns=OUTCOME_COLUMNS)
    if outcomes.empty:
        raise UsageError("no silver/remittances after the first day: no outcome is known yet")
    labels = worklist_lib.outcome_labels(versions.drop_duplicates(["claim_id", "claim_version"]), outcomes,
                                         pd.Timestamp.now("UTC").tz_localize(None))
    per_day = worklist_lib.top_k_evaluation(listed, labels, k, min_labelled_share)
    if per_day.empty:
        raise UsageError(f"no day between {start} and {end} has outcomes for {min_labelled_share:.0%} of its listed "
                         "claims yet (outcomes arrive 14–60 days after submission; --min-labelled-share lowers it)")
    folder = out or default_output_dir()
    permissions = settings.export_permissions()  # the same access as the worklist it evaluates
    stem = folder / f"worklist_evaluation_{start}_{end}_k{k}"
    write_atomic(stem.with_suffix(".csv"), lambda tmp: per_day.to_csv(tmp, index=False), permissions)
    figure = worklist_lib.evaluation_figure(per_day, k)
    write_atomic(stem.with_suffix(".png"), lambda tmp: figure.savefig(tmp, dpi=110, format="png"), permissions)
    s = worklist_lib.evaluation_summary(per_day)
    say(f"{int(s['days'])} days, top {k} a day ({int(s['k_total']):,} claims with an outcome):")
    say(f"  worklist (expected loss)   {s['model_share_denied']:6.1%} denied  ${s['model_denied_dollars']:>14,.0f} "
        f"denied dollars caught")
    say(f"  naive: prior auth missing  {s['rule_share_denied']:6.1%} denied  ${s['rule_denied_dollars']:>14,.0f} "
        f"({int(per_day['rule_flagged'].sum()):,} claims flagged)")
    say(f"  random claims              {s['random_share_denied']:6.1%} denied  ${s['random_denied_dollars']:>14,.0f}")
    say(f"  all denials of those days                 ${s['all_denied_dollars']:>14,.0f}")
    say(f"  table: {stem.with_suffix('.csv')}")
    say(f"  plot:  {stem.with_suffix('.png')}")
    return EXIT_OK
