"""The faster bronze paths give exactly what the plain pandas ones gave, on synthetic claims with the
awkward cases added (repeats, nulls, non-ASCII ids, empty days, a missing column)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from rcm_assets.defs import bronze, checks
from rcm_assets.lib.columns import source_column_names
from rcm_assets.synthetic import generate

COLUMNS = source_column_names("claims")


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    claims = generate(date(2025, 1, 1), 6, 300, seed=5).claims.reset_index(drop=True)
    claims["dt"] = claims["updated_at"].dt.strftime("%Y-%m-%d")
    return claims


def shuffled(rows: pd.DataFrame) -> pd.DataFrame:
    out = pd.concat([rows, rows.iloc[:40]], ignore_index=True)  # repeats: ties in every sort key
    out = out.sample(frac=1.0, random_state=3).reset_index(drop=True)
    out["_order"] = np.arange(len(out))  # shows which of two equal rows came first
    out.loc[5, "claim_id"] = "Ünïcode-claim"
    out.loc[7, "claim_id"] = None
    out.loc[9, "dt"] = "2024-12-31"  # a landing row fed to the day of its file name
    return out


def test_day_labels_match_strftime(rows):
    stamps = pd.concat([rows["updated_at"], pd.Series(pd.to_datetime(
        ["1969-12-31 23:59:59.999999", "2025-01-01 00:00:00", "2024-02-29 23:59:59.999999999"],
        format="ISO8601"))], ignore_index=True)
    assert bronze.day_labels(stamps).tolist() == stamps.dt.strftime("%Y-%m-%d").tolist()
    with_nat = stamps.copy()
    with_nat.iloc[2] = pd.NaT
    pd.testing.assert_series_equal(bronze.day_labels(with_nat), with_nat.dt.strftime("%Y-%m-%d"))


def test_sort_rows_is_pandas_stable_sort(rows):
    frame = shuffled(rows)
    expected = frame.sort_values(["dt", "updated_at", "claim_id"], kind="stable", ignore_index=True)
    pd.testing.assert_frame_equal(bronze.sort_rows(frame), expected)


def test_checks_by_day_are_the_per_day_checks(rows):
    frame = shuffled(rows)
    keys = sorted(frame["dt"].unique()) + ["2025-02-01"]  # a day without rows
    expected = checks.per_partition(keys, frame, lambda day_rows, day: bronze.bronze_checks(day_rows, "claims", [day]))
    got = bronze.bronze_checks_by_day(frame, "claims", keys)
    assert any(not c.passed for results in got.values() for c in results)  # the repeats and the empty day
    assert got == expected
    no_column = frame.drop(columns=["payer_id"])
    assert bronze.bronze_checks_by_day(no_column, "claims", keys) == checks.per_partition(
        keys, no_column, lambda day_rows, day: bronze.bronze_checks(day_rows, "claims", [day]))
