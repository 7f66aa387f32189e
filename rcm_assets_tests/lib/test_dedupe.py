"""Row identity by content: repeats are dropped, stored rows are never lost."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from rcm_assets.lib.columns import source_column_names
from rcm_assets.lib.dedupe import append_new_rows, drop_content_duplicates, row_hashes
from rcm_assets.synthetic import generate

COLUMNS = source_column_names("claims")


def claims(n: int = 200) -> pd.DataFrame:
    return generate(date(2025, 1, 1), 2, n, seed=3, realism="none").claims.reset_index(drop=True)


def test_hashes_survive_a_parquet_round_trip(tmp_path):
    rows = claims()
    path = tmp_path / "part.parquet"
    pq.write_table(pa.Table.from_pandas(rows, preserve_index=False), path)
    back = pq.read_table(path).to_pandas()
    assert (row_hashes(back, COLUMNS) == row_hashes(rows, COLUMNS)).all()


def test_a_changed_value_changes_the_hash():
    rows = claims()
    changed = rows.copy()
    changed.loc[3, "eligibility_verified"] = not changed.loc[3, "eligibility_verified"]
    diff = row_hashes(rows, COLUMNS) != row_hashes(changed, COLUMNS)
    assert diff.tolist() == [i == 3 for i in range(len(rows))]


def test_repeats_are_dropped_keeping_the_first_delivery():
    rows = claims()
    resent = pd.concat([rows.assign(_source="a"), rows.iloc[:50].assign(_source="b")], ignore_index=True)
    kept, dropped = drop_content_duplicates(resent, COLUMNS)
    assert dropped == 50 and len(kept) == len(rows) and set(kept["_source"]) == {"a"}


def test_appending_keeps_stored_rows_and_adds_only_new_content():
    rows = claims()
    stored, late = rows.iloc[:150], rows.iloc[150:]
    # the source overwrote 10 stored rows in place since: their stored state must survive
    overwritten = stored.iloc[:10].assign(updated_at=stored["updated_at"].iloc[:10] + pd.Timedelta(days=3))
    incoming = pd.concat([stored.iloc[10:], late, late.iloc[:5]], ignore_index=True)
    merged, added, already = append_new_rows(stored, incoming, COLUMNS)
    assert (added, already) == (len(late), len(stored) - 10)
    assert len(merged) == len(rows)
    pd.testing.assert_frame_equal(merged.iloc[:150], stored.reset_index(drop=True))
    again, added, _ = append_new_rows(merged, incoming, COLUMNS)
    assert added == 0 and len(again) == len(rows)
    assert not set(row_hashes(overwritten, COLUMNS)) & set(row_hashes(merged, COLUMNS))


def test_all_distinct_proves_no_repeat_or_says_it_cannot():
    from rcm_assets.lib.dedupe import all_distinct

    rows = claims()
    assert all_distinct(rows, COLUMNS)
    twice = pd.concat([rows, rows.iloc[[7]]], ignore_index=True)
    assert not all_distinct(twice, COLUMNS)
    # equal in every timestamp and the id but not in one value: still distinct rows
    near = pd.concat([rows, rows.iloc[[7]].assign(billed_amount=rows["billed_amount"].iloc[7] + 1)], ignore_index=True)
    assert all_distinct(near, COLUMNS)
    assert drop_content_duplicates(near, COLUMNS)[1] == 0 and drop_content_duplicates(twice, COLUMNS)[1] == 1


def test_dropping_nothing_returns_a_default_index():
    rows = claims().iloc[10:30]
    kept, dropped = drop_content_duplicates(rows, COLUMNS)
    assert dropped == 0
    pd.testing.assert_frame_equal(kept, rows.reset_index(drop=True))
