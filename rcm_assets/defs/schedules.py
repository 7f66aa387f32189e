"""Schedules: extract yesterday (and re-read the lookback days before it) every night; train the week's
model every Monday. The two cron times come from the settings (environment > configuration file >
default), read when the code location loads."""


from datetime import date, timedelta

import dagster as dg

from rcm_assets.defs.jobs import daily_ingest_job, monitoring_daily_job, monitoring_weekly_job, training_job
from rcm_assets.defs.partitions import PARTITIONS_START
from rcm_assets.lib import settings

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def nightly_range(yesterday: date, lookback_days: int) -> tuple[date, date]:
    """The days one nightly run extracts: yesterday and the `lookback_days` before it (late commits)."""
    return max(PARTITIONS_START, yesterday - timedelta(days=lookback_days)), yesterday


def week_containing(day: date) -> date:
    """The Monday that starts `day`'s model week: a configured cron on another weekday still asks for a
    weekly partition key (the week already started, whose model is still to train)."""
    return day - timedelta(days=day.weekday())


@dg.schedule(
    cron_schedule=settings.daily_ingest_cron(), execution_timezone="UTC", job=daily_ingest_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description=("Nightly (RCM_DAILY_INGEST_CRON or schedules.daily_ingest_cron, default 02:00 UTC): extract, "
                 "validate and featurize yesterday, re-reading the days before it (RCM_EXTRACT_LOOKBACK_DAYS, "
                 "default 2) for rows committed late"),
)
def daily_ingest_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    # Daily partitions include today (end_offset=1), so "the last partition" would be today; ask for
    # yesterday explicitly — its final, complete extraction — as one range run with the lookback days.
    yesterday = (context.scheduled_execution_time - timedelta(days=1)).date()
    first, last = nightly_range(yesterday, settings.extract_lookback_days())
    if first == last:
        return dg.RunRequest(run_key=last.isoformat(), partition_key=last.isoformat())
    return dg.RunRequest(run_key=last.isoformat(),
                         tags={RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: last.isoformat()})


@dg.schedule(
    cron_schedule=settings.weekly_training_cron(), execution_timezone="UTC", job=training_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description=("Weekly (RCM_WEEKLY_TRAINING_CRON or schedules.weekly_training_cron, default Monday 03:00 UTC): "
                 "train and gate the model of the week that contains the scheduled day"),
)
def weekly_training_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    week = week_containing(context.scheduled_execution_time.date()).isoformat()
    return dg.RunRequest(run_key=week, partition_key=week)


@dg.schedule(
    cron_schedule="30 5 * * *", execution_timezone="UTC", job=monitoring_daily_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description=("05:30 UTC: drift, label arrival and early outcomes of yesterday — also when nothing "
                 "upstream changed (a remittance feed that stopped shows only this way)"),
)
def daily_monitoring_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    yesterday = (context.scheduled_execution_time - timedelta(days=1)).date().isoformat()
    return dg.RunRequest(run_key=yesterday, partition_key=yesterday)


@dg.schedule(
    cron_schedule="0 6 * * 1", execution_timezone="UTC", job=monitoring_weekly_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Monday 06:00 UTC: realized performance of the cohort whose labels matured",
)
def weekly_performance_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    week = context.scheduled_execution_time.date().isoformat()
    return dg.RunRequest(run_key=week, partition_key=week)
