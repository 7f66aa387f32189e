"""Gold features: one row per claim and day, stamped with the feature version; leakage is refused loudly
(configuration, computation, the table about to be stored) and the stored table matches the scoring path.

Read-only assertions use the whole-graph `pipeline` run.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from rcm_assets.defs import gold
from rcm_assets.defs.learned import read_learned_tables
from rcm_assets.lib import claim_history, contracts
from rcm_assets.lib import features as feature_lib
from rcm_assets.lib.scoring import scoring_features
from rcm_assets.platform.io_manager import HiveParquetIOManager, lake_root
from rcm_assets.platform.resources import FeatureResource

DAY = "2025-03-04"
GOLD_CHECKS = {"one_row_per_claim", "feature_null_rates_within_bounds", "numeric_features_within_ranges",
               "decision_time_columns_only", "train_serve_parity", "no_new_payer_rule"}


def lake_file(data_dir: Path, layer: str, table: str, day: str = DAY) -> Path:
    return data_dir / "lake" / layer / table / f"dt={day}" / "part-0.parquet"


def read_all(data_dir: Path, layer: str, table: str) -> pd.DataFrame:
    frame = pd.read_parquet(data_dir / "lake" / layer / table)  # hive layout: `dt` from the folder names
    return frame.assign(dt=frame["dt"].astype(str))


@pytest.fixture(scope="module")
def gold_and_silver(pipeline) -> tuple[pd.DataFrame, pd.DataFrame]:
    return read_all(pipeline.data_dir, "gold", "claim_features"), read_all(pipeline.data_dir, "silver", "claims")


@pytest.fixture()
def day_silver(pipeline) -> pd.DataFrame:
    return pd.read_parquet(lake_file(pipeline.data_dir, "silver", "claims")).assign(dt=DAY)


# --------------------------------------------------------------------------------------------------
# the pipeline's gold


def test_gold_holds_the_submission_decisions_of_silver_one_row_per_claim_and_day(pipeline, gold_and_silver):
    features, silver_rows = gold_and_silver
    days = sorted(features["dt"].unique())
    assert days[0] == pipeline.source.start.isoformat() and days[-1] >= pipeline.source.end.isoformat()
    assert not features.duplicated(["dt", "claim_id"]).any()
    decisions, stats = claim_history.decision_rows(silver_rows, None, gold.UPDATE_LOOKBACK_DAYS)
    keys = ["dt", "claim_id", "claim_version", "submitted_at"]
    pd.testing.assert_frame_equal(
        features[keys].sort_values(keys, ignore_index=True), decisions[keys].sort_values(keys, ignore_index=True))
    assert set(features.columns) == set(feature_lib.OUTPUT_COLUMNS)
    # the realistic source updates rows in place: those later states are in silver, never in gold
    assert stats["in_place_updates"] > 0
    assert not features.duplicated(["claim_id", "claim_version"]).any()


def test_no_gold_row_holds_a_value_changed_after_its_submission(pipeline, gold_and_silver):
    """Each version's features come from its first state: an eligibility flag fixed days after the denial
    (an in-place update) never shows in gold. Today's code kept the last copy and scored it again."""
    features, silver_rows = gold_and_silver
    first = silver_rows.sort_values(["claim_id", "claim_version", "updated_at"]).drop_duplicates(
        ["claim_id", "claim_version"], keep="first")
    joined = features.merge(first, on=["claim_id", "claim_version"], suffixes=("", "_first"))
    assert len(joined) == len(features)
    assert (joined["dt"] == joined["dt_first"]).all()
    assert (joined["eligibility_verified"].astype(bool) == joined["eligibility_verified_first"].astype(bool)).all()


def test_every_gold_row_carries_the_resource_feature_version(pipeline, gold_and_silver):
    features, _ = gold_and_silver
    assert len(features) > 1000
    supplied = FeatureResource(reference_dir=str(pipeline.data_dir / "reference"))
    assert set(features["feature_version"]) == {supplied.version}
    # the version follows the configuration and the reference files' content: another one, another version
    assert FeatureResource(charge_ratio_cap=50.0).version != FeatureResource().version
    assert supplied.version != FeatureResource().version


def test_gold_checks_passed_on_the_pipeline_run(pipeline):
    evaluations = {e.check_name: e for e in pipeline.results["ingest"].get_asset_check_evaluations()
                   if e.asset_key == dg.AssetKey(["gold", "claim_features"])}
    assert set(evaluations) == GOLD_CHECKS
    assert all(e.passed for e in evaluations.values()), {n: e.description for n, e in evaluations.items()}
    assert evaluations["train_serve_parity"].metadata["rows_compared"].value == gold.PARITY_SAMPLE_ROWS


def test_stored_gold_values_equal_the_scoring_path(pipeline, day_silver):
    stored = pd.read_parquet(lake_file(pipeline.data_dir, "gold", "claim_features")).assign(dt=DAY)
    decisions = claim_history.first_states(day_silver)
    decisions = decisions[decisions.set_index(["claim_id", "claim_version"]).index.isin(
        stored.set_index(["claim_id", "claim_version"]).index)]
    scoring_input = decisions[[*contracts.scoring_input_columns(), "dt"]]  # claims as scoring receives them
    # with what gold knew that day: the payer rules and statistics learned from what arrived before it, and the
    # members' earlier claims
    lake = HiveParquetIOManager(lake_root(str(pipeline.data_dir / "lake")))
    resource = FeatureResource(reference_dir=str(pipeline.data_dir / "reference"))
    rules, _ = gold.learned_rules(lake, [DAY], resource.config())
    recomputed = scoring_features(scoring_input, resource.config(), rules[rules["dt"] == DAY], resource.reference(),
                                  read_learned_tables(lake, [DAY]), gold.member_history(lake, DAY, day_silver))
    assert stored["member_code_claims_60d"].gt(0).any()  # the history reached gold
    keys = ["claim_id"]
    left = stored.sort_values(keys, ignore_index=True)
    right = recomputed.sort_values(keys, ignore_index=True)[list(left.columns)]
    pd.testing.assert_frame_equal(left, right)


# --------------------------------------------------------------------------------------------------
# leakage: configuration and computation


@pytest.mark.parametrize("column", ["paid_amount", "adjudicated_at", "claim_status", "denied", "updated_at",
                                    "_ingested_at"])
def test_feature_resource_refuses_a_non_decision_time_source_column(column: str):
    resource = FeatureResource(source_columns=[*feature_lib.DEFAULT_SOURCE_COLUMNS, column])
    with pytest.raises(feature_lib.LeakageError, match=column) as raised:
        resource.config()
    assert raised.value.columns == [column]


def test_compute_features_refuses_a_post_outcome_column(day_silver):
    frame = feature_lib.decision_time_view(day_silver).assign(adjudicated_at=pd.Timestamp("2025-04-01"))
    with pytest.raises(feature_lib.LeakageError, match="adjudicated_at") as raised:
        feature_lib.compute_features(frame)
    assert raised.value.columns == ["adjudicated_at"]


def test_scoring_features_refuses_a_post_outcome_column(day_silver):
    """scoring.py: "only decision-time columns get in (LeakageError names any other)"; DESIGN.md: a
    post_outcome column reaching the scoring input is a loud failure, never a silent one."""
    frame = feature_lib.decision_time_view(day_silver).assign(paid_amount=np.float64(120.0))
    with pytest.raises(feature_lib.LeakageError, match="paid_amount"):
        scoring_features(frame, FeatureResource().config())


# The leakage guard and train/serve parity run inside the gold asset before the write: their failing cases
# are in test_selection_and_checks.py (a leaking or drifting feature path stops the write).
