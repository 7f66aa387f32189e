"""Model: the week's point-in-time training set, built once and read by every weekly model asset.

Week W's labelled claims (gold claims submitted in [W - horizon - window, W - horizon), labelled with the
first adjudication known before W) feed the denial model, the reason model and the payers' allowed
ratios. Built inside each of them, the same 180-day window was loaded and selected three times (at
20,000 claims a day about a minute each); stored once as `model/training_set`, the three read one
Parquet file per week, and the rows a model was fitted on stay in the lake for audit.

Memory is bounded by the training set, not by the window: the selection runs on gold's keys alone, then
only the chosen rows' features are read, day by day (gold is a dependency through the same partition
mapping, read from the lake). The consumers depend on the asset and read their week from the lake one
week at a time, so a run of many weeks holds one week's set in memory, not all of them.
"""


from datetime import date
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa

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
from rcm_assets.platform.io_manager import (
    ARROW_STRINGS_METADATA,
    DAILY_COLUMN,
    WEEKLY_COLUMN,
    arrow_string_dtype,
)

TRAINING_SET_KEY = dg.AssetKey(["model", "training_set"])
GOLD_KEY = dg.AssetKey(["gold", "claim_features"])
# what the selection needs of gold and what the consumers need of the outcomes, nothing more
GOLD_KEY_COLUMNS = ["claim_id", "claim_version", "submitted_at", "feature_version"]
OUTCOME_COLUMNS = ["claim_id", "adjudicated_at", "updated_at", "denied", *modelling.OUTCOME_DETAILS]
# one week per run for every weekly model asset: a week's set at 20,000 claims a day is ~3.6 M rows, and a
# run holds its weeks' sets in memory until it writes them
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


def read_gold_keys(lake: Any, days: list[str]) -> tuple[pd.DataFrame, list[str], np.ndarray]:
    """Gold's keys of `days` (ids as Arrow-backed strings, `dt`), the days that exist and their row offsets."""
    tables, found = [], []
    for day in days:
        table = lake.read_stored_table(GOLD_KEY.path, day, columns=GOLD_KEY_COLUMNS)
        if table is not None:
            tables.append(table)
            found.append(day)
    counts = np.array([t.num_rows for t in tables], dtype="int64")
    if not tables:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in [*GOLD_KEY_COLUMNS, DAILY_COLUMN]}), [], counts
    keys = pa.concat_tables(tables, promote_options="permissive").to_pandas(types_mapper=arrow_string_dtype)
    keys[DAILY_COLUMN] = np.repeat(np.array(found, dtype=object), counts)
    return keys, found, np.concatenate([[0], np.cumsum(counts)])


def read_chosen_rows(lake: Any, days: list[str], offsets: np.ndarray, rows: np.ndarray,
                     columns: list[str]) -> pd.DataFrame:
    """Gold `columns` of the chosen rows (positions in the days' concatenated keys), in `rows` order:
    each day's file is read once and only its chosen rows are kept, in Arrow, converted to pandas once."""
    day_of = np.searchsorted(offsets, rows, side="right") - 1
    by_day = np.argsort(day_of, kind="stable")
    bounds = np.searchsorted(day_of[by_day], np.arange(len(days) + 1))
    pieces = []
    for i, day in enumerate(days):
        mine = by_day[bounds[i]:bounds[i + 1]]
        if len(mine):
            table = lake.read_stored_table(GOLD_KEY.path, day, columns=columns)
            pieces.append(table.take(pa.array(rows[mine] - offsets[i])))
    if not pieces:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    back = np.empty(len(rows), dtype="int64")  # from day-grouped order back to the selection's order
    back[by_day] = np.arange(len(rows))
    return pa.concat_tables(pieces, promote_options="permissive").take(pa.array(back)).to_pandas()


def week_training_table(lake: Any, week: date, outcomes: pd.DataFrame, feature_version: str,
                        log: dg.DagsterLogManager | None = None) -> pd.DataFrame:
    """Week W's stored training set, reading gold in two passes: the keys of W's own days, then only the
    chosen rows (the same set `week_training_set` builds from the whole window in memory)."""
    start, end, cutoff = training_window(week)
    keys, days, offsets = read_gold_keys(lake, sorted(week_gold_days(week)))
    current = (keys["feature_version"] == feature_version).to_numpy(dtype=bool)
    if not current.all() and log is not None:
        log.warning(f"{int((~current).sum())} gold rows of another feature_version left out of training")
    positions = np.flatnonzero(current)
    selection = modelling.training_rows(keys.iloc[positions].reset_index(drop=True), outcomes, cutoff, start, end)
    del keys
    chosen = positions[selection.rows]
    selected = read_chosen_rows(lake, days, offsets, chosen, [*GOLD_KEY_COLUMNS, *FEATURE_COLUMNS])
    selected[DAILY_COLUMN] = np.asarray(days, dtype=object)[np.searchsorted(offsets, chosen, side="right") - 1]
    return modelling.training_table(selected, selection, week.isoformat(), WEEKLY_COLUMN)


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
    # written by the step itself (the IO manager's atomic partition writes), not returned: an in-process run
    # keeps every step output in memory until the run ends, and a week's set at 20,000 claims a day is 1 GB
    version = context.resources.features.version
    tables = [week_training_table(context.resources.lake, date.fromisoformat(key), outcomes, version, context.log)
              for key in context.partition_keys]
    del outcomes
    frame = modelling.stack_training_tables(tables)
    del tables
    stats = frame.attrs[modelling.TRAINING_STATS_ATTR]
    last = stats[context.partition_keys[-1]]
    written = context.resources.lake.write_partitions(TRAINING_SET_KEY.path, frame, context.partition_keys,
                                                      column=WEEKLY_COLUMN)
    del frame
    return dg.MaterializeResult(metadata={
        "path": dg.MetadataValue.path(next(iter(written.values()))[0]),
        "dagster/row_count": sum(rows for _, rows in written.values()),
        "labelled": sum(s["labelled"] for s in stats.values()),
        "unlabelled": sum(s["unlabelled"] for s in stats.values()),
        "denial_rate": round(float(last["denial_rate"]), 4),
        "training_window": f"{last['window_start'][:10]}..{last['window_end'][:10]}",
        "cutoff": last["cutoff"][:10],
    })
