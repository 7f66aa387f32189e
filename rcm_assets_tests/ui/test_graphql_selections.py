"""Natural selections launched over GraphQL against a live `dagster dev` (issue 15, points 1 and 2).

A backfill of `*gold/claim_features` and the UI's launch of bronze/claims -> silver/claims -> gold/claim_features
used to fail with "... must include every key in a non-subsettable multi-asset ... silver/claims_rejects";
now they run, the rejects are written with silver, and gold's blocking checks are recorded for every
partition. A launch of silver/claims alone (the UI's Materialize button) writes its rejects too. Runs are
followed with dagster_graphql's DagsterGraphQLClient.
"""

from __future__ import annotations

import dagster as dg
import pytest
from dagster_graphql import DagsterGraphQLClient

pytestmark = pytest.mark.slow

LOCATION, REPOSITORY = "rcm_assets", "__repository__"
DAYS = ["2025-01-14", "2025-01-15"]
DAY = "2025-01-16"
DAY2 = "2025-01-08"  # bronze is there (the world), silver is run again
GOLD = dg.AssetKey(["gold", "claim_features"])
GOLD_BLOCKING = ("one_row_per_claim", "feature_null_rates_within_bounds", "numeric_features_within_ranges",
                 "decision_time_columns_only", "train_serve_parity")
RUN_TIMEOUT = 180.0

BACKFILL_M = """mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) { __typename
  ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } ... on Error { message } } }"""
BACKFILL_Q = """query($id: String!) { partitionBackfillOrError(backfillId: $id) { __typename
  ... on PartitionBackfill { status runs(limit: 50) { runId status } } ... on PythonError { message } } }"""
LAUNCH_M = """mutation($p: ExecutionParams!) { launchRun(executionParams: $p) { __typename
  ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } ... on Error { message } } }"""


def _keys(selection: str) -> list[dict]:
    from rcm_assets.definitions import defs

    resolved = dg.AssetSelection.from_string(selection).resolve(defs.resolve_asset_graph())
    return [{"path": list(k.path)} for k in sorted(resolved, key=lambda k: k.to_user_string())]


def _instance(live) -> dg.DagsterInstance:
    return dg.DagsterInstance.from_config(str(live.home))


def _failures(live, run_ids: list[str]) -> str:
    """The step failures of the given runs, for a failing assertion's message."""
    with _instance(live) as instance:
        lines = []
        for run_id in run_ids:
            for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
                error = record.dagster_event.step_failure_data.error
                lines.append(f"{run_id} {record.step_key}: {error.to_string()[-1500:] if error else ''}")
    return "\n".join(lines)


def _backfill(live, asset_selection: list[dict], days: list[str], title: str) -> list[str]:
    params = {"assetSelection": asset_selection, "partitionNames": days, "fromFailure": False, "title": title}
    launched = live.gql(BACKFILL_M, {"p": params})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched

    def finished():
        found = live.gql(BACKFILL_Q, {"id": launched["backfillId"]})["partitionBackfillOrError"]
        return found if found["status"] not in ("REQUESTED", "CANCELING", "FAILING") else None

    result = live.wait_for(f"backfill {title}", finished, RUN_TIMEOUT)
    run_ids = [r["runId"] for r in result["runs"]]
    assert result["status"] == "COMPLETED_SUCCESS", (result["status"], _failures(live, run_ids))
    assert run_ids and all(r["status"] == "SUCCESS" for r in result["runs"])
    return run_ids


def _launch(live, keys: list[list[str]], day: str) -> str:
    """The UI's Materialize of a selection for one partition: a run of the implicit asset job."""
    client = DagsterGraphQLClient("127.0.0.1", port_number=live.port)
    params = {
        "selector": {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY,
                     "pipelineName": "__ASSET_JOB", "assetSelection": [{"path": k} for k in keys]},
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": day}]},
    }
    launched = live.gql(LAUNCH_M, {"p": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]

    def done():
        status = client.get_run_status(run_id)
        return status if status.value in ("SUCCESS", "FAILURE", "CANCELED") else None

    assert live.wait_for(f"run {run_id}", done, RUN_TIMEOUT) == dg.DagsterRunStatus.SUCCESS, _failures(
        live, [run_id])
    return run_id


def _materialized_in(instance: dg.DagsterInstance, run_ids: list[str]) -> set[tuple[str, str]]:
    found = set()
    for run_id in run_ids:
        for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
            mat = record.asset_materialization
            found.add((mat.asset_key.to_user_string(), mat.partition))
    return found


def _check_statuses(instance: dg.DagsterInstance, run_ids: list[str], asset: dg.AssetKey, name: str
                    ) -> dict[str, str]:
    history = instance.event_log_storage.get_asset_check_execution_history(dg.AssetCheckKey(asset, name),
                                                                           limit=200)
    return {r.partition: r.status.value for r in history if r.run_id in run_ids}


def test_upstream_of_gold_backfill_writes_rejects_and_records_gold_checks_per_partition(live_dagster):
    """`*gold/claim_features` as the asset graph resolves it: no rejects table among its keys."""
    keys = _keys("*gold/claim_features")
    assert {"path": ["silver", "claims_rejects"]} not in keys and {"path": ["silver", "claims"]} in keys
    run_ids = _backfill(live_dagster, keys, DAYS, "upstream of gold")
    with _instance(live_dagster) as instance:
        written = _materialized_in(instance, run_ids)
        for day in DAYS:
            assert {("silver/claims", day), ("silver/claims_rejects", day), ("gold/claim_features", day)} <= written
        for name in GOLD_BLOCKING:
            assert _check_statuses(instance, run_ids, GOLD, name) == dict.fromkeys(DAYS, "SUCCEEDED"), name
    for day in DAYS:
        assert (live_dagster.data_dir / "lake" / "silver" / "claims_rejects" / f"dt={day}" / "part-0.parquet").is_file()


def test_ui_chain_bronze_silver_gold_runs(live_dagster):
    """The chain the UI refused without its rejects dialog: bronze/claims -> silver/claims -> gold."""
    run_id = _launch(live_dagster, [["bronze", "claims"], ["silver", "claims"], ["gold", "claim_features"]], DAY)
    with _instance(live_dagster) as instance:
        assert _materialized_in(instance, [run_id]) == {
            ("bronze/claims", DAY), ("silver/claims", DAY), ("silver/claims_rejects", DAY),
            ("gold/claim_features", DAY)}
        for name in GOLD_BLOCKING:
            assert _check_statuses(instance, [run_id], GOLD, name) == {DAY: "SUCCEEDED"}, name


def test_materialize_button_on_silver_alone(live_dagster):
    """One asset of the silver multi-asset on its own: its rejects come along, its checks are recorded."""
    run_id = _launch(live_dagster, [["silver", "claims"]], DAY2)
    with _instance(live_dagster) as instance:
        assert _materialized_in(instance, [run_id]) == {("silver/claims", DAY2), ("silver/claims_rejects", DAY2)}
        assert _check_statuses(instance, [run_id], dg.AssetKey(["silver", "claims"]),
                               "reject_rate_within_threshold") == {DAY2: "SUCCEEDED"}
