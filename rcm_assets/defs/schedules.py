"""Schedules: extract yesterday every night; train the week's model every Monday."""


from datetime import timedelta

import dagster as dg

from rcm_assets.defs.jobs import daily_ingest_job, training_job


@dg.schedule(
    cron_schedule="0 2 * * *", execution_timezone="UTC", job=daily_ingest_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="02:00 UTC: extract, validate and featurize yesterday (the complete day)",
)
def daily_ingest_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    # Daily partitions include today (end_offset=1), so "the last partition" would be today; ask for
    # yesterday explicitly — its final, complete extraction.
    day = (context.scheduled_execution_time - timedelta(days=1)).date().isoformat()
    return dg.RunRequest(run_key=day, partition_key=day)


@dg.schedule(
    cron_schedule="0 3 * * 1", execution_timezone="UTC", job=training_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Monday 03:00 UTC: train and gate the model of the week that starts today",
)
def weekly_training_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    week = context.scheduled_execution_time.date().isoformat()
    return dg.RunRequest(run_key=week, partition_key=week)
