"""Reference tables: contracts, normalization, content versions and lookups (lib/reference_tables)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rcm_assets.lib import reference_tables as R


def write(folder: Path, name: str, text: str) -> None:
    (folder / f"{name}.csv").write_text(text)


def test_absent_folder_and_files_are_not_supplied(tmp_path: Path):
    tables = R.load_reference_tables(tmp_path / "nowhere")
    assert tables.versions() == dict.fromkeys(R.TABLE_NAMES, R.NOT_SUPPLIED)
    assert R.load_reference_tables(None).version == tables.version
    assert np.isnan(tables.filing_limit_days(["60054"])).all() and tables.plan_type(["60054"]) == [None]


def test_normalization_strips_cases_codes_ignores_extra_columns_and_orders(tmp_path: Path):
    write(tmp_path, "payers", "Payer_ID, plan_type ,filing_limit_days,comment\n 60054 ,Commercial,180,a\n62308,,,b\n")
    write(tmp_path, "chargemaster", "list_price,procedure_code\n150,99213\n60, j3490\n")
    tables = R.load_reference_tables(tmp_path)
    assert tables.plan_type(["60054", "62308", "X"]) == ["commercial", None, None]
    assert tables.filing_limit_days(["60054", "62308"])[0] == 180 and np.isnan(tables.filing_limit_days(["62308"]))[0]
    assert tables.list_price(["J3490", "99213", "00000"])[:2].tolist() == [60.0, 150.0]
    reordered = tmp_path / "other"
    reordered.mkdir()
    write(reordered, "payers", "filing_limit_days,payer_id,plan_type\n,62308,\n180,60054,commercial\n")
    assert R.load_reference_tables(reordered).versions()["payers"] == tables.versions()["payers"]
    write(reordered, "payers", "filing_limit_days,payer_id,plan_type\n,62308,\n181,60054,commercial\n")
    assert R.load_reference_tables(reordered).versions()["payers"] != tables.versions()["payers"]


def test_prior_auth_list_in_effect_on_the_service_date(tmp_path: Path):
    write(tmp_path, "prior_auth_list", "payer_id,procedure_code,effective_from,effective_to\n"
                                       "60054,70551,,\n62308,97110,2025-02-01,2025-06-30\n62308,97110,2025-02-01,2025-06-30\n")
    tables = R.load_reference_tables(tmp_path)
    assert len(tables.prior_auth_list) == 2  # a pair listed twice is one rule
    listed = tables.prior_auth_listed(pd.Series(["60054", "62308", "62308", "62308", "62308"]),
                                      pd.Series(["70551", "97110", "97110", "97110", "70551"]),
                                      pd.to_datetime(pd.Series(["2020-01-01", "2025-01-31", "2025-02-01",
                                                                "2025-07-01", "2025-03-01"])))
    assert listed.tolist() == [True, False, True, False, False]


@pytest.mark.parametrize(("name", "text", "message"), [
    ("payers", "payer_name\nAetna\n", "line 1, column payer_id: required column missing"),
    ("payers", "payer_id,plan_type\n60054,hmo\n", "line 2, column plan_type"),
    ("payers", "payer_id,filing_limit_days\n60054,90.5\n", "line 2, column filing_limit_days: 90.5 is not a whole"),
    ("payers", "payer_id,filing_limit_days\n60054,0\n", "line 2, column filing_limit_days"),
    ("payers", "payer_id\n60054\n\"\"\n", "line 3, column payer_id"),
    ("prior_auth_list", "payer_id,procedure_code,effective_from,effective_to\n1,99213,2025-05-01,2025-01-01\n",
     "line 2, column effective_from"),
    ("prior_auth_list", "payer_id,procedure_code,effective_from\n1,99213,01/05/2025\n",
     "line 2, column effective_from: '01/05/2025' is not an ISO date"),
    ("code_categories", "procedure_code,category\n99213,\n", "line 2, column category"),
])
def test_bad_input_names_file_line_and_column(tmp_path: Path, name: str, text: str, message: str):
    write(tmp_path, name, text)
    with pytest.raises(R.ReferenceFileError, match=message.replace("(", r"\(")) as raised:
        R.read_table(tmp_path, name)
    assert str(raised.value).startswith(str(tmp_path / f"{name}.csv"))


def test_the_contract_accepts_what_normalize_returns(tmp_path: Path):
    write(tmp_path, "code_categories", "procedure_code,category\n70551,imaging\n99213,visit\n")
    frame = R.read_table(tmp_path, "code_categories")
    R.schema("code_categories").validate(frame)
    assert R.ReferenceTables(code_categories=frame).category(["70551", "00000"]) == ["imaging", None]
