"""Declarative automation shared by the layers that follow their upstreams."""

from __future__ import annotations

import dagster as dg


def follow_upstream() -> dg.AutomationCondition:
    """Materialize a partition when its upstreams update — for any day, not only the latest.

    `eager()` alone acts on the latest time partition only (DAGSTER_NOTES §6.3), so a late landing
    file for an older day would never flow on; dropping `in_latest_time_window` fixes that.
    """
    return dg.AutomationCondition.eager().without(dg.AutomationCondition.in_latest_time_window())


def automation_sensor() -> dg.AutomationConditionSensorDefinition:
    """Evaluates the automation conditions; starts running (the default sensor starts stopped)."""
    return dg.AutomationConditionSensorDefinition(
        "rcm_automation_sensor",
        target=dg.AssetSelection.all(),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
        description=("Evaluates every asset's automation condition every 30 s: silver, gold and predictions "
                     "follow their upstream partitions (any day, late files included); blocking checks run "
                     "inside those runs as in any other"),
    )
