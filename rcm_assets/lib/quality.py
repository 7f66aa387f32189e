"""Pure evidence for the gold and prediction checks: each returns findings, empty when all is well.

Findings name columns and counts only, never row values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from rcm_assets.lib.columns import Availability, availability_of
from rcm_assets.lib.features import FEATURE_COLUMNS, KEY_COLUMNS
from rcm_assets.lib.modelling import PSI_EPSILON

GOLD_EXTRA_COLUMNS = ("feature_version",)


def leakage_findings(columns: Iterable[str]) -> list[str]:
    """Columns of a stored gold table that are not decision-time: post-outcome, bookkeeping or unknown."""
    allowed = set(KEY_COLUMNS) | set(FEATURE_COLUMNS) | set(GOLD_EXTRA_COLUMNS)
    findings = []
    for name in columns:
        level = availability_of(name)
        if level in (Availability.POST_OUTCOME, Availability.BOOKKEEPING):
            findings.append(f"{name} is {level.value}")
        elif name not in allowed and level is None:
            findings.append(f"{name} is not a registered feature or key")
    return findings


def null_rate_findings(frame: pd.DataFrame, max_null_rate: Mapping[str, float]) -> dict[str, float]:
    """Features whose share of nulls is above their bound."""
    if frame.empty:
        return {}
    rates = frame[list(max_null_rate)].isna().mean()
    return {name: float(rate) for name, rate in rates.items() if rate > max_null_rate[name]}


def range_findings(frame: pd.DataFrame, ranges: Mapping[str, tuple[float, float]]) -> dict[str, int]:
    """Numeric features with values outside their declared [low, high] range (count of rows)."""
    out = {}
    for name, (low, high) in ranges.items():
        values = pd.to_numeric(frame[name], errors="coerce")
        bad = int(((values < low) | (values > high)).sum())
        if bad:
            out[name] = bad
    return out


def duplicate_claims(frame: pd.DataFrame, keys: tuple[str, ...] = ("dt", "claim_id")) -> int:
    return int(frame.duplicated(list(keys)).sum()) if not frame.empty else 0


def parity_differences(
    stored: pd.DataFrame, recomputed: pd.DataFrame, keys: tuple[str, ...] = ("dt", "claim_id")
) -> list[str]:
    """Columns where the stored features and the scoring path's features differ (values or dtypes)."""
    diffs = []
    if set(stored.columns) != set(recomputed.columns):
        only_stored = sorted(set(stored.columns) - set(recomputed.columns))
        only_new = sorted(set(recomputed.columns) - set(stored.columns))
        diffs.append(f"column sets differ (stored only: {only_stored}, scoring only: {only_new})")
        return diffs
    a = stored.sort_values(list(keys), kind="stable").reset_index(drop=True)
    b = recomputed.sort_values(list(keys), kind="stable").reset_index(drop=True)[list(a.columns)]
    if len(a) != len(b):
        return [f"row counts differ ({len(a)} stored vs {len(b)} recomputed)"]
    for name in a.columns:
        left, right = a[name], b[name]
        if left.dtype != right.dtype:
            diffs.append(f"{name}: dtype {left.dtype} vs {right.dtype}")
            continue
        same = (left == right) | (left.isna() & right.isna())
        if isinstance(left.dtype, pd.CategoricalDtype):
            same = (left.astype(object) == right.astype(object)) | (left.isna() & right.isna())
        elif np.issubdtype(left.dtype, np.floating):
            same = pd.Series(np.isclose(left, right, rtol=0, atol=0, equal_nan=True))
        if not bool(np.all(same)):
            diffs.append(f"{name}: {int((~same).sum())} of {len(a)} values differ")
    return diffs


SCORE_BINS = 20


def score_histogram(p: np.ndarray | pd.Series, bins: int = SCORE_BINS) -> list[float]:
    """Share of scores in equal-width bins over [0, 1]: the reference stored with each model.

    Fixed bins (not quantiles) because calibrated scores are step-valued: many ties would collapse
    quantile bins.
    """
    values = np.clip(np.asarray(p, dtype="float64"), 0.0, 1.0)
    if not len(values):
        return [0.0] * bins
    index = np.minimum((values * bins).astype("int64"), bins - 1)
    return (np.bincount(index, minlength=bins) / len(values)).round(6).tolist()


def score_psi(reference: list[float] | np.ndarray, p: np.ndarray | pd.Series) -> float:
    """Population stability index of scores `p` against a reference histogram from `score_histogram`."""
    expected = np.maximum(np.asarray(reference, dtype="float64"), PSI_EPSILON)
    actual = np.maximum(np.asarray(score_histogram(p, len(expected))), PSI_EPSILON)
    return float(np.sum((actual - expected) * np.log(actual / expected)))
