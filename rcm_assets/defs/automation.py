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
    """True for a day with a trained model week among its mapped model weeks (every week up to the day's
    own: `partitions.SCORING_HISTORY_MAPPING`): that run registered the week's fallback model (and a
    champion when the gate passed), so something can score the day. Until one is trained the UI shows this
    label as the unmet part of the condition, instead of a run that fails with "no champion serves ...".
    """
    return dg.AutomationCondition.any_deps_match(~dg.AutomationCondition.missing()).allow(
        dg.AssetSelection.assets(model_key)).with_label("model week trained (a champion or its fallback can score)")


def follow_upstream_once_scorable(model_key: dg.AssetKey) -> dg.AutomationCondition:
    """`follow_upstream` for a day's scores, requested only once some model can score the day.

    The model weeks neither trigger nor re-score a day (ignored as upstreams). A day waits only while no
    model week up to its own has been trained (in a world with no trained model every automated scoring
    run failed and alerted); a day whose own week failed to train is still requested: an earlier week's
    champion or fallback serves it, and the `model_week_trained` check names the missing week.
    """
    ignore = dg.AssetSelection.assets(model_key)
    return (follow_upstream().ignore(ignore) & model_week_trained(model_key)).with_label(
        "follow upstream once a model can score the day")


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
