"""Declarative automation shared by the layers that follow their upstreams."""

from __future__ import annotations

import dagster as dg


def follow_upstream() -> dg.AutomationCondition:
    """Materialize a partition when its upstreams update — for any day, not only the latest.

    `eager()` alone acts on the latest time partition only (DAGSTER_NOTES §6.3), so a late landing
    file for an older day would never flow on; dropping `in_latest_time_window` fixes that.
    """
    return dg.AutomationCondition.eager().without(dg.AutomationCondition.in_latest_time_window())


def model_week_trained(model_key: dg.AssetKey) -> dg.AutomationCondition:
    """True for a day whose model week has been trained: its run registers the week's fallback model (and
    a champion when the gate passes), so something can score the day. Until then the UI shows this label
    as the unmet part of the condition, instead of a run that fails with "no champion serves ...".
    """
    return dg.AutomationCondition.any_deps_match(~dg.AutomationCondition.missing()).allow(
        dg.AssetSelection.assets(model_key)).with_label("model week trained (a champion or its fallback can score)")


def follow_upstream_once_scorable(model_key: dg.AssetKey) -> dg.AutomationCondition:
    """`follow_upstream` for a day's scores, requested only once the day's model week has been trained.

    The model week neither triggers nor re-scores a day (ignored as an upstream), but a day whose week has
    no model yet waits: in a world with no trained model every automated scoring run failed and alerted.
    A week whose training failed leaves its days to an explicit `rcm predict` (the fallback of an earlier
    week serves it) once someone has looked at why.
    """
    ignore = dg.AssetSelection.assets(model_key)
    return (follow_upstream().ignore(ignore) & model_week_trained(model_key)).with_label(
        "follow upstream once the model week is trained")


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
