"""predictions/claim_denial_scores: every gold claim scored once by the champion serving that day.

Read-only assertions use the session `pipeline` (all prediction days scored in one run after the weekly
models). The refusal cases run in this test's own data folder with a copy of the pipeline's registry.
"""

from __future__ import annotations

import json
import shutil
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from rcm_assets.defs import partitions
from rcm_assets.defs.predictions import MIN_PSI_ROWS, PSI_WARN, SCORES_KEY, ScoringConfig
from rcm_assets.lib import champion as champion_lib
from rcm_assets.lib import fallback as fallback_lib
from rcm_assets.lib import quality
from rcm_assets.lib.scoring import FeatureVersionMismatch, score
from rcm_assets.lib.settings import sqlite_url

STAMPS = ["claim_id", "claim_version", "denial_probability", "decision", "threshold", "model_name",
          "model_version", "mlflow_run_id", "feature_version", "training_window_start",
          "training_window_end", "scored_at", "dagster_run_id"]
CHECKS = {"probabilities_in_unit_interval", "every_gold_claim_scored_once", "feature_version_matches_model",
          "score_drift_psi_below_threshold", "model_week_trained"}


def read_days(root: Path, days: list[str]) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(root / f"dt={d}" / "part-0.parquet").assign(dt=d) for d in days],
                     ignore_index=True)


def monday(day: str) -> str:
    d = date.fromisoformat(day)
    return (d - timedelta(days=d.weekday())).isoformat()


def mlflow_client(data_dir: Path):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=sqlite_url(data_dir / "mlflow" / "mlflow.db"))


@pytest.fixture(scope="module")
def scored(pipeline) -> dict:
    """The pipeline's scores and gold for every prediction day."""
    lake = pipeline.data_dir / "lake"
    days = [d for d in partitions.scoring_partitions.get_partition_keys()
            if d <= pipeline.source.end.isoformat()]
    return {
        "days": days,
        "scores": read_days(lake / "predictions" / "claim_denial_scores", days),
        "gold": read_days(lake / "gold" / "claim_features", days),
    }


def failure_messages(result) -> str:
    """Every step failure message of a run, joined (Failure descriptions included)."""
    parts = []
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE":
            data = event.step_failure_data
            parts.append(data.error.message if data.error else "")
            if data.user_failure_data is not None:
                parts.append(data.user_failure_data.description or "")
    return " ".join(parts)


# --------------------------------------------------------------------------------------------------
# The pipeline's scores (read-only)
# --------------------------------------------------------------------------------------------------


def test_the_prediction_run_succeeded_with_its_checks_passing(pipeline, scored):
    """Every check is recorded for every day of the range run (issue 15.2), each with that day's own figures."""
    result = pipeline.results["predictions"]
    assert result.success
    evaluations = [e for e in result.get_asset_check_evaluations() if e.asset_key == SCORES_KEY]
    by_check: dict[str, dict[str, object]] = {}
    for e in evaluations:
        by_check.setdefault(e.check_name, {})[e.partition] = e
    assert CHECKS <= set(by_check)
    for name in CHECKS:
        assert set(by_check[name]) == set(scored["days"]), name  # one evaluation per day
        assert all(e.passed for e in by_check[name].values()), {d: e.description for d, e in by_check[name].items()}

    client, scores = mlflow_client(pipeline.data_dir), scored["scores"]
    for day, drift in by_check["score_drift_psi_below_threshold"].items():
        assert drift.severity.value == "WARN"  # drift warns; it never blocks scoring
        assert drift.metadata["threshold"].value == pytest.approx(PSI_WARN)
        psi = drift.metadata["psi"].value
        assert psi >= 0.0 and (psi < PSI_WARN or drift.metadata["claims"].value < MIN_PSI_ROWS)
        # the day's PSI: its scores against the holdout reference of the version that scored it
        rows = scores[scores["dt"] == day]
        version = rows["model_version"].iloc[0]
        reference = json.loads(client.get_model_version(rows["model_name"].iloc[0], version).tags["score_reference"])
        assert psi == pytest.approx(quality.score_psi(reference, rows["denial_probability"]))
        assert f"{psi:.3f}" in drift.description
        assert str(PSI_WARN) in drift.description or "too few for a stable PSI" in drift.description
    for day, e in by_check["every_gold_claim_scored_once"].items():
        counts = e.metadata
        day_gold = scored["gold"][scored["gold"]["dt"] == day]
        assert counts["gold_claims"].value == counts["scored_claims"].value == len(day_gold)


def test_every_gold_claim_of_each_day_is_scored_exactly_once(scored):
    scores, gold = scored["scores"], scored["gold"]
    keys = ["dt", "claim_id", "claim_version"]
    assert not scores.duplicated(["dt", "claim_id"]).any()
    per_day_gold = gold.groupby("dt").size()
    per_day_scores = scores.groupby("dt").size()
    assert (per_day_gold > 0).all() and len(per_day_gold) == len(scored["days"])
    pd.testing.assert_series_equal(per_day_scores, per_day_gold)
    merged = gold[keys].merge(scores[keys], on=keys, how="outer", indicator=True)
    assert (merged["_merge"] == "both").all(), merged["_merge"].value_counts().to_dict()


def test_every_row_carries_its_lineage(pipeline, scored):
    scores, gold = scored["scores"], scored["gold"]
    assert set(STAMPS) <= set(scores.columns)
    assert scores[STAMPS].notna().all().all(), scores[STAMPS].isna().sum().to_dict()
    assert (scores["model_name"] == pipeline.resources["mlflow_tracking"].model_name).all()
    assert (scores["dagster_run_id"] == pipeline.results["predictions"].run_id).all()
    assert set(scores["feature_version"]) == set(gold["feature_version"])
    # decision at the configured threshold
    threshold = ScoringConfig().decision_threshold
    assert (scores["threshold"] == threshold).all()
    expected = np.where(scores["denial_probability"] >= threshold, "review", "submit")
    assert (scores["decision"].to_numpy() == expected).all()
    assert set(scores["decision"]) == {"review", "submit"}
    # scored_at is when the run scored them (naive UTC)
    stats = pipeline.instance.get_run_stats(pipeline.results["predictions"].run_id)
    started = pd.Timestamp(stats.start_time, unit="s") - pd.Timedelta(seconds=1)
    ended = pd.Timestamp(stats.end_time, unit="s") + pd.Timedelta(seconds=1)
    assert scores["scored_at"].between(started, ended).all()


def test_probabilities_are_probabilities(scored):
    p = scored["scores"]["denial_probability"]
    assert p.dtype == np.float64
    assert p.between(0.0, 1.0).all()
    assert p.nunique() > 10  # a real model, not a constant
    assert 0.03 < p.mean() < 0.4  # denial rates of 10–15 % are typical


def test_each_day_is_scored_by_its_champion_never_by_a_later_model(pipeline, scored):
    client, scores = mlflow_client(pipeline.data_dir), scored["scores"]
    name = scores["model_name"].iloc[0]
    used = scores.groupby("dt")["model_version"].unique()
    for day, versions in used.items():
        assert len(versions) == 1, (day, versions)  # one model per day
        version = client.get_model_version(name, versions[0])
        assert version.tags["dagster_partition"] <= day  # trained for a week starting on or before D
        assert version.tags["cutoff"] <= day  # so only on data from before D
        assert champion_lib.champion_as_of(client, name, date.fromisoformat(day)) == versions[0]
        # and it is the version the week's gate left serving
        week_row = pd.read_parquet(pipeline.data_dir / "lake" / "model" / "denial_model"
                                   / f"week={monday(day)}" / "part-0.parquet")
        assert week_row["serving_version"].iloc[0] == versions[0]
    # one model per week: a week's days change model only when that week's gate promoted one
    assert scores.groupby(scores["dt"].map(monday))["model_version"].nunique().eq(1).all()


def test_each_row_points_at_a_real_mlflow_run_with_the_stamped_window(pipeline, scored):
    client, scores = mlflow_client(pipeline.data_dir), scored["scores"]
    stamped = scores[["model_name", "model_version", "mlflow_run_id", "feature_version",
                      "training_window_start", "training_window_end"]].drop_duplicates()
    assert len(stamped) == scores["model_version"].nunique()  # one lineage per version
    for row in stamped.itertuples():
        version = client.get_model_version(row.model_name, row.model_version)
        assert version.run_id == row.mlflow_run_id
        params = client.get_run(row.mlflow_run_id).data.params
        assert pd.Timestamp(params["window_start"]) == pd.Timestamp(row.training_window_start)
        assert pd.Timestamp(params["window_end"]) == pd.Timestamp(row.training_window_end)
        assert params["feature_version"] == row.feature_version == version.tags["feature_version"]
        start, end = pd.Timestamp(row.training_window_start), pd.Timestamp(row.training_window_end)
        assert end - start == pd.Timedelta(days=partitions.TRAIN_WINDOW_DAYS)


# --------------------------------------------------------------------------------------------------
# Refusals
# --------------------------------------------------------------------------------------------------


def test_features_of_another_feature_version_are_refused(pipeline, scored):
    import mlflow

    client = mlflow_client(pipeline.data_dir)
    name = scored["scores"]["model_name"].iloc[0]
    version = client.get_model_version(name, "1")
    mlflow.set_tracking_uri(client.tracking_uri)
    model = mlflow.sklearn.load_model(f"models:/{name}/1")
    model_fv = version.tags["feature_version"]
    day = scored["days"][0]
    gold = scored["gold"][scored["gold"]["dt"] == day].reset_index(drop=True)

    ok = score(model, gold, model_feature_version=model_fv, threshold=0.35, stamp={"model_version": "1"})
    assert len(ok) == len(gold)  # control: the same frame with matching features scores

    foreign = gold.assign(feature_version="0badc0ffee0badc0")
    with pytest.raises(FeatureVersionMismatch) as refused:
        score(model, foreign, model_feature_version=model_fv, threshold=0.35, stamp={})
    assert model_fv in str(refused.value) and "0badc0ffee0badc0" in str(refused.value)

    mixed = pd.concat([gold.head(5), foreign.head(5)], ignore_index=True)
    with pytest.raises(FeatureVersionMismatch, match="0badc0ffee0badc0"):
        score(model, mixed, model_feature_version=model_fv, threshold=0.35, stamp={})


def copy_for_scoring(pipeline, data_dir: Path, day: str) -> None:
    """One gold day and a copy of the pipeline's registry, in this test's data folder."""
    src = pipeline.data_dir / "lake" / "gold" / "claim_features" / f"dt={day}"
    shutil.copytree(src, data_dir / "lake" / "gold" / "claim_features" / f"dt={day}")
    (data_dir / "mlflow").mkdir()
    shutil.copyfile(pipeline.data_dir / "mlflow" / "mlflow.db", data_dir / "mlflow" / "mlflow.db")


def run_scoring(day: str):
    import dagster as dg

    from rcm_assets.defs import predictions
    from rcm_assets.platform.resources import build_resources
    from rcm_assets_tests.conftest import materialize_range

    return materialize_range([predictions.claim_denial_scores], day, day, dg.DagsterInstance.ephemeral(),
                             build_resources("dev"))


def remove_promotions(client, name: str) -> None:
    """The same registered versions, but no promotion ever happened: the history is empty."""
    for mv in client.search_model_versions(f"name = '{name}'"):
        for key in mv.tags:
            if key.startswith(champion_lib.EVENT_PREFIX):
                client.delete_model_version_tag(name, mv.version, key)
    client.delete_registered_model_alias(name, champion_lib.ALIAS)
    assert champion_lib.history(client, name).empty


def test_a_day_without_a_champion_is_scored_by_the_fallback_and_says_so(pipeline, scored, isolated_env):
    """Issue 13.5: before, a day without a champion failed and stayed unscored."""
    day = scored["days"][0]
    copy_for_scoring(pipeline, isolated_env, day)
    client = mlflow_client(isolated_env)
    name = scored["scores"]["model_name"].iloc[0]
    remove_promotions(client, name)

    result = run_scoring(day)

    assert result.success, failure_messages(result)
    rescored = pd.read_parquet(isolated_env / "lake" / "predictions" / "claim_denial_scores" / f"dt={day}")
    assert (rescored["scored_by"] == "fallback").all()
    assert (rescored["model_name"] == fallback_lib.registered_name(name)).all()
    assert rescored["denial_probability"].between(0, 1).all() and rescored["denial_probability"].nunique() > 3
    (check,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "scored_by_champion"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert f"no champion serves {day}" in check.description and "fallback model" in check.description
    # the fallback is a registered MLflow version fitted on the model week's own training window
    fb = client.get_model_version(fallback_lib.registered_name(name), rescored["model_version"].iloc[0])
    assert fb.tags["dagster_partition"] <= day and float(fb.tags["holdout_roc_auc"]) > 0.55


def test_a_day_without_a_champion_or_a_fallback_fails_naming_the_day(pipeline, scored, isolated_env):
    day = scored["days"][0]
    copy_for_scoring(pipeline, isolated_env, day)
    client = mlflow_client(isolated_env)
    name = scored["scores"]["model_name"].iloc[0]
    remove_promotions(client, name)
    client.delete_registered_model(fallback_lib.registered_name(name))

    result = run_scoring(day)

    assert not result.success
    message = failure_messages(result)
    assert "no champion" in message and day in message and "no fallback" in message, message
    assert not (isolated_env / "lake" / "predictions" / "claim_denial_scores" / f"dt={day}").exists()


def test_a_champion_that_cannot_load_leaves_no_day_unscored(pipeline, scored, isolated_env, monkeypatch):
    day = scored["days"][-1]
    copy_for_scoring(pipeline, isolated_env, day)
    from rcm_assets.defs import predictions

    def unreachable(*args, **kwargs):
        raise OSError("artifact store unreachable")

    monkeypatch.setattr(predictions.mlflow.sklearn, "load_model", unreachable)
    result = run_scoring(day)

    assert result.success, failure_messages(result)
    rescored = pd.read_parquet(isolated_env / "lake" / "predictions" / "claim_denial_scores" / f"dt={day}")
    assert (rescored["scored_by"] == "fallback").all()
    (check,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "scored_by_champion"]
    assert not check.passed and "could not be loaded" in check.description and "OSError" in check.description


def test_a_rollback_today_does_not_change_which_model_scores_a_past_day(pipeline, scored, isolated_env):
    day = scored["days"][-1]  # scored by the last week's model
    copy_for_scoring(pipeline, isolated_env, day)
    client = mlflow_client(isolated_env)
    name = scored["scores"]["model_name"].iloc[0]
    before = scored["scores"].loc[scored["scores"]["dt"] == day, "model_version"].iloc[0]
    champion_lib.rollback(client, name, "1", by="test")
    assert champion_lib.current_champion(client, name) == "1" != before

    result = run_scoring(day)

    assert result.success
    rescored = pd.read_parquet(isolated_env / "lake" / "predictions" / "claim_denial_scores" / f"dt={day}"
                               / "part-0.parquet")
    assert (rescored["model_version"] == before).all()
    original = scored["scores"][scored["scores"]["dt"] == day].sort_values("claim_id", ignore_index=True)
    rescored = rescored.sort_values("claim_id", ignore_index=True)
    np.testing.assert_allclose(rescored["denial_probability"], original["denial_probability"])


def test_the_pipeline_run_found_every_model_week_trained(pipeline):
    evaluations = [e for e in pipeline.results["predictions"].get_asset_check_evaluations()
                   if e.check_name == "model_week_trained"]
    assert len(evaluations) == len({e.partition for e in evaluations}) > 1  # one per scored day
    assert all(e.passed and e.metadata["missing_weeks"].value == "none" for e in evaluations)


def test_a_failed_model_week_names_the_week_and_never_holds_scoring_back():
    """Issue 13.2: when a week's training fails, its days are still scored by the champion history, and
    the WARN names the missing week. Before, predictions waited for the week (automation never ran).
    Issue 30: a day no model can score (no week up to its own trained) is not requested, so the world here
    has an earlier week trained: the failed week's day is requested, a day before any trained week is not."""
    from rcm_assets.defs import predictions

    missing = predictions.missing_model_weeks(["2025-05-12", "2025-05-13", "2025-05-20"], {"2025-05-12"})
    assert missing == ["2025-05-19"]
    result = predictions.model_week_check(missing, {})
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN
    assert "2025-05-19" in result.description

    from rcm_assets.definitions import defs
    from rcm_assets.defs.model import MODEL_KEY

    instance = dg.DagsterInstance.ephemeral()
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=MODEL_KEY, partition="2025-05-12"))
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    day = "2025-05-20"  # its model week 2025-05-19 never materialized: training failed
    before = "2025-05-06"  # week 2025-05-05 never trained either, and no earlier week was: nothing can score it
    for d in (day, before):
        instance.report_runless_asset_event(dg.AssetMaterialization(
            asset_key=dg.AssetKey(["gold", "claim_features"]), partition=d))
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
    assert result.get_requested_partitions(dg.AssetKey(["predictions", "claim_denial_scores"])) == {day}


def test_written_scores_are_kept_and_an_explicit_rescore_is_recorded(pipeline, scored, isolated_env):
    """Issue 13.1: re-materializing a day used to overwrite the scores billers had worked from with
    whatever model serves now. Written scores are kept; `rescore` rewrites them and records it."""
    import dagster as dg

    from rcm_assets.defs import predictions
    from rcm_assets.platform.resources import build_resources
    from rcm_assets_tests.conftest import materialize_range

    day = scored["days"][-1]
    copy_for_scoring(pipeline, isolated_env, day)
    first = run_scoring(day)
    assert first.success
    path = isolated_env / "lake" / "predictions" / "claim_denial_scores" / f"dt={day}" / "part-0.parquet"
    written = pd.read_parquet(path).sort_values("claim_id", ignore_index=True)
    client = mlflow_client(isolated_env)
    name = written["model_name"].iloc[0]
    other = "1" if written["model_version"].iloc[0] != "1" else "2"
    # another version now serves that day (a review's rollback, effective from the day)
    champion_lib.promote(client, name, other, date.fromisoformat(day), "test", by="test",
                         action=champion_lib.ROLLBACK, replaces=written["model_version"].iloc[0])

    again = run_scoring(day)
    assert again.success
    kept = pd.read_parquet(path).sort_values("claim_id", ignore_index=True)
    pd.testing.assert_frame_equal(kept[written.columns], written)  # untouched, scored_at included
    (mat,) = again.asset_materializations_for_node("predictions__claim_denial_scores")
    assert mat.metadata["scores_kept_as_written"].value == len(written)

    rescored = materialize_range([predictions.claim_denial_scores], day, day, dg.DagsterInstance.ephemeral(),
                                 build_resources("dev"),
                                 run_config={"ops": {"predictions__claim_denial_scores": {"config": {"rescore": True}}}})
    assert rescored.success
    now = pd.read_parquet(path)
    assert (now["model_version"] == other).all()
    (mat,) = rescored.asset_materializations_for_node("predictions__claim_denial_scores")
    record = mat.metadata["rewrites"].value[day]
    assert record["claims_rewritten"] > 0 and f"v{written['model_version'].iloc[0]}→v{other}" in record["versions"]
    assert record["claims_rewritten"] + record["claims_kept_identical"] == len(written)


def test_a_range_is_scored_with_one_call_per_serving_model_in_day_order(pipeline, scored, monkeypatch):
    """Issue 16: the days one model serves are scored in one call (not one per day), with the same rows,
    order and values as scoring day by day."""
    import logging

    from rcm_assets.defs import predictions

    calls: list[list[str]] = []

    def counting(model, features, **kwargs):
        calls.append(sorted(features["dt"].unique()))
        return score(model, features, **kwargs)

    monkeypatch.setattr(predictions, "score", counting)
    registry = predictions.Registry(pipeline.resources["mlflow_tracking"])
    gold, written = scored["gold"], scored["scores"]
    fresh, fell_back = predictions.score_days(gold, registry, 0.35, "run-test", logging.getLogger("test"))
    serving = written.groupby("dt")["model_version"].first()
    assert serving.nunique() > 1 and len(scored["days"]) > serving.nunique()  # several days per model
    assert len(calls) == serving.nunique() and not fell_back
    assert sorted(d for days in calls for d in days) == sorted(scored["days"])
    # rows in day order, each day's rows in gold's order, scored by the day's champion
    expected = gold.sort_values("dt", kind="stable")[["dt", "claim_id", "claim_version"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(fresh[["dt", "claim_id", "claim_version"]], expected)
    assert (fresh["model_version"].to_numpy() == fresh["dt"].map(serving).to_numpy()).all()
    # the same values as one call per day
    for day, rows in gold.groupby("dt"):
        model = registry.model(serving[day])
        alone = score(model.model, rows, model_feature_version=model.feature_version, threshold=0.35,
                      stamp=model.stamp)
        np.testing.assert_array_equal(fresh.loc[fresh["dt"] == day, "denial_probability"].to_numpy(),
                                      alone["denial_probability"].to_numpy())


def test_a_process_loads_each_registered_model_once_across_runs(pipeline, scored, monkeypatch):
    """Issue 16: the chunk runs of one CLI backfill, and the worklist after the scores, reuse the models the
    process already loaded (a version's artifacts never change) instead of loading them again each run."""
    from collections import OrderedDict

    from rcm_assets.defs import predictions, worklist

    monkeypatch.setattr(predictions, "_LOADED", OrderedDict(), raising=False)  # nothing loaded yet
    real = predictions.mlflow.sklearn.load_model
    loads: list[str] = []

    def counting(uri, *args, **kwargs):
        loads.append(uri)
        return real(uri, *args, **kwargs)

    monkeypatch.setattr(predictions.mlflow.sklearn, "load_model", counting)
    mlf = pipeline.resources["mlflow_tracking"]
    versions = sorted(scored["scores"]["model_version"].astype(str).unique())
    models = []
    for _ in range(2):  # two runs of one process
        registry = predictions.Registry(mlf)
        models.append([registry.model(v).model for v in versions])
        explainers = worklist.Explainers(mlf)
        for v in versions:
            assert explainers.denial_model(mlf.model_name, v) is registry.model(v).model
    assert sorted(loads) == sorted(f"models:/{mlf.model_name}/{v}" for v in versions)  # once each
    assert all(a is b for a, b in zip(*models, strict=True))


def test_rows_by_day_are_the_rows_a_filter_per_day_gives(scored):
    """Issue 16: a range run splits its frames by day once (a filter per day was quadratic in the days);
    each day's rows, order, index and dtypes are those of `frame[frame["dt"] == day]`."""
    from rcm_assets.lib.scoring import rows_by_day

    gold = scored["gold"].sample(frac=1.0, random_state=0)  # days interleaved, index shuffled
    split = rows_by_day(gold)
    assert sorted(split) == sorted(scored["days"])
    for day in scored["days"]:
        pd.testing.assert_frame_equal(split[day], gold[gold["dt"] == day])
    assert rows_by_day(gold.iloc[0:0]) == {} and rows_by_day(pd.DataFrame()) == {}
