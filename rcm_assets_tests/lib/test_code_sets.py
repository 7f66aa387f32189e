"""Code sets and grammars: real codes accepted, invalid ones refused, per rule; the registry refers to them."""

from __future__ import annotations

import pandas as pd
import pytest

from rcm_assets.lib import code_sets as cs
from rcm_assets.lib.columns import CARC_CATEGORIES, REGISTRY, Availability, Column
from rcm_assets.synthetic import world as ref

VALID: dict[str, list[str]] = {
    "x12_claim_id": ["ACME-000123456-01", "C0919100002", "1", "abc-123", "PCN2025A77", "A" * 38,
                     "26046-0001-3"],
    "cpt_hcpcs_code": [
        "99213", "00100", "27447",  # CPT Category I
        "3074F", "1036F",  # Category II (performance measures)
        "0042T", "0583T",  # Category III (emerging technology)
        "0001U", "0002M",  # PLA and MAAA
        "J3490", "J1885", "A0428", "E0114", "G0202", "K0001", "L3000", "Q4101", "S9083", "T1015", "U0003",
        "V2020", "D0120", "B4150", "C1713", "H0001", "M0201", "P9603", "R0070",  # HCPCS Level II
    ],
    "icd10cm_format": ["I10", "E11.9", "E119", "S72.001A", "S72001A", "T36.0X5A", "O09.529", "M1A.0710",
                       "Z3A.39", "Z3A", "C4A.0", "U07.1", "S06.0X0A", "R55", "J45.909", "F32.A"],
    "icd9cm_format": ["250", "250.00", "25000", "401.9", "4019", "V22.1", "V221", "V70.0", "E849.0", "E8490",
                      "E917", "038.9"],
    "icd_diagnosis_code": ["I10", "E11.9", "S72.001A", "250.00", "V22.1", "E849.0", "4019"],
    "zip_or_zip4": ["02134", "02134-1705", "021341705", "99501", "00501", "10001-0001"],
    "npi_format": ["1234567893", "1000000004", "2000000000"],
    "npi_check_digit": ["1234567893", "1245319599", "1003000126"],
    "cms_pos_code": ["01", "02", "10", "11", "19", "20", "21", "22", "23", "24", "27", "31", "41", "49",
                     "50", "58", "60", "65", "66", "71", "72", "81", "99"],
    "x12_carc_code": ["1", "2", "3", "16", "18", "27", "29", "45", "50", "96", "97", "197", "253", "284",
                      "308", "A0", "A1", "B7", "B15", "B23", "P1", "P14", "P32"],
    "x12_rarc_code": ["M15", "M62", "M144", "MA01", "MA67", "MA130", "N10", "N115", "N30", "N862"],
    "x12_cas_group_code": ["CO", "OA", "PI", "PR", "CR"],
}
INVALID: dict[str, list[object]] = {
    "x12_claim_id": ["", "-ACME", "A" * 39, "ACME_1", "ACME 1", "ACME/1", "ACME.1", 12345],
    "cpt_hcpcs_code": ["I1234", "F1234", "N1234", "O1234", "W1234", "X1234", "Z1234", "9921", "992134",
                       "99-13", "j3490", "1234A", "1234X", "JJ349", "J349", " 99213"],
    "icd10cm_format": ["123.4", "Z3A.", "ZZZZZ", "S72.0011A", "S720011AB", "z3a.39", "I1", ".I10", "I10..1",
                       "I10.1.2", "1I0", "S72.001a", "I10 ", "E11-9"],
    "icd9cm_format": ["25", "250.001", "2500.0", "V2", "V22.123", "E84", "E849.01", "e849.0", "A01.0", "250-00",
                      " 250"],
    "icd_diagnosis_code": ["12.4", "ZZZZZ", "E849.01", "z3a.39", "250.001", ""],
    "zip_or_zip4": ["2134", "02134-17", "02134 1705", "ABCDE", "021341705X", "02134-", "0213417051",
                    "ZIP!X"],
    "npi_format": ["123456789", "12345678901", "123456789A", "1234-567893", " 1234567893"],
    "npi_check_digit": ["1234567890", "1234567894", "1245319590"],
    "cms_pos_code": ["00", "28", "29", "30", "35", "40", "43", "48", "59", "63", "64", "67", "70", "73", "80",
                     "82", "98", "1", "011", "O1"],
    "x12_carc_code": ["CO-197", "CO197", "0", "045", "999", "309", "D24", "W10", "A9", "B99", "a1", "P33",
                      " 197"],
    "x12_rarc_code": ["MA1", "M0", "M1000", "N0", "N1000", "X1", "N", "m15", "MA", "RA01"],
    "x12_cas_group_code": ["co", "XX", "C", "COO"],
}


def _luhn_15(npi: str) -> bool:
    """Independent NPI check: the ISO 7812 Luhn sum over the full 15 digits '80840' + NPI."""
    digits = [int(c) for c in "80840" + npi]
    total = sum(d if i % 2 == 0 else (2 * d - 9 if 2 * d > 9 else 2 * d) for i, d in enumerate(reversed(digits)))
    return total % 10 == 0


@pytest.mark.parametrize("rule,code", [(r, c) for r, codes in VALID.items() for c in codes])
def test_real_codes_are_accepted(rule: str, code: str) -> None:
    assert cs.rule(rule).is_valid(code), f"{rule} refuses real code {code!r}"


@pytest.mark.parametrize("rule,code", [(r, c) for r, codes in INVALID.items() for c in codes])
def test_invalid_codes_are_refused(rule: str, code: object) -> None:
    assert not cs.rule(rule).is_valid(code), f"{rule} accepts invalid code {code!r}"


@pytest.mark.parametrize("name", sorted(cs.RULES))
def test_vectorised_validity_agrees_with_scalar_and_passes_nulls(name: str) -> None:
    rule = cs.rule(name)
    values = [*VALID.get(name, []), *INVALID.get(name, []), None, float("nan"), 7]
    series = pd.Series(values, dtype=object, index=range(100, 100 + len(values)))
    got = rule.valid(series)
    assert got.index.equals(series.index) and got.dtype == bool
    expected = [v is None or (isinstance(v, float) and v != v) or rule.is_valid(v) for v in values]
    assert got.tolist() == expected


def test_npi_check_digit_matches_the_iso_luhn_over_80840() -> None:
    for body in range(123456780, 123456800):
        for check in range(10):
            npi = f"{body}{check}"
            assert cs.npi_check_digit_ok(npi) == _luhn_15(npi), npi
    assert cs.npi_check_digit_ok("1234567893")  # the example of the CMS check-digit paper


def test_carc_list_is_the_current_x12_list() -> None:
    assert not cs.CARC_CODES & cs.CARC_DEACTIVATED
    assert len(cs.CARC_CODES | cs.CARC_DEACTIVATED) == 407  # every code X12 has published (August 2026)
    assert {str(n) for n in range(1, cs.CARC_MAX_NUMBER + 1)} <= cs.CARC_CODES | cs.CARC_DEACTIVATED
    assert {f"P{n}" for n in range(1, 33)} <= cs.CARC_CODES
    assert not {c for c in cs.CARC_CODES if c[0] in "DWY"}  # D*, W*, Y* are all retired
    assert set(CARC_CATEGORIES) <= cs.CARC_CODES | cs.CARC_DEACTIVATED


@pytest.mark.parametrize("code", ["15", "42", "D1", "W1", "Y1", "B5", "A2"])
def test_deactivated_carcs_are_accepted(code: str) -> None:
    """A 2025 remittance may rightly carry a code deactivated since; refusing it would block the day."""
    assert code in cs.CARC_DEACTIVATED and cs.CARC.is_valid(code)


def test_place_of_service_list_and_group_codes() -> None:
    assigned = [*range(1, 28), *range(31, 35), 41, 42, *range(49, 59), 60, 61, 62, 65, 66, 71, 72, 81, 99]
    assert set(cs.PLACE_OF_SERVICE_CODES) == {f"{n:02d}" for n in assigned}
    assert set(cs.CAS_GROUP_CODES) == {"CO", "OA", "PI", "PR", "CR"}
    assert set(cs.HCPCS_LEVEL2_LETTERS) == set("ABCDEFGHIJKLMNOPQRSTUV") - set("FINO")


def test_reference_data_uses_valid_codes() -> None:
    assert all(cs.CPT_HCPCS.is_valid(c) for c in ref.CPT_CODES)
    assert all(cs.ICD10CM.is_valid(c) for c in ref.ICD10_CODES)
    assert set(ref.PLACE_OF_SERVICE) <= set(cs.PLACE_OF_SERVICE_CODES)


def test_registry_names_rules_and_derives_the_format_from_them() -> None:
    rules = {(c.table, c.name): c.rules for c in REGISTRY if c.rules}
    assert rules[("claims", "cpt_code")] == ("cpt_hcpcs_code",)
    assert rules[("claims", "icd10_primary")] == ("icd_diagnosis_code",)
    assert rules[("claims", "billing_npi")] == rules[("claims", "rendering_npi")] == ("npi_format", "npi_check_digit")
    assert rules[("claims", "claim_id")] == rules[("remittances", "claim_id")] == ("x12_claim_id",)
    assert rules[("remittances", "carc_code")] == ("x12_carc_code",)
    for col in REGISTRY:
        for name in col.rules:
            assert name in cs.RULES
        if col.rules:
            assert col.regex == f"^(?:{cs.rule(col.rules[0]).pattern})$"
    with pytest.raises(ValueError, match="not both"):
        Column("x", "claims", "string", Availability.DECISION_TIME, regex=r"^\d$", rules=("npi_format",))
    with pytest.raises(KeyError, match="unknown code rule 'nope'"):
        Column("x", "claims", "string", Availability.DECISION_TIME, rules=("nope",))


# --------------------------------------------------------------------------------------------------
# the code set of a diagnosis against its service date, deleted procedure codes (issue 24)
# --------------------------------------------------------------------------------------------------


def _dates(*days: str) -> pd.Series:
    return pd.Series(pd.to_datetime(list(days)))


def test_icd_code_set_by_grammar_and_by_date_when_both_grammars_admit_the_code() -> None:
    codes = pd.Series(["250.00", "E11.9", "V221", "V221", "E8490", "E8490", "ZZZ", None], dtype=object)
    days = _dates("2020-01-01", "2012-01-01", "2015-09-30", "2015-10-01", "2012-05-01", "2016-05-01",
                  "2020-01-01", "2020-01-01")
    assert cs.icd_code_set(codes, days).tolist() == ["icd9", "icd10", "icd9", "icd10", "icd9", "icd10", None, None]


def test_icd_set_mismatch_is_icd9_from_2015_10_01_and_icd10_before() -> None:
    sets = pd.Series(["icd9", "icd9", "icd10", "icd10", None, "icd9"], dtype=object)
    days = _dates("2015-09-30", "2015-10-01", "2015-09-30", "2015-10-01", "2012-01-01", "2012-01-01")
    assert cs.icd_set_mismatch(sets, days).tolist() == [False, True, True, False, False, False]
    assert cs.ICD10_EFFECTIVE == pd.Timestamp("2015-10-01")


def test_deleted_procedure_codes_are_deleted_from_their_date_on_and_cite_a_source() -> None:
    codes = pd.Series(["99201", "99201", "99241", "G0202", "G0202", "99213", None, "ABC"], dtype=object)
    days = _dates("2020-12-31", "2021-01-01", "2023-03-01", "2016-12-31", "2017-01-01", "2025-01-01",
                  "2025-01-01", "2025-01-01")
    assert cs.procedure_code_deleted(codes, days).tolist() == [False, True, True, False, True, False, False, False]
    for code, (since, source) in cs.DELETED_PROCEDURE_CODES.items():
        assert cs.CPT_HCPCS.is_valid(code) and pd.Timestamp(since) and len(source) > 20, code


def test_the_generator_draws_no_deleted_code() -> None:
    """The synthetic world's codes are current, so the flag on its data means what it says."""
    assert not set(ref.CPT_CODES) & set(cs.DELETED_PROCEDURE_CODES)
