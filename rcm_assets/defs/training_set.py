"""Model: the week's point-in-time training set, built once and read by every weekly model asset.

Week W's labelled claims (gold claims submitted in [W - horizon - window, W - horizon), labelled with the
first adjudication known before W) feed the denial model, the reason model and the payers' allowed
ratios. Built inside each of them, the same 180-day window was loaded and selected three times (at
20,000 claims a day about a minute each); stored once as `model/training_set`, the three read one
Parquet file per week, and the rows a model was fitted on stay in the lake for audit.

The window is loaded through the partition mappings with only the columns the selection needs. The
consumers depend on the asset (lineage, ordering) and read their week from the lake one week at a time,
so a run of many weeks holds one week's set in memory, not all of them.
"""


from datetime import date
from typing import Any

import dagster as dg
import pandas as pd

from rcm_assets.defs.partitions import (
    LABEL_HORIZON_DAYS,
    TRAIN_WINDOW_DAYS,
    TRAINING_FEATURES_MAPPING,
    TRAINING_OUTCOMES_MAPPING,
    daily_partitions,
    weekly_partitions,
)
from rcm_assets.lib import modelling
from rcm_assets.lib.features import FEATURE_COLUMNS
from rcm_assets.platform.io_manager import ARROW_STRINGS_METADATA, WEEKLY_COLUMN
from rcm_assets.platform.resources import FeatureResource

TRAINING_SET_KEY = dg.AssetKey(["model", "training_set"])
# what the selection and the consumers need of gold and of the outcomes, nothing more
GOLD_COLUMNS = [*modelling.KEY_COLUMNS, "feature_version", *FEATURE_COLUMNS]
OUTCOME_COLUMNS = ["claim_id", "adjudicated_at", "updated_at", "denied", *modelling.OUTCOME_DETAILS]
# one week per run: a week's set at 20,000 claims a day is ~3.6 M rows, and the output of a run is held
# in memory until the IO manager writes it
WEEKLY_SET_POLICY = dg.BackfillPolicy.multi_run(max_partitions_per_run=1)


def training_window(week: date, window_days: int = TRAIN_WINDOW_DAYS,
                    horizon_days: int = LABEL_HORIZON_DAYS) -> tuple[pd.Timestamp, pd.Timestamp, pd.Timestamp]:
    """(window_start, window_end, cutoff) of week W's model."""
    cutoff = pd.Timestamp(week)
    end = cutoff - pd.Timedelta(days=horizon_days)
    return end - pd.Timedelta(days=window_days), end, cutoff


def week_gold_days(week: date) -> set[str]:
    """The gold days week W's own partition mapping loads.

    A multi-week run loads the union of its weeks' days; trimming to W's own days makes W train on the
    same rows whether it runs alone or inside a range (the mapping's whole-week slack near the window
    end would otherwise depend on the other weeks of the run).
    """
    subset = weekly_partitions.empty_subset().with_partition_keys([week.isoformat()])
    mapped = TRAINING_FEATURES_MAPPING.get_upstream_mapped_partitions_result_for_partitions(
        subset, weekly_partitions, daily_partitions)
    return set(mapped.partitions_subset.get_partition_keys())


def week_training_set(
    week: date, gold: pd.DataFrame, outcomes: pd.DataFrame, feature_version: str,
    log: dg.DagsterLogManager | None = None,
) -> modelling.TrainingSet:
    """Week W's labelled claims: W's own gold days, current feature_version, outcomes known before W."""
    start, end, cutoff = training_window(week)
    own = gold[gold["dt"].isin(week_gold_days(week))] if "dt" in gold.columns else gold
    current = own[own["feature_version"] == feature_version]
    if len(current) < len(own) and log is not None:
        log.warning(f"{len(own) - len(current)} gold rows of another feature_version left out of training")
    return modelling.training_frame(current, outcomes, cutoff, start, end)


def stored_training_set(lake: Any, week: date | str) -> modelling.TrainingSet:
    """Week W's stored training set (the consumers' read: one week at a time)."""
    key = week if isinstance(week, str) else week.isoformat()
    frame = lake.read_stored(TRAINING_SET_KEY.path, key, column=WEEKLY_COLUMN)
    if frame is None:
        raise dg.Failure(f"model/training_set week {key} is not in the lake: materialize it first "
                         f"(rcm train --date {key} runs it with the models)", allow_retries=False)
    return modelling.from_training_table(frame, key, WEEKLY_COLUMN)


@dg.asset(
    key=TRAINING_SET_KEY,
    group_name="model",
    partitions_def=weekly_partitions,
    io_manager_key="lake",
    ins={
        "gold": dg.AssetIn(key=["gold", "claim_features"], partition_mapping=TRAINING_FEATURES_MAPPING,
                           metadata={"allow_missing_partitions": True, "columns": GOLD_COLUMNS,
                                     ARROW_STRINGS_METADATA: True}),
        "outcomes": dg.AssetIn(key=["silver", "remittances"], partition_mapping=TRAINING_OUTCOMES_MAPPING,
                               metadata={"allow_missing_partitions": True, "columns": OUTCOME_COLUMNS,
                                         ARROW_STRINGS_METADATA: True}),
    },
    backfill_policy=WEEKLY_SET_POLICY,
    kinds={"pandas", "parquet"},
)
def training_set(context: dg.AssetExecutionContext, gold: pd.DataFrame, outcomes: pd.DataFrame,
                 features: FeatureResource) -> dg.Output:
    """The week's labelled claims as of the week (point in time), with their first adjudication's details."""
    sets = {key: week_training_set(date.fromisoformat(key), gold, outcomes, features.version, context.log)
            for key in context.partition_keys}
    del gold, outcomes
    last = sets[context.partition_keys[-1]].stats
    return dg.Output(modelling.training_table(sets, WEEKLY_COLUMN), metadata={
        "labelled": sum(ts.stats["labelled"] for ts in sets.values()),
        "unlabelled": sum(ts.stats["unlabelled"] for ts in sets.values()),
        "denial_rate": round(float(last["denial_rate"]), 4),
        "training_window": f"{last['window_start'][:10]}..{last['window_end'][:10]}",
        "cutoff": last["cutoff"][:10],
    })
