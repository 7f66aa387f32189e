"""Model: the week's point-in-time training set, built once and read by every weekly model asset.

Week W's labelled claims (gold claims submitted in [W - horizon - window, W - horizon), labelled with the
first adjudication known before W) feed the denial model, the reason model and the payers' allowed
ratios. Built inside each of them, the same 180-day window was loaded and selected three times (at
20,000 claims a day about a minute each); stored once as `model/training_set`, the three read one
Parquet file per week, and the rows a model was fitted on stay in the lake for audit.

Memory is bounded by the training set, not by the window: the selection runs on gold's keys alone (read
once per run for all its weeks), then only the chosen rows' features are read, day by day, and the week is
built and written in Arrow (gold is a dependency through the same partition mapping, read from the lake).
Each week is written as soon as it is built, and the consumers read their week from the lake one week at a
time, so a run of several weeks (RCM_TRAIN_WEEKS_PER_RUN) holds one week's set in memory, not all of them.
"""


from datetime import date
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa

from rcm_assets.defs.partitions import (
    LABEL_HORIZON_DAYS,
    TRAIN_WEEKS_PER_RUN,
    TRAIN_WINDOW_DAYS,
    TRAINING_FEATURES_MAPPING,
    TRAINING_OUTCOMES_MAPPING,
    daily_partitions,
    weekly_partitions,
)
from rcm_assets.lib import modelling
from rcm_assets.lib.features import FEATURE_COLUMNS
from rcm_assets.platform.io_manager import (
    ARROW_STRINGS_METADATA,
    DAILY_COLUMN,
    WEEKLY_COLUMN,
    arrow_string_dtype,
)
from rcm_assets.platform.memory import release_memory

TRAINING_SET_KEY = dg.AssetKey(["model", "training_set"])
GOLD_KEY = dg.AssetKey(["gold", "claim_features"])
# what the selection needs of gold and what the consumers need of the outcomes, nothing more
GOLD_KEY_SCHEMA = pa.schema([("claim_id", pa.string()), ("claim_version", pa.int64()),
                             ("submitted_at", pa.timestamp("ns")), ("feature_version", pa.string())])
GOLD_KEY_COLUMNS = GOLD_KEY_SCHEMA.names
# claim_status: a reversal (CLP02 22) is never a first adjudication
OUTCOME_COLUMNS = ["claim_id", "adjudicated_at", "updated_at", "denied", "claim_status", *modelling.OUTCOME_DETAILS]
# at most RCM_TRAIN_WEEKS_PER_RUN weeks per run for every weekly model asset (one policy, so a chunk's
# training set, models and review stay in one run): each step holds one week's set at a time
WEEKLY_SET_POLICY = dg.BackfillPolicy.multi_run(max_partitions_per_run=TRAIN_WEEKS_PER_RUN)


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
    """Week W's stored training set (the consumers' read: one week at a time), read after handing back the
    memory the step before freed (each step would otherwise start from the previous one's high-water mark)."""
    release_memory()
    key = week if isinstance(week, str) else week.isoformat()
    frame = lake.read_stored(TRAINING_SET_KEY.path, key, column=WEEKLY_COLUMN)
    if frame is None:
        raise dg.Failure(f"model/training_set week {key} is not in the lake: materialize it first "
                         f"(rcm train --date {key} runs it with the models)", allow_retries=False)
    return modelling.from_training_table(frame, key, WEEKLY_COLUMN)


class GoldKeys:
    """Gold's keys of a run's days, read once for all its weeks: each week selects on its own days of them.

    `table` holds the keys as read (Arrow), `frame` the same as pandas with Arrow-backed strings for the
    selection, `days` the days that exist, `offsets` where each day's rows start, `day` each row's day index.
    """

    def __init__(self, lake: Any, days: list[str]):
        tables, found = [], []
        for day in days:
            table = lake.read_stored_table(GOLD_KEY.path, day, columns=GOLD_KEY_COLUMNS)
            if table is not None:
                tables.append(table)
                found.append(day)
        counts = np.array([t.num_rows for t in tables], dtype="int64")
        self.days = found
        self.offsets = np.concatenate([[0], np.cumsum(counts)])
        self.day = np.repeat(np.arange(len(found), dtype="int64"), counts)
        self.table = (pa.concat_tables(tables, promote_options="permissive") if tables
                      else GOLD_KEY_SCHEMA.empty_table())
        self.frame = self.table.to_pandas(types_mapper=arrow_string_dtype)

    def code_claims(self, outcomes: pd.DataFrame) -> None:
        """Replace the claim ids of the keys and of `outcomes` (in place) by int64 codes in the ids' text
        order, the same code for the same id: once per run, so no week's selection copies or sorts the
        10 M id strings again (the selection orders by claim, and only codes and labels leave it)."""
        gold_codes, outcome_codes = modelling.joint_codes(self.frame["claim_id"], outcomes["claim_id"])
        self.frame["claim_id"] = gold_codes
        outcomes["claim_id"] = outcome_codes

    def week_positions(self, week: date, feature_version: str, log: dg.DagsterLogManager | None) -> np.ndarray:
        """Rows of week W's own days (`week_gold_days`) with the current feature_version."""
        days = week_gold_days(week)
        own = [i for i, day in enumerate(self.days) if day in days]
        mine = np.isin(self.day, own)
        current = mine & (self.frame["feature_version"] == feature_version).to_numpy(dtype=bool)
        if (left_out := int(mine.sum() - current.sum())) and log is not None:
            log.warning(f"{left_out} gold rows of another feature_version left out of training")
        return np.flatnonzero(current)


def read_chosen_rows(lake: Any, keys: GoldKeys, rows: np.ndarray, columns: list[str]) -> pa.Table:
    """Gold `columns` of the chosen rows (positions in the keys), in `rows` order: each day's file is read
    once and only its chosen rows are kept, in Arrow."""
    day_of = keys.day[rows]
    by_day = np.argsort(day_of, kind="stable")
    bounds = np.searchsorted(day_of[by_day], np.arange(len(keys.days) + 1))
    pieces = []
    for i, day in enumerate(keys.days):
        mine = by_day[bounds[i]:bounds[i + 1]]
        if len(mine):
            table = lake.read_stored_table(GOLD_KEY.path, day, columns=columns)
            pieces.append(table.take(pa.array(rows[mine] - keys.offsets[i])))
    if not pieces:
        return pa.table({c: pa.array([], type=pa.string()) for c in columns})
    back = np.empty(len(rows), dtype="int64")  # from day-grouped order back to the selection's order
    back[by_day] = np.arange(len(rows))
    return pa.concat_tables(pieces, promote_options="permissive").take(pa.array(back))


def week_training_table(lake: Any, keys: GoldKeys, week: date, outcomes: pd.DataFrame, feature_version: str,
                        log: dg.DagsterLogManager | None = None) -> pa.Table:
    """Week W's stored training set: selected on the run's gold keys, then only the chosen rows' features
    are read (the same set `week_training_set` builds from the whole window in memory)."""
    start, end, cutoff = training_window(week)
    positions = keys.week_positions(week, feature_version, log)
    own = keys.frame.iloc[positions].reset_index(drop=True)
    own[DAILY_COLUMN] = keys.day[positions]  # day indexes sort as the days do
    selection = modelling.training_rows(own, outcomes, cutoff, start, end)
    del own
    chosen = positions[selection.rows]
    features = read_chosen_rows(lake, keys, chosen, FEATURE_COLUMNS)
    chosen_keys = keys.table.take(pa.array(chosen))
    days = pa.array(keys.days, type=pa.string()).take(pa.array(keys.day[chosen]))
    selected = pa.table({**{c: chosen_keys[c] for c in GOLD_KEY_COLUMNS}, **{c: features[c] for c in FEATURE_COLUMNS},
                         DAILY_COLUMN: days})
    return modelling.training_table(selected, selection, week.isoformat())


@dg.asset(
    key=TRAINING_SET_KEY,
    group_name="model",
    partitions_def=weekly_partitions,
    # gold through the window's mapping (lineage, backfill planning), read from the lake in two passes
    deps=[dg.AssetDep(GOLD_KEY, partition_mapping=TRAINING_FEATURES_MAPPING)],
    ins={"outcomes": dg.AssetIn(key=["silver", "remittances"], partition_mapping=TRAINING_OUTCOMES_MAPPING,
                                metadata={"allow_missing_partitions": True, "columns": OUTCOME_COLUMNS,
                                          ARROW_STRINGS_METADATA: True})},
    required_resource_keys={"lake", "features"},
    backfill_policy=WEEKLY_SET_POLICY,
    kinds={"pandas", "parquet"},
)
def training_set(context: dg.AssetExecutionContext, outcomes: pd.DataFrame) -> dg.MaterializeResult:
    """The week's labelled claims as of the week (point in time), with their first adjudication's details:
    the rows the week's denial model, reason model and allowed ratios learn from."""
    # each week is written by the step itself as soon as it is built (the IO manager's atomic partition
    # writes), not returned: an in-process run keeps every step output in memory until the run ends, and a
    # week's set at 20,000 claims a day is 1 GB
    lake, version = context.resources.lake, context.resources.features.version
    weeks = [date.fromisoformat(key) for key in context.partition_keys]
    keys = GoldKeys(lake, sorted(set().union(*(week_gold_days(week) for week in weeks))))
    keys.code_claims(outcomes)
    for week in weeks:
        table = week_training_table(lake, keys, week, outcomes, version, context.log)
        stats = modelling.training_stats_of(table)[week.isoformat()]
        path, rows = lake.write_table(TRAINING_SET_KEY.path, table, week.isoformat(), column=WEEKLY_COLUMN)
        del table
        release_memory()  # the next week starts from what this one needed, not from its high-water mark
        # each week's event carries its own figures (a run's metadata would be copied onto every week)
        context.add_asset_metadata({
            "path": dg.MetadataValue.path(path),
            "dagster/row_count": rows,
            "labelled": stats["labelled"],
            "unlabelled": stats["unlabelled"],
            "denial_rate": round(float(stats["denial_rate"]), 4),
            "training_window": f"{stats['window_start'][:10]}..{stats['window_end'][:10]}",
            "cutoff": stats["cutoff"][:10],
        }, partition_key=week.isoformat())
    return dg.MaterializeResult()
