"""defs/monitoring through Dagster on the session pipeline's lake (copied: the pipeline is read-only).

The monitoring assets read gold, scores and remittances from the lake, store one row set per day (or
week), record their checks per partition, attach plots and log them to MLflow.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from rcm_assets.defs import monitoring, partitions
from rcm_assets.platform.resources import build_resources
from rcm_assets_tests.conftest import materialize_range

DAILY = [monitoring.feature_drift, monitoring.score_drift, monitoring.label_freshness]


def copy_pipeline(pipeline, data_dir: Path) -> dict:
    """The pipeline's lake and MLflow store, copied into this test's RCM_DATA_DIR."""
    for name in ("lake", "mlflow", "reference"):  # the reference files are part of feature_version
        shutil.copytree(pipeline.data_dir / name, data_dir / name, dirs_exist_ok=True)
    return build_resources("dev")


def read(data_dir: Path, key: dg.AssetKey, part: str) -> pd.DataFrame:
    return pd.read_parquet(data_dir / "lake" / Path(*key.path) / part / "part-0.parquet")


def check_evaluations(instance: dg.DagsterInstance, key: dg.AssetKey, name: str) -> dict[str, object]:
    """The latest evaluation of a check per partition."""
    out = {}
    for record in instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(key, name), limit=1000):
        evaluation = record.event.dagster_event.event_specific_data if record.event else None
        if evaluation is not None and evaluation.partition not in out:
            out[evaluation.partition] = evaluation
    return out


def test_thresholds_come_from_run_config_then_environment_then_defaults(monkeypatch: pytest.MonkeyPatch):
    config = monitoring.MonitoringConfig(psi_error=0.4)
    monkeypatch.setenv("RCM_MONITOR_PSI_ERROR", "0.3")
    monkeypatch.setenv("RCM_MONITOR_PSI_WARN", "0.15")
    monkeypatch.setenv("RCM_MONITOR_SLA_DAYS", "30")
    assert monitoring.band(config, "psi") == monitoring.mon.Band(0.15, 0.4)
    assert monitoring.band(monitoring.MonitoringConfig(), "psi") == monitoring.mon.Band(0.15, 0.3)
    assert monitoring.setting(monitoring.MonitoringConfig(), "sla_days") == 30
    assert monitoring.band(monitoring.MonitoringConfig(), "auc", low_is_bad=True) == \
        monitoring.mon.Band(0.72, 0.70, low_is_bad=True)
    monkeypatch.setenv("RCM_MONITOR_KS_WARN", "high")
    with pytest.raises(dg.Failure, match="RCM_MONITOR_KS_WARN='high' is not a number"):
        monitoring.band(monitoring.MonitoringConfig(), "ks")


@pytest.fixture(scope="module")
def days(pipeline) -> list[str]:
    keys = partitions.scoring_partitions.get_partition_keys()
    return [d for d in keys if d <= pipeline.source.end.isoformat()]


def test_daily_monitors_store_rows_every_day_with_per_day_checks_and_plots(pipeline, days, isolated_env: Path):
    resources = copy_pipeline(pipeline, isolated_env)
    instance = dg.DagsterInstance.ephemeral()
    first, last = days[0], days[-1]
    result = materialize_range(DAILY, first, last, instance, resources)
    assert result.success

    for day in (first, last):
        drift = read(isolated_env, monitoring.FEATURE_DRIFT_KEY, f"dt={day}")
        assert set(drift["feature"]) == set(monitoring.FEATURE_COLUMNS)  # every feature, every day
        assert drift["reference_rows"].min() > 1000 and drift["psi"].notna().all()
        # KS wherever both sides have enough values; a feature unknown (NaN) on most rows is not measurable
        # (here learned_typical_charge and learned_filing_limit_days: this fixture's gold has no learned
        # statistics, so they take their NaN defaults)
        numeric = drift[drift["kind"] == "numeric"].set_index("feature")
        values = {side: ((1 - numeric[f"{side}_null_share"]) * numeric[f"{side}_rows"]).round()
                  for side in ("reference", "current")}
        min_claims = monitoring.DEFAULTS["min_claims"]
        measurable = (values["reference"] >= min_claims) & (values["current"] >= min_claims)
        assert numeric.loc[measurable, "ks_statistic"].notna().all()
        assert numeric.loc[~measurable, "ks_statistic"].isna().all(), numeric.loc[~measurable]
        assert measurable.sum() >= len(numeric) - 2, numeric.loc[~measurable]
        scores = read(isolated_env, monitoring.SCORE_DRIFT_KEY, f"dt={day}")
        assert "all" in set(scores["segment"]) and len(scores) > 5  # overall and per payer
        fresh = read(isolated_env, monitoring.FRESHNESS_KEY, f"dt={day}")
        overall = fresh[fresh["segment"] == "all"].set_index("age_days")
        assert overall.loc[0, "adjudicated_share"] == 0.0  # today's cohort: nothing adjudicated yet
        assert overall.loc[45, "adjudicated_share"] > 0.6

    # the same process before and after: no drift ERROR on any day; one evaluation per day and check
    for key, name in ((monitoring.FEATURE_DRIFT_KEY, "feature_drift_within_thresholds"),
                      (monitoring.SCORE_DRIFT_KEY, "score_drift_within_thresholds"),
                      (monitoring.FRESHNESS_KEY, "labels_arrive_within_sla")):
        evaluations = check_evaluations(instance, key, name)
        assert set(evaluations) == set(days), name
        errors = {d: e.description for d, e in evaluations.items()
                  if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR}
        assert not errors, (name, errors)

    from rcm_assets.cli.status import monitoring_summary

    summary = "\n".join(monitoring_summary(instance))
    assert "feature drift" in summary and "max_psi" in summary and "score drift" in summary

    materialization = instance.get_latest_materialization_event(monitoring.FEATURE_DRIFT_KEY).asset_materialization
    plot = materialization.metadata["plot_feature_drift_over_time"]
    assert isinstance(plot, dg.MarkdownMetadataValue) and "data:image/png;base64," in plot.value
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=resources["mlflow_tracking"].tracking_uri)
    run_id = materialization.metadata["mlflow_run_id"].value
    assert [a.path for a in client.list_artifacts(run_id, "plots")] == ["plots/feature_drift_over_time.png"]


def test_a_stopped_remittance_feed_fails_the_label_sla(pipeline, days, isolated_env: Path):
    """Remittance files stop arriving three weeks before the last day: the cohort due today misses its SLA."""
    resources = copy_pipeline(pipeline, isolated_env)
    last = days[-1]
    stopped = (pd.Timestamp(last) - pd.Timedelta(days=21)).date().isoformat()
    remittances = isolated_env / "lake" / "silver" / "remittances"
    removed = [p for p in remittances.glob("dt=*") if p.name[3:] >= stopped]
    assert len(removed) >= 20
    for path in removed:
        shutil.rmtree(path)
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([*pipeline_assets()], selection=[monitoring.label_freshness], partition_key=last,
                            instance=instance, resources=resources, raise_on_error=False)
    assert result.success  # the rows are stored; the check carries the failure
    evaluation = check_evaluations(instance, monitoring.FRESHNESS_KEY, "labels_arrive_within_sla")[last]
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert "all" in evaluation.description
    fresh = read(isolated_env, monitoring.FRESHNESS_KEY, f"dt={last}")
    assert fresh.loc[(fresh["segment"] == "all") & (fresh["age_days"] == 45), "adjudicated_share"].item() < 0.5


def test_realized_performance_runs_weekly_for_every_role_it_finds(pipeline, days, isolated_env: Path):
    """The pipeline world ends two weeks after scoring starts, so few labels have matured: the asset still
    stores its rows (coverage shows it) and the floor check does not fire on too few labels."""
    resources = copy_pipeline(pipeline, isolated_env)
    instance = dg.DagsterInstance.ephemeral()
    week = "2025-05-19"
    result = dg.materialize([*pipeline_assets()], selection=[monitoring.realized_performance], partition_key=week,
                            instance=instance, resources=resources,
                            run_config={"ops": {"monitoring__realized_performance": {"config": {"maturity_days": 14}}}})
    assert result.success
    table = read(isolated_env, monitoring.PERFORMANCE_KEY, f"week={week}")
    assert set(table["role"]) >= {"champion"} and "all" in set(table["segment"])
    overall = table[(table["role"] == "champion") & (table["segment"] == "all")].iloc[0]
    assert overall["scored"] > 500 and 0 <= overall["label_coverage"] < 0.5
    evaluation = check_evaluations(instance, monitoring.PERFORMANCE_KEY, "champion_auc_above_floor")[week]
    assert evaluation.passed and evaluation.metadata["status"].value == "insufficient"  # never an alert


def pipeline_assets() -> list:
    from rcm_assets.definitions import defs

    return [*defs.assets]


@pytest.mark.slow
def test_rcm_demo_drift_runs_the_monitors_end_to_end(isolated_env: Path, tmp_path: Path, record_property):
    """`rcm demo --drift` on a small world with short windows, through Dagster as a user runs it: every
    scored day gets its monitoring rows, realized performance its weekly rows, and the summary says when
    each monitor first raised an ERROR after the onset.

    The gate floor is this small world's (RCM_GATE_AUC_FLOOR): the features know the hospital's reference
    files and what was learned from earlier adjudications, not the generator's answer key, and 250 claims a
    day on a 42-day window leave some weekly models under the production floor 0.70. Measured (seed 7): holdout
    AUC 0.678-0.752 over the nine weeks, under 0.70 the first (0.678) and the drift's (2025-03-31, 0.679);
    this test is about the monitors, not model quality."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster_home"), "RCM_LABEL_HORIZON_DAYS": "21",
           "RCM_TRAIN_WINDOW_DAYS": "42", "RCM_MIN_TRAIN_DAYS": "21", "RCM_GATE_AUC_FLOOR": "0.60"}
    result = subprocess.run(
        [sys.executable, "-m", "rcm_assets", "demo", "--days", "110", "--claims-per-day", "250", "--drift",
         "--drift-start", "2025-02-25"],
        cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True, text=True, timeout=1500)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "drift scenario: from 2025-02-25 AETNA requires prior auth for lab" in out
    assert "monitoring (daily)" in out and "monitoring (weekly)" in out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("    ")}
    record_property("demo_drift_summary", [line.strip() for line in out.splitlines() if line.startswith("    ")])
    assert "days after the onset" in lines["early"], out[-2000:]
    # gold learned the payer's new rule from its authorization denials (issue 14.6)
    assert "days after the onset" in lines["payer"] and "AETNA/lab requires prior auth" in lines["payer"], out[-2000:]
    lake = isolated_env / "lake" / "monitoring"
    scored_days = {p.name for p in (isolated_env / "lake" / "predictions" / "claim_denial_scores").glob("dt=*")}
    for name in ("feature_drift", "score_drift", "label_freshness"):
        assert {p.name for p in (lake / name).glob("dt=*")} == scored_days, name
    performance = pd.read_parquet(lake / "realized_performance")
    champion = performance[(performance["role"] == "champion") & (performance["segment"] == "all")]
    assert champion["roc_auc"].notna().any() and "realized AUC week" in out


def test_automation_runs_the_daily_monitors_after_the_days_scores_and_a_rescored_day_again():
    """The daily monitors follow the day's scores (any day, not only the latest) and run again when a day
    is re-scored."""
    from rcm_assets.definitions import defs

    instance = dg.DagsterInstance.ephemeral()
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    scored = [d.date().isoformat() for d in pd.date_range("2025-04-28", "2025-05-10")]
    for key, days in ((monitoring.SCORES_KEY, scored), (monitoring.GOLD_KEY, scored),
                      (monitoring.REMITTANCES_KEY, [d.date().isoformat() for d in pd.date_range("2025-02-20", "2025-05-10")])):
        for day in days:
            instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=key, partition=day))
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
    for key in (monitoring.FEATURE_DRIFT_KEY, monitoring.SCORE_DRIFT_KEY, monitoring.FRESHNESS_KEY):
        assert result.get_requested_partitions(key) == set(scored), key
    assert not result.get_requested_partitions(monitoring.PERFORMANCE_KEY)  # weekly: by its schedule

    for key in (monitoring.FEATURE_DRIFT_KEY, monitoring.SCORE_DRIFT_KEY, monitoring.FRESHNESS_KEY):
        for day in scored:
            instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=key, partition=day))
    settled = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=monitoring.SCORES_KEY, partition="2025-05-02"))
    again = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=settled.cursor)
    for key in (monitoring.FEATURE_DRIFT_KEY, monitoring.SCORE_DRIFT_KEY, monitoring.FRESHNESS_KEY):
        # the re-scored day again; score drift (28-day baseline) and label freshness (60-day cohorts) also
        # the days whose window holds it
        assert "2025-05-02" in again.get_requested_partitions(key), key
    assert again.get_requested_partitions(monitoring.FRESHNESS_KEY) == {d for d in scored if d >= "2025-05-02"}


def test_a_day_without_rows_is_insufficient_not_a_crash():
    """A range can hold days nothing was scored on (before the first champion, a failed scoring day)."""
    result = monitoring.status_check("score_drift_within_thresholds", pd.DataFrame({"dt": []}), "segments",
                                     "segment", "psi")
    assert result.passed and result.metadata["status"].value == "insufficient"
    rows = pd.DataFrame({"status": ["ok", "error"], "segment": ["all", "AETNA"], "psi": [0.02, 0.4]})
    failed = monitoring.status_check("score_drift_within_thresholds", rows, "segments", "segment", "psi")
    assert not failed.passed and failed.severity == dg.AssetCheckSeverity.ERROR and "AETNA 0.400" in failed.description


def test_feature_drift_of_a_day_nothing_scored_is_not_measured_not_a_traceback(isolated_env: Path):
    """The daily monitoring run of a day without scores (no model week trained yet) failed with a raw
    FileNotFoundError; it now records the day as not measured and says so in one sentence."""
    day = "2025-05-05"
    result = materialize_range([monitoring.feature_drift], day, day, dg.DagsterInstance.ephemeral(),
                               build_resources("dev"))
    assert result.success
    (materialization,) = result.asset_materializations_for_node("monitoring__feature_drift")
    assert materialization.metadata["days_without_scores"].value == 1
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.passed and evaluation.metadata["status"].value == "insufficient"
