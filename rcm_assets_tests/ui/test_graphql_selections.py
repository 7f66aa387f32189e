"""Natural selections launched over GraphQL against a live `dagster dev` (issue 15, points 1 and 2).

The UI's backfill of bronze/claims -> silver/claims -> gold/claim_features used to fail with "Backfill must
include every key in a non-subsettable multi-asset"; now it runs, the rejects are written with silver, and
gold's blocking checks are recorded for every partition of the backfill. A single-asset launch (the UI's
Materialize button) of silver/claims alone writes its rejects too. Runs are followed with dagster_graphql's
DagsterGraphQLClient.
"""

from __future__ import annotations

import dagster as dg
import pytest
from dagster_graphql import DagsterGraphQLClient

pytestmark = pytest.mark.slow

LOCATION, REPOSITORY = "rcm_assets", "__repository__"
DAYS = ["2025-01-14", "2025-01-15"]
DAY = "2025-01-16"
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


def _backfill(live, asset_selection: list[dict], days: list[str], title: str) -> list[str]:
    params = {"assetSelection": asset_selection, "partitionNames": days, "fromFailure": False, "title": title}
    launched = live.gql(BACKFILL_M, {"p": params})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched

    def finished():
        found = live.gql(BACKFILL_Q, {"id": launched["backfillId"]})["partitionBackfillOrError"]
        return found if found["status"] not in ("REQUESTED", "CANCELING", "FAILING") else None

    result = live.wait_for(f"backfill {title}", finished, RUN_TIMEOUT)
    assert result["status"] == "COMPLETED_SUCCESS", (result, live.tail())
    assert result["runs"] and all(r["status"] == "SUCCESS" for r in result["runs"])
    return [r["runId"] for r in result["runs"]]


def _materialized_in(instance: dg.DagsterInstance, run_ids: list[str]) -> set[tuple[str, str]]:
    found = set()
    for run_id in run_ids:
        for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
            mat = record.asset_materialization
            found.add((mat.asset_key.to_user_string(), mat.partition))
    return found


def _check_statuses(instance: dg.DagsterInstance, run_ids: list[str], name: str) -> dict[str, str]:
    history = instance.event_log_storage.get_asset_check_execution_history(dg.AssetCheckKey(GOLD, name), limit=200)
    return {r.partition: r.status.value for r in history if r.run_id in run_ids}


def test_ui_chain_backfill_writes_rejects_and_records_gold_checks_per_partition(live_dagster):
    chain = [{"path": ["bronze", "claims"]}, {"path": ["silver", "claims"]}, {"path": ["gold", "claim_features"]}]
    run_ids = _backfill(live_dagster, chain, DAYS, "bronze -> silver -> gold chain")
    with _instance(live_dagster) as instance:
        written = _materialized_in(instance, run_ids)
        for day in DAYS:
            assert {("silver/claims", day), ("silver/claims_rejects", day), ("gold/claim_features", day)} <= written
        for name in GOLD_BLOCKING:
            assert _check_statuses(instance, run_ids, name) == dict.fromkeys(DAYS, "SUCCEEDED"), name
    for day in DAYS:
        assert (live_dagster.data_dir / "lake" / "silver" / "claims_rejects" / f"dt={day}" / "part-0.parquet").is_file()


def test_upstream_of_gold_backfill_over_graphql(live_dagster):
    """`*gold/claim_features` as the asset graph resolves it (no rejects table among its keys)."""
    keys = _keys("*gold/claim_features")
    assert {"path": ["silver", "claims_rejects"]} not in keys and {"path": ["silver", "claims"]} in keys
    run_ids = _backfill(live_dagster, keys, [DAYS[0]], "upstream of gold")
    with _instance(live_dagster) as instance:
        assert ("silver/claims_rejects", DAYS[0]) in _materialized_in(instance, run_ids)
        assert _check_statuses(instance, run_ids, "train_serve_parity") == {DAYS[0]: "SUCCEEDED"}


def test_materialize_button_on_silver_alone(live_dagster):
    """The UI's Materialize of one asset of the silver multi-asset: a run of the implicit asset job."""
    client = DagsterGraphQLClient("127.0.0.1", port_number=live_dagster.port)
    params = {
        "selector": {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY,
                     "pipelineName": "__ASSET_JOB", "assetSelection": [{"path": ["silver", "claims"]}]},
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": DAY}]},
    }
    launched = live_dagster.gql(LAUNCH_M, {"p": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    done = live_dagster.wait_for(
        "the silver run", lambda: (s := client.get_run_status(run_id)).value in ("SUCCESS", "FAILURE", "CANCELED")
        and s, RUN_TIMEOUT)
    assert done == dg.DagsterRunStatus.SUCCESS, live_dagster.tail()
    with _instance(live_dagster) as instance:
        assert _materialized_in(instance, [run_id]) == {("silver/claims", DAY), ("silver/claims_rejects", DAY)}
        history = instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(dg.AssetKey(["silver", "claims"]), "reject_rate_within_threshold"), limit=50)
        assert {r.partition: r.status.value for r in history if r.run_id == run_id} == {DAY: "SUCCEEDED"}
