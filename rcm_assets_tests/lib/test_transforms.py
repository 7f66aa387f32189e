"""Silver transforms: validation with named reject reasons, pseudonymization, dedupe, labels, PHI guard,
upstream schema changes."""

from __future__ import annotations

import logging
from datetime import date

import numpy as np
import pandas as pd
import pytest

from rcm_assets.lib import contracts, transforms
from rcm_assets.lib.columns import CARC_CATEGORY_VALUES, phi_column_names, source_column_names
from rcm_assets.lib.contracts import ContractError
from rcm_assets.lib.transforms import (
    age_at,
    build_silver_claims,
    build_silver_remittances,
    load_phi_key,
    phi_leaks,
    pseudonymize_member,
)
from rcm_assets.synthetic import generate
from rcm_assets_tests.conftest import PHI_TEST_KEY as KEY
from rcm_assets_tests.conftest import to_bronze

OTHER_KEY = b"another-phi-key-0123456789abcd"
PHI_VALUES = ("member_id", "patient_name", "patient_dob", "patient_address", "patient_zip")


# --------------------------------------------------------------------------------------------------
# data: the seeded synthetic source, shaped as the bronze asset shapes it
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def source() -> tuple[pd.DataFrame, pd.DataFrame]:
    data = generate(start=date(2025, 1, 1), days=4, claims_per_day=150, seed=11)
    return data.claims, data.remittances


@pytest.fixture()
def bronze_claims(source) -> pd.DataFrame:
    return to_bronze(source[0])


@pytest.fixture()
def bronze_remits(source) -> pd.DataFrame:
    return to_bronze(source[1])


def _one_day_unique(bronze: pd.DataFrame, n: int = 40) -> pd.DataFrame:
    """n rows of one day, one version per claim (so no row is lost to dedupe)."""
    day = bronze["dt"].value_counts().index[0]
    rows = bronze[bronze["dt"] == day].drop_duplicates("claim_id")
    return rows.head(n).reset_index(drop=True)


def _reasons_of(result: transforms.SilverResult, claim_id: str) -> str:
    hit = result.rejects[result.rejects["claim_id"] == claim_id]
    assert len(hit) == 1, f"expected one reject row for {claim_id}, got {len(hit)}"
    return hit["reasons"].iloc[0]


# --------------------------------------------------------------------------------------------------
# PHI key and pseudonyms
# --------------------------------------------------------------------------------------------------


def test_phi_key_from_environment(monkeypatch):
    monkeypatch.setenv("RCM_PHI_KEY", "a-production-secret-0123456789")
    assert load_phi_key("prod") == b"a-production-secret-0123456789"
    assert load_phi_key("dev") == b"a-production-secret-0123456789"


def test_phi_key_missing_in_prod_is_refused(monkeypatch):
    monkeypatch.delenv("RCM_PHI_KEY", raising=False)
    with pytest.raises(ValueError, match="RCM_PHI_KEY is not set"):
        load_phi_key("prod")
    monkeypatch.setenv("RCM_PHI_KEY", "short")
    with pytest.raises(ValueError, match="too short"):
        load_phi_key("prod")
    with pytest.raises(ValueError, match="unknown environment"):
        load_phi_key("staging")


def test_phi_key_missing_outside_the_demo_environment_stops_with_one_sentence(monkeypatch):
    """Fail closed (issue 26.5): dev, the default environment, no longer falls back to a key written in the
    code; the error is one sentence naming the setting and the way out."""
    monkeypatch.delenv("RCM_PHI_KEY", raising=False)
    for env in ("dev", "prod"):
        with pytest.raises(ValueError, match="RCM_PHI_KEY is not set") as error:
            load_phi_key(env)
        message = str(error.value)
        assert message.count(". ") == 0 and "RCM_ENV=demo" in message and f"the {env} environment" in message
    monkeypatch.setenv("RCM_PHI_KEY", "   ")  # blank is unset
    with pytest.raises(ValueError, match="RCM_PHI_KEY is not set"):
        load_phi_key("dev")


def test_only_the_demo_environment_uses_the_published_key_with_a_warning(monkeypatch, caplog):
    monkeypatch.delenv("RCM_PHI_KEY", raising=False)
    with caplog.at_level(logging.WARNING, logger="rcm"):
        key = load_phi_key("demo")
    assert key == transforms.DEMO_PHI_KEY
    assert "using the published demo PHI key" in caplog.text
    monkeypatch.setenv("RCM_PHI_KEY", "a-configured-secret-0123456789")
    assert load_phi_key("demo") == b"a-configured-secret-0123456789"  # a configured key always wins


def test_tokens_stable_per_key_and_different_across_keys():
    ids = pd.Series(["MBR000000001", "MBR000000002", None, "MBR000000001"], dtype=object)
    a, b = pseudonymize_member(ids, KEY), pseudonymize_member(ids.copy(), KEY)
    other = pseudonymize_member(ids, OTHER_KEY)
    assert a.tolist() == b.tolist()
    assert a[0] == a[3] and a[0] != a[1]
    assert a[2] is None
    assert a.dropna().str.fullmatch(r"[0-9a-f]{32}").all()
    assert (a.dropna() != other.dropna()).all()
    assert not set(a.dropna()) & set(ids.dropna())


def test_age_at_service_whole_years_capped():
    dob = pd.Series(pd.to_datetime(["2000-06-15", "2000-06-15", "1920-01-01", "2004-02-29", "2004-02-29"]))
    on = pd.Series(pd.to_datetime(["2025-06-14", "2025-06-15", "2025-01-01", "2025-02-28", "2025-03-01"]))
    assert age_at(dob, on).tolist() == [24, 25, 90, 20, 21]


def test_age_is_unknown_without_a_date_of_birth_or_with_one_after_the_service():
    dob = pd.Series(pd.to_datetime(["2000-06-15", None, "2025-07-01"]))
    on = pd.Series(pd.to_datetime(["2025-06-15", "2025-06-15", "2025-06-15"]))
    age = age_at(dob, on)
    assert age.iloc[0] == 25 and age.iloc[1:].isna().all()


def test_zip3_keeps_three_digits_and_masks_sparse_areas():
    assert transforms.zip3(pd.Series(["02139", "03601", "90210"])).tolist() == ["021", "000", "902"]


def test_zip3_of_repeated_and_odd_values_row_by_row():
    """zip3 judges each distinct value once (issue 16); every row still gets its own value's area."""
    values = ["02139", "02139-1705", "021391705", "03601", None, np.nan, 2139, "ZIP!X", "", "90210", "02139"] * 3
    zips = pd.Series(values, index=range(50, 50 + len(values)), dtype="object")
    got = transforms.zip3(zips)
    one = {v: transforms.zip3(pd.Series([v], dtype="object")).iloc[0] for v in ["02139", "02139-1705", "021391705",
                                                                                "03601", 2139, "ZIP!X", "", "90210"]}
    assert got.index.equals(zips.index) and got.dtype == object
    assert got.tolist() == [None if v is None or (isinstance(v, float) and np.isnan(v)) else one[v] for v in values]
    assert got.tolist()[:10] == ["021", "021", "021", "000", None, None, None, None, None, "902"]
    assert transforms.zip3(pd.Series([], dtype="object")).tolist() == []


# --------------------------------------------------------------------------------------------------
# silver claims on the seeded data
# --------------------------------------------------------------------------------------------------


def test_silver_claims_on_seeded_data_meets_contract_and_holds_no_phi(bronze_claims):
    result = build_silver_claims(bronze_claims, KEY)
    good, rejects, stats = result.good, result.rejects, result.stats
    assert list(good.columns) == contracts.frame_columns("claims", "silver")
    contracts.schema_for("claims", "silver").validate(good, lazy=True)
    contracts.rejects_schema("claims").validate(rejects, lazy=True)
    assert not phi_column_names() & set(good.columns)
    assert phi_leaks(good, bronze_claims) == []
    assert phi_leaks(rejects, bronze_claims) == []
    assert stats["rows_in"] == len(bronze_claims)
    assert stats["rows_valid"] + stats["rows_rejected"] == stats["rows_in"]
    assert stats["rows_good"] == stats["rows_valid"] - stats["duplicates_removed"]
    assert stats["reject_rate"] < 0.05
    assert set(stats["reject_rate_by_day"]) == set(bronze_claims["dt"])
    assert (good["patient_age"].between(0, 90)).all()


def test_no_raw_phi_anywhere_when_many_rows_break_the_contract(bronze_claims):
    b = bronze_claims.copy()
    rng = np.random.default_rng(5)
    picks = rng.choice(len(b), size=(4, 25), replace=False)
    b.loc[picks[0], "patient_zip"] = b.loc[picks[0], "patient_name"].to_numpy()   # PHI in the wrong column
    b.loc[picks[1], "member_id"] = None
    b.loc[picks[2], "cpt_code"] = b.loc[picks[2], "member_id"].to_numpy()          # raw id where a code goes
    b.loc[picks[3], "claim_version"] = 0
    result = build_silver_claims(b, KEY)
    # only the missing version makes a row unusable; the rest are claim defects that land flagged
    assert result.stats["rows_rejected"] == 25
    assert result.stats["rejects_by_column"] == {"claim_version": 25}
    assert phi_leaks(result.good, b) == [] and phi_leaks(result.rejects, b) == []
    text = result.rejects.to_string() + repr(result.stats)
    for name in PHI_VALUES:
        for value in b.loc[picks.ravel(), name].dropna().astype(str):
            assert value not in text
    good = result.good.set_index(["claim_id", "claim_version", "updated_at"])
    def landed(rows):
        return good.loc[list(zip(b.loc[rows, "claim_id"], b.loc[rows, "claim_version"], b.loc[rows, "updated_at"],
                                 strict=True))]
    no_member, raw_id_as_code, zip_is_name = landed(picks[1]), landed(picks[2]), landed(picks[0])
    assert no_member["member_token"].isna().all() and no_member["defect_demographics"].eq(1).all()
    # a value without the code's shape is not kept (it may be PHI, as here): null and flagged
    assert raw_id_as_code["cpt_code"].isna().all() and raw_id_as_code["defect_procedure_code"].eq(1).all()
    assert zip_is_name["patient_zip3"].isna().all()


def test_all_rows_rejected_gives_a_typed_empty_silver(bronze_claims):
    b = _one_day_unique(bronze_claims, 5).assign(payer_id=None)
    result = build_silver_claims(b, KEY)
    assert result.good.empty and len(result.rejects) == 5 and result.stats["reject_rate"] == 1.0
    contracts.schema_for("claims", "silver").validate(result.good)
    assert result.stats["reject_rate_by_day"] == {b.loc[0, "dt"]: 1.0}


def test_date_partition_values_are_normalized(bronze_claims):
    b = _one_day_unique(bronze_claims, 3)
    b["dt"] = pd.to_datetime(b["dt"])
    assert build_silver_claims(b, KEY).good["dt"].map(type).eq(str).all()


def test_every_contract_failure_kind_is_a_named_reject_and_no_value_is_kept(bronze_claims):
    b = _one_day_unique(bronze_claims, 12)
    ids = b["claim_id"].tolist()
    secret_zip = "ZIP!X"
    b.loc[0, "payer_id"] = None                                                     # null in non-nullable
    b.loc[1, "units"] = 10_000                                                        # out of range
    b.loc[2, "plan_type"] = "platinum"                                              # not in allowed set
    b.loc[3, "cpt_code"] = "99-13"                                                  # regex
    b.loc[4, "cpt_code"] = 99213                                                    # element of wrong type
    b.loc[5, "submitted_at"] = b.loc[5, "service_date"] - pd.Timedelta(days=1)      # cross-field
    b.loc[6, "patient_zip"] = secret_zip                                            # PHI column, before drop
    b.loc[7, "service_date"] = b.loc[7, "service_date"] + pd.Timedelta(hours=3)     # date with a time
    b.loc[8, "patient_dob"] = b.loc[8, "service_date"] + pd.Timedelta(days=400)     # derived: negative age
    b.loc[9, "billed_amount"] = -1.0
    b["units"] = b["units"].astype("float64")
    b.loc[10, "units"] = np.nan                                                     # null in an int column
    result = build_silver_claims(b, KEY)
    # unusable rows: rejected with their reason
    expected = {
        ids[0]: "payer_id:not_nullable",
        ids[1]: "units:less_than_or_equal_to(9999)",
        ids[5]: "submitted_at:greater_than_or_equal_to_column(service_date)",
        ids[7]: "service_date:date_without_time",
        ids[9]: "billed_amount:greater_than_or_equal_to(0.01)",
        ids[10]: "units:not_nullable",
    }
    for claim_id, reason in expected.items():
        assert _reasons_of(result, claim_id) == reason, claim_id
    # claim defects and tolerated values: the rows land (issue 24), flagged or blanked
    good = result.good.set_index("claim_id")
    assert result.stats["rows_rejected"] == 6 and result.stats["rows_good"] == 6
    assert sorted(good.index) == sorted(ids[i] for i in (2, 3, 4, 6, 8, 11))
    assert pd.isna(good.loc[ids[2], "plan_type"]) and good.loc[ids[2], "claim_defects"] == ""
    for i in (3, 4):  # malformed, and not text at all: null, flagged
        assert pd.isna(good.loc[ids[i], "cpt_code"]) and good.loc[ids[i], "defect_procedure_code"] == 1
    assert pd.isna(good.loc[ids[6], "patient_zip3"]) and good.loc[ids[6], "claim_defects"] == ""
    assert pd.isna(good.loc[ids[8], "patient_age"]) and good.loc[ids[8], "claim_defects"] == "demographics"
    assert list(result.rejects.columns) == list(contracts.REJECT_COLUMNS["claims"])
    assert "cpt_code" not in result.stats["rejects_by_column"]
    assert result.stats["defects_by_flag"]["procedure_code"] == 2
    assert result.stats["rejects_by_check"]["not_nullable"] == 2
    assert "units:not_nullable" in result.stats["rejects_by_reason"]
    flat = result.rejects.astype(str).to_string()
    assert secret_zip not in flat
    assert phi_leaks(result.rejects, b) == [] and phi_leaks(result.good, b) == []
    contracts.rejects_schema("claims").validate(result.rejects, lazy=True)
    contracts.schema_for("claims", "silver").validate(result.good, lazy=True)


def test_several_failures_of_one_row_are_joined(bronze_claims):
    """The reasons of a reject are its usability failures, in column order; its defects are no reason."""
    b = _one_day_unique(bronze_claims, 3)
    b.loc[0, "billed_amount"] = 0.0
    b.loc[0, "units"] = 0
    b.loc[0, "cpt_code"] = "bad"
    row = build_silver_claims(b, KEY).rejects.iloc[0]
    assert row["reasons"].split("; ") == ["units:greater_than_or_equal_to(1)",
                                          "billed_amount:greater_than_or_equal_to(0.01)"]
    assert row["failed_columns"] == "units; billed_amount"


def test_as_of_rejects_submissions_from_the_future(bronze_claims):
    b = _one_day_unique(bronze_claims, 3)
    as_of = b["submitted_at"].min() + pd.Timedelta(microseconds=1)
    result = build_silver_claims(b, KEY, as_of=as_of)
    assert result.stats["rows_rejected"] >= 1
    assert result.rejects["reasons"].str.contains("submitted_at:less_than_or_equal_to").all()


# --------------------------------------------------------------------------------------------------
# dedupe
# --------------------------------------------------------------------------------------------------


def test_silver_keeps_every_state_and_drops_only_a_state_delivered_twice(bronze_claims):
    b = _one_day_unique(bronze_claims, 3)
    v2 = b.iloc[[0]].assign(claim_version=2, updated_at=b.loc[0, "updated_at"] + pd.Timedelta(minutes=1),
                            billed_amount=999.0)
    in_place = b.iloc[[1]].assign(updated_at=b.loc[1, "updated_at"] + pd.Timedelta(minutes=30), units=3)
    twice = b.iloc[[1]].assign(_ingested_at=b.loc[1, "_ingested_at"] + pd.Timedelta(hours=1))
    other_day = b.iloc[[2]].assign(dt="2099-01-01")  # a version of another day is not a duplicate
    frame = pd.concat([v2, b, in_place, twice, other_day], ignore_index=True)
    result = build_silver_claims(frame, KEY)
    good = result.good.set_index(["claim_id", "claim_version", "updated_at", "dt"]).sort_index()
    day = b.loc[0, "dt"]
    assert len(good) == len(frame) - 1 and result.stats["duplicates_removed"] == 1
    assert good.loc[(b.loc[0, "claim_id"], 2, v2["updated_at"].iloc[0], day), "billed_amount"] == 999.0
    first = good.loc[(b.loc[1, "claim_id"], 1, b.loc[1, "updated_at"], day)]
    assert first["units"] == b.loc[1, "units"]  # the submission state survives its in-place update
    assert good.loc[(b.loc[1, "claim_id"], 1, in_place["updated_at"].iloc[0], day), "units"] == 3
    assert (b.loc[2, "claim_id"], 1, b.loc[2, "updated_at"], "2099-01-01") in good.index
    contracts.schema_for("claims", "silver").validate(result.good, lazy=True)


# --------------------------------------------------------------------------------------------------
# remittances and labels
# --------------------------------------------------------------------------------------------------


def test_silver_remittances_labels_and_contract(bronze_remits):
    result = build_silver_remittances(bronze_remits)
    good = result.good
    assert list(good.columns) == contracts.frame_columns("remittances", "silver")
    contracts.schema_for("remittances", "silver").validate(good, lazy=True)
    assert (good["denied"] == (good["claim_status"] == "denied")).all()
    assert good.loc[~good["denied"], "carc_category"].isna().all()
    assert set(good["carc_category"].dropna()) <= set(CARC_CATEGORY_VALUES)
    assert good["denied"].any()


def test_carc_categories():
    codes = pd.Series(["197", "CO-27", "29", "11", "45", "16", "96", None, "197"], dtype=object)
    denied = pd.Series([True] * 8 + [False])
    assert transforms.carc_category(codes, denied).tolist() == [
        "authorization", "eligibility", "timely_filing", "coding", "pricing", "administrative", "other",
        None, None]


def test_remittance_dedupe_and_cross_field_rejects(bronze_remits):
    b = _one_day_unique(bronze_remits, 4)
    correction = b.iloc[[0]].assign(claim_status="denied", paid_amount=0.0, carc_code="197",
                                    updated_at=b.loc[0, "updated_at"] + pd.Timedelta(minutes=10))
    b.loc[1, "paid_amount"] = b.loc[1, "allowed_amount"] + 10                   # paid more than allowed
    b.loc[2, "updated_at"] = b.loc[2, "adjudicated_at"] - pd.Timedelta(hours=1)  # row before its event
    b.loc[2, "dt"] = b.loc[0, "dt"]
    result = build_silver_remittances(pd.concat([b, correction], ignore_index=True))
    assert "allowed_amount:greater_than_or_equal_to_column(paid_amount)" in _reasons_of(result, b.loc[1, "claim_id"])
    assert "updated_at:greater_than_or_equal_to_column(adjudicated_at)" in _reasons_of(result, b.loc[2, "claim_id"])
    # the first adjudication and its restatement are both kept: the label is chosen at training time
    kept = result.good[result.good["claim_id"] == b.loc[0, "claim_id"]].sort_values("updated_at")
    assert kept["denied"].tolist() == [bool(b.loc[0, "claim_status"] == "denied"), True]
    assert kept["carc_category"].iloc[-1] == "authorization"
    assert result.stats["duplicates_removed"] == 0
    assert list(result.rejects.columns) == list(contracts.REJECT_COLUMNS["remittances"])


# --------------------------------------------------------------------------------------------------
# PHI guard
# --------------------------------------------------------------------------------------------------


def test_phi_leaks_catches_injected_leaks_without_quoting_values(bronze_claims):
    good = build_silver_claims(bronze_claims, KEY).good
    leaky = good.copy()
    leaky.loc[leaky.index[:3], "prior_auth_number"] = bronze_claims["member_id"].iloc[:3].to_numpy()
    leaky["note"] = bronze_claims["patient_name"].str.upper().iloc[: len(leaky)].to_numpy()
    leaky["birth"] = bronze_claims["patient_dob"].iloc[: len(leaky)].to_numpy()
    leaky["dob_text"] = bronze_claims["patient_dob"].dt.strftime("%m/%d/%Y").iloc[: len(leaky)].to_numpy()
    leaky["patient_zip"] = "00000"
    leaks = phi_leaks(leaky, bronze_claims)
    text = " | ".join(leaks)
    assert "PHI column patient_zip present" in text
    assert "column prior_auth_number contains raw member_id values (3 rows)" in text
    assert "column note contains raw patient_name values" in text
    assert "column birth contains raw patient_dob values" in text
    assert "column dob_text contains raw patient_dob values" in text
    for name in PHI_VALUES:
        for value in bronze_claims[name].astype(str).head(20):
            assert value not in text


def test_phi_leaks_ignores_zip_lookalike_codes(bronze_claims):
    good = build_silver_claims(bronze_claims, KEY).good.head(5).copy()
    b = bronze_claims.copy()
    b.loc[0, "patient_zip"] = good["cpt_code"].iloc[0]  # a zip equal to a CPT code is not a leak
    assert phi_leaks(good, b) == []
    good["free_text"] = b.loc[0, "patient_zip"]  # ... but in an unformatted column it is
    assert phi_leaks(good, b) == ["column free_text contains raw patient_zip values (5 rows)"]


# --------------------------------------------------------------------------------------------------
# upstream schema changes
# --------------------------------------------------------------------------------------------------


def test_missing_column_is_a_named_contract_error(bronze_claims):
    with pytest.raises(ContractError, match="missing column\\(s\\) billed_amount") as err:
        build_silver_claims(bronze_claims.drop(columns=["billed_amount"]), KEY)
    assert err.value.columns == ["billed_amount"]


def test_renamed_column_names_both_sides(bronze_remits):
    with pytest.raises(ContractError, match="missing column\\(s\\) carc_code; unknown column\\(s\\) present, "
                                            "renamed\\?: carc"):
        build_silver_remittances(bronze_remits.rename(columns={"carc_code": "carc"}))


@pytest.mark.parametrize(("column", "value"), [("billed_amount", "120.50"), ("units", 1.5),
                                               ("submitted_at", "2025-01-01 10:00"),
                                               ("eligibility_verified", "yes")])
def test_retyped_column_is_a_named_contract_error(bronze_claims, column, value):
    b = bronze_claims.copy()
    b[column] = b[column].astype(object)
    b.loc[0, column] = value
    if column == "units":
        b[column] = b[column].astype("float64")
    with pytest.raises(ContractError, match=f"retyped column\\(s\\) {column} \\(expected") as err:
        build_silver_claims(b, KEY)
    assert err.value.columns == [column]


def test_lossless_representations_are_tolerated(bronze_claims):
    b = _one_day_unique(bronze_claims, 5)
    b["submitted_at"] = b["submitted_at"].dt.tz_localize("UTC").dt.tz_convert("America/New_York")
    b["updated_at"] = b["updated_at"].astype("datetime64[us]")
    b["icd10_count"] = b["icd10_count"].astype("int32")
    b["payer_id"] = b["payer_id"].astype("string")
    result = build_silver_claims(b, KEY)
    assert result.stats["rows_good"] == 5, result.rejects["reasons"].tolist()
    contracts.schema_for("claims", "silver").validate(result.good, lazy=True)


def test_unknown_column_is_dropped_and_reported(bronze_claims):
    b = _one_day_unique(bronze_claims, 5).assign(referring_npi="1999999999")
    result = build_silver_claims(b, KEY)
    assert result.stats["unknown_columns"] == ["referring_npi"]
    assert "referring_npi" not in result.good.columns and result.stats["rows_good"] == 5


@pytest.mark.parametrize("table", ["claims", "remittances"])
@pytest.mark.parametrize("shape", ["typed", "no_columns"])
def test_empty_partition_is_tolerated(bronze_claims, bronze_remits, table, shape):
    src = bronze_claims if table == "claims" else bronze_remits
    empty = src.iloc[0:0] if shape == "typed" else pd.DataFrame()
    result = build_silver_claims(empty, KEY) if table == "claims" else build_silver_remittances(empty)
    assert result.stats["empty"] is True and result.stats["rows_in"] == 0 and result.stats["reject_rate"] == 0.0
    assert list(result.good.columns) == contracts.frame_columns(table, "silver")
    assert list(result.rejects.columns) == list(contracts.REJECT_COLUMNS[table])
    contracts.schema_for(table, "silver").validate(result.good)
    contracts.rejects_schema(table).validate(result.rejects)


def test_bronze_without_dt_gets_the_day_of_updated_at(bronze_claims):
    b = _one_day_unique(bronze_claims, 5).drop(columns=["dt"])
    good = build_silver_claims(b, KEY).good
    assert (good["dt"] == good["updated_at"].dt.strftime("%Y-%m-%d")).all()


def test_source_columns_cover_the_registry(bronze_claims, bronze_remits, source):
    assert list(source[0].columns) == source_column_names("claims")
    assert list(source[1].columns) == source_column_names("remittances")
    contracts.schema_for("claims", "bronze").validate(bronze_claims, lazy=True)
    contracts.schema_for("remittances", "bronze").validate(bronze_remits, lazy=True)


def test_stats_are_plain_json(bronze_claims):
    import json

    stats = build_silver_claims(bronze_claims, KEY).stats
    json.dumps(stats)
    assert {"rows_in", "rows_good", "rows_rejected", "reject_rate", "duplicates_removed", "rejects_by_column",
            "rejects_by_check", "reject_rate_by_day", "unknown_columns", "empty"} <= set(stats)



def test_phi_values_are_normalized_alike_for_text_and_mixed_columns():
    """The PHI guard normalizes text columns with pandas' string methods (issue 16): the same strings as
    `str(v).strip().casefold()` per value, mixed columns included."""
    from rcm_assets.lib.transforms import _norm, _norm_all

    text = [" Straße ", "ANNA\t", "x", "ǅemal", ""]
    mixed = [*text, 12345, 3.5, date(1980, 2, 3)]
    assert _norm_all(text) == [_norm(v) for v in text] == ["strasse", "anna", "x", "ǆemal", ""]
    assert _norm_all(mixed) == [_norm(v) for v in mixed]
    assert _norm_all(pd.Series(text, index=[5, 6, 7, 8, 9])) == [_norm(v) for v in text]


def test_per_row_helpers_give_the_row_by_row_results_on_distinct_values():
    """Issue 16: tokens from one keyed HMAC copied per id, day keys and day counts taken on distinct values,
    each equal to computing it row by row."""
    import hashlib
    import hmac

    from rcm_assets.lib.transforms import _as_str, _day_counts, _partition_keys

    ids = pd.Series(["M1", "M2", None, "M1", 77, np.nan, "ÄÖ-3"], dtype="object")
    want = [None if v is None or (isinstance(v, float) and np.isnan(v)) else
            hmac.new(KEY, str(v).encode("utf-8"), hashlib.sha256).hexdigest()[:32] for v in ids]
    assert transforms.pseudonymize_member(ids, KEY).tolist() == want
    text = pd.Series(["2025-01-02", None, "2025-01-03", np.nan], dtype="object")
    assert _partition_keys(text).tolist()[:3] == ["2025-01-02", None, "2025-01-03"]
    assert pd.isna(_partition_keys(text).iloc[3])
    mixed = pd.Series(["2025-01-02", date(2025, 1, 3), pd.Timestamp("2025-01-04 05:00"), None, 7], dtype="object")
    assert _partition_keys(mixed).tolist() == ["2025-01-02", "2025-01-03", "2025-01-04", None, 7]
    days = pd.Series(["2025-01-02", date(2025, 1, 2), None, np.nan, "2025-01-03", 7], dtype="object")
    reference = days.map(_as_str).fillna("unknown").value_counts()
    assert _day_counts(days).to_dict() == reference.to_dict() == {"2025-01-02": 2, "unknown": 2, "2025-01-03": 1,
                                                                  "7": 1}
    assert _day_counts(pd.Series([], dtype="object")).to_dict() == {}


# --------------------------------------------------------------------------------------------------
# claim defects: predictors, not rejects (issue 24)
# --------------------------------------------------------------------------------------------------

BAD_CHECK_DIGIT_NPI = "1234567890"  # a test NPI: 10 digits, wrong Luhn check digit (1234567893 is right)


def _defect_rows(bronze_claims: pd.DataFrame, cases: dict[str, dict]) -> tuple[pd.DataFrame, dict[str, str]]:
    """One generated row per case with the case's columns overwritten; -> (bronze, case -> claim_id)."""
    b = _one_day_unique(bronze_claims, len(cases) + 1)
    ids = {}
    for i, (case, values) in enumerate(cases.items()):
        for column, value in values.items():
            b.loc[i, column] = value
        ids[case] = b.loc[i, "claim_id"]
    ids["clean"] = b.loc[len(cases), "claim_id"]
    return b, ids


BORN_1960 = {"patient_dob": pd.Timestamp("1960-01-01")}  # born before every service date of the cases
DEFECT_CASES: dict[str, tuple[dict, str, str | None]] = {
    # case: (overwritten columns, the claim_defects expected, icd_code_set expected)
    "test_npi": ({"billing_npi": BAD_CHECK_DIGIT_NPI}, "npi", "icd10"),
    "no_rendering_npi": ({"rendering_npi": None}, "npi", "icd10"),
    "icd9_in_2012": ({"icd10_primary": "250.00", "service_date": pd.Timestamp("2012-03-05"), **BORN_1960}, "", "icd9"),
    "icd9_v_code_in_2012": ({"icd10_primary": "V221", "service_date": pd.Timestamp("2012-03-05"), **BORN_1960}, "", "icd9"),
    "icd9_in_2020": ({"icd10_primary": "250.00", "service_date": pd.Timestamp("2020-03-05"), **BORN_1960}, "diagnosis_code",
                     "icd9"),
    "icd10_in_2012": ({"icd10_primary": "E11.9", "service_date": pd.Timestamp("2012-03-05"), **BORN_1960}, "diagnosis_code",
                      "icd10"),
    "unparsable_diagnosis": ({"icd10_primary": "DIAB"}, "diagnosis_code", None),
    "no_diagnosis": ({"icd10_primary": None}, "diagnosis_code", None),
    "no_place_of_service": ({"place_of_service": None}, "place_of_service", "icd10"),
    "dob_with_a_time": ({"patient_dob": pd.Timestamp("1960-01-01 13:30")}, "demographics", "icd10"),
    "no_dob": ({"patient_dob": pd.NaT}, "demographics", "icd10"),
    "no_sex": ({"patient_sex": None}, "demographics", "icd10"),
    "unknown_format_procedure": ({"cpt_code": "ABC12"}, "procedure_code", "icd10"),
    "deleted_procedure": ({"cpt_code": "99201"}, "procedure_code", "icd10"),
    "deleted_later_procedure": ({"cpt_code": "99201", "icd10_primary": "E11.9",
                                 "service_date": pd.Timestamp("2020-06-01"), **BORN_1960}, "", "icd10"),
    "unassigned_place_of_service": ({"place_of_service": "30"}, "place_of_service", "icd10"),
    "two_defects": ({"billing_npi": BAD_CHECK_DIGIT_NPI, "icd10_primary": "401.9"}, "npi,diagnosis_code", "icd9"),
}


@pytest.fixture()
def defects(bronze_claims):
    b, ids = _defect_rows(bronze_claims, {case: cols for case, (cols, _, _) in DEFECT_CASES.items()})
    result = build_silver_claims(b, KEY)
    return b, ids, result


@pytest.mark.parametrize("case", sorted(DEFECT_CASES))
def test_claim_defects_land_in_silver_with_their_flags(defects, case):
    b, ids, result = defects
    _, expected, code_set = DEFECT_CASES[case]
    assert result.stats["rows_rejected"] == 0, result.rejects["reasons"].tolist()
    row = result.good.set_index("claim_id").loc[ids[case]]
    assert row["claim_defects"] == expected
    flags = {f.removeprefix("defect_"): int(row[f]) for f in ("defect_npi", "defect_diagnosis_code",
             "defect_procedure_code", "defect_place_of_service", "defect_demographics")}
    assert {f for f, v in flags.items() if v} == set(filter(None, expected.split(",")))
    assert row["icd_code_set"] == code_set if code_set else pd.isna(row["icd_code_set"])


def test_defect_values_are_kept_as_sent_or_made_unknown(defects):
    b, ids, result = defects
    good = result.good.set_index("claim_id")
    assert good.loc[ids["test_npi"], "billing_npi"] == BAD_CHECK_DIGIT_NPI  # the shape of an NPI: as sent
    assert good.loc[ids["icd9_in_2012"], "icd10_primary"] == "250.00"
    assert good.loc[ids["unassigned_place_of_service"], "place_of_service"] == "30"
    assert pd.isna(good.loc[ids["no_rendering_npi"], "rendering_npi"])
    assert pd.isna(good.loc[ids["unknown_format_procedure"], "cpt_code"])  # not a code's shape: null
    assert pd.isna(good.loc[ids["no_dob"], "patient_age"])
    assert good.loc[ids["no_sex"], "patient_sex"] == "U"
    assert good.loc[ids["clean"], "claim_defects"] == "" and good.loc[ids["clean"], "icd_code_set"] == "icd10"
    assert result.stats["rows_with_defects"] == len(DEFECT_CASES) - 3  # three cases are correct coding
    contracts.schema_for("claims", "silver").validate(result.good, lazy=True)
    assert phi_leaks(result.good, b) == []


UNUSABLE_CASES: dict[str, tuple[dict, str]] = {
    "no_claim_id": ({"claim_id": None}, "claim_id:not_nullable"),
    "no_payer": ({"payer_id": None}, "payer_id:not_nullable"),
    "no_service_date": ({"service_date": pd.NaT}, "service_date:not_nullable"),
    "no_submitted_at": ({"submitted_at": pd.NaT}, "submitted_at:not_nullable"),
    "no_amount": ({"billed_amount": np.nan}, "billed_amount:not_nullable"),
    "no_version": ({"claim_version": 0}, "claim_version:greater_than_or_equal_to(1)"),
}


def test_unusable_rows_are_rejected_with_their_reason(bronze_claims):
    b, ids = _defect_rows(bronze_claims, {case: cols for case, (cols, _) in UNUSABLE_CASES.items()})
    b.loc[0, "billing_npi"] = BAD_CHECK_DIGIT_NPI  # a defect does not add to the reasons of a reject
    result = build_silver_claims(b, KEY)
    rejects = result.rejects
    assert len(rejects) == len(UNUSABLE_CASES) and result.stats["rows_good"] == 1
    for case, (_, reason) in UNUSABLE_CASES.items():
        if case == "no_claim_id":
            assert rejects.loc[rejects["claim_id"].isna(), "reasons"].tolist() == [reason]
        else:
            assert _reasons_of(result, ids[case]) == reason, case
    assert result.good["claim_id"].tolist() == [ids["clean"]]


def test_a_day_of_defects_is_not_a_day_of_rejects(bronze_claims):
    """Every row with a test NPI and an ICD-9 code after 2015: all land, none is rejected."""
    b = _one_day_unique(bronze_claims, 30).assign(billing_npi=BAD_CHECK_DIGIT_NPI, icd10_primary="401.9")
    result = build_silver_claims(b, KEY)
    assert result.stats["rows_rejected"] == 0 and result.stats["reject_rate"] == 0.0
    assert result.stats["defect_rate"] == 1.0
    assert set(result.good["claim_defects"]) == {"npi,diagnosis_code"}


def test_claim_defects_names_the_flags_in_order():
    flags = pd.DataFrame({"npi": [False, True, True], "diagnosis_code": [False, False, True],
                          "procedure_code": [False, False, False], "place_of_service": [False, False, True],
                          "demographics": [False, True, False]})
    assert transforms.claim_defects(flags).tolist() == ["", "npi,demographics", "npi,diagnosis_code,place_of_service"]
