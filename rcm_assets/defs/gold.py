"""Gold: the features of each submission decision that landed in silver on day D, from the feature resource.

A decision is the first state of a claim version (`lib.claim_history`): an in-place update of a version
already seen within RCM_UPDATE_LOOKBACK_DAYS is left out, so it never reaches training for that version
and is never scored twice. Only decision-time columns reach the features; every row carries
`feature_version`. The stored table is checked again for leakage, and a sample is re-computed through
the scoring path (train/serve parity).

Payer prior-authorization rules learned from the authorization denials that arrived before day D
(`lib/payer_rules`, evidence in `silver/authorization_denials`) count as required in D's features; the
day a new rule comes into force, the WARN check `no_new_payer_rule` says which and on what evidence.

What the features know besides the claim: the hospital's reference tables (`reference/*` assets, read
through the feature resource from RCM_REFERENCE_DIR; each optional) and the learned point-in-time statistics
of each day (`defs/learned.read_learned_tables`: evidence that arrived strictly before the day). The
metadata records the content version of every reference table ("not supplied" when absent) and of the
learned statistics, so each day says what it was computed with. The reference assets are lineage only: a
new reference file does not recompute history (the next days carry its version, and a new feature_version).
"""


from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import dagster as dg
import pandas as pd

from rcm_assets.defs import checks
from rcm_assets.defs.automation import follow_upstream
from rcm_assets.defs.learned import adjudication_evidence, read_learned_tables
from rcm_assets.defs.partitions import DAILY_BACKFILL_POLICY, PARTITIONS_START, daily_partitions
from rcm_assets.defs.payer_rules import AUTHORIZATION_DENIALS_KEY, authorization_denials
from rcm_assets.defs.reference import REFERENCE_ASSETS
from rcm_assets.defs.silver import claim_versions
from rcm_assets.lib import claim_history, contracts, payer_rules, quality, reference_tables, settings
from rcm_assets.lib import features as feature_lib
from rcm_assets.lib import learned as learned_lib
from rcm_assets.lib.scoring import scoring_features
from rcm_assets.platform import catalog
from rcm_assets.platform.resources import FeatureResource

SILVER_CLAIMS = dg.AssetKey(["silver", "claims"])
PARITY_SAMPLE_ROWS = 2_000
UPDATE_LOOKBACK_DAYS: int = settings.update_lookback_days()  # fixed when the code location loads
EARLIER_VERSION_COLUMNS = ["claim_id", "claim_version", "dt"]
# Silver claims days before a run that the member counts look in (`features.member_code_counts`): the longest
# count window (60 days of service dates) plus a month of billing delay.
MEMBER_HISTORY_DAYS = 90


def read_earlier_versions(lake: Any, first_day: str, lookback_days: int = UPDATE_LOOKBACK_DAYS
                          ) -> pd.DataFrame | None:
    """The version index of the `lookback_days` days before `first_day` (days never written are skipped).

    Read from the lake rather than declared as a partition-mapped input on purpose: an input mapping gold D
    to claim_versions [D-120, D-1] makes Dagster's backfills fan out, so a backfill of
    `*gold/claim_features` for one day also targeted the next 120 days of gold (whose silver days do not
    exist yet) and failed. Gold declares claim_versions of its own day as a dependency (lineage, no fan-out);
    days inside a run's own range are recomputed from silver by `claim_history.decision_rows`.
    """
    first = date.fromisoformat(first_day)
    days = [first - timedelta(days=n) for n in range(lookback_days, 0, -1)]
    frames = [lake.read_stored(claim_versions.key.path, d.isoformat()) for d in days if d >= PARTITIONS_START]
    frames = [f[EARLIER_VERSION_COLUMNS] for f in frames if f is not None and len(f)]
    return pd.concat(frames, ignore_index=True) if frames else None


def member_history(lake: Any, first_day: str, silver_claims: pd.DataFrame,
                   history_days: int = MEMBER_HISTORY_DAYS) -> pd.DataFrame:
    """The claims the member counts look in: each version's first state (as submitted; an in-place update is
    a later fact) from the `history_days` silver days before `first_day` and the run's own silver claims,
    `features.HISTORY_COLUMNS` only. Read from the lake for the reason `read_earlier_versions` gives; a day
    never written is skipped (its claims are unknown to the counts, as they were to the hospital)."""
    wanted = [*feature_lib.HISTORY_COLUMNS, "claim_version", "updated_at"]
    first = date.fromisoformat(first_day)
    days = [first - timedelta(days=n) for n in range(history_days, 0, -1)]
    frames = [lake.read_stored(SILVER_CLAIMS.path, d.isoformat(), columns=wanted) for d in days
              if d >= PARTITIONS_START]
    frames = [f for f in frames if f is not None and len(f)] + [silver_claims[wanted]]
    rows = pd.concat(frames, ignore_index=True).sort_values("updated_at", kind="stable")
    rows = rows.drop_duplicates(claim_history.VERSION_KEY, keep="first")
    return rows[list(feature_lib.HISTORY_COLUMNS)].reset_index(drop=True)


def learned_rules(lake: Any, days: list[str], config: feature_lib.FeatureConfig) -> tuple[pd.DataFrame, int]:
    """The payer rules in force on each of `days` and on the day before the first (to tell new ones), from
    the authorization denials of the window before; also the number of window days with no stored denials.

    Read from the lake for the reason `read_earlier_versions` gives; a day of the window that was never
    materialized is counted, not guessed (the `learned_rule_days_missing` metadata)."""
    first = (date.fromisoformat(days[0]) - timedelta(days=1)).isoformat()
    arrival = [d for d in payer_rules.arrival_days_for([first, *days], config.learned_rule_window_days)
               if date.fromisoformat(d) >= PARTITIONS_START]
    stored = [lake.read_stored(AUTHORIZATION_DENIALS_KEY.path, d) for d in arrival]
    frames = [f for f in stored if f is not None and len(f)]
    denials = pd.concat(frames, ignore_index=True) if frames else payer_rules.empty_denials()
    return payer_rules.rules_in_force(denials, [first, *days], config), sum(f is None for f in stored)


def new_rule_check(rules: pd.DataFrame, day: str, key: dg.AssetKey) -> dg.AssetCheckResult:
    """WARN on the day a learned payer rule comes into force (a payer changed its policy)."""
    fresh = payer_rules.new_rules(rules, day)
    in_force = rules[rules["dt"] == day]
    return checks.result(
        "no_new_payer_rule", fresh.empty, asset_key=key, warn_only=True,
        description="; ".join(payer_rules.describe(r) for _, r in fresh.iterrows()) or None,
        new_rules=", ".join(f"{p}/{f}" for p, f in zip(fresh["payer_id"], fresh["cpt_family"], strict=True)) or "none",
        rules_in_force=", ".join(f"{p}/{f}" for p, f in zip(in_force["payer_id"], in_force["cpt_family"],
                                                             strict=True)) or "none",
    )


def gold_checks(frame: pd.DataFrame, key: dg.AssetKey) -> list[dg.AssetCheckResult]:
    """Checks of one day's rows: one row per claim and day, null rates and ranges in bounds."""
    duplicated = quality.duplicate_claims(frame)
    nulls = quality.null_rate_findings(frame, feature_lib.MAX_NULL_RATE)
    ranges = quality.range_findings(frame, feature_lib.FEATURE_RANGES)
    return [
        checks.result("one_row_per_claim", duplicated == 0, asset_key=key, duplicate_rows=duplicated,
                      description=f"{duplicated} duplicate (dt, claim_id) rows" if duplicated else None),
        checks.result("feature_null_rates_within_bounds", not nulls, asset_key=key,
                      description=", ".join(f"{k} {v:.2%}" for k, v in nulls.items()) or None,
                      features_over_bound=dg.MetadataValue.json(nulls)),
        checks.result("numeric_features_within_ranges", not ranges, asset_key=key,
                      description=", ".join(f"{k}: {v} rows" for k, v in ranges.items()) or None,
                      rows_out_of_range=dg.MetadataValue.json(ranges)),
    ]


def leakage_check(frame: pd.DataFrame, key: dg.AssetKey) -> dg.AssetCheckResult:
    """The table about to be stored holds keys, decision-time features and feature_version only."""
    stored_columns = [c for c in frame.columns if c != "dt"]  # the partition key lives in the path
    findings = quality.leakage_findings(stored_columns)
    return checks.result(
        "decision_time_columns_only", not findings, asset_key=key,
        description="; ".join(findings) if findings else "only decision-time columns",
        leaking_columns=", ".join(findings) or "none", columns_checked=len(stored_columns),
    )


def learned_version(tables: learned_lib.LearnedTables, days: list[str]) -> str:
    """The learned statistics' content version of each day, for the metadata."""
    return ", ".join(sorted({tables.version(day) for day in days}))


def parity_check(frame: pd.DataFrame, silver_claims: pd.DataFrame, features: FeatureResource,
                 key: dg.AssetKey, rules: pd.DataFrame | None = None,
                 reference: reference_tables.ReferenceTables = reference_tables.NO_TABLES,
                 learned: learned_lib.LearnedTables | None = None,
                 history: pd.DataFrame | None = None) -> dg.AssetCheckResult:
    """A sample of the rows about to be stored equals the scoring path's features of the same claims."""
    if frame.empty:  # an empty day: no rows to compare
        return checks.result(
            "train_serve_parity", True, asset_key=key, description="no rows to compare", rows_compared=0,
            feature_version=feature_lib.feature_version(features.config(), reference), stored_feature_versions="none",
        )
    sample = frame.sample(n=min(PARITY_SAMPLE_ROWS, len(frame)), random_state=0)
    # the gold row of a version is its first state that day (later states are in-place updates)
    first = claim_history.first_states(silver_claims)
    keys = ["dt", "claim_id", "claim_version"]
    source = first[first.set_index(keys).index.isin(sample.set_index(keys).index)]
    # the scoring path receives claims as they are at submission: the scoring-input columns of silver
    scoring_input = [c for c in (*contracts.scoring_input_columns(), "dt") if c in source.columns]
    recomputed = scoring_features(source[scoring_input], features.config(), rules, reference, learned, history)
    diffs = quality.parity_differences(sample, recomputed)
    return checks.result(
        "train_serve_parity", not diffs, asset_key=key,
        description="; ".join(diffs) if diffs else f"{len(sample)} sampled rows identical in values and dtypes",
        rows_compared=len(sample), feature_version=feature_lib.feature_version(features.config(), reference),
        stored_feature_versions=", ".join(sorted(frame["feature_version"].astype(str).unique())) or "none",
    )


GOLD_KEY = dg.AssetKey(["gold", "claim_features"])
GOLD_CHECK_SPECS = [
    checks.spec("one_row_per_claim", GOLD_KEY, "No two rows share (dt, claim_id)",
                blocking=True, partitions_def=daily_partitions),
    checks.spec("feature_null_rates_within_bounds", GOLD_KEY,
                "Share of nulls per feature within its bound (lib/features.MAX_NULL_RATE: 0%, except the values "
                "no reference table or history may give, which are unknown rather than wrong)",
                blocking=True, partitions_def=daily_partitions),
    checks.spec("numeric_features_within_ranges", GOLD_KEY,
                "Numeric features inside their registered ranges (lib/features.FEATURE_RANGES)",
                blocking=True, partitions_def=daily_partitions),
    checks.spec("decision_time_columns_only", GOLD_KEY,
                "Leakage guard: the table holds keys, decision-time features and feature_version only",
                blocking=True, partitions_def=daily_partitions),
    checks.spec("train_serve_parity", GOLD_KEY,
                f"A sample of up to {PARITY_SAMPLE_ROWS} rows equals the scoring path's features of the "
                "same silver claims (values and dtypes)",
                blocking=True, partitions_def=daily_partitions),
    checks.spec("no_new_payer_rule", GOLD_KEY,
                "No payer prior-authorization rule comes into force on the day (WARN when one does: a payer "
                "denied claims without prior auth for an authorization reason; lib/payer_rules)",
                partitions_def=daily_partitions),
]


@dg.asset(
    key=GOLD_KEY,
    description=("Decision-time features of each claim submission that landed in silver on the day (one row "
                 "per claim and day), computed by the shared feature resource and stamped with feature_version."),
    group_name="gold",
    partitions_def=daily_partitions,
    io_manager_key="lake",
    ins={"silver_claims": dg.AssetIn(key=SILVER_CLAIMS)},
    # the day's own version index, denials and adjudication evidence (lineage); the lookbacks and learning
    # windows are read from the lake; the
    # reference tables (lineage: read through the feature resource, their versions in the metadata)
    deps=[claim_versions, authorization_denials, adjudication_evidence, *REFERENCE_ASSETS],
    required_resource_keys={"lake", "features"},
    backfill_policy=DAILY_BACKFILL_POLICY,
    automation_condition=follow_upstream().ignore(dg.AssetSelection.assets(
        claim_versions, authorization_denials, adjudication_evidence, *REFERENCE_ASSETS)),
    kinds={"pandas", "parquet"},
    owners=catalog.OWNERS,
    tags=catalog.tags("gold", phi=False),
    metadata=catalog.definition_metadata(catalog.gold_schema()),
    check_specs=GOLD_CHECK_SPECS,
)
def claim_features(context: dg.AssetExecutionContext, silver_claims: pd.DataFrame) -> Iterator:
    """Decision-time features of each submission that landed on day D, stamped with feature_version."""
    features: FeatureResource = context.resources.features
    earlier_versions = read_earlier_versions(context.resources.lake, context.partition_keys[0])
    decisions, history = claim_history.decision_rows(silver_claims, earlier_versions, UPDATE_LOOKBACK_DAYS)
    rules, rule_days_missing = learned_rules(context.resources.lake, list(context.partition_keys), features.config())
    rules_of_run = rules[rules["dt"].isin(context.partition_keys)]
    reference = features.reference()
    learned = read_learned_tables(context.resources.lake, list(context.partition_keys))
    members = member_history(context.resources.lake, context.partition_keys[0], silver_claims)
    frame = features.compute(decisions, rules_of_run, learned, reference, members)
    version = feature_lib.feature_version(features.config(), reference)
    context.log.info(
        f"gold: {len(frame)} submissions featurized from {history['states_in']} claim states "
        f"({history['in_place_updates']} in-place updates left out), feature_version {version}"
    )
    metadata = {"feature_version": version, "features": len(feature_lib.FEATURE_COLUMNS),
                **{f"reference_{name}": v for name, v in reference.versions().items()},
                "reference_version": reference.version,
                "learned_version": learned_version(learned, list(context.partition_keys)),
                "learned_window_days_missing": learned.days_missing,
                "claim_states_in": history["states_in"], "in_place_updates_left_out": history["in_place_updates"],
                "versions_superseded_same_day": history["superseded_same_day"],
                "learned_payer_rules": ", ".join(sorted({f"{p}/{f}" for p, f in zip(
                    rules_of_run["payer_id"], rules_of_run["cpt_family"], strict=True)})) or "none",
                "learned_rule_days_missing": rule_days_missing,
                **catalog.summary_metadata(frame)}
    # the leakage guard and the parity sample look at the whole run; the others at each day's rows
    whole_run = [leakage_check(frame, GOLD_KEY),
                 parity_check(frame, silver_claims, features, GOLD_KEY, rules_of_run, reference, learned, members)]
    by_day = checks.per_partition(context.partition_keys, frame, lambda rows, day: [
        *gold_checks(rows, GOLD_KEY), *whole_run, new_rule_check(rules, day, GOLD_KEY)])
    yield from checks.publish([dg.Output(frame, metadata=metadata)], by_day, what="gold/claim_features",
                              context=context)
