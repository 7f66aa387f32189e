"""Row identity by content: the same row delivered twice (a re-sent file, an overlapping file, a day
extracted again) is one row.

A row's content is its source columns (never the ingest columns `_ingested_at`, `_source`, `_run_id`,
which differ between deliveries of the same row). Hashing uses pandas' stable 64-bit hash, the same in
every process, so a row re-read next week hashes as it did today. Two different rows colliding in 64
bits is a one-in-10^12 event at a year of a large hospital's claims.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def _canonical(series: pd.Series) -> pd.Series:
    """One representation per value whatever the reader: ns timestamps, plain-object strings."""
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        if getattr(series.dtype, "tz", None) is not None:
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
        return series.astype("datetime64[ns]")
    if isinstance(series.dtype, pd.StringDtype | pd.CategoricalDtype):
        return series.astype(object).where(series.notna(), None)
    return series


def row_hashes(frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """uint64 content hash per row over `columns` (values compared as their registry dtypes)."""
    if frame.empty:
        return np.empty(0, dtype=np.uint64)
    canonical = pd.DataFrame({c: _canonical(frame[c]) for c in columns})
    return pd.util.hash_pandas_object(canonical, index=False).to_numpy(dtype=np.uint64)


def all_distinct(frame: pd.DataFrame, columns: Sequence[str]) -> bool:
    """True when no two rows share their content over `columns`, proved on as few columns as needed.

    Rows equal in every column are equal in any subset of them, so once the hashes of a subset are all
    distinct no row can repeat another. Timestamp columns go first (cheap to hash, and they tell change
    rows apart: `updated_at`); False only means "could not prove it", never that a repeat exists.
    Hashing every column of every row was most of a bronze write where nothing repeats.
    """
    if len(frame) < 2:
        return True
    ordered = sorted(columns, key=lambda c: not pd.api.types.is_datetime64_any_dtype(frame[c].dtype))
    combined = np.zeros(len(frame), dtype=np.uint64)
    for column in ordered:
        hashed = pd.util.hash_pandas_object(_canonical(frame[column]), index=False, categorize=False)
        combined = combined * np.uint64(0x100000001B3) ^ hashed.to_numpy(dtype=np.uint64)
        if not pd.Series(combined).duplicated().any():
            return True
    return False


def _default_index(frame: pd.DataFrame) -> bool:
    index = frame.index
    return isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1


def drop_content_duplicates(frame: pd.DataFrame, columns: Sequence[str]) -> tuple[pd.DataFrame, int]:
    """`frame` with every repeat of an earlier row's content removed (first delivery kept), and how many."""
    if frame.empty:
        return frame, 0
    if all_distinct(frame, columns):
        return frame.reset_index(drop=True) if not _default_index(frame) else frame, 0
    repeated = pd.Series(row_hashes(frame, columns)).duplicated().to_numpy()
    return frame[~repeated].reset_index(drop=True), int(repeated.sum())


def append_new_rows(
    existing: pd.DataFrame, incoming: pd.DataFrame, columns: Sequence[str]
) -> tuple[pd.DataFrame, int, int]:
    """Stored rows plus the incoming rows whose content is not stored yet: (merged, added, already_stored).

    Stored rows keep their original ingest columns (when they first arrived); nothing stored is dropped,
    so a source that later overwrites a row in place cannot erase what was extracted before.
    """
    incoming, _ = drop_content_duplicates(incoming, columns)
    if existing.empty:
        return incoming.reset_index(drop=True), len(incoming), 0
    stored = set(row_hashes(existing, columns).tolist())
    new = ~np.isin(row_hashes(incoming, columns), np.fromiter(stored, dtype=np.uint64, count=len(stored)))
    added = incoming[new]
    merged = pd.concat([existing, added], ignore_index=True) if len(added) else existing.reset_index(drop=True)
    return merged, int(new.sum()), int((~new).sum())
