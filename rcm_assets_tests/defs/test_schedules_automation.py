"""Schedules ask for the right partitions; automation carries late data of old days downstream."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from rcm_assets.definitions import defs
from rcm_assets.defs import bronze
from rcm_assets.defs.schedules import daily_ingest_schedule, weekly_training_schedule


def test_daily_schedule_extracts_yesterday_and_weekly_trains_the_week_that_starts(monkeypatch):
    daily = daily_ingest_schedule(dg.build_schedule_context(
        scheduled_execution_time=datetime(2025, 6, 10, 2, 0, tzinfo=UTC)))
    # yesterday and the two days before it again (rows committed late), as one range run
    assert daily.run_key == "2025-06-09" and daily.partition_key is None
    assert daily.tags["dagster/asset_partition_range_start"] == "2025-06-07"
    assert daily.tags["dagster/asset_partition_range_end"] == "2025-06-09"
    monkeypatch.setenv("RCM_EXTRACT_LOOKBACK_DAYS", "0")
    exact = daily_ingest_schedule(dg.build_schedule_context(
        scheduled_execution_time=datetime(2025, 6, 10, 2, 0, tzinfo=UTC)))
    assert exact.partition_key == "2025-06-09" and "dagster/asset_partition_range_start" not in exact.tags
    weekly = weekly_training_schedule(dg.build_schedule_context(
        scheduled_execution_time=datetime(2025, 6, 9, 3, 0, tzinfo=UTC)))
    assert weekly.partition_key == "2025-06-09"
    assert daily_ingest_schedule.cron_schedule == "0 2 * * *"
    assert weekly_training_schedule.cron_schedule == "0 3 * * 1"


def test_late_bronze_of_an_old_day_requests_that_days_silver():
    instance = dg.DagsterInstance.ephemeral()
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    old_day = "2025-02-03"
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=bronze.claims.key, partition=old_day))
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
    requested = result.get_requested_partitions(dg.AssetKey(["silver", "claims"]))
    assert requested == {old_day}


def test_freshness_expects_yesterday_after_the_deadline_and_the_day_before_until_then():
    from rcm_assets.defs.freshness import expected_day

    assert expected_day(datetime(2025, 6, 10, 5, 59, tzinfo=UTC)).isoformat() == "2025-06-08"
    assert expected_day(datetime(2025, 6, 10, 6, 0, tzinfo=UTC)).isoformat() == "2025-06-09"


def test_freshness_check_fails_until_yesterday_lands_then_passes():
    from rcm_assets.defs.freshness import expected_day, freshness_job

    instance = dg.DagsterInstance.ephemeral()
    job = defs.resolve_job_def(freshness_job.name)
    first = job.execute_in_process(instance=instance, raise_on_error=False)
    evaluations = {e.asset_key.to_user_string(): e for e in first.get_asset_check_evaluations()}
    assert set(evaluations) == {"bronze/claims", "bronze/remittances", "predictions/claim_denial_scores"}
    assert not any(e.passed for e in evaluations.values())
    assert all(e.severity == dg.AssetCheckSeverity.WARN for e in evaluations.values())

    day = expected_day(datetime.now(UTC)).isoformat()
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=bronze.claims.key, partition=day))
    second = job.execute_in_process(instance=instance, raise_on_error=False)
    passed = {e.asset_key.to_user_string(): e.passed for e in second.get_asset_check_evaluations()}
    assert passed == {"bronze/claims": True, "bronze/remittances": False, "predictions/claim_denial_scores": False}


def test_an_old_days_version_index_does_not_re_run_the_gold_days_after_it():
    """gold reads 120 days of silver/claim_versions to tell updates from submissions; a late file for an
    old day must re-run that day's gold only, not the next 120 days."""
    instance = dg.DagsterInstance.ephemeral()
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    old_day = "2025-02-03"
    for key in (dg.AssetKey(["silver", "claims"]), dg.AssetKey(["silver", "claim_versions"])):
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=key, partition=old_day))
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
    assert result.get_requested_partitions(dg.AssetKey(["gold", "claim_features"])) == {old_day}


def test_no_scoring_is_requested_for_a_day_whose_model_week_is_not_trained():
    """In a world with no trained model every automated scoring run failed ("no champion serves ...");
    the day's scores are requested once its model week is trained, and the condition says why it waits."""
    from rcm_assets.defs.model import MODEL_KEY
    from rcm_assets.defs.predictions import SCORES_KEY

    instance = dg.DagsterInstance.ephemeral()
    first = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    day = "2025-06-11"  # a Wednesday of the week starting 2025-06-09
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=dg.AssetKey(["gold", "claim_features"]),
                                                                partition=day))
    waiting = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=first.cursor)
    assert waiting.get_requested_partitions(SCORES_KEY) == set()
    def labels(condition: dg.AutomationCondition) -> set[str | None]:
        return {condition.get_label()}.union(*(labels(c) for c in condition.children))

    condition = defs.resolve_assets_def(SCORES_KEY).automation_conditions_by_key[SCORES_KEY]
    assert "model week trained (a champion or its fallback can score)" in labels(condition)  # shown in the UI

    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=MODEL_KEY, partition="2025-06-09"))
    ready = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=waiting.cursor)
    assert ready.get_requested_partitions(SCORES_KEY) == {day}
