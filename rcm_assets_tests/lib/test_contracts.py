"""Contracts derived from the registry, decision-time guards, and failure reports without values
(including the Dagster types' TypeCheck); real-world codes and values accepted, invalid ones rejected with
the column and the rule named."""

from __future__ import annotations

import json
import re
import warnings
from datetime import date

import dagster as dg
import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest

from rcm_assets.lib import code_sets, contracts
from rcm_assets.lib import features as F
from rcm_assets.lib.columns import (
    CLAIM_DEFECTS_COLUMN,
    DEFECT_COLUMNS,
    ICD_CODE_SET_COLUMN,
    Availability,
    Column,
    columns,
    phi_column_names,
    source_column_names,
    source_columns,
)
from rcm_assets.lib.contracts import ContractError
from rcm_assets.lib.transforms import build_silver_claims, build_silver_remittances, phi_leaks
from rcm_assets.platform import types
from rcm_assets.synthetic import generate
from rcm_assets_tests.conftest import PHI_TEST_KEY as KEY
from rcm_assets_tests.conftest import to_bronze

FAKE_NAME = "Zebediah Quux-Marchbanks"


@pytest.fixture(scope="module")
def bronze() -> pd.DataFrame:
    claims = generate(start=date(2025, 3, 1), days=1, claims_per_day=40, seed=3).claims
    return to_bronze(claims)


@pytest.fixture(scope="module")
def silver(bronze) -> pd.DataFrame:
    return build_silver_claims(bronze, KEY).good


def _errors(schema: pa.DataFrameSchema, frame: pd.DataFrame) -> pa.errors.SchemaErrors:
    with pytest.raises(pa.errors.SchemaErrors) as err:
        schema.validate(frame, lazy=True)
    return err.value


# --------------------------------------------------------------------------------------------------
# derived from the registry
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("table", ["claims", "remittances"])
def test_schemas_follow_the_registry(table):
    bronze, silver = contracts.schema_for(table, "bronze"), contracts.schema_for(table, "silver")
    assert list(bronze.columns)[: len(source_column_names(table))] == source_column_names(table)
    assert list(silver.columns) == [c.name for c in columns(table, "silver")] + ["dt"]
    assert not phi_column_names() & set(silver.columns)
    assert silver.strict is True and bronze.strict is False
    assert silver.name == f"silver_{table}" and silver.title and silver.description
    for col in columns(table, "silver"):
        assert silver.columns[col.name].nullable == col.silver_nullable
        assert silver.columns[col.name].description is not None
    assert not silver.columns["dt"].required


def test_registry_constraints_become_checks():
    silver = contracts.schema_for("claims", "silver")
    names = {c: [str(chk.error or chk.name) for chk in silver.columns[c].checks] for c in silver.columns}
    assert "isin(['F', 'M', 'U'])" in names["patient_sex"]
    assert "greater_than_or_equal_to(0.01)" in names["billed_amount"]
    assert "less_than_or_equal_to(10000000)" in names["billed_amount"]
    assert "less_than_or_equal_to(9999)" in names["units"] and names["icd10_count"] == []  # a defect, as sent
    assert "less_than_or_equal_to(90)" in names["patient_age"]
    assert any(n.startswith("str_matches") for n in names["member_token"])
    assert "date_without_time" in names["service_date"]
    # code columns: one named check per code_sets rule, no anonymous regex beside it
    assert names["claim_id"] == ["x12_claim_id"]
    rows = contracts.row_schema("claims", "bronze")
    rules = {c: [str(chk.error or chk.name) for chk in rows.columns[c].checks] for c in rows.columns}
    assert rules["cpt_code"] == ["cpt_hcpcs_code"] and rules["icd10_primary"] == ["icd_diagnosis_code"]
    assert rules["billing_npi"] == rules["rendering_npi"] == ["npi_format", "npi_check_digit"]
    assert rules["place_of_service"] == ["cms_pos_code"] and rules["claim_id"] == ["x12_claim_id"]
    # silver holds defect codes as sent: their grammar is checked, not their code list (a flag, issue 24)
    for code in ("cpt_code", "icd10_primary", "billing_npi", "rendering_npi", "place_of_service"):
        assert len(names[code]) == 1 and names[code][0].startswith("str_matches"), code
        assert silver.columns[code].nullable
    assert names["patient_sex"] == ["isin(['F', 'M', 'U'])"] and not silver.columns["patient_sex"].nullable
    for flag in ("defect_npi", "defect_diagnosis_code", "defect_procedure_code", "defect_place_of_service",
                 "defect_demographics"):
        assert silver.columns[flag].dtype.type == np.int64 and not silver.columns[flag].nullable
    assert names["icd_code_set"] == ["isin(['icd10', 'icd9'])"] and silver.columns["icd_code_set"].nullable
    remit = contracts.schema_for("remittances", "silver").columns
    assert [c.name for c in remit["carc_code"].checks] == ["x12_carc_code"]
    assert [c.name for c in remit["rarc_code"].checks] == ["x12_rarc_code"]
    wide = {chk.name for chk in silver.checks}
    unique = contracts.unique_key_check_name(contracts.SILVER_KEY_COLUMNS["claims"])
    assert "greater_than_or_equal_to_column(service_date)" in wide and unique in wide
    remits = {chk.name for chk in contracts.schema_for("remittances", "silver").checks}
    assert {"greater_than_or_equal_to_column(paid_amount)", "greater_than_or_equal_to_column(adjudicated_at)",
            contracts.DENIED_CHECK, contracts.CARC_CATEGORY_CHECK} <= remits


def test_bronze_contract_is_structural(bronze):
    frame = bronze.copy()
    frame.loc[0, "billed_amount"] = -5.0  # a value problem is for silver to reject, not for bronze
    frame.loc[1, "payer_id"] = None
    contracts.schema_for("claims", "bronze").validate(frame, lazy=True)
    summary = contracts.summarize_failures(_errors(contracts.schema_for("claims", "bronze"),
                                                   frame.drop(columns=["units"])))
    assert summary == [{"check": "column_in_dataframe", "column": "units", "count": 1}]


def test_empty_frames_meet_their_contracts():
    for table in contracts.TABLES:
        for layer in contracts.LAYERS:
            contracts.schema_for(table, layer).validate(contracts.empty_frame(table, layer))
        contracts.rejects_schema(table).validate(contracts.empty_rejects(table))


def test_silver_is_strict_and_unique_per_claim_and_day(silver):
    leaked = silver.assign(patient_name=FAKE_NAME)
    duplicated = pd.concat([silver, silver.head(2)], ignore_index=True)
    summary = contracts.summarize_failures(_errors(contracts.schema_for("claims", "silver"), leaked))
    assert {"check": "column_in_schema", "column": "patient_name", "count": 1} in summary
    summary = contracts.summarize_failures(_errors(contracts.schema_for("claims", "silver"), duplicated))
    unique = contracts.unique_key_check_name(contracts.SILVER_KEY_COLUMNS["claims"])
    assert summary == [{"check": unique, "column": "claim_id", "count": 4}]


# --------------------------------------------------------------------------------------------------
# decision-time contracts
# --------------------------------------------------------------------------------------------------


def test_scoring_input_accepts_decision_time_columns_only(silver):
    schema = contracts.scoring_input_schema()
    allowed = contracts.scoring_input_columns()
    assert all(c.availability is Availability.DECISION_TIME for c in columns("claims", "silver")
               if c.name in allowed)
    assert "updated_at" not in allowed and "member_token" in allowed
    schema.validate(silver[[*allowed, "dt"]], lazy=True)
    for extra, value in (("claim_status", "denied"), ("patient_name", FAKE_NAME), ("updated_at", pd.NaT)):
        summary = contracts.summarize_failures(_errors(schema, silver[allowed].assign(**{extra: value})))
        assert {"check": "column_in_schema", "column": extra, "count": 1} in summary
        assert any(d["check"] == "no_post_outcome_bookkeeping_or_phi_columns" for d in summary)
    assert contracts.forbidden_columns(["claim_status", "patient_dob", "_run_id", "cpt_code"]) == {
        "claim_status": "post_outcome", "patient_dob": "PHI", "_run_id": "bookkeeping"}


def test_gold_schema_refuses_outcome_features_and_extra_columns(silver):
    with pytest.raises(ContractError, match=r"refused: paid_amount \(post_outcome\), updated_at \(bookkeeping\)"):
        contracts.gold_schema({"paid_amount": "float64", "updated_at": "datetime64[ns]", "units": "int64"})
    schema = contracts.gold_schema({"units": "int64", "payer_id": "string", "charge_ratio": "float64"})
    gold = silver[["claim_id", "claim_version", "submitted_at", "dt", "units", "payer_id"]].assign(
        charge_ratio=1.5, feature_version="fv1")
    schema.validate(gold, lazy=True)
    summary = contracts.summarize_failures(_errors(schema, gold.assign(carc_code="197")))
    assert {"check": "column_in_schema", "column": "carc_code", "count": 1} in summary


# --------------------------------------------------------------------------------------------------
# failure reports without values
# --------------------------------------------------------------------------------------------------


def _bad_silver(silver: pd.DataFrame) -> pd.DataFrame:
    bad = silver.head(5).copy()
    bad.loc[bad.index[0], "claim_id"] = FAKE_NAME
    bad.loc[bad.index[1], "payer_id"] = None
    bad.loc[bad.index[2], "billed_amount"] = -1.0
    return bad.assign(patient_name=FAKE_NAME)


def test_summarize_failures_names_checks_and_columns_never_values(silver):
    err = _errors(contracts.schema_for("claims", "silver"), _bad_silver(silver))
    assert FAKE_NAME in str(err)  # pandera's own report would leak it
    summary = contracts.summarize_failures(err)
    assert FAKE_NAME not in json.dumps(summary)
    assert {"check": "not_nullable", "column": "payer_id", "count": 1} in summary
    assert {"check": "greater_than_or_equal_to(0.01)", "column": "billed_amount", "count": 1} in summary
    text = contracts.describe_failures(summary, what="silver_claims")
    assert "claim_id:x12_claim_id" in text and FAKE_NAME not in text


def test_dagster_type_check_is_redacted(silver):
    dagster_type = types.silver_dagster_type("claims")
    assert dagster_type.unique_name == "SilverClaims"
    schema_md = dagster_type.metadata["schema"].value
    assert [c.name for c in schema_md.columns] == contracts.frame_columns("claims", "silver")

    ok = dg.check_dagster_type(dagster_type, silver)
    assert ok.success

    bad = dg.check_dagster_type(dagster_type, _bad_silver(silver))
    assert not bad.success
    serialized = bad.description + json.dumps({k: str(v) for k, v in bad.metadata.items()})
    assert FAKE_NAME not in serialized
    assert "patient_name:column_in_schema" in bad.description and "payer_id:not_nullable" in bad.description
    assert bad.metadata["num_failures"].value >= 4

    # the stock dagster-pandera type would have put the name into the event log
    from dagster_pandera import pandera_schema_to_dagster_type

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stock = pandera_schema_to_dagster_type(contracts.schema_for("claims", "silver"))
    assert FAKE_NAME in dg.check_dagster_type(stock, _bad_silver(silver)).description


def test_dagster_type_fails_clearly_on_non_frames():
    result = dg.check_dagster_type(types.rejects_dagster_type("claims"), [1, 2])
    assert not result.success and "expected a pandas DataFrame" in result.description


def test_dagster_types_are_built_once_per_name():
    assert types.silver_dagster_type("claims") is types.silver_dagster_type("claims")
    names = {types.bronze_dagster_type(t).unique_name for t in contracts.TABLES}
    names |= {types.silver_dagster_type(t).unique_name for t in contracts.TABLES}
    names |= {types.rejects_dagster_type(t).unique_name for t in contracts.TABLES}
    names.add(types.scoring_input_dagster_type().unique_name)
    assert len(names) == 7
    gold = types.gold_dagster_type({"units": "int64"})
    assert gold is types.gold_dagster_type({"units": "int64"})


# --------------------------------------------------------------------------------------------------
# real-world codes and values: accepted; invalid ones rejected naming the column and the rule
# --------------------------------------------------------------------------------------------------

# Values of real claims, per column; each must pass the claims contract.
REAL_CLAIM_VALUES: dict[str, list[object]] = {
    "claim_id": ["ACME-000123456-01", "PCN-2025-000042", "26046A0001", "1", "Z" * 38, "c0000000001"],
    "cpt_code": ["99213", "3074F", "0042T", "0001U", "0002M", "J3490", "J9271", "A0428", "E0114", "G0202",
                 "L3000", "Q4101", "D0120", "U0003", "V2020"],
    "icd10_primary": ["Z3A.39", "M1A.0710", "C4A.0", "O09.529", "T36.0X5A", "S72.001A", "S72001A", "F32.A",
                      "U07.1", "I10", "E119"],
    "patient_zip": ["02134", "02134-1705", "021341705", "99501-0001"],
    "billing_npi": ["1234567893", "1245319599", "1003000126"],
    "rendering_npi": ["1234567893", "1245319599", "1003000126"],
    "place_of_service": ["01", "03", "09", "13", "15", "17", "18", "20", "25", "26", "27", "32", "33", "34",
                         "41", "42", "49", "50", "51", "52", "53", "54", "55", "56", "57", "58", "60", "61",
                         "62", "65", "66", "71", "72", "99"],
    "units": [1, 150, 600, 9999],
    "icd10_count": [1, 13, 18, 25],
    "billed_amount": [0.01, 1_250_000.00, 9_999_999.99, 10_000_000.0],
    "claim_version": [1, 12, 99],
}
REAL_REMITTANCE_VALUES: dict[str, list[object]] = {
    "claim_id": ["ACME-000123456-01", "PCN-2025-000042", "26046A0001"],
    "carc_code": ["1", "2", "3", "16", "18", "27", "29", "45", "50", "96", "97", "197", "204", "236", "253",
                  "284", "308", "A1", "B7", "B15", "P1", "P32"],
    "rarc_code": ["M15", "M62", "MA01", "MA130", "N10", "N115", "N862"],
}

# (column, invalid value, the one reason its row gets)
INVALID_CLAIM_VALUES: list[tuple[str, object, str]] = [
    ("claim_id", "-ACME-1", "claim_id:x12_claim_id"),
    ("claim_id", "A" * 39, "claim_id:x12_claim_id"),
    ("claim_id", "ACME_000123", "claim_id:x12_claim_id"),
    ("cpt_code", "I1234", "cpt_code:cpt_hcpcs_code"),
    ("cpt_code", "W1234", "cpt_code:cpt_hcpcs_code"),
    ("cpt_code", "99-13", "cpt_code:cpt_hcpcs_code"),
    ("cpt_code", "j3490", "cpt_code:cpt_hcpcs_code"),
    ("icd10_primary", "12.4", "icd10_primary:icd_diagnosis_code"),
    ("icd10_primary", "Z3A.", "icd10_primary:icd_diagnosis_code"),
    ("icd10_primary", "ZZZZZ", "icd10_primary:icd_diagnosis_code"),
    ("icd10_primary", "S72.0011A", "icd10_primary:icd_diagnosis_code"),
    ("icd10_primary", "z3a.39", "icd10_primary:icd_diagnosis_code"),
    ("icd10_primary", "E849.01", "icd10_primary:icd_diagnosis_code"),
    ("patient_zip", "2134", "patient_zip:zip_or_zip4"),
    ("patient_zip", "02134-17", "patient_zip:zip_or_zip4"),
    ("patient_zip", "02134 1705", "patient_zip:zip_or_zip4"),
    ("billing_npi", "1234567890", "billing_npi:npi_check_digit"),
    ("billing_npi", "123456789", "billing_npi:npi_format"),
    ("rendering_npi", "1245319590", "rendering_npi:npi_check_digit"),
    ("place_of_service", "30", "place_of_service:cms_pos_code"),
    ("place_of_service", "00", "place_of_service:cms_pos_code"),
    ("place_of_service", "1", "place_of_service:cms_pos_code"),
    ("units", 0, "units:greater_than_or_equal_to(1)"),
    ("units", 10_000, "units:less_than_or_equal_to(9999)"),
    ("icd10_count", 26, "icd10_count:less_than_or_equal_to(25)"),
    ("billed_amount", 10_000_000.01, "billed_amount:less_than_or_equal_to(10000000)"),
    ("claim_version", 100, "claim_version:less_than_or_equal_to(99)"),
]
INVALID_REMITTANCE_VALUES: list[tuple[str, object, str]] = [
    ("claim_id", "ACME 1", "claim_id:x12_claim_id"),
    ("carc_code", "CO-197", "carc_code:x12_carc_code"),
    ("carc_code", "999", "carc_code:x12_carc_code"),
    ("carc_code", "045", "carc_code:x12_carc_code"),
    ("rarc_code", "MA1", "rarc_code:x12_rarc_code"),
    ("rarc_code", "X12", "rarc_code:x12_rarc_code"),
    ("paid_amount", -0.01, "paid_amount:greater_than_or_equal_to(0)"),
]


@pytest.fixture(scope="module")
def day() -> tuple[pd.DataFrame, pd.DataFrame]:
    """One day of generated claims and remittances, shaped as bronze, one row per claim."""
    data = generate(start=date(2025, 3, 1), days=3, claims_per_day=300, seed=5)
    claims, remits = to_bronze(data.claims), to_bronze(data.remittances)
    first = sorted(claims["dt"].unique())[1]
    claims = claims[claims["dt"] == first].drop_duplicates("claim_id").reset_index(drop=True)
    remits = remits.drop_duplicates("claim_id").reset_index(drop=True)
    return claims, remits


def _one_per_row(base: pd.DataFrame, cases: list[tuple[str, object]]) -> pd.DataFrame:
    """Row i of `base` with column = value of case i (as many rows as cases)."""
    assert len(base) >= len(cases), "the generated day is too small for the cases"
    rows = base.head(len(cases)).copy()
    for i, (column, value) in enumerate(cases):
        rows.loc[rows.index[i], column] = value
    assert (rows.dtypes == base.dtypes).all()
    return rows


@pytest.mark.parametrize("column", sorted(REAL_CLAIM_VALUES))
def test_real_claim_values_are_accepted(day, column):
    rows = _one_per_row(day[0], [(column, v) for v in REAL_CLAIM_VALUES[column]])
    result = build_silver_claims(rows, KEY)
    assert result.stats["rows_rejected"] == 0, result.rejects["reasons"].tolist()
    assert len(result.good) == len(rows)


@pytest.mark.parametrize("column", sorted(REAL_REMITTANCE_VALUES))
def test_real_remittance_values_are_accepted(day, column):
    rows = _one_per_row(day[1], [(column, v) for v in REAL_REMITTANCE_VALUES[column]])
    result = build_silver_remittances(rows)
    assert result.stats["rows_rejected"] == 0, result.rejects["reasons"].tolist()


@pytest.fixture(scope="module")
def invalid_claims(day):
    rows = _one_per_row(day[0], [(c, v) for c, v, _ in INVALID_CLAIM_VALUES])
    return rows, build_silver_claims(rows, KEY)


@pytest.fixture(scope="module")
def invalid_remittances(day):
    rows = _one_per_row(day[1], [(c, v) for c, v, _ in INVALID_REMITTANCE_VALUES])
    return rows, build_silver_remittances(rows)


def _reasons_by_row(rows: pd.DataFrame, rejects: pd.DataFrame) -> dict[int, str]:
    """Reasons of each input row (position -> reasons, '' when it passed), matched on (updated_at, claim_id)."""
    keyed = rejects.assign(_key=rejects["updated_at"].astype(str) + "|" + rejects["claim_id"].astype(str))
    by_key = dict(zip(keyed["_key"], keyed["reasons"], strict=True))
    keys = rows["updated_at"].astype(str) + "|" + rows["claim_id"].map(str)
    return {i: by_key.get(k, "") for i, k in enumerate(keys)}


@pytest.fixture(scope="module")
def invalid_claim_failures(invalid_claims) -> dict[int, str]:
    """The bronze row contract's failures of each row: position -> 'column:check; ...'."""
    rows, _ = invalid_claims
    try:
        contracts.row_schema("claims", "bronze").validate(rows.reset_index(drop=True), lazy=True)
    except pa.errors.SchemaErrors as err:
        records = contracts.failure_records(err)
    by_row = records.groupby("row").apply(lambda g: "; ".join(g["column"] + ":" + g["check"]),
                                          include_groups=False)
    return {int(k): v for k, v in by_row.items()}


@pytest.mark.parametrize("case", range(len(INVALID_CLAIM_VALUES)),
                         ids=[f"{c}={v!r}" for c, v, _ in INVALID_CLAIM_VALUES])
def test_invalid_claim_values_break_the_contract_naming_column_and_rule(invalid_claim_failures, case):
    assert invalid_claim_failures[case] == INVALID_CLAIM_VALUES[case][2]


@pytest.mark.parametrize("case", range(len(INVALID_CLAIM_VALUES)),
                         ids=[f"{c}={v!r}" for c, v, _ in INVALID_CLAIM_VALUES])
def test_invalid_claim_values_reject_only_when_unusable(invalid_claims, case):
    """A usability rule's failure is a reject with its reason; a defect rule's lands flagged (issue 24);
    a tolerated column's lands with neither."""
    rows, result = invalid_claims
    column, _, reason = INVALID_CLAIM_VALUES[case]
    col = next(c for c in columns("claims") if c.name == column)
    got = _reasons_by_row(rows, result.rejects)[case]
    if col.usability:
        assert got == reason
        return
    assert got == ""
    row = rows.iloc[case]
    landed = result.good[(result.good["claim_id"] == row["claim_id"])
                         & (result.good["updated_at"] == row["updated_at"])]
    assert len(landed) == 1
    expected = col.defect or ""
    assert landed["claim_defects"].iloc[0] == expected
    if col.defect:
        assert landed[f"defect_{col.defect}"].iloc[0] == 1


@pytest.mark.parametrize("case", range(len(INVALID_REMITTANCE_VALUES)),
                         ids=[f"{c}={v!r}" for c, v, _ in INVALID_REMITTANCE_VALUES])
def test_invalid_remittance_values_are_rejected_naming_column_and_rule(invalid_remittances, case):
    rows, result = invalid_remittances
    assert _reasons_by_row(rows, result.rejects)[case] == INVALID_REMITTANCE_VALUES[case][2]


def test_rejects_never_carry_the_failing_values(invalid_claims):
    rows, result = invalid_claims
    secret_zip = "9Z9Z9-SECRET"  # a PHI value that breaks the zip rule
    leaky = rows.assign(patient_zip=rows["patient_zip"].where(rows.index != rows.index[0], secret_zip))
    result = build_silver_claims(leaky, KEY)
    reasons = result.rejects[["reasons", "failed_checks", "failed_columns"]].to_string()
    stats = json.dumps(result.stats, default=str)
    for value in (secret_zip, "S72.0011A", "02134 1705", "1245319590", "1234567890", "z3a.39"):
        assert value not in reasons and value not in stats
    assert secret_zip not in result.rejects.to_string()
    # row 0 is unusable (its claim id); its malformed zip is tolerated, so it is no reason of the reject
    assert result.rejects["reasons"].iloc[0] == "claim_id:x12_claim_id"
    assert phi_leaks(result.rejects, leaky) == [] and phi_leaks(result.good, leaky) == []


# The issue's defects: each value was rejected by the old contract (the rule it broke is given) and is
# accepted now.
DEFECTS = [
    ("cpt_code", "J3490", lambda v: re.fullmatch(r"^\d{4}[0-9A-Z]$", v)),
    ("patient_zip", "02134-1705", lambda v: re.fullmatch(r"^\d{5}$", v)),
    ("icd10_primary", "Z3A.39", lambda v: re.fullmatch(r"^[A-Z]\d{2}(\.?[0-9A-Z]{1,4})?$", v)),
    ("units", 150, lambda v: 1 <= v <= 99),
    ("icd10_count", 18, lambda v: 1 <= v <= 12),
    ("billed_amount", 1_250_000.00, lambda v: 0.01 <= v <= 1_000_000),
    ("claim_id", "ACME-000123456-01", lambda v: re.fullmatch(r"^C\d{10}$", v)),
]


@pytest.mark.parametrize("column,value,old_rule", DEFECTS, ids=[f"{c}={v!r}" for c, v, _ in DEFECTS])
def test_issue_defects_are_accepted(day, column, value, old_rule):
    assert not old_rule(value)  # the old contract rejected it
    result = build_silver_claims(_one_per_row(day[0], [(column, value)]), KEY)
    assert result.stats["rows_rejected"] == 0, result.rejects["reasons"].tolist()
    if column == "claim_id":  # remittances carry the same claim number
        remit = build_silver_remittances(_one_per_row(day[1], [(column, value)]))
        assert remit.stats["rows_rejected"] == 0, remit.rejects["reasons"].tolist()


def _realistic(claims: pd.DataFrame, remits: pd.DataFrame, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A generated day with real-world values laid over it: X12 claim numbers, ZIP+4, HCPCS drugs and
    supplies with their units, ICD-10-CM codes with a letter in third place, institutional claims (many
    diagnoses, high charges), every place of service, current CARC/RARC codes."""
    rng = np.random.default_rng(seed)
    n = len(claims)
    c, r = claims.copy(), remits.copy()

    def pick(values: list, size: int) -> np.ndarray:
        return np.array(values, dtype=object)[rng.integers(0, len(values), size)]

    # valid data only: the generator may draw a newborn's date of birth after the service date
    c["patient_dob"] = c["patient_dob"].where(c["patient_dob"] <= c["service_date"], c["service_date"])
    ids = {old: f"ACME-{i:09d}-{rng.integers(1, 99):02d}" for i, old in enumerate(pd.unique(c["claim_id"]))}
    c["claim_id"] = c["claim_id"].map(ids)
    r = r[r["claim_id"].isin(ids)].copy()
    r["claim_id"] = r["claim_id"].map(ids)
    zip5 = c["patient_zip"].astype(str).str[:5]  # the generator may already write ZIP+4
    plus4 = pd.Series(rng.integers(0, 10_000, n), index=c.index).map("{:04d}".format)
    form = rng.random(n)
    c["patient_zip"] = np.where(form < 0.4, zip5 + "-" + plus4, np.where(form < 0.6, zip5 + plus4, zip5))
    drug = rng.random(n) < 0.15
    c.loc[drug, "cpt_code"] = pick(["J3490", "J9271", "J1885", "J0897", "J2505", "J1100"], int(drug.sum()))
    c.loc[drug, "units"] = rng.integers(1, 1000, int(drug.sum()))
    other = ~drug & (rng.random(n) < 0.1)
    c.loc[other, "cpt_code"] = pick(["A4253", "E0114", "G0202", "3074F", "0042T", "0001U", "L3000", "Q4101"],
                                    int(other.sum()))
    dx = rng.random(n) < 0.2
    c.loc[dx, "icd10_primary"] = pick(["Z3A.39", "M1A.0710", "C4A.0", "O09.529", "T36.0X5A", "S72.001A",
                                       "F32.A", "U07.1", "E119"], int(dx.sum()))
    institutional = rng.random(n) < 0.1
    c.loc[institutional, "icd10_count"] = rng.integers(13, 26, int(institutional.sum()))
    c.loc[institutional, "billed_amount"] = np.round(rng.uniform(50_000, 3_500_000, int(institutional.sum())), 2)
    c["place_of_service"] = pick(sorted(code_sets.PLACE_OF_SERVICE_CODES), n)
    denied = r["claim_status"].eq("denied")
    r.loc[denied, "carc_code"] = pick(["197", "198", "284", "27", "31", "29", "11", "167", "45", "16", "18",
                                       "50", "96", "97", "204", "236", "A1", "B7", "P1"], int(denied.sum()))
    r.loc[denied, "rarc_code"] = pick(["M62", "N30", "M76", "MA130", "N115", "N10", None], int(denied.sum()))
    return c, r


def test_a_realistic_day_of_valid_data_has_no_rejects(day):
    claims, remits = _realistic(*day)
    good = build_silver_claims(claims, KEY)
    assert good.stats["reject_rate"] == 0.0, good.stats["rejects_by_reason"]
    assert len(good.good) == len(claims)
    assert good.good["patient_zip3"].str.fullmatch(r"\d{3}").all()
    outcome = build_silver_remittances(remits)
    assert outcome.stats["reject_rate"] == 0.0, outcome.stats["rejects_by_reason"]
    # the gold ranges admit what the contract admits
    features = F.compute_features(F.decision_time_view(good.good))
    for name, (lo, hi) in F.FEATURE_RANGES.items():
        assert features[name].dropna().between(lo, hi).all(), name


# --------------------------------------------------------------------------------------------------
# usability and defect rules (issue 24)
# --------------------------------------------------------------------------------------------------


def test_only_the_columns_without_which_a_claim_is_unusable_reject_it():
    """The usability rules are exactly: claim id, version, payer, dates, amounts, units (and the row's
    arrival time); every other checked claims column is a defect or tolerated."""
    checked = [c for c in source_columns("claims")
               if not c.nullable or c.rules or c.isin or c.ge is not None or c.regex or c.dtype == "date"]
    assert {c.name for c in checked if c.usability} == {
        "claim_id", "claim_version", "payer_id", "units", "billed_amount", "service_date", "submitted_at",
        "updated_at"}
    assert {c.name: c.defect for c in checked if c.defect} == {
        "member_id": "demographics", "patient_dob": "demographics", "patient_sex": "demographics",
        "billing_npi": "npi", "rendering_npi": "npi", "place_of_service": "place_of_service",
        "cpt_code": "procedure_code", "icd10_primary": "diagnosis_code", "icd10_count": "diagnosis_code"}
    assert {c.name for c in checked if c.tolerated} == {"patient_zip", "plan_type", "eligibility_verified"}


def test_defect_columns_are_registered_decision_time_and_not_phi():
    registered = {c.name: c for c in columns("claims", "silver")}
    for name in (*DEFECT_COLUMNS, CLAIM_DEFECTS_COLUMN, ICD_CODE_SET_COLUMN):
        col = registered[name]
        assert col.availability is Availability.DECISION_TIME and not col.phi and col.description, name
        assert col.layers == ("silver",), name
    assert contracts.forbidden_columns([*DEFECT_COLUMNS, CLAIM_DEFECTS_COLUMN, ICD_CODE_SET_COLUMN]) == {}
    assert set(DEFECT_COLUMNS) <= set(contracts.scoring_input_columns())


def test_a_column_names_a_known_defect_flag_and_a_tolerated_one_its_fill():
    with pytest.raises(ValueError, match="unknown defect flag 'typo'"):
        Column("x", "claims", "string", Availability.DECISION_TIME, defect="typo")
    with pytest.raises(ValueError, match="needs a fill value"):
        Column("x", "claims", "string", Availability.DECISION_TIME, tolerated=True)
    with pytest.raises(ValueError, match="not both"):
        Column("x", "claims", "string", Availability.DECISION_TIME, defect="npi", tolerated=True, fill=None)
