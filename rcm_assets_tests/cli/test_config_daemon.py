"""The configuration file reaches runs the CLI does not start: the daemon, the UI, schedules and sensors load
the code location with RCM_CONFIG and launch runs with no run config, so the Config classes' defaults (what
the UI launchpad shows) and the schedules' cron times must come from the file (the environment still wins).

One fresh interpreter per module loads the definitions with RCM_CONFIG set, as `dagster dev` and the daemon
do, and materializes bronze → silver for one day with no run config; the tests read what it reported.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from rcm_assets.synthetic import write_landing_file

REPO = Path(__file__).resolve().parents[2]
DAY = "2025-02-03"
CONFIG = """\
schedules:
  daily_ingest_cron: "15 1 * * *"
  weekly_training_cron: "45 4 * * 2"
model:
  seed: 7
  holdout_fraction: 0.25
  min_labelled_rows: 1500
  threads: 2
gate:
  auc_floor: 0.66
  max_auc_drop: 0.02
thresholds:
  max_reject_rate: 0.45
  decision_threshold: 0.42
  psi_warn: 0.25
"""
ENVIRONMENT_WINS = {"RCM_PSI_WARN": "0.3"}  # set beside the file: the environment beats the file's 0.25

# What the daemon's code location holds, and a run it launches with no run config.
PROBE = f"""
import json
import dagster as dg
from rcm_assets.definitions import defs
from rcm_assets.defs import lifecycle, model, predictions, reason_model, schedules, silver

def schema_defaults(assets_def):
    fields = getattr(assets_def.op.config_schema.config_type, 'fields', None) or {{}}  # no config: none
    return {{name: field.default_value for name, field in fields.items() if field.default_provided}}

claims = dg.AssetKey(["silver", "claims"])
graph = defs.resolve_asset_graph()
result = dg.materialize(
    [*defs.assets, *defs.asset_checks],
    selection=dg.AssetSelection.assets(["bronze", "claims"]) | dg.AssetSelection.assets(claims).required_multi_asset_neighbors(),
    partition_key="{DAY}", resources=defs.resources, instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
checks = {{e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data
           for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}}
reject = checks["reject_rate_within_threshold"]
from rcm_assets.cli import commands
keys = commands.asset_keys_in_groups(commands.CONFIGURED_FIELDS)
cli_ops = commands.configured_op_config(keys)
op_defaults = {{commands.op_name(k): schema_defaults(graph.get(k).assets_def) for k in keys if commands.op_name(k)}}
print(json.dumps({{
    "schema": {{name: schema_defaults(graph.get(dg.AssetKey(key)).assets_def) for name, key in (
        ("model", ["model", "denial_model"]), ("scores", ["predictions", "claim_denial_scores"]),
        ("silver", ["silver", "claims"]), ("review", ["model", "lifecycle_review"]),
        ("reasons", ["model", "denial_reason_model"]))}},
    "instances": {{"model": model.ModelConfig().model_dump(), "scores": predictions.ScoringConfig().model_dump(),
                   "silver": silver.SilverConfig().model_dump(), "review": lifecycle.ReviewConfig().model_dump(),
                   "reasons": reason_model.ReasonModelConfig().model_dump()}},
    "crons": {{s.name: s.cron_schedule for s in defs.schedules}},
    "cli": {{"ops": cli_ops, "defaults": {{op: op_defaults[op] for op in cli_ops}}}},
    "run": {{"success": result.success, "run_config": result.dagster_run.run_config,
             "reject_check_passed": reject.passed,
             "reject_threshold": reject.metadata["threshold"].value,
             "reject_rate": reject.metadata["reject_rate"].value}},
}}))
"""


@pytest.fixture(scope="module")
def loaded(synthetic_source, tmp_path_factory) -> dict:
    """The code location loaded in a fresh interpreter with RCM_CONFIG (and one environment variable), and
    a bronze → silver run of DAY launched with no run config on a landing file 30 % of whose rows are
    unusable (silver fails at the embedded 1 % reject-rate threshold; the file allows 45 %)."""
    folder = tmp_path_factory.mktemp("config_daemon")
    data = folder / "data"
    (data / "landing").mkdir(parents=True)
    shutil.copyfile(synthetic_source.source_db, data / "source.db")
    path = write_landing_file(synthetic_source.data, pd.Timestamp(DAY).date(), data / "landing", fmt="csv")
    rows = pd.read_csv(path, dtype=str, keep_default_na=False)
    bad = rows.sample(frac=0.3, random_state=1).index
    rows.loc[bad, "claim_id"] = rows.loc[bad, "claim_id"] + "-X"
    # no units: an unusable row only silver sees (bronze keeps the text; a claim defect such as a test NPI
    # would land flagged and count as no reject, issue 24)
    rows.loc[bad, "units"] = "0"
    rows.to_csv(path, index=False)
    config = folder / "rcm.yaml"
    config.write_text(CONFIG)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RCM_", "MLFLOW_", "DAGSTER_"))}
    env.update(RCM_CONFIG=str(config), RCM_DATA_DIR=str(data), RCM_PHI_KEY="test-phi-key-0123456789abcdef",
               **ENVIRONMENT_WINS)
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", PROBE], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_run_launched_without_run_config_uses_the_files_threshold(loaded):
    run = loaded["run"]
    assert run["run_config"] == {} or not run["run_config"].get("ops"), run  # nothing came as run config
    assert run["reject_rate"] > 0.2  # the day would fail at the embedded 1 % threshold
    assert run["reject_threshold"] == pytest.approx(0.45)
    assert run["reject_check_passed"] and run["success"], run


def test_the_config_classes_default_to_the_file_as_the_launchpad_shows(loaded):
    """The op config schema's defaults (what the UI launchpad scaffolds) and the classes' own defaults."""
    expected = {
        "model": {"seed": 7, "holdout_fraction": 0.25, "min_labelled_rows": 1500, "threads": 2,
                  "auc_floor": 0.66, "max_auc_drop": 0.02, "force": False},
        "scores": {"decision_threshold": 0.42, "psi_warn_threshold": 0.3, "rescore": False},
        "silver": {"max_reject_rate": 0.45},
        "review": {"auc_floor": 0.66},
        "reasons": {"seed": 7, "holdout_fraction": 0.25, "threads": 2, "max_auc_drop": 0.02},
    }
    for name, values in expected.items():
        for where in ("schema", "instances"):
            got = {k: loaded[where][name][k] for k in values}
            assert got == pytest.approx(values), (where, name, got)


def test_the_environment_beats_the_file_at_definition_load(loaded):
    assert loaded["schema"]["scores"]["psi_warn_threshold"] == pytest.approx(float(ENVIRONMENT_WINS["RCM_PSI_WARN"]))


def test_the_schedules_take_their_cron_from_the_file(loaded):
    crons = loaded["crons"]
    assert crons["daily_ingest_schedule"] == "15 1 * * *"
    assert crons["weekly_training_schedule"] == "45 4 * * 2"



def test_a_weekly_cron_on_another_day_trains_the_week_that_contains_it():
    """A configured Tuesday cron still asks for a weekly partition key: the Monday that starts the week."""
    from datetime import UTC, datetime

    import dagster as dg

    from rcm_assets.defs.partitions import weekly_partitions
    from rcm_assets.defs.schedules import weekly_training_schedule

    for when, week in ((datetime(2025, 6, 10, 4, 45, tzinfo=UTC), "2025-06-09"),  # Tuesday
                       (datetime(2025, 6, 15, 23, 0, tzinfo=UTC), "2025-06-09"),  # Sunday
                       (datetime(2025, 6, 9, 3, 0, tzinfo=UTC), "2025-06-09")):  # Monday, the default
        request = weekly_training_schedule(dg.build_schedule_context(scheduled_execution_time=when))
        assert request.partition_key == week and weekly_partitions.has_partition_key(week)


def test_the_cli_run_config_and_the_defaults_agree(loaded):
    """The CLI still passes the settings as run config (its process may have imported the code location
    before `--config` named a file); in a code location loaded with the file, every value it passes is
    already the op's default: one source, the same values, whoever launches the run."""
    ops, defaults = loaded["cli"]["ops"], loaded["cli"]["defaults"]
    assert {"model__denial_model", "predictions__claim_denial_scores", "model__lifecycle_review"} <= set(ops), ops
    assert sum(1 for fields in ops.values() if "max_reject_rate" in fields) >= 1, ops
    for op, fields in ops.items():
        assert fields == pytest.approx({name: defaults[op][name] for name in fields}), op
