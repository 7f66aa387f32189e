"""Compare two lakes file by file: the same partitions, the same Parquet rows, bookkeeping aside."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq

from rcm_assets.platform.io_manager import lake_root

# Written by the run itself: which Dagster run extracted a row and when. Everything else must be equal.
RUN_COLUMNS = ("_ingested_at", "_run_id")
DAILY_ASSETS = ("bronze/claims", "bronze/remittances", "silver/claims", "silver/claims_rejects",
                "silver/remittances", "silver/remittances_rejects", "silver/claim_versions",
                "silver/authorization_denials", "gold/claim_features")


def lake_files(url: str) -> dict[str, str]:
    """Relative path -> full fsspec path of every Parquet file under the lake (tmp files included)."""
    root = lake_root(url)
    base = root.path.rstrip("/")
    if not root.fs.exists(base):
        return {}
    return {p[len(base) + 1:]: p for p in root.fs.find(base)}


def read_file(url: str, full_path: str) -> pd.DataFrame:
    with lake_root(url).fs.open(full_path, "rb") as f:
        return pq.read_table(f).to_pandas()


def assert_same_lake(expected_url: str, actual_url: str, tables: tuple[str, ...] = DAILY_ASSETS) -> dict[str, int]:
    """Every file of `tables` in both lakes, equal row for row except RUN_COLUMNS; returns rows per table."""
    expected, actual = lake_files(expected_url), lake_files(actual_url)
    assert not [p for p in actual if p.rsplit("/", 1)[-1].startswith(".")], "tmp files left in the lake"
    wanted = tuple(f"{t}/" for t in tables)
    exp = sorted(p for p in expected if p.startswith(wanted))
    assert exp, f"nothing written under {expected_url}"
    assert sorted(p for p in actual if p.startswith(wanted)) == exp
    rows: dict[str, int] = {}
    for rel in exp:
        left, right = read_file(expected_url, expected[rel]), read_file(actual_url, actual[rel])
        assert list(left.columns) == list(right.columns), rel
        keep = [c for c in left.columns if c not in RUN_COLUMNS]
        pd.testing.assert_frame_equal(left[keep], right[keep], obj=rel)
        table = rel.split("/dt=")[0]
        rows[table] = rows.get(table, 0) + len(left)
    return rows
