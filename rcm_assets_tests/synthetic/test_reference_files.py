"""The reference files a hospital would really have, as the generator writes them (INTERFACES A), and the
generator's command line the demo runs (`python -m rcm_assets.synthetic --world ... --reference-dir ...`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rcm_assets.synthetic import generate, world
from rcm_assets.synthetic.hospital_b import build_world, generate_hospital_b
from rcm_assets.synthetic.reference_files import REFERENCE_FILES, write_reference_files

REPO = Path(__file__).resolve().parents[2]
FORBIDDEN_COLUMNS = {"base_denial_rate", "base_logit", "typical_charge", "consistent", "chapter", "family_rule"}


def _read(folder: Path) -> dict[str, pd.DataFrame]:
    return {name: pd.read_csv(folder / name, dtype=str, keep_default_na=False) for name in REFERENCE_FILES}


@pytest.fixture(scope="module")
def b_files(tmp_path_factory):
    data = generate_hospital_b(date(2025, 1, 1), 3, 100, seed=4)
    folder = tmp_path_factory.mktemp("reference_b")
    write_reference_files(data, folder)
    return data, _read(folder)


@pytest.fixture(scope="module")
def default_files(tmp_path_factory):
    data = generate(date(2025, 1, 1), 3, 100, seed=4)
    folder = tmp_path_factory.mktemp("reference_default")
    write_reference_files(data, folder)
    return data, _read(folder)


@pytest.mark.parametrize("which", ["b_files", "default_files"])
def test_files_have_the_interface_columns_and_no_answer_key(request, which):
    _, files = request.getfixturevalue(which)
    assert list(files["payers.csv"].columns) == ["payer_id", "payer_name", "plan_type", "filing_limit_days"]
    assert list(files["prior_auth_list.csv"].columns) == ["payer_id", "procedure_code"]
    assert list(files["chargemaster.csv"].columns) == ["procedure_code", "description", "list_price"]
    assert list(files["code_categories.csv"].columns) == ["procedure_code", "category"]
    for table in files.values():
        assert not FORBIDDEN_COLUMNS & set(table.columns)
        assert (table != "").all().all()
    payers = files["payers.csv"]
    assert payers["payer_id"].is_unique
    assert set(payers["plan_type"]) <= {"commercial", "medicare", "medicaid", "self_pay", "other"}
    assert (payers["filing_limit_days"].astype(int) >= 1).all()
    assert (files["chargemaster.csv"]["list_price"].astype(float) > 0).all()
    assert files["chargemaster.csv"]["procedure_code"].is_unique


def test_hospital_b_files_cover_its_payers_and_codes_but_publish_only_some_auth_lists(b_files):
    data, files = b_files
    w = build_world()
    payers = files["payers.csv"]
    assert set(data.claims["payer_id"]) <= set(payers["payer_id"]) == set(w.payer_ids)
    assert payers["payer_id"].str.fullmatch(r"\d{5}").all()
    limits = dict(zip(w.payer_ids, w.filing_limit, strict=True))
    assert (payers["filing_limit_days"].astype(int) == payers["payer_id"].map(limits)).all()  # the contracts
    auth = files["prior_auth_list.csv"]
    plan = dict(zip(payers["payer_id"], payers["plan_type"], strict=True))
    assert set(auth["payer_id"].map(plan)) == {"commercial"}  # only the commercial payers publish lists
    required_payers = {w.payer_ids[k] for k in np.flatnonzero(w.pa_required.any(axis=1))}
    assert set(auth["payer_id"]) < required_payers  # incomplete: other payers require auth too
    assert set(files["chargemaster.csv"]["procedure_code"]) == set(w.codes)
    assert len(files["chargemaster.csv"]) >= 2000


def test_the_chargemaster_is_the_hospitals_prices_not_the_fee_schedule(b_files, default_files):
    for (_, files), typical in ((b_files, dict(zip(build_world().codes, build_world().typical_charge, strict=True))),
                                (default_files, world.CPT_TYPICAL_CHARGE)):
        cm = files["chargemaster.csv"]
        ratio = cm["list_price"].astype(float) / cm["procedure_code"].map(typical)
        assert (ratio.round(6) != 1.0).all()  # never the generator's typical charge itself
        assert 1.0 < ratio.median() < 1.4 and ratio.std() > 0.05  # a markup with per-code noise


def test_default_world_files_publish_commercial_lists_expanded_to_codes(default_files):
    _, files = default_files
    auth = files["prior_auth_list.csv"]
    assert set(auth["payer_id"]) == {"AETNA", "BCBS", "CIGNA", "UHC"}
    assert ("AETNA", "72148") in set(zip(auth["payer_id"], auth["procedure_code"], strict=True))  # MRI lumbar
    assert "HUMANA" not in set(auth["payer_id"]) and "MEDICAID_TX" not in set(auth["payer_id"])
    assert set(files["code_categories.csv"]["procedure_code"]) == set(world.CPT_CODES)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RCM_")}
    env["RCM_DATA_DIR"] = str(cwd / "data")
    return subprocess.run([sys.executable, "-m", "rcm_assets.synthetic", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def test_cli_writes_hospital_b_with_reference_files_and_a_summary(tmp_path):
    done = _cli("--world", "hospital_b", "--start", "2025-01-01", "--days", "3", "--claims-per-day", "50",
                "--summary-json", str(tmp_path / "s.json"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["world"] == "hospital_b" and 0 < summary["denial_rate"] < 1
    assert sorted(Path(p).name for p in summary["reference_files"]) == sorted(REFERENCE_FILES)
    assert all(Path(p).parent == tmp_path / "data" / "reference" for p in summary["reference_files"])
    assert (tmp_path / "data" / "source.db").is_file()
    assert pd.read_parquet(summary["ground_truth"])["world"].eq("hospital_b").all()


def test_cli_no_reference_files_writes_none(tmp_path):
    done = _cli("--start", "2025-01-01", "--days", "2", "--claims-per-day", "20", "--no-reference-files",
                "--summary-json", str(tmp_path / "s.json"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "s.json").read_text())["reference_files"] == []
    assert not (tmp_path / "data" / "reference").exists()


@pytest.mark.parametrize("args", [
    ["--world", "hospital_b", "--drift-start", "2025-01-02", "--drift-payer", "AETNA", "--drift-cpt-family", "lab"],
    ["--world", "hospital_c"],
    ["--no-reference-files", "--reference-dir", "x"],
])
def test_cli_refuses_arguments_of_the_other_world(tmp_path, args):
    done = _cli("--start", "2025-01-01", "--days", "2", "--claims-per-day", "20", *args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
