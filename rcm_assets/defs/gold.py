"""Gold: the features of each submission decision that landed in silver on day D, from the feature resource.

A decision is the first state of a claim version (`lib.claim_history`): an in-place update of a version
already seen within RCM_UPDATE_LOOKBACK_DAYS is left out, so it never reaches training for that version
and is never scored twice. Only decision-time columns reach the features; every row carries
`feature_version`. The stored table is checked again for leakage, and a sample is re-computed through
the scoring path (train/serve parity).
"""


from collections.abc import Iterator

import dagster as dg
import pandas as pd

from rcm_assets.defs import checks
from rcm_assets.defs.automation import follow_upstream
from rcm_assets.defs.partitions import daily_partitions
from rcm_assets.defs.silver import claim_versions
from rcm_assets.lib import claim_history, contracts, quality, settings
from rcm_assets.lib import features as feature_lib
from rcm_assets.lib.scoring import scoring_features
from rcm_assets.platform.resources import FeatureResource

SILVER_CLAIMS = dg.AssetKey(["silver", "claims"])
PARITY_SAMPLE_ROWS = 2_000
UPDATE_LOOKBACK_DAYS: int = settings.update_lookback_days()  # fixed when the code location loads
# The versions seen on the lookback days before D. Not a trigger: a change to an old day's index must not
# re-run the next 120 days of gold (the nightly run re-reads its lookback days anyway).
EARLIER_VERSIONS_IN = dg.AssetIn(
    key=claim_versions.key,
    partition_mapping=dg.TimeWindowPartitionMapping(
        start_offset=-UPDATE_LOOKBACK_DAYS, end_offset=-1, allow_nonexistent_upstream_partitions=True),
    metadata={"allow_missing_partitions": True, "columns": ["claim_id", "claim_version", "dt"]},
)


def gold_checks(frame: pd.DataFrame, key: dg.AssetKey) -> list[dg.AssetCheckResult]:
    """Checks evaluated before the write: one row per claim and day, null rates and ranges in bounds."""
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


@dg.asset(
    key=["gold", "claim_features"],
    group_name="gold",
    partitions_def=daily_partitions,
    io_manager_key="lake",
    ins={"silver_claims": dg.AssetIn(key=SILVER_CLAIMS), "earlier_versions": EARLIER_VERSIONS_IN},
    backfill_policy=dg.BackfillPolicy.single_run(),
    automation_condition=follow_upstream().ignore(dg.AssetSelection.assets(claim_versions)),
    kinds={"pandas", "parquet"},
    check_specs=[
        dg.AssetCheckSpec("one_row_per_claim", asset=["gold", "claim_features"], blocking=True),
        dg.AssetCheckSpec("feature_null_rates_within_bounds", asset=["gold", "claim_features"], blocking=True),
        dg.AssetCheckSpec("numeric_features_within_ranges", asset=["gold", "claim_features"], blocking=True),
    ],
)
def claim_features(
    context: dg.AssetExecutionContext, silver_claims: pd.DataFrame, earlier_versions: pd.DataFrame | None,
    features: FeatureResource,
) -> Iterator:
    """Decision-time features of each submission that landed on day D, stamped with feature_version."""
    decisions, history = claim_history.decision_rows(silver_claims, earlier_versions, UPDATE_LOOKBACK_DAYS)
    frame = features.compute(decisions)
    context.log.info(
        f"gold: {len(frame)} submissions featurized from {history['states_in']} claim states "
        f"({history['in_place_updates']} in-place updates left out), feature_version {features.version}"
    )
    key = dg.AssetKey(["gold", "claim_features"])
    metadata = {"feature_version": features.version, "features": len(feature_lib.FEATURE_COLUMNS),
                "claim_states_in": history["states_in"], "in_place_updates_left_out": history["in_place_updates"],
                "versions_superseded_same_day": history["superseded_same_day"]}
    yield from checks.publish(
        [dg.Output(frame, metadata=metadata)],
        gold_checks(frame, key),
        what="gold/claim_features",
    )


@dg.asset_check(
    asset=claim_features,
    name="decision_time_columns_only",
    blocking=True,
    partitions_def=daily_partitions,
    description="The stored gold table holds keys, decision-time features and feature_version only",
)
def decision_time_columns_only(claim_features: pd.DataFrame) -> dg.AssetCheckResult:
    findings = quality.leakage_findings(claim_features.columns)
    return checks.result(
        "decision_time_columns_only", not findings,
        description="; ".join(findings) if findings else "only decision-time columns",
        leaking_columns=", ".join(findings) or "none", columns_checked=len(claim_features.columns),
    )


@dg.asset_check(
    asset=claim_features,
    name="train_serve_parity",
    blocking=True,
    partitions_def=daily_partitions,
    additional_ins={"silver_claims": dg.AssetIn(key=SILVER_CLAIMS)},
    description="A sample of stored gold rows equals the scoring path's features of the same silver rows",
)
def train_serve_parity(
    claim_features: pd.DataFrame, silver_claims: pd.DataFrame, features: FeatureResource
) -> dg.AssetCheckResult:
    if claim_features.empty:  # an empty day: no rows to compare, and an empty Parquet file keeps no categories
        return checks.result(
            "train_serve_parity", True, description="no stored rows to compare", rows_compared=0,
            feature_version=features.version, stored_feature_versions="none",
        )
    sample = claim_features.sample(n=min(PARITY_SAMPLE_ROWS, len(claim_features)), random_state=0)
    # the stored row of a version is its first state that day (later states are in-place updates)
    first = claim_history.first_states(silver_claims)
    keys = ["dt", "claim_id", "claim_version"]
    source = first[first.set_index(keys).index.isin(sample.set_index(keys).index)]
    # the scoring path receives claims as they are at submission: the scoring-input columns of silver
    scoring_input = [c for c in (*contracts.scoring_input_columns(), "dt") if c in source.columns]
    recomputed = scoring_features(source[scoring_input], features.config())
    diffs = quality.parity_differences(sample, recomputed)
    return checks.result(
        "train_serve_parity", not diffs,
        description="; ".join(diffs) if diffs else f"{len(sample)} sampled rows identical in values and dtypes",
        rows_compared=len(sample), feature_version=features.version,
        stored_feature_versions=", ".join(sorted(claim_features["feature_version"].unique())) or "none",
    )


gold_asset_checks = [decision_time_columns_only, train_serve_parity]
