"""Contracts derived from the registry, decision-time guards, and failure reports without values
(including the Dagster types' TypeCheck)."""

from __future__ import annotations

import json
import warnings
from datetime import date

import dagster as dg
import pandas as pd
import pandera.pandas as pa
import pytest

from rcm_assets.lib import contracts
from rcm_assets.lib.columns import (
    Availability,
    columns,
    phi_column_names,
    source_column_names,
)
from rcm_assets.lib.contracts import ContractError
from rcm_assets.lib.transforms import build_silver_claims
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
        assert silver.columns[col.name].nullable == col.nullable
        assert silver.columns[col.name].description is not None
    assert not silver.columns["dt"].required


def test_registry_constraints_become_checks():
    silver = contracts.schema_for("claims", "silver")
    names = {c: [str(chk.error or chk.name) for chk in silver.columns[c].checks] for c in silver.columns}
    assert "isin(['F', 'M', 'U'])" in names["patient_sex"]
    assert "greater_than_or_equal_to(0.01)" in names["billed_amount"]
    assert "less_than_or_equal_to(90)" in names["patient_age"]
    assert any(n.startswith("str_matches") for n in names["member_token"])
    assert "date_without_time" in names["service_date"]
    wide = {chk.name for chk in silver.checks}
    assert "greater_than_or_equal_to_column(service_date)" in wide and contracts.UNIQUE_KEY_CHECK in wide
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
    assert summary == [{"check": contracts.UNIQUE_KEY_CHECK, "column": "claim_id", "count": 4}]


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
    bad.loc[bad.index[0], "cpt_code"] = FAKE_NAME
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
    assert "cpt_code:str_matches" in text and FAKE_NAME not in text


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
