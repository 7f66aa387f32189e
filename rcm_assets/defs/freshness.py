"""Freshness: yesterday's bronze and prediction partitions must exist by 06:00 UTC.

Dagster's time-partition freshness checks expect the *last* partition, which is today here (daily
partitions have end_offset=1 so today's files are processed at once), and the newer FreshnessPolicy only
sees the newest materialization of any partition (a backfill of an old day would look fresh). So the
check asks the partition-aware question itself — is yesterday there once the deadline has passed? — and a
sensor evaluates it every hour. Landing runs leave it out (their run requests name bronze's own checks),
and the check alert sensor posts a missing day once, and once more when it lands (defs/alerts.py), not
once per evaluation.
"""


from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import dagster as dg

from rcm_assets.defs import bronze, predictions

DEADLINE_HOUR_UTC = 6  # the nightly run starts at 02:00 UTC; four hours of slack
CHECK_NAME = "freshness_check"
FRESH_ASSETS = (bronze.claims.key, bronze.remittances.key, predictions.claim_denial_scores.key)


def expected_day(now: datetime, deadline_hour: int = DEADLINE_HOUR_UTC) -> date:
    """The newest day that must have landed at `now`: yesterday after the deadline, else the day before."""
    now = now.astimezone(UTC)
    days_back = 1 if now.hour >= deadline_hour else 2
    return now.date() - timedelta(days=days_back)


@dg.multi_asset_check(
    name="freshness_checks",
    specs=[dg.AssetCheckSpec(CHECK_NAME, asset=key,
                             description=f"Yesterday's partition exists by {DEADLINE_HOUR_UTC:02d}:00 UTC")
           for key in FRESH_ASSETS],
    can_subset=True,
)
def freshness_checks(context: dg.AssetCheckExecutionContext) -> Iterator[dg.AssetCheckResult]:
    now = datetime.now(UTC)
    day = expected_day(now).isoformat()
    for check_key in context.selected_asset_check_keys:
        landed = day in context.instance.get_materialized_partitions(check_key.asset_key)
        yield dg.AssetCheckResult(
            asset_key=check_key.asset_key, check_name=CHECK_NAME, passed=landed,
            severity=dg.AssetCheckSeverity.WARN,
            description=(f"partition {day} has landed" if landed else
                         f"partition {day} was due by {DEADLINE_HOUR_UTC:02d}:00 UTC and has not landed"),
            metadata={"expected_partition": day, "evaluated_at": now.isoformat()},
        )


freshness_job = dg.define_asset_job(
    "freshness_check_job", selection=dg.AssetSelection.checks(freshness_checks),
    description="Evaluate the freshness checks of bronze and predictions",
)


@dg.sensor(job=freshness_job, name="freshness_checks_sensor", minimum_interval_seconds=300,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Evaluates the freshness checks once an hour")
def freshness_sensor(context: dg.SensorEvaluationContext) -> dg.RunRequest:
    hour = datetime.now(UTC).strftime("%Y-%m-%dT%H")
    return dg.RunRequest(run_key=f"freshness-{hour}")  # the daemon drops repeats within the hour
