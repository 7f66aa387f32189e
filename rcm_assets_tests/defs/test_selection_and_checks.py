"""Issue 15, points 1-3 in process: natural selections run (silver is subsettable, its rejects are still
written), blocking checks run inside their asset and are recorded per partition whatever launches the run
(range runs, the schedule's job, the landing sensor's request, the automation condition, the CLI), and the
definitions tell the UI their columns, owners, tags and descriptions.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from rcm_assets.definitions import defs
from rcm_assets.defs import bronze, schedules, sensors, silver
from rcm_assets.lib.columns import REGISTRY
from rcm_assets.platform.resources import FeatureResource, build_resources
from rcm_assets_tests.conftest import failure_text

DAY = "2025-03-04"
DAYS = ["2025-03-03", "2025-03-04", "2025-03-05"]
GOLD = dg.AssetKey(["gold", "claim_features"])
BLOCKING_GOLD = ("one_row_per_claim", "feature_null_rates_within_bounds", "numeric_features_within_ranges",
                 "decision_time_columns_only", "train_serve_parity")
BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]
SCHEMA_LAYERS = ("landing", "bronze", "silver", "gold")
SCHEMA_ASSETS = ("model/denial_model", "predictions/claim_denial_scores")


def lake_file(data_dir: Path, layer: str, table: str, day: str = DAY) -> Path:
    return data_dir / "lake" / layer / table / f"dt={day}" / "part-0.parquet"


def run(selection: dg.AssetSelection, instance: dg.DagsterInstance, days: list[str], resources=None, **kw):
    tags = ({"dagster/asset_partition_range_start": days[0], "dagster/asset_partition_range_end": days[-1]}
            if len(days) > 1 else {})
    extra = {"partition_key": days[0]} if len(days) == 1 else {}
    return dg.materialize([*defs.assets, *defs.asset_checks], selection=selection, instance=instance,
                          resources=resources or build_resources("dev"), tags=tags, raise_on_error=False,
                          **extra, **kw)


def check_records(instance: dg.DagsterInstance, asset: dg.AssetKey, name: str) -> dict[str, list[str]]:
    """partition -> statuses of the check's executions, newest first."""
    found: dict[str, list[str]] = {}
    for record in instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(asset, name), limit=500):
        found.setdefault(record.partition, []).append(record.status.value)
    return found


def materialized_partitions(instance: dg.DagsterInstance, key: list[str]) -> set[str]:
    return set(instance.get_materialized_partitions(dg.AssetKey(key)))


# --------------------------------------------------------------------------------------------------
# point 1: natural selections


def test_upstream_of_gold_runs_without_naming_the_rejects_and_still_writes_them(
        source_in_data_dir, isolated_env: Path):
    """`*gold/claim_features` was refused: silver/claims_rejects belongs to a non-subsettable multi-asset."""
    instance = dg.DagsterInstance.ephemeral()
    selection = dg.AssetSelection.from_string("*gold/claim_features")
    selected = {k.to_user_string() for k in selection.resolve(defs.resolve_asset_graph())}
    assert "silver/claims" in selected and "silver/claims_rejects" not in selected
    result = run(selection, instance, [DAY])
    assert result.success, failure_text(result)
    assert lake_file(isolated_env, "gold", "claim_features").is_file()
    rejects = lake_file(isolated_env, "silver", "claims_rejects")
    assert rejects.is_file(), "the rejects are written with silver even when not selected"
    assert list(pd.read_parquet(rejects).columns)[:3] == ["claim_id", "claim_version", "member_token"]
    assert DAY in materialized_partitions(instance, ["silver", "claims_rejects"])
    (event,) = [m for m in result.get_asset_materialization_events()
                if m.asset_key == dg.AssetKey(["silver", "claims_rejects"])]
    assert event.materialization.metadata["written_with"].value == "silver/claims (rejects not selected)"
    # gold learns payer rules from silver/authorization_denials, so silver/remittances is upstream too: its
    # rejects are written the same way
    (remittances,) = [m for m in result.get_asset_materialization_events()
                      if m.asset_key == dg.AssetKey(["silver", "remittances_rejects"])]
    assert remittances.materialization.metadata["written_with"].value == "silver/remittances (rejects not selected)"


def test_each_layer_alone_and_a_range_chain_run(source_in_data_dir, isolated_env: Path):
    instance = dg.DagsterInstance.ephemeral()
    for layer in ("bronze", "silver", "gold"):
        result = run(dg.AssetSelection.groups(layer), instance, DAYS)
        assert result.success, (layer, failure_text(result))
    # a chain picked key by key, as in the UI: bronze/claims -> silver/claims -> gold/claim_features
    chain = dg.AssetSelection.assets(bronze.claims.key, dg.AssetKey(["silver", "claims"]),
                                     dg.AssetKey(["silver", "claim_versions"]), GOLD)
    result = run(chain, instance, DAYS)
    assert result.success, failure_text(result)
    for day in DAYS:
        assert lake_file(isolated_env, "silver", "claims_rejects", day).is_file()
        assert lake_file(isolated_env, "gold", "claim_features", day).is_file()
    # silver/claims alone is a subset of its multi-asset: the rejects come along
    result = run(dg.AssetSelection.assets(dg.AssetKey(["silver", "remittances"])), instance, [DAY])
    assert result.success, failure_text(result)
    assert {m.asset_key.to_user_string() for m in result.get_asset_materialization_events()} == {
        "silver/remittances", "silver/remittances_rejects"}


def update_days(claims: pd.DataFrame) -> list[str]:
    """Two consecutive days where a claim version submitted on the first is updated in place on the second."""
    day = claims["updated_at"].dt.strftime("%Y-%m-%d")
    first = day.groupby([claims["claim_id"], claims["claim_version"]]).transform("min")
    later = claims[(day > first) & (pd.to_datetime(day) - pd.to_datetime(first) == pd.Timedelta(days=1))]
    assert len(later), "the synthetic source updates rows in place"
    second = sorted(later["updated_at"].dt.strftime("%Y-%m-%d"))[len(later) // 2]
    return [(pd.Timestamp(second) - pd.Timedelta(days=1)).strftime("%Y-%m-%d"), second]


def test_gold_day_by_day_equals_one_range_run(source_in_data_dir, isolated_env: Path):
    """Gold reads the earlier days' version index from the lake (not a fanning partition-mapped input):
    run day by day, an in-place update of a version submitted the day before is still left out."""
    import shutil

    days = update_days(source_in_data_dir.data.claims)
    ingest = dg.AssetSelection.groups("bronze", "silver", "gold")
    assert run(ingest, dg.DagsterInstance.ephemeral(), days).success
    whole = pd.concat([pd.read_parquet(lake_file(isolated_env, "gold", "claim_features", d)).assign(dt=d)
                       for d in days], ignore_index=True)
    shutil.rmtree(isolated_env / "lake")
    instance = dg.DagsterInstance.ephemeral()
    left_out = 0
    for day in days:
        result = run(ingest, instance, [day])
        assert result.success, failure_text(result)
        (event,) = [m for m in result.get_asset_materialization_events() if m.asset_key == GOLD]
        left_out += event.materialization.metadata["in_place_updates_left_out"].value
    by_day = pd.concat([pd.read_parquet(lake_file(isolated_env, "gold", "claim_features", d)).assign(dt=d)
                        for d in days], ignore_index=True)
    keys = ["dt", "claim_id", "claim_version", "submitted_at"]
    pd.testing.assert_frame_equal(by_day[keys].sort_values(keys, ignore_index=True),
                                  whole[keys].sort_values(keys, ignore_index=True))
    assert left_out > 0, "the synthetic days hold in-place updates of earlier days' versions"


# --------------------------------------------------------------------------------------------------
# point 2: blocking checks inside the asset, per partition, whatever launched the run


def test_range_run_records_every_blocking_check_per_partition(source_in_data_dir, isolated_env: Path):
    """The separate gold checks used to show Skipped for every partition of a single-run range."""
    instance = dg.DagsterInstance.ephemeral()
    result = run(dg.AssetSelection.groups("bronze", "silver", "gold"), instance, DAYS)
    assert result.success, failure_text(result)
    expected = {GOLD: BLOCKING_GOLD,
                dg.AssetKey(["silver", "claims"]): ("reject_rate_within_threshold", "no_phi_in_silver",
                                                    "one_row_per_state"),
                bronze.claims.key: ("required_columns_present", "claim_id_updated_at_unique")}
    for asset, names in expected.items():
        for name in names:
            records = check_records(instance, asset, name)
            assert {day: statuses[0] for day, statuses in records.items()} == dict.fromkeys(DAYS, "SUCCEEDED"), (
                asset, name, records)
    parity = [e for e in result.get_asset_check_evaluations() if e.check_name == "train_serve_parity"]
    assert sorted(e.partition for e in parity) == DAYS
    assert all(e.blocking and e.metadata["rows_compared"].value > 0 for e in parity)


class LeakyFeatures(FeatureResource):
    """A feature path that lets an outcome column through (what the leakage guard exists for)."""

    def compute(self, silver_claims: pd.DataFrame, *args, **kwargs) -> pd.DataFrame:
        return super().compute(silver_claims, *args, **kwargs).assign(paid_amount=120.0)


class DriftingFeatures(FeatureResource):
    """A gold path that no longer equals the scoring path (what train/serve parity exists for)."""

    def compute(self, silver_claims: pd.DataFrame, *args, **kwargs) -> pd.DataFrame:
        frame = super().compute(silver_claims, *args, **kwargs)
        return frame.assign(log_billed_amount=frame["log_billed_amount"] * 1.5 + 0.01)


@pytest.mark.parametrize(("features", "check", "named"), [
    (LeakyFeatures(), "decision_time_columns_only", "paid_amount is post_outcome"),
    (DriftingFeatures(), "train_serve_parity", "log_billed_amount:"),
])
def test_gold_blocking_checks_stop_the_write(source_in_data_dir, isolated_env: Path, features, check, named):
    instance = dg.DagsterInstance.ephemeral()
    assert run(dg.AssetSelection.groups("bronze", "silver"), instance, [DAY]).success
    resources = {**build_resources("dev"), "features": features}
    result = run(dg.AssetSelection.assets(GOLD), instance, [DAY], resources=resources)
    assert not result.success
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == check]
    assert not evaluation.passed and evaluation.partition == DAY and named in evaluation.description
    assert f"{check} [{DAY}]" in failure_text(result)
    assert not lake_file(isolated_env, "gold", "claim_features").exists(), "nothing written"
    assert check_records(instance, GOLD, check)[DAY][0] == "FAILED"


def test_schedule_and_sensor_requests_run_the_checks(source_in_data_dir, isolated_env: Path, monkeypatch):
    """The nightly schedule's range run and the landing sensor's run record their checks per partition."""
    from rcm_assets.synthetic import write_landing_file

    instance = dg.DagsterInstance.ephemeral()
    when = datetime(2025, 3, 6, 2, 0)
    request = schedules.daily_ingest_schedule(dg.build_schedule_context(scheduled_execution_time=when))
    job = defs.resolve_job_def(schedules.daily_ingest_job.name)
    assert job.execute_in_process(instance=instance, tags=request.tags, resources=build_resources("dev")).success
    for name in BLOCKING_GOLD:
        assert set(check_records(instance, GOLD, name)) == set(DAYS), name

    landing = isolated_env / "landing"
    write_landing_file(source_in_data_dir.data, datetime(2025, 3, 10).date(), landing)
    monkeypatch.setattr(sensors, "SETTLE_SECONDS", 0.0)  # ctime cannot be back-dated
    with dg.build_sensor_context(instance=instance, resources=build_resources("dev")) as context:
        sensed = sensors.landing_file_sensor(context)
    (req,) = sensed.run_requests
    result = dg.materialize([*defs.assets, *defs.asset_checks], selection=dg.AssetSelection.assets(
        *req.asset_selection), partition_key=req.partition_key, tags=req.tags, instance=instance,
        resources=build_resources("dev"))
    assert result.success
    assert check_records(instance, bronze.claims.key, "claim_id_updated_at_unique")["2025-03-10"] == ["SUCCEEDED"]


def test_automation_condition_runs_record_the_gold_checks(source_in_data_dir, isolated_env: Path):
    """What the automation sensor requests for gold (the separate checks were "Not evaluated" there)."""
    instance = dg.DagsterInstance.ephemeral()
    before = dg.evaluate_automation_conditions(defs=defs, instance=instance)  # the sensor's previous tick
    assert run(dg.AssetSelection.groups("bronze", "silver"), instance, [DAY]).success
    evaluation = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=before.cursor)
    requested = evaluation.get_requested_partitions(GOLD)
    assert DAY in requested
    # the automation's run is a plain asset run of the requested keys: no check is selected separately
    assets_only = dg.AssetSelection.assets(GOLD).without_checks()
    with pytest.raises(dg.DagsterInvalidDefinitionError):  # the checks cannot be left out of gold's step
        run(assets_only, instance, [DAY])
    result = run(dg.AssetSelection.assets(GOLD), instance, [DAY])
    assert result.success, failure_text(result)
    assert {n: check_records(instance, GOLD, n)[DAY][0] for n in BLOCKING_GOLD} == dict.fromkeys(
        BLOCKING_GOLD, "SUCCEEDED")


def test_cli_materialize_of_upstream_selection_records_checks(source_in_data_dir, isolated_env: Path, tmp_path):
    """`dagster asset materialize --select '*gold/claim_features' --partition D` from the CLI."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    done = subprocess.run(
        [str(BIN / "dagster"), "asset", "materialize", "-m", "rcm_assets.definitions", "--select",
         "*gold/claim_features", "--partition", DAY], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=300)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert lake_file(isolated_env, "silver", "claims_rejects").is_file()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for name in BLOCKING_GOLD:
            assert check_records(instance, GOLD, name) == {DAY: ["SUCCEEDED"]}, name


# --------------------------------------------------------------------------------------------------
# point 3: what the definitions tell the UI


def test_every_asset_declares_columns_owners_tags_and_a_description():
    graph = defs.resolve_asset_graph()
    for node in graph.asset_nodes:
        name = node.key.to_user_string()
        assert node.description, name
        assert "team:revenue-cycle-data" in node.owners and any("@" in o for o in node.owners), name
        assert node.tags.get("layer") == name.split("/")[0] and node.tags.get("phi") in ("yes", "no"), name
        if name.split("/")[0] not in SCHEMA_LAYERS and name not in SCHEMA_ASSETS:
            continue  # newer assets (monitoring, worklist, ...) declare their own columns
        schema = node.metadata.get("dagster/column_schema")
        assert schema is not None, name
        columns = getattr(schema, "value", schema).columns
        assert columns and all(c.description for c in columns), (name, [c.name for c in columns if not c.description])
    tags = {n.key.to_user_string(): n.tags["phi"] for n in graph.asset_nodes}
    # claim ids are patient account numbers: every layer keyed by them is PHI (issue 26.5)
    assert tags["bronze/claims"] == "yes" and tags["silver/claims"] == "yes" and tags["gold/claim_features"] == "yes"
    assert tags["predictions/claim_denial_scores"] == "yes" and tags["model/denial_model"] == "no"


def test_registry_descriptions_reach_the_silver_schema_with_constraints():
    schema = silver.claims.specs_by_key[dg.AssetKey(["silver", "claims"])].metadata["dagster/column_schema"]
    columns = {c.name: c for c in schema.columns}
    registry = {c.name: c.description for c in REGISTRY if c.table == "claims" and "silver" in c.layers}
    assert set(registry) <= set(columns)
    for name, text in registry.items():
        assert text and columns[name].description.startswith(text), name
    assert ">= 1" in columns["claim_version"].constraints.other


def test_every_check_and_sensor_has_a_description():
    graph = defs.resolve_asset_graph()
    missing = [k.to_user_string() for k in graph.asset_check_keys if not graph.get_check_spec(k).description]
    assert not [k for k in missing if k.split("/")[0] in SCHEMA_LAYERS or k.split(":")[0] in SCHEMA_ASSETS], missing
    for sensor in defs.get_repository_def().sensor_defs:
        assert sensor.description, sensor.name
    for schedule in defs.get_repository_def().schedule_defs:
        assert schedule.description, schedule.name


def test_missing_landing_folder_is_created_and_said(isolated_env: Path):
    landing = isolated_env / "landing"
    assert not landing.exists()
    with dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral(),
                                 resources=build_resources("dev")) as context:
        sensed = sensors.landing_file_sensor(context)
    assert landing.is_dir()
    assert "did not exist: created it" in sensed.skip_reason.skip_message


def test_quarantined_file_is_an_observation_with_its_reason(isolated_env: Path, monkeypatch):
    landing = isolated_env / "landing"
    landing.mkdir()
    bad = landing / "claims_2025-03-04_bad.csv"
    bad.write_text("foo,bar\n1,2\n")
    monkeypatch.setattr(sensors, "SETTLE_SECONDS", 0.0)
    instance = dg.DagsterInstance.ephemeral()
    with dg.build_sensor_context(instance=instance, resources=build_resources("dev")) as context:
        sensed = sensors.landing_file_sensor(context)
    (observation,) = sensed.asset_events
    assert observation.asset_key == sensors.QUARANTINE_KEY
    assert observation.metadata["file"].value == bad.name
    assert observation.metadata["reason"].value and observation.metadata["message"].value
    assert not bad.exists()
    assert Path(observation.metadata["quarantined_as"].value).exists()


def test_summary_statistics_of_gold_are_metadata(source_in_data_dir, isolated_env: Path):
    instance = dg.DagsterInstance.ephemeral()
    result = run(dg.AssetSelection.from_string("*gold/claim_features"), instance, [DAY])
    assert result.success
    (event,) = [m for m in result.get_asset_materialization_events() if m.asset_key == GOLD]
    metadata = event.materialization.metadata
    assert "| charge_ratio |" in metadata["summary_statistics"].value
    # the recorded schema keeps the declared descriptions (the UI shows the latest materialization's)
    recorded = {c.name: c.description for c in metadata["dagster/column_schema"].value.columns}
    assert recorded["charge_ratio"].startswith("Billed amount")




def test_publish_records_per_partition_or_once_as_each_spec_asks():
    """checks.publish: a partitioned spec gets one evaluation per partition of a range run (the run's
    result repeated when only that was given); an unpartitioned spec one result, the worst."""
    from rcm_assets.defs import checks
    from rcm_assets.defs.partitions import daily_partitions

    key = dg.AssetKey(["t", "table"])

    class NoStore(dg.IOManager):
        def handle_output(self, context, obj):
            return None

        def load_input(self, context):
            return None

    @dg.asset(key=key, partitions_def=daily_partitions, io_manager_key="none",
              backfill_policy=dg.BackfillPolicy.single_run(),
              check_specs=[checks.spec("per_day", key, "d", blocking=True, partitions_def=daily_partitions),
                           checks.spec("whole_run", key, "d", partitions_def=daily_partitions),
                           checks.spec("unpartitioned", key, "d")])
    def table(context):
        keys = context.partition_keys
        by_day = {k: [checks.result("per_day", True), checks.result("unpartitioned", k != keys[1], warn_only=True)]
                  for k in keys}
        yield from checks.publish([dg.Output(1)], by_day, what="t", context=context)
        yield from checks.publish([], [checks.result("whole_run", True)], what="t", context=context)

    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([table], instance=instance, resources={"none": NoStore()},
                            tags={"dagster/asset_partition_range_start": DAYS[0],
                                  "dagster/asset_partition_range_end": DAYS[-1]})
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert sorted(e.partition for e in evaluations if e.check_name == "per_day") == DAYS
    assert sorted(e.partition for e in evaluations if e.check_name == "whole_run") == DAYS
    (once,) = [e for e in evaluations if e.check_name == "unpartitioned"]
    assert not once.passed and once.partition is None
