"""Freshness: yesterday's bronze and prediction partitions must exist by 06:00 UTC.

The time-partition freshness checks look at the partition of the last completed day (the newer
`FreshnessPolicy` only sees the newest materialization of any partition, so a backfill of an old day
would make a stale asset look fresh — DAGSTER_NOTES §5). A sensor evaluates them.
"""

from __future__ import annotations

import warnings

import dagster as dg

from rcm_assets import bronze, predictions

DEADLINE_CRON = "0 6 * * *"  # the nightly run starts at 02:00 UTC; four hours of slack

with warnings.catch_warnings():  # superseded (not deprecated) API: still the only partition-aware one
    warnings.simplefilter("ignore")
    freshness_checks = dg.build_time_partition_freshness_checks(
        assets=[bronze.claims, bronze.remittances, predictions.claim_denial_scores],
        deadline_cron=DEADLINE_CRON,
        timezone="UTC",
        severity=dg.AssetCheckSeverity.WARN,
    )
    freshness_sensor = dg.build_sensor_for_freshness_checks(
        freshness_checks=freshness_checks,
        name="freshness_checks_sensor",
        minimum_interval_seconds=300,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
