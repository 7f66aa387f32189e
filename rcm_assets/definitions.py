"""The code location: one Definitions object, and the only place cross-cutting policy is applied."""
# ruff: noqa: E402 (the layers are imported after the filter of Dagster's notices for our deliberate uses)

from __future__ import annotations

import dagster as dg

from rcm_assets.platform.notices import quiet_dagster_labels

# Before the layers load: their decorators raise Dagster's beta/preview notices for our deliberate uses,
# once per load in every code server, run and step process (thousands of daemon log lines a day).
quiet_dagster_labels()

from rcm_assets.defs import (
    bronze,
    gold,
    learned,
    lifecycle,
    model,
    monitoring,
    payer_rules,
    predictions,
    reason_model,
    reference,
    serving,
    silver,
    training_set,
    worklist,
)
from rcm_assets.defs.alerts import alert_sensors
from rcm_assets.defs.automation import automation_sensor
from rcm_assets.defs.freshness import freshness_checks, freshness_job, freshness_sensor
from rcm_assets.defs.jobs import (
    daily_ingest_job,
    monitoring_daily_job,
    monitoring_weekly_job,
    scoring_job,
    training_job,
)
from rcm_assets.defs.schedules import (
    daily_ingest_schedule,
    daily_monitoring_schedule,
    weekly_performance_schedule,
    weekly_training_schedule,
)
from rcm_assets.defs.sensors import landing_file_sensor, landing_quarantine
from rcm_assets.platform import catalog
from rcm_assets.platform.executor import executor_from_env
from rcm_assets.platform.resources import build_resources

defs = dg.Definitions(
    # owners, layer/PHI tags and column schemas on every asset (platform/catalog.py)
    assets=dg.map_asset_specs(catalog.operator_view, [
        bronze.claims, bronze.remittances, landing_quarantine, *reference.REFERENCE_ASSETS,
        silver.claims, silver.remittances, silver.claim_versions, payer_rules.authorization_denials,
        learned.adjudication_evidence, gold.claim_features,
        reason_model.denial_reason_model, reason_model.payer_allowed_ratios, worklist.worklist,
        training_set.training_set, model.denial_model, lifecycle.lifecycle_review,
        predictions.claim_denial_scores, predictions.shadow_scores, serving.bundle,
        serving.presubmission_scores,
        *monitoring.monitoring_assets,
    ]),
    asset_checks=[freshness_checks],  # the other checks run inside their assets (defs/checks.py)
    jobs=[daily_ingest_job, training_job, scoring_job, freshness_job, monitoring_daily_job, monitoring_weekly_job],
    schedules=[daily_ingest_schedule, weekly_training_schedule, daily_monitoring_schedule,
               weekly_performance_schedule],
    sensors=[landing_file_sensor, freshness_sensor, automation_sensor(), *alert_sensors],
    resources=build_resources(),
    # Small daily steps: one process per run, not one per step (≈2 s import each; DAGSTER_NOTES §12);
    # RCM_EXECUTOR=celery spreads the steps over dagster-celery workers (README "Deployment", deploy/).
    executor=executor_from_env(),
)
