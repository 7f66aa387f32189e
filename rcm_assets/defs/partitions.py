"""Partitions and partition mappings, defined once and imported by every layer.

Daily partitions are UTC days; the model is weekly (weeks start on Monday). The start date and the
training window are read from the environment when the code location loads (see `lib.settings`), because
partition definitions and mappings are fixed at definition time.
"""

from __future__ import annotations

import math
from datetime import date, timedelta

import dagster as dg

from rcm_assets.lib import settings

PARTITIONS_START: date = settings.partitions_start()
TRAIN_WINDOW_DAYS: int = settings.train_window_days()
LABEL_HORIZON_DAYS: int = settings.label_horizon_days()
MIN_TRAIN_DAYS: int = settings.min_train_days()
BACKFILL_CHUNK_DAYS: int = settings.backfill_chunk_days()
TRAIN_WEEKS_PER_RUN: int = settings.train_weeks_per_run()


def first_model_week(start: date, horizon_days: int, min_train_days: int) -> date:
    """The first Monday whose training window holds at least `min_train_days` of matured claims."""
    earliest = start + timedelta(days=horizon_days + min_train_days)
    return earliest + timedelta(days=(7 - earliest.weekday()) % 7)


MODEL_START: date = first_model_week(PARTITIONS_START, LABEL_HORIZON_DAYS, MIN_TRAIN_DAYS)

# Today's partition exists (end_offset=1) so files landing today and `rcm predict --window today` are
# handled at once; re-running a day later replaces it with the full day (bronze is idempotent).
daily_partitions = dg.DailyPartitionsDefinition(
    start_date=PARTITIONS_START.isoformat(), timezone="UTC", end_offset=1
)
weekly_partitions = dg.WeeklyPartitionsDefinition(
    start_date=MODEL_START.isoformat(), day_offset=1, timezone="UTC", end_offset=1
)
# The current week exists (end_offset=1): model W uses only data before W, so it can train on W's Monday.
# Scoring needs a champion, so prediction days start with the first model week.
scoring_partitions = dg.DailyPartitionsDefinition(
    start_date=MODEL_START.isoformat(), timezone="UTC", end_offset=1
)

# Backfills of the daily layers and the scores run at most BACKFILL_CHUNK_DAYS days per run, so a run's
# memory is bounded by a chunk of days, not by the range (`rcm backfill` cuts its ranges the same way).
# One policy object for every daily asset: Dagster never puts assets with different policies in one run,
# so bronze -> silver -> gold of a chunk stay together.
DAILY_BACKFILL_POLICY = dg.BackfillPolicy.multi_run(max_partitions_per_run=BACKFILL_CHUNK_DAYS)


def training_features_mapping(window_days: int, horizon_days: int) -> dg.TimeWindowPartitionMapping:
    """Gold days a model week W may read: from W - horizon - window (widened to whole weeks) to W - 1.

    The window's claims were submitted before W - horizon, but a corrected version of one may land any
    day up to the cutoff, and the outcome adjudicates the latest version; so gold is read up to the day
    before W, and `modelling.training_frame` keeps the latest version submitted before the cutoff.
    Offsets are in weeks of the downstream (model) partition.
    """
    start_weeks = math.ceil((window_days + horizon_days) / 7)
    return dg.TimeWindowPartitionMapping(start_offset=-start_weeks, end_offset=-1)


def training_outcomes_mapping(window_days: int, horizon_days: int) -> dg.TimeWindowPartitionMapping:
    """Outcome days a model week W may read: everything that reached the source before W starts."""
    start_weeks = math.ceil((window_days + horizon_days) / 7)
    return dg.TimeWindowPartitionMapping(
        start_offset=-start_weeks, end_offset=-1
    )


TRAINING_FEATURES_MAPPING = training_features_mapping(TRAIN_WINDOW_DAYS, LABEL_HORIZON_DAYS)
TRAINING_OUTCOMES_MAPPING = training_outcomes_mapping(TRAIN_WINDOW_DAYS, LABEL_HORIZON_DAYS)
# Day D is scored by the champion recorded by the model week that contains D (cutoff W <= D).
SCORING_MODEL_MAPPING = dg.TimeWindowPartitionMapping()
# Further back (in days) than any partition: clipped to the first model week.
SCORING_HISTORY_DAYS = 100 * 366
# Day D's scores depend on every model week up to D's own: D is scored by the champion promoted last
# before D or, failing that, the fallback of the newest week trained on or before D, so a week whose
# training failed leaves D to an earlier week's model. Automation needs this to tell "some model can
# score D" (any of these weeks trained) from "nothing can" (none trained yet).
SCORING_HISTORY_MAPPING = dg.TimeWindowPartitionMapping(
    start_offset=-SCORING_HISTORY_DAYS, end_offset=0, allow_nonexistent_upstream_partitions=True)
