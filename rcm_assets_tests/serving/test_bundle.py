"""The bundle's pure parts: which bundle serves, what must agree with the batch, the spool read back."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from rcm_assets.defs.serving import SPOOL_COLUMNS, bundle_differences, read_spool, rules_version
from rcm_assets.platform.io_manager import HiveParquetIOManager, lake_root
from rcm_assets.serving.bundle import NotReady, read_bundle


def write_bundle(root, day: str, champion: str) -> None:
    folder = root / "serving" / "bundle" / f"dt={day}"
    folder.mkdir(parents=True)
    pd.DataFrame([{"feature_version": "f1", "champion_version": champion}]).to_parquet(folder / "part-0.parquet")


def test_the_newest_bundle_within_the_lookback_serves(tmp_path):
    lake = HiveParquetIOManager(lake_root(str(tmp_path)))
    write_bundle(tmp_path, "2025-05-10", "3")
    write_bundle(tmp_path, "2025-05-12", "4")
    assert read_bundle(lake, "2025-05-12", 7)[0] == "2025-05-12"
    day, row = read_bundle(lake, "2025-05-14", 7)
    assert (day, row["champion_version"]) == ("2025-05-12", "4")
    with pytest.raises(NotReady, match="--select serving/bundle"):
        read_bundle(lake, "2025-05-30", 7)


def test_bundle_differences_name_each_feature_input_that_disagrees():
    published = {"feature_version": "a", "reference_version": "r", "learned_version": "l", "rules_version": "x",
                 "champion_version": "3"}
    assert bundle_differences(published, {**published, "champion_version": "4"}) == []  # a promotion is no mismatch
    found = bundle_differences(published, {**published, "learned_version": "l2", "rules_version": "y"})
    assert [f.split(":")[0] for f in found] == ["learned_version", "rules_version"]


def test_rules_version_ignores_order():
    a = pd.DataFrame({"payer_id": ["P1", "P2"], "cpt_family": ["lab", "imaging"]})
    assert rules_version(a) == rules_version(a.iloc[::-1]) != rules_version(a.iloc[:1])


def test_spool_is_read_back_per_day(tmp_path):
    folder = tmp_path / "dt=2025-05-13"
    folder.mkdir()
    row = {c: None for c in SPOOL_COLUMNS} | {"request_id": "r1", "claim_id": "C1", "claim_version": 1,
                                               "denial_probability": 0.25, "threshold": 0.35,
                                               "scored_at": "2025-05-13T10:00:00+00:00"}
    (folder / "host-1.jsonl").write_text(json.dumps(row) + "\n" + json.dumps({**row, "claim_id": "C2"}) + "\n")
    (folder / "host-2.jsonl").write_text(json.dumps({**row, "request_id": "r2", "claim_id": "C3"}) + "\n")
    frame = read_spool(tmp_path, "2025-05-13")
    assert list(frame.columns) == SPOOL_COLUMNS and sorted(frame["claim_id"]) == ["C1", "C2", "C3"]
    assert str(frame["scored_at"].dtype) == "datetime64[ns]"
    empty = read_spool(tmp_path, "2025-05-14")
    assert empty.empty and list(empty.columns) == SPOOL_COLUMNS
