"""`rcm demo`: generate a synthetic source and run the whole graph over it, then summarize."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from argparse import Namespace
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import mlflow
import pandas as pd

from rcm_assets.cli.commands import (
    GROUPS,
    Runner,
    asset_keys_in_groups,
    report,
    run_range,
    scoring_days,
    weeks_between,
)
from rcm_assets.cli.console import EXIT_OK, UsageError, elapsed, say, utc_today
from rcm_assets.cli.evaluation import model_vs_bayes, read_lake, scored_vs_bayes
from rcm_assets.defs import monitoring, partitions
from rcm_assets.defs.payer_rules import AUTHORIZATION_DENIALS_KEY
from rcm_assets.lib import monitoring as mon
from rcm_assets.lib import payer_rules, settings
from rcm_assets.platform.resources import LandingResource, SourceResource

# The demo's world comes from the generator's own command line (`python -m rcm_assets.synthetic`) in a
# subprocess: nothing outside synthetic/ imports the generator and its truth (tests/test_layout.py).
REFERENCE_FILES = ("payers.csv", "prior_auth_list.csv", "chargemaster.csv", "code_categories.csv")
DRIFT_PAYERS = ("AETNA", "BCBS", "CIGNA", "UHC", "HUMANA", "MEDICARE", "MEDICAID_TX", "SELF")
DRIFT_FAMILIES = ("em", "imaging", "radiology", "surgery", "lab", "therapy", "cardiology", "drugs", "biologics",
                  "ambulance", "dme", "preventive")


@dataclass(frozen=True)
class Drift:
    """The default world's drift scenario as the demo passes it to the generator: from `start`, `payer_id`
    requires prior auth for `cpt_family` (the generator checks the names again)."""

    start: date
    payer_id: str
    cpt_family: str


def settings_reference_dir() -> Path:
    """Where the pipeline reads the hospital's reference files (RCM_REFERENCE_DIR, else <data dir>/reference)."""
    reader = getattr(settings, "reference_dir", None)
    if reader is not None:
        return Path(reader())
    return Path(settings.setting("RCM_REFERENCE_DIR") or settings.data_dir() / "reference")


def remove_reference_files(folder: Path) -> list[Path]:
    """The reference files a previous demo left in `folder` (the four names, nothing else)."""
    removed = []
    for name in REFERENCE_FILES:
        path = folder / name
        if path.is_file():
            path.unlink()
            removed.append(path)
    return removed


def generate_world(command: list[str], scratch: Path) -> dict:
    """Run the generator's command line; its JSON summary (counts, denial rate, files written)."""
    scratch.mkdir(parents=True, exist_ok=True)
    fd, summary_path = tempfile.mkstemp(prefix=".demo-summary-", suffix=".json", dir=scratch)
    os.close(fd)
    try:
        done = subprocess.run([*command, "--summary-json", summary_path], capture_output=True, text=True,
                              check=False)
        if done.returncode == 2:  # argparse: a name the generator does not know
            raise UsageError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "bad generator arguments")
        if done.returncode != 0:
            raise RuntimeError(f"the synthetic generator failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
        return json.loads(Path(summary_path).read_text())
    finally:
        Path(summary_path).unlink(missing_ok=True)


def run(args: Namespace, runner: Runner) -> int:
    first: date = args.start
    last = first + timedelta(days=args.days - 1)
    if args.days < 1 or args.claims_per_day < 1:
        raise UsageError("--days and --claims-per-day must be positive")
    if first < partitions.PARTITIONS_START or last > utc_today():
        raise UsageError(f"demo days must lie within {partitions.PARTITIONS_START} .. {utc_today()} "
                         f"(got {first} .. {last}); set RCM_PARTITIONS_START to start earlier")
    started = time.monotonic()
    facility_tz = settings.facility_tz()  # the pipeline reads the same setting
    world = getattr(args, "world", "default")
    with_reference = not getattr(args, "no_reference_files", False)
    say(f"[1/3] generating {args.days} days x {args.claims_per_day} claims (seed {args.seed}, "
        f"{'hospital B' if world == 'hospital_b' else 'the default world'}, realistic source, "
        f"facility time zone {facility_tz}) ...")
    drift = drift_scenario(args, first, last)
    if drift is not None:
        if world != "default":
            raise UsageError("--drift applies to the default world only")
        say(f"      drift scenario: from {drift.start} {drift.payer_id} requires prior auth for {drift.cpt_family}")
    source_url, truth_path = settings.source_url(), settings.ground_truth_path()
    reference_dir = settings_reference_dir()
    if args.dry_run:  # the synthetic source goes to a throwaway folder; nothing under RCM_DATA_DIR changes
        tmp = Path(runner.scratch_dir or ".")
        source_url, truth_path = settings.sqlite_url(tmp / "source.db"), tmp / "claims_truth.parquet"
        runner.resources["source"] = SourceResource(url=source_url)
        reference_dir = tmp / "reference"
        os.environ["RCM_REFERENCE_DIR"] = str(reference_dir)  # this process's pipeline reads the throwaway copy
    else:
        settings.data_dir().mkdir(parents=True, exist_ok=True)
        for path in reset_outputs():
            say(f"      removed the previous demo's {path} (the demo regenerates its whole world)")
    command = [sys.executable, "-m", "rcm_assets.synthetic", "--start", first.isoformat(),
               "--days", str(args.days), "--claims-per-day", str(args.claims_per_day), "--seed", str(args.seed),
               "--facility-tz", facility_tz, "--source-url", source_url, "--ground-truth", str(truth_path),
               "--world", world]
    if drift is not None:
        command += ["--drift-start", drift.start.isoformat(), "--drift-payer", drift.payer_id,
                    "--drift-cpt-family", drift.cpt_family]
    if with_reference:
        command += ["--reference-dir", str(reference_dir)]
    else:
        command += ["--no-reference-files"]
        for path in remove_reference_files(reference_dir):
            say(f"      removed {path} (--no-reference-files: the pipeline gets no reference tables)")
    if args.from_x12:  # the rows arrive as X12 files only; the SQL source holds none of them
        landing_dir = Path(runner.scratch_dir or ".") / "landing" if args.dry_run else settings.landing_dir()
        if args.dry_run:
            runner.resources["landing"] = LandingResource(
                landing_dir=str(landing_dir), quarantine_dir=str(landing_dir.parent / "quarantine"),
                first_day=partitions.PARTITIONS_START.isoformat())
        command += ["--x12-dir", str(landing_dir), "--x12-only"]
    summary = generate_world(command, Path(runner.scratch_dir or truth_path.parent))
    if args.from_x12:
        say(f"      {len(summary['x12_files'])} X12 files (837, 835) -> {landing_dir}")
    if summary["reference_files"]:
        say(f"      {len(summary['reference_files'])} reference files (payers, prior-auth lists, chargemaster, "
            f"code categories) -> {reference_dir}")
    say(f"      {summary['claim_rows']:,} claim rows, {summary['remittance_rows']:,} remittance rows "
        f"(denial rate {summary['denial_rate']:.3f}) -> {'X12 files' if args.from_x12 else 'the source'} "
        f"{settings.source_url() if not args.dry_run else '(temporary)'} ({elapsed(started)})")

    say("[2/3] running the graph (one run per partitioning) ...")
    selection = {group: asset_keys_in_groups(layers) for group, layers in GROUPS.items() if group != "serving"}
    outcomes = run_range(runner, selection, first, last)
    if all(o.success for o in outcomes):  # the scoring service serves the last day: its bundle, not 200 of them
        outcomes += run_range(runner, {"serving": asset_keys_in_groups(GROUPS["serving"])}, last, last)
    if drift is not None and all(o.success for o in outcomes):
        outcomes += run_monitoring(runner, first, last)
    code = report(outcomes, args.dry_run)
    if code != EXIT_OK or args.dry_run:
        return code

    say("[3/3] summary")
    rows: dict[str, int] = {}
    for outcome in outcomes:  # a layer's chunks each wrote their own rows
        for name, count in outcome.rows.items():
            rows[name] = rows.get(name, 0) + count
    for name in sorted(rows):
        say(f"  {name:<36} {rows[name]:>10,} rows")
    summarize_models(first, last, truth_path)
    if drift is not None:
        summarize_drift(drift, first, last)
    say(f"  lake:   {settings.lake_url()}")
    say(f"  source: {settings.source_url()}")
    say(f"  MLflow: {settings.mlflow_tracking_uri()}  (mlflow ui --backend-store-uri <that URI>)")
    say("  UI:     RCM_ENV=demo make dev  (the demo's published PHI key; other environments need RCM_PHI_KEY) "
        "then open http://127.0.0.1:3000")
    say(f"done in {elapsed(started)}")
    return EXIT_OK


def reset_outputs() -> list[Path]:
    """Remove the lake and MLflow folders a previous demo left under RCM_DATA_DIR.

    The demo regenerates the source, so the models and scores of the last demo describe another world;
    and a model week promoted before is refused without --force. Only local folders inside the data
    folder are removed, never a lake or tracking server configured elsewhere.
    """
    data_dir = settings.data_dir()
    removed = []
    for path in (Path(settings.lake_url()), data_dir / "mlflow"):
        if path.is_dir() and data_dir in path.resolve().parents:
            shutil.rmtree(path)
            removed.append(path)
    return removed


def summarize_models(first: date, last: date, truth_path: Path) -> None:
    weeks = [k for k in partitions.weekly_partitions.get_partition_keys() if first.isoformat() <= k <= last.isoformat()]
    models = read_lake(settings.lake_url(), ["model", "denial_model"], weeks, column="week")
    if models.empty:
        say("  no model weeks in this range")
        return
    promoted = int(models["promoted"].sum())
    say(f"  models: {len(models)} weekly versions, {promoted} promoted; latest week {models['week'].iloc[-1]}: "
        f"v{models['model_version'].iloc[-1]} holdout AUC {models['holdout_roc_auc'].iloc[-1]:.4f}, "
        f"its fallback (payer x CPT family rates) {models['fallback_holdout_roc_auc'].iloc[-1]:.4f}")
    reviews = read_lake(settings.lake_url(), ["model", "lifecycle_review"], weeks, column="week")
    if not reviews.empty:
        decided = reviews[reviews["action"] != "none"]
        say(f"  lifecycle reviews: {len(reviews)} weeks, "
            + (", ".join(f"{n} {a}" for a, n in decided["action"].value_counts().items()) or "none with matured labels yet"))
        if len(decided):
            say(f"    latest: {decided['sentence'].iloc[-1]}")
    latest = models.iloc[-1]
    truth = pd.read_parquet(truth_path)
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri())
    result = model_vs_bayes(settings.lake_url(), date.fromisoformat(latest["week"]),
                            f"models:/{latest['model_name']}/{latest['model_version']}",
                            latest["feature_version"], truth)
    say(f"  latest model vs Bayes-optimal on its holdout ({int(result['holdout_rows']):,} claims): "
        f"AUC {result['model_auc']:.4f} vs {result['bayes_auc']:.4f} "
        f"(gap {result['bayes_auc'] - result['model_auc']:.4f})")
    served = scored_vs_bayes(settings.lake_url(), partitions.MODEL_START, last, truth)
    if served["scored_rows"]:
        say(f"  scores served out of time vs Bayes-optimal ({int(served['scored_rows']):,} adjudicated claims, "
            f"{partitions.MODEL_START} .. {last}): AUC {served['model_auc']:.4f} vs {served['bayes_auc']:.4f} "
            f"(gap {served['bayes_auc'] - served['model_auc']:.4f})")


# --------------------------------------------------------------------------------------------------
# rcm demo --drift: the drift scenario and what the monitors made of it
# --------------------------------------------------------------------------------------------------


def drift_scenario(args: Namespace, first: date, last: date) -> Drift | None:
    """The generator's Drift from --drift PAYER/FAMILY and --drift-start (default: the demo's middle day)."""
    if getattr(args, "drift", None) is None:
        return None
    payer, _, family = args.drift.partition("/")
    start = args.drift_start or first + timedelta(days=args.days // 2)
    if not first < start <= last:
        raise UsageError(f"--drift-start {start} must lie after {first} and on or before {last}")
    if payer not in DRIFT_PAYERS:
        raise UsageError(f"--drift {args.drift!r}: unknown payer {payer!r}; known: {list(DRIFT_PAYERS)}")
    if family not in DRIFT_FAMILIES:
        raise UsageError(f"--drift {args.drift!r}: unknown CPT family {family!r}; known: {list(DRIFT_FAMILIES)}")
    return Drift(start, payer, family)


def run_monitoring(runner: Runner, first: date, last: date) -> list:
    """The daily monitors over the scored days, then realized performance over the weeks, one run each."""
    daily = [monitoring.FEATURE_DRIFT_KEY, monitoring.SCORE_DRIFT_KEY, monitoring.FRESHNESS_KEY]
    outcomes = []
    if days := scoring_days(first, last):
        outcomes.append(runner.run(daily, *days, "monitoring (daily)"))
    if outcomes and outcomes[-1].success and (weeks := weeks_between(first, last)):
        outcomes.append(runner.run([monitoring.PERFORMANCE_KEY], *weeks, "monitoring (weekly)"))
    return outcomes


def first_alarm(frame: pd.DataFrame, onset: str, statuses: tuple[str, ...] = ("error",)) -> str | None:
    """The first day on or after the onset whose rows hold one of `statuses`."""
    if frame.empty:
        return None
    hits = frame[(frame["dt"] >= onset) & frame["status"].isin(statuses)]
    return str(hits["dt"].min()) if len(hits) else None


def summarize_drift(drift: Drift, first: date, last: date) -> None:
    """Days from the onset to the first alarm of each monitor, and the realized AUC week by week."""
    lake, onset = settings.lake_url(), drift.start.isoformat()
    days = [d for d in evaluation_days(drift.start, last)]
    say(f"  drift from {onset}: {drift.payer_id} requires prior auth for {drift.cpt_family}")
    for label, key, columns, statuses in (
            ("feature drift", monitoring.FEATURE_DRIFT_KEY, ["status"], ("error",)),
            ("score drift", monitoring.SCORE_DRIFT_KEY, ["status"], ("error",)),
            ("early outcomes", monitoring.FRESHNESS_KEY, None, ("error",))):
        frame = read_lake(lake, list(key.path), days, columns=columns)
        if label == "early outcomes" and not frame.empty:
            frame = pd.concat([mon.early_outcome_drift(rows, 42, mon.Band(5, 7), min_adjudicated=25).assign(dt=d)
                               for d, rows in frame.groupby("dt")], ignore_index=True)
        hit = first_alarm(frame, onset, statuses)
        when = f"{(date.fromisoformat(hit) - drift.start).days} days after the onset ({hit})" if hit else "no alarm"
        say(f"    {label:<15} {when}")
    say(f"    {'payer rule':<15} {learned_rule_line(lake, drift, first, last)}")
    weeks = [k for k in partitions.weekly_partitions.get_partition_keys() if first.isoformat() <= k <= last.isoformat()]
    perf = read_lake(lake, list(monitoring.PERFORMANCE_KEY.path), weeks, column="week")
    if perf.empty or "roc_auc" not in perf:
        say("    realized AUC:   no cohort has matured labels yet")
        return
    overall = perf[(perf["role"] == "champion") & (perf["segment"] == "all") & perf["roc_auc"].notna()]
    for row in overall.itertuples():
        say(f"    realized AUC week {row.week} (cohort {row.cohort_start}): {row.roc_auc:.4f} "
            f"on {row.labelled:,} labels [{row.status}]")


def learned_rule_line(lake: str, drift: Drift, first: date, last: date) -> str:
    """When gold started treating the drifted segment as requiring prior auth (lib/payer_rules), from the
    authorization denials in the lake."""
    denials = read_lake(lake, list(AUTHORIZATION_DENIALS_KEY.path), evaluation_days(first, last))
    days = evaluation_days(drift.start, last)
    rules = payer_rules.rules_in_force(denials, days) if len(denials) else payer_rules.empty_rules()
    hit = rules[(rules["payer_id"] == drift.payer_id) & (rules["cpt_family"] == drift.cpt_family)]
    if hit.empty:
        return "not learned (too few authorization denials have arrived)"
    day = str(hit["dt"].min())
    return (f"{(date.fromisoformat(day) - drift.start).days} days after the onset ({day}): "
            f"{drift.payer_id}/{drift.cpt_family} requires prior auth in the features from then on")


def evaluation_days(start: date, last: date) -> list[str]:
    return [(start + timedelta(days=i)).isoformat() for i in range((last - start).days + 1)]
