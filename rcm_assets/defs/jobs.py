"""Jobs: the units schedules, sensors and the CLI launch."""

from __future__ import annotations

import dagster as dg

# Bronze → silver → gold for a day (or a range as one run, with the partition-range tags).
daily_ingest_job = dg.define_asset_job(
    "daily_ingest_job",
    selection=dg.AssetSelection.groups("bronze", "silver", "gold"),
    description="Extract, validate and featurize the claims and remittances that arrived on a day",
)
training_job = dg.define_asset_job(
    "training_job",
    selection=dg.AssetSelection.groups("model"),
    description="Train, register and gate the denial model of a week",
)
scoring_job = dg.define_asset_job(
    "scoring_job",
    selection=dg.AssetSelection.groups("predictions"),
    description="Score a day's claims with the champion serving on that day",
)
# Monitoring: the daily drift and label monitors (by day) and the weekly realized performance (by week).
monitoring_daily_job = dg.define_asset_job(
    "monitoring_daily_job",
    selection=dg.AssetSelection.assets(["monitoring", "feature_drift"], ["monitoring", "score_drift"],
                                       ["monitoring", "label_freshness"], ["predictions", "presubmission_scores"]),
    description="Feature and score drift, label arrival and early outcomes of a day; what the scoring service "
                "answered that day (predictions/presubmission_scores)",
)
monitoring_weekly_job = dg.define_asset_job(
    "monitoring_weekly_job",
    selection=dg.AssetSelection.assets(["monitoring", "realized_performance"]),
    description="Realized performance of the week's matured cohort (champion, fallback, shadows)",
)
