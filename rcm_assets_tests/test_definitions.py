"""The code location: it loads (in process, in a fresh interpreter with no secrets, and through the
`dagster` CLI), and it holds exactly the assets, checks, jobs, schedules and sensors the design names."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import dagster as dg
import yaml

from rcm_assets.definitions import defs
from rcm_assets.defs import partitions

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
SECRET_VARS = ("RCM_PHI_KEY", "RCM_SOURCE_URL", "RCM_LAKE_URL", "MLFLOW_TRACKING_URI", "RCM_MLFLOW_ARTIFACTS",
               "RCM_LANDING_DIR", "RCM_QUARANTINE_DIR", "RCM_ENV", "DAGSTER_HOME")

MONITORING_ASSETS = {"monitoring/feature_drift", "monitoring/score_drift", "monitoring/label_freshness",
                     "monitoring/realized_performance"}
REFERENCE_ASSETS = {"reference/payers", "reference/prior_auth_list", "reference/chargemaster",
                    "reference/code_categories"}
EXPECTED_ASSETS = {
    "landing/quarantine",  # observed by the landing sensor (one observation per refused file)
    *REFERENCE_ASSETS,
    "bronze/claims", "bronze/remittances",
    "silver/claims", "silver/claims_rejects", "silver/remittances", "silver/remittances_rejects",
    "silver/claim_versions", "silver/authorization_denials", "silver/adjudication_evidence",
    "gold/claim_features", "model/training_set", "model/denial_model", "predictions/claim_denial_scores",
    "model/denial_reason_model", "model/payer_allowed_ratios", "predictions/worklist",
    "model/lifecycle_review", "predictions/shadow_scores",
    "serving/bundle", "predictions/presubmission_scores",  # the scoring service's inputs and answers
    *MONITORING_ASSETS,
}
# asset -> {check name: blocking}
EXPECTED_CHECKS = {
    "bronze/claims": {"required_columns_present": True, "claim_id_updated_at_unique": True,
                      "row_count_recorded": False, "freshness_check": False},
    "bronze/remittances": {"required_columns_present": True, "claim_id_updated_at_unique": True,
                           "row_count_recorded": False, "freshness_check": False},
    "silver/claims": {"reject_rate_within_threshold": True, "no_phi_in_silver": True,
                      "one_row_per_state": True},
    "silver/remittances": {"reject_rate_within_threshold": True, "no_phi_in_silver": True,
                           "one_row_per_state": True},
    "gold/claim_features": {"one_row_per_claim": True, "feature_null_rates_within_bounds": True,
                            "numeric_features_within_ranges": True, "decision_time_columns_only": True,
                            "train_serve_parity": True, "no_new_payer_rule": False},
    "silver/authorization_denials": {"denied_claims_found": False},
    "silver/adjudication_evidence": {"answered_versions_found": False},
    "model/denial_model": {"holdout_auc_passes_gate": True},
    # the review's decision is recorded whatever it finds (a rollback is its own action): never blocking
    "model/lifecycle_review": {"champion_holds_up_on_matured_labels": False},
    "model/denial_reason_model": {"holdout_macro_auc_passes_gate": True},
    "predictions/worklist": {"every_scored_claim_listed_once": True, "expected_loss_within_billed": True,
                             "allowed_ratios_learned": False, "reason_model_serving": False},
    "predictions/claim_denial_scores": {"probabilities_in_unit_interval": True, "every_gold_claim_scored_once": True,
                                        "feature_version_matches_model": True,
                                        "score_drift_psi_below_threshold": False, "freshness_check": False,
                                        "model_week_trained": False, "scored_by_champion": False},
    # monitoring checks never block: the rows are stored whatever they find; alerts carry the failures
    "monitoring/feature_drift": {"feature_drift_within_thresholds": False},
    "monitoring/score_drift": {"score_drift_within_thresholds": False},
    "monitoring/label_freshness": {"labels_arrive_within_sla": False, "early_outcomes_match_scores": False},
    "monitoring/realized_performance": {"champion_auc_above_floor": False, "auc_per_payer_above_floor": False},
}
EXPECTED_JOBS = {"daily_ingest_job", "training_job", "scoring_job", "freshness_check_job",
                 "monitoring_daily_job", "monitoring_weekly_job"}
EXPECTED_SCHEDULES = {"daily_ingest_schedule", "weekly_training_schedule", "daily_monitoring_schedule",
                      "weekly_performance_schedule"}
EXPECTED_SENSORS = {"landing_file_sensor", "freshness_checks_sensor", "rcm_automation_sensor",
                    "check_failure_alert_sensor", "run_failure_alert_sensor"}


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SECRET_VARS}
    env.update(extra)
    return env


def test_definitions_are_loadable():
    dg.Definitions.validate_loadable(defs)


def test_exact_asset_inventory_with_groups_and_partitions():
    graph = defs.resolve_asset_graph()
    nodes = {node.key.to_user_string(): node for node in graph.asset_nodes}
    assert set(nodes) == EXPECTED_ASSETS
    for name, node in nodes.items():
        assert node.group_name == name.split("/")[0], name
    worklist_assets = {"model/denial_reason_model", "model/payer_allowed_ratios", "predictions/worklist"}
    for name in worklist_assets:
        weekly = name.startswith("model/")
        assert nodes[name].partitions_def == (partitions.weekly_partitions if weekly else partitions.scoring_partitions)
    for name in MONITORING_ASSETS:
        weekly = name == "monitoring/realized_performance"
        assert nodes[name].partitions_def == (partitions.weekly_partitions if weekly else partitions.scoring_partitions)
    lifecycle_assets = {"model/lifecycle_review", "predictions/shadow_scores"}
    for name in REFERENCE_ASSETS:  # the hospital's files: one current version each, not one per day
        assert nodes[name].partitions_def is None, name
    for name in (EXPECTED_ASSETS - {"model/training_set", "model/denial_model", "predictions/claim_denial_scores",
                                    "landing/quarantine", "predictions/presubmission_scores"}
                 - lifecycle_assets - REFERENCE_ASSETS
                 - worklist_assets - MONITORING_ASSETS):
        assert nodes[name].partitions_def == partitions.daily_partitions, name
    assert nodes["model/denial_model"].partitions_def == partitions.weekly_partitions
    assert nodes["model/training_set"].partitions_def == partitions.weekly_partitions
    assert nodes["model/lifecycle_review"].partitions_def == partitions.weekly_partitions
    assert nodes["predictions/claim_denial_scores"].partitions_def == partitions.scoring_partitions
    assert nodes["predictions/shadow_scores"].partitions_def == partitions.scoring_partitions
    assert nodes["predictions/presubmission_scores"].partitions_def == partitions.scoring_partitions


def test_exact_asset_check_inventory_per_asset_with_blocking_flags():
    graph = defs.resolve_asset_graph()
    found: dict[str, dict[str, bool]] = {}
    for key in graph.asset_check_keys:
        spec = graph.get_check_spec(key)
        found.setdefault(key.asset_key.to_user_string(), {})[key.name] = spec.blocking
    assert found == EXPECTED_CHECKS


def test_exact_jobs_schedules_and_sensors():
    repo = defs.get_repository_def()
    assert {job.name for job in defs.jobs} == EXPECTED_JOBS
    # Dagster adds its implicit asset job and the landing sensor's anonymous job; nothing else.
    assert {job.name for job in repo.get_all_jobs() if not job.name.startswith("__")} == EXPECTED_JOBS
    assert {s.name for s in repo.schedule_defs} == EXPECTED_SCHEDULES
    assert {s.name for s in repo.sensor_defs} == EXPECTED_SENSORS


def test_schedules_and_sensors_start_running():
    """Unattended operation: nothing has to be switched on in the UI (the default automation sensor is off)."""
    repo = defs.get_repository_def()
    for schedule in repo.schedule_defs:
        assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING, schedule.name
    for sensor in repo.sensor_defs:
        assert sensor.default_status == dg.DefaultSensorStatus.RUNNING, sensor.name


def test_jobs_select_their_layers():
    graph = defs.resolve_asset_graph()
    selected = {job.name: {k.to_user_string() for k in job.selection.resolve(graph)} for job in defs.jobs}
    assert selected == {
        "daily_ingest_job": {a for a in EXPECTED_ASSETS if a.split("/")[0] in ("bronze", "silver", "gold")},
        "training_job": {"model/training_set", "model/denial_model", "model/denial_reason_model",
                         "model/payer_allowed_ratios", "model/lifecycle_review"},
        "scoring_job": {"predictions/claim_denial_scores", "predictions/worklist", "predictions/shadow_scores",
                        "predictions/presubmission_scores"},
        "freshness_check_job": set(),  # checks only
        "monitoring_daily_job": MONITORING_ASSETS - {"monitoring/realized_performance"}
        | {"predictions/presubmission_scores"},
        "monitoring_weekly_job": {"monitoring/realized_performance"},
    }


def test_workspace_and_pyproject_name_the_same_module():
    workspace = yaml.safe_load((REPO / "workspace.yaml").read_text())
    targets = [entry["python_module"] for entry in workspace["load_from"]]
    assert len(targets) == 1
    tool = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["dagster"]
    assert targets[0]["module_name"] == tool["module_name"]
    assert targets[0]["location_name"] == tool["code_location_name"]
    assert importlib.import_module(tool["module_name"]).defs is defs


def test_definitions_import_in_prod_with_no_secrets_set(tmp_path: Path):
    """Secrets are EnvVars resolved when a run starts, so a fresh interpreter loads prod with none set."""
    code = (
        "import json, dagster as dg\n"
        "from rcm_assets.definitions import defs\n"
        "dg.Definitions.validate_loadable(defs)\n"
        "r = defs.resources\n"
        "def var(v): return [type(v).__name__, getattr(v, 'env_var_name', None)]\n"
        "print(json.dumps({'phi_key': var(r['phi'].key), 'source_url': var(r['source'].url),\n"
        "                  'lake_url': var(r['lake'].base_url),\n"
        "                  'assets': len(list(defs.resolve_asset_graph().asset_nodes))}))\n"
    )
    env = _clean_env(RCM_ENV="prod", RCM_DATA_DIR=str(tmp_path / "prod_data"))
    assert not {"RCM_PHI_KEY", "RCM_SOURCE_URL"} & set(env)
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    # prod reads its settings from the environment at run time: the resources hold the variable names only
    assert loaded["phi_key"] == ["EnvVar", "RCM_PHI_KEY"]
    assert loaded["source_url"] == ["EnvVar", "RCM_SOURCE_URL"]
    assert loaded["lake_url"] == ["EnvVar", "RCM_LAKE_URL"]
    assert loaded["assets"] == len(EXPECTED_ASSETS)
    assert not (tmp_path / "prod_data").exists(), "loading the definitions must not create the data folder"


def test_dagster_definitions_validate_cli_exits_zero(tmp_path: Path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = _clean_env(DAGSTER_HOME=str(home), RCM_DATA_DIR=str(tmp_path / "data"))
    assert not {"RCM_PHI_KEY", "RCM_SOURCE_URL"} & set(env)
    done = subprocess.run([str(VENV_BIN / "dagster"), "definitions", "validate"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=180)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "Validation successful for code location rcm_assets" in output


def test_loading_the_code_location_prints_no_beta_or_preview_notices(tmp_path: Path):
    """Every code server, run and step process loads the definitions: a `dagster dev` log held thousands of
    Dagster's beta/preview notices for our deliberate uses. Other warnings still show (`-W always`)."""
    code = ("import warnings\n"
            "from rcm_assets.definitions import defs\n"
            "defs.resolve_asset_graph(); defs.resolve_all_job_defs()\n"
            "warnings.warn('a warning of ours still shows', UserWarning)\n")
    done = subprocess.run([sys.executable, "-W", "always", "-c", code], cwd=tmp_path,
                          env=_clean_env(RCM_DATA_DIR=str(tmp_path / "data")), capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "BetaWarning" not in done.stderr and "PreviewWarning" not in done.stderr, done.stderr[-3000:]
    assert "a warning of ours still shows" in done.stderr
