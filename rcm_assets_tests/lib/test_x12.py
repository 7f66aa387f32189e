"""X12 837P/837I/835 reading (lib/x12.py) against the mapping spec (lib/x12_mapping.py).

Fixtures (rcm_assets_tests/fixtures/x12/) are implementation-guide-style files: 837P, 837I and 835 in 5010,
837P and 835 in 4010, other separators (pipes with newline terminators, carets with an apostrophe and
CRLF), several interchanges/groups/sets in one file, a mixed 837+835 file, and one file per way of being
bad. The patients' names, addresses and ids are distinctive so that the PHI test can look for them.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pandas as pd
import pytest

from rcm_assets.lib import x12_mapping
from rcm_assets.lib.columns import source_column_names
from rcm_assets.lib.source import cast_to_registry
from rcm_assets.lib.transforms import build_silver_claims, build_silver_remittances
from rcm_assets.lib.x12 import X12Batch, X12Error, X12Problem, is_x12, read_x12
from rcm_assets_tests.conftest import PHI_TEST_KEY, to_bronze

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "x12"
DOCS = Path(__file__).resolve().parents[2] / "docs"
TS = pd.Timestamp

# Every PHI value seeded in the fixtures (names, addresses, member ids, birth dates as sent and as dates).
PHI_VALUES = (
    "QUIXOTEWORTH", "ZEBEDIAH", "4417 MARMALADE HOLLOW", "XQZ90817263", "19430501", "1943-05-01",
    "PEMBERTONSKY", "OSWALDINE", "ARCHIBALDO", "WHIPPOORWILL", "BLX55512345", "20150720", "2015-07-20",
    "GRIMSDOTTIR", "HALVARDINE", "OSPREY POINT", "1EG4TE5MK73", "19470930",
    "FROBISHERWICK", "THEODORA", "LANTERNFISH", "MCD777000111", "19881109",
    "VANTERPOOLE", "MAXIMILIANA", "CORMORANT WHARF", "SELF0001",
    "OKONKWOBARRETT", "PERPETUA", "BLUEHERON", "HMO4010777", "19720415",
)


def fixture(name: str) -> Path:
    return FIXTURES / name


def text_of(name: str) -> str:
    return fixture(name).read_text()


def recount(text: str) -> bytes:
    """Standard-separator text ('*', '~' + newline) with SE01, GE01 and IEA01 counted again."""
    out: list[str] = []
    st = 0
    sets = groups = 0
    for line in [seg for seg in text.split("~\n") if seg.strip()]:
        fields = line.split("*")
        if fields[0] == "ISA":
            groups = 0
        elif fields[0] == "GS":
            groups, sets = groups + 1, 0
        elif fields[0] == "ST":
            st, sets = len(out), sets + 1
        elif fields[0] == "SE":
            fields[1] = str(len(out) - st + 1)
        elif fields[0] == "GE":
            fields[1] = str(sets)
        elif fields[0] == "IEA":
            fields[1] = str(groups)
        out.append("*".join(fields))
    return ("~\n".join(out) + "~\n").encode()


def claims_by_id(batch: X12Batch) -> dict[str, dict]:
    return {row["claim_id"]: row for row in batch.claims.to_dict("records")}


def remittances_by_id(batch: X12Batch) -> dict[str, dict]:
    return {row["claim_id"]: row for row in batch.remittances.to_dict("records")}


# --------------------------------------------------------------------------------------------------
# Recognising X12
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [
    "837p_5010.x12", "837i_5010.x12", "835_5010.x12", "837p_4010.x12", "835_4010.x12",
    "837p_5010_pipe_newline.x12", "835_5010_caret_crlf.x12", "multi_envelope_837.x12", "bad_missing_iea.x12",
])
def test_is_x12_recognises_a_well_formed_isa(name: str) -> None:
    head = fixture(name).read_bytes()[:512]
    assert is_x12(head)
    assert is_x12(b"\xef\xbb\xbf \r\n\t" + head)  # a byte-order mark and leading whitespace


@pytest.mark.parametrize("head", [
    b"", b"   \n", bytes(range(256)), b"GS*HC*A*B*20250310*1430*1*X*005010X222A1~",
    fixture("837p_5010.x12").read_bytes()[:60],  # truncated
    b"claim_id,claim_version\nACME,1\n" * 10,
    fixture("837p_5010.x12").read_bytes()[:512].replace(b"SUBMITTERID    ", b"SUBMITTERID", 1),  # not fixed width
    fixture("837p_5010.x12").read_bytes()[:512].replace(b"*:~", b"*:*", 1),  # terminator = element sep
])
def test_is_x12_refuses_anything_else(head: bytes) -> None:
    assert not is_x12(head)


# --------------------------------------------------------------------------------------------------
# The mapping, row by row
# --------------------------------------------------------------------------------------------------

CLAIMS_837P = {
    "ACME-000123456-01": dict(
        claim_version=1, member_id="XQZ90817263", patient_name="ZEBEDIAH QUIXOTEWORTH",
        patient_dob=TS("1943-05-01"), patient_address="4417 MARMALADE HOLLOW RD APT 9", patient_zip="33126-1705",
        patient_sex="M", payer_id="KEYINS01", plan_type="commercial", billing_npi="1234567893",
        rendering_npi="9876543213", place_of_service="11", cpt_code="99213", modifiers="25,59",
        icd10_primary="Z3A.39", icd10_count=3, units=1, billed_amount=140.0, service_date=TS("2025-03-05"),
        submitted_at=TS("2025-03-10 14:25:00"), prior_auth_number="AUTH7781", eligibility_verified=True,
        updated_at=TS("2025-03-10 14:30:00")),
    # the patient is a dependent (2010CA), a replacement (REF*D9*3 is a trace number, not its version: the
    # first version of it in the file is 2), an RD8 date,
    # no K3 (eligibility unknown), no rendering provider, a 9-digit ZIP
    "2025012300042": dict(
        claim_version=2, member_id="BLX55512345", patient_name="ARCHIBALDO PEMBERTONSKY",
        patient_dob=TS("2015-07-20"), patient_address="88 WHIPPOORWILL CRESCENT UNIT 4", patient_zip="33602-1234",
        patient_sex="M", payer_id="BLUEFL", plan_type="commercial", billing_npi="1234567893",
        rendering_npi="1234567893", place_of_service="22", cpt_code="27236", modifiers=None,
        icd10_primary="S72.001A", icd10_count=1, units=2, billed_amount=250.0, service_date=TS("2025-03-01"),
        submitted_at=TS("2025-03-10 14:25:00"), prior_auth_number=None, eligibility_verified=False,
        updated_at=TS("2025-03-10 14:30:00")),
    # a replacement without REF*D9 (version 2), K3 'N', Medicare, a 3-character diagnosis, drug units
    "MCR-7788": dict(
        claim_version=2, member_id="1EG4TE5MK73", patient_name="HALVARDINE GRIMSDOTTIR",
        patient_dob=TS("1947-09-30"), patient_address="9 OSPREY POINT", patient_zip="34102", patient_sex="F",
        payer_id="MEDB01", plan_type="medicare", billing_npi="1234567893", rendering_npi="1234567893",
        place_of_service="11", cpt_code="J3490", modifiers=None, icd10_primary="I10", icd10_count=1, units=12,
        billed_amount=95.5, service_date=TS("2025-03-07"), submitted_at=TS("2025-03-10 14:25:00"),
        prior_auth_number=None, eligibility_verified=False, updated_at=TS("2025-03-10 14:30:00")),
}

CLAIMS_837I = {
    # facility type 13 -> POS 22, attending NM1*71, diagnoses ABK + 3 ABF (BH occurrence codes not counted)
    "GH-2025-000777": dict(
        claim_version=1, member_id="MCD777000111", patient_name="THEODORA FROBISHERWICK",
        patient_dob=TS("1988-11-09"), patient_address="12 LANTERNFISH LANE", patient_zip="02134-1705",
        patient_sex="F", payer_id="MCDMA", plan_type="medicaid", billing_npi="1456789019",
        rendering_npi="1765432103", place_of_service="22", cpt_code="99284", modifiers="25",
        icd10_primary="R07.89", icd10_count=4, units=1, billed_amount=1250.5, service_date=TS("2025-03-28"),
        submitted_at=TS("2025-04-02 09:10:00"), prior_auth_number="PA-99-1", eligibility_verified=True,
        updated_at=TS("2025-04-02 09:15:00")),
    # facility type 11 -> POS 21, self pay (ZZ), no attending, first line without a date (statement DTP*434),
    # admitting diagnosis ABJ not counted, sex U
    "GH-2025-000778": dict(
        claim_version=1, member_id="SELF0001", patient_name="MAXIMILIANA VANTERPOOLE",
        patient_dob=TS("1999-01-01"), patient_address="3 CORMORANT WHARF", patient_zip="01970", patient_sex="U",
        payer_id="SELFPAY", plan_type="self_pay", billing_npi="1456789019", rendering_npi="1456789019",
        place_of_service="21", cpt_code="99285", modifiers=None, icd10_primary="K35.80", icd10_count=2, units=1,
        billed_amount=8000.0, service_date=TS("2025-03-25"), submitted_at=TS("2025-04-02 09:10:00"),
        prior_auth_number=None, eligibility_verified=False, updated_at=TS("2025-04-02 09:15:00")),
}

REMITTANCES_835 = {
    # AMT*AU above CLP04 by the deductible (PR-1 20) -> partial; CO-45 at line level: the reason is the CO
    # CARC (45), not the first CAS (PR-1)
    "ACME-000123456-01": dict(
        adjudicated_at=TS("2025-04-12 00:00:00"), claim_status="partial", paid_amount=100.0, allowed_amount=120.0,
        carc_code="45", cas_group="CO", payer_claim_control_number="PAYERCLM0001", rarc_code="N130", updated_at=TS("2025-04-15 12:00:00")),
    # denied: allowed 0, claim-level CAS CO*197, a line LQ*HE remark, DTM*009 with a time
    "2025012300042": dict(
        adjudicated_at=TS("2025-04-12 15:30:00"), claim_status="denied", paid_amount=0.0, allowed_amount=0.0,
        carc_code="197", rarc_code="N54", updated_at=TS("2025-04-15 12:00:00")),
    # no AMT*AU -> allowed = paid; no CAS; MIA05 remark; no DTM*009 -> BPR16 at 00:00
    "GH-2025-000777": dict(
        adjudicated_at=TS("2025-04-15 00:00:00"), claim_status="paid", paid_amount=1250.5, allowed_amount=1250.5,
        carc_code=None, rarc_code="MA01", updated_at=TS("2025-04-15 12:00:00")),
    # line-level CAS only; line LQ*HE; DTM*009 with HHMMSS
    "MCR-7788": dict(
        adjudicated_at=TS("2025-04-13 08:30:15"), claim_status="paid", paid_amount=30.0, allowed_amount=30.0,
        carc_code="45", rarc_code="N381", updated_at=TS("2025-04-15 12:00:00")),
}


def assert_rows(actual: dict[str, dict], expected: dict[str, dict]) -> None:
    assert sorted(actual) == sorted(expected)
    for claim_id, columns in expected.items():
        for column, value in columns.items():
            assert actual[claim_id][column] == value or (value is None and actual[claim_id][column] is None), (
                f"{claim_id}.{column}: {actual[claim_id][column]!r} != {value!r}")


def test_837p_every_mapping_row() -> None:
    batch = read_x12(fixture("837p_5010.x12"))
    assert batch.kind == "837"
    assert_rows(claims_by_id(batch), CLAIMS_837P)
    assert batch.voids == 1  # VOIDME-0001, frequency 8: no row
    assert batch.eligibility_unknown == 1  # 2025012300042 has no K3
    assert (batch.transactions, batch.interchanges, batch.rejected) == (1, 1, [])
    assert batch.remittances.empty


def test_837i_every_mapping_row() -> None:
    batch = read_x12(fixture("837i_5010.x12"))
    assert_rows(claims_by_id(batch), CLAIMS_837I)
    assert (batch.voids, batch.eligibility_unknown) == (0, 0)


def test_835_every_mapping_row() -> None:
    batch = read_x12(fixture("835_5010.x12"))
    assert batch.kind == "835"
    assert_rows(remittances_by_id(batch), REMITTANCES_835)
    assert batch.claims.empty
    # parsed for later, not in the registry: the payer, the CLP status code and every CAS pair
    details = batch.remittance_details
    assert list(details["claim_id"]) == list(batch.remittances["claim_id"])
    assert set(details["payer_name"]) == {"KEY INSURANCE COMPANY"}
    assert list(details["claim_status_code"]) == ["1", "4", "1", "1"]
    adjustments = batch.adjustments
    assert adjustments[["claim_id", "level", "group_code", "reason_code", "amount"]].values.tolist() == [
        ["ACME-000123456-01", "claim", "PR", "1", 20.0],
        ["ACME-000123456-01", "line", "CO", "45", 20.0],
        ["ACME-000123456-01", "line", "CO", "45", 20.0],
        ["2025012300042", "claim", "CO", "197", 250.0],
        ["MCR-7788", "line", "CO", "45", 65.5],
    ]


def test_4010_files_read_with_bk_qualifiers() -> None:
    claims = claims_by_id(read_x12(fixture("837p_4010.x12")))
    assert_rows(claims, {"ACME-4010-0001": dict(
        claim_version=1, member_id="HMO4010777", patient_name="PERPETUA OKONKWOBARRETT", plan_type="commercial",
        place_of_service="11", cpt_code="97110", modifiers="GP", icd10_primary="M54.16", icd10_count=2, units=3,
        rendering_npi="9876543213", service_date=TS("2025-03-06"), submitted_at=TS("2025-03-11 08:00:00"),
        prior_auth_number="HMO-AUTH-1", eligibility_verified=True, updated_at=TS("2025-03-11 08:05:00"))})
    remittances = remittances_by_id(read_x12(fixture("835_4010.x12")))
    assert_rows(remittances, {"ACME-4010-0001": dict(
        claim_status="denied", paid_amount=0.0, allowed_amount=0.0, carc_code="29", rarc_code=None,
        adjudicated_at=TS("2025-04-15 00:00:00"), updated_at=TS("2025-04-15 13:00:00"))})


def test_frames_have_the_registry_columns_and_landing_dtypes() -> None:
    claims = read_x12(fixture("837p_5010.x12")).claims
    remittances = read_x12(fixture("835_5010.x12")).remittances
    assert list(claims.columns) == source_column_names("claims")
    assert list(remittances.columns) == source_column_names("remittances")
    pd.testing.assert_frame_equal(claims, cast_to_registry(claims, "claims"))
    pd.testing.assert_frame_equal(remittances, cast_to_registry(remittances, "remittances"))
    empty = read_x12(fixture("837p_5010.x12")).remittances
    assert list(empty.columns) == source_column_names("remittances") and empty.empty


def test_bytes_and_path_read_the_same() -> None:
    by_path = read_x12(fixture("837p_5010.x12"))
    by_bytes = read_x12(fixture("837p_5010.x12").read_bytes())
    pd.testing.assert_frame_equal(by_path.claims, by_bytes.claims)


# --------------------------------------------------------------------------------------------------
# Separators, envelopes, versions
# --------------------------------------------------------------------------------------------------


def test_pipes_and_newline_terminators_read_like_the_standard_file() -> None:
    standard = read_x12(fixture("837p_5010.x12"))
    piped = read_x12(fixture("837p_5010_pipe_newline.x12"))
    pd.testing.assert_frame_equal(standard.claims, piped.claims)
    assert piped.voids == 1


def test_carets_and_apostrophe_crlf_terminators_read_like_the_standard_file() -> None:
    standard = read_x12(fixture("835_5010.x12"))
    caret = read_x12(fixture("835_5010_caret_crlf.x12"))
    pd.testing.assert_frame_equal(standard.remittances, caret.remittances)
    pd.testing.assert_frame_equal(standard.adjustments, caret.adjustments)


def test_several_interchanges_groups_and_sets_in_one_file() -> None:
    batch = read_x12(fixture("multi_envelope_837.x12"))
    assert (batch.interchanges, batch.transactions, batch.rejected) == (2, 4, [])
    claims = claims_by_id(batch)
    # the second interchange declares other separators (| and >, newline terminators): read with its own
    assert list(claims) == ["MULTI-A1", "MULTI-B1", "MULTI-I7", "MULTI-I8", "MULTI-C1"]
    assert claims["MULTI-C1"]["updated_at"] == TS("2025-03-11 09:00:00")  # its own GS
    assert claims["MULTI-C1"]["submitted_at"] == TS("2025-03-11 08:55:00")  # its own BHT
    assert claims["MULTI-I7"]["updated_at"] == TS("2025-04-02 09:15:00")  # the 837I group's GS
    assert claims["MULTI-I7"]["place_of_service"] == "22"  # read as institutional (GS08 X223)
    assert claims["MULTI-B1"]["patient_name"] == "ARCHIBALDO PEMBERTONSKY"  # a dependent in a later set


def test_a_mixed_file_holds_claims_and_remittances() -> None:
    batch = read_x12(fixture("mixed_837_835.x12"))
    assert batch.kind == "mixed"
    assert list(batch.claims["claim_id"]) == ["ACME-000123456-01"]
    assert len(batch.remittances) == 4
    with pytest.raises(X12Error, match="remittances .835. where claims are expected"):
        read_x12(fixture("mixed_837_835.x12"), expect="claims")


def test_expect_refuses_the_other_kind() -> None:
    with pytest.raises(X12Error) as caught:
        read_x12(fixture("837p_5010.x12"), expect="remittances")
    problem = caught.value.problem
    assert (problem.envelope, problem.segment_position, problem.segment) == (
        "ISA 000000123 / GS 45 / ST 0001", 3, "ST")
    assert "claims (837) where remittances are expected" in problem.problem
    assert len(read_x12(fixture("837p_5010.x12"), expect="claims").claims) == 3
    with pytest.raises(ValueError, match="expect"):
        read_x12(fixture("837p_5010.x12"), expect="claim")


# --------------------------------------------------------------------------------------------------
# Bad files: refused as a whole, or one set / one group rejected
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "envelope", "position", "segment", "words"), [
    ("bad_empty.x12", "file", 0, "ISA", "the file is empty"),
    ("bad_binary.x12", "file", 0, "ISA", "not an X12 file"),
    ("bad_no_isa.x12", "file", 0, "ISA", "not an X12 file"),
    ("bad_truncated_isa.x12", "file", 1, "ISA", "truncated or malformed"),
    ("bad_missing_iea.x12", "ISA 000000123", 71, "GE", "IEA is missing"),
    ("bad_unknown_set_270.x12", "ISA 000000600 / GS 60 / ST 0001", 3, "ST", "transaction set 270 is not read"),
])
def test_a_file_that_cannot_be_accepted_raises_x12error(name, envelope, position, segment, words) -> None:
    with pytest.raises(X12Error) as caught:
        read_x12(fixture(name))
    problem = caught.value.problem
    assert isinstance(caught.value, ValueError) and isinstance(problem, X12Problem)
    assert (problem.envelope, problem.segment_position, problem.segment) == (envelope, position, segment)
    assert words in problem.problem
    assert str(problem) in str(caught.value)


def test_good_sets_survive_beside_bad_ones() -> None:
    batch = read_x12(fixture("bad_some_sets.x12"))
    # ST 0002 miscounts SE01 (its trailer is there, its envelope intact: read, a warning logged); ST 0004's
    # claim lacks its payer: it lands with payer_id null (silver rejects that row) and its set is kept;
    # GS 31's GE01 counts 2 sets where 1 is there, whole: it lands, the GE is named in a warning
    assert list(batch.claims["claim_id"]) == ["GOOD-A1", "BADSET-B1", "BADSET-D1", "BADGROUP-E1", "GOOD-F1"]
    assert batch.claims["payer_id"].isna().tolist() == [False, False, True, False, False]
    assert batch.transactions == 6
    found = [(p.envelope, p.segment_position, p.segment) for p in batch.rejected]
    assert found == [("ISA 000000700 / GS 30 / ST 0003", 92, "SE")]
    assert "SE02 does not match" in batch.rejected[0].problem
    assert [(p.envelope, p.segment_position, p.segment) for p in batch.warnings] == [
        ("ISA 000000700 / GS 31", 154, "GE")]
    assert "GE01 does not count" in batch.warnings[0].problem


STANDARD_837P = text_of("837p_5010.x12")


def _mutated(old: str, new: str, count: int = 1, text: str = STANDARD_837P) -> bytes:
    assert old in text
    return recount(text.replace(old, new, count))


def test_ge02_not_matching_keeps_the_intact_sets_with_a_warning() -> None:
    batch = read_x12(STANDARD_837P.replace("GE*1*45~", "GE*1*46~").encode())
    assert len(batch.claims) == 3 and batch.rejected == []
    assert [(p.envelope, p.segment_position, p.segment) for p in batch.warnings] == [
        ("ISA 000000123 / GS 45", 71, "GE")]
    assert "GE02 does not match the group control number GS06" in batch.warnings[0].problem


def test_iea02_not_matching_keeps_the_intact_sets_with_a_warning() -> None:
    batch = read_x12(fixture("iea_control_mismatch.x12"))
    assert len(batch.claims) == 3 and batch.rejected == []
    assert [(p.envelope, p.segment_position, p.segment) for p in batch.warnings] == [("ISA 000000123", 72, "IEA")]
    assert "IEA02 does not match the interchange control number ISA13" in batch.warnings[0].problem


def test_a_de_identified_envelope_lands_every_claim() -> None:
    """OopFactory's de-identified 4010 837Ps: ISA12 99999, GS08 999999X999X9, GE02 and IEA02 rewritten."""
    batch = read_x12(fixture("837p_4010_deidentified_envelope.dat"))
    assert batch.rejected == [] and list(batch.claims["claim_id"]) == ["ACME-4010-0001"]
    row = claims_by_id(batch)["ACME-4010-0001"]
    assert (row["cpt_code"], row["place_of_service"], row["rendering_npi"]) == ("97110", "11", "9876543213")
    assert [(p.envelope, p.segment_position, p.segment) for p in batch.warnings] == [
        ("ISA 999999999 / GS 9999999 / ST 0001", 3, "ST"),
        ("ISA 999999999 / GS 9999999", 30, "GE"),
        ("ISA 999999999", 31, "IEA"),
    ]
    assert "names no implementation guide" in batch.warnings[0].problem


def test_a_named_guide_other_than_claims_is_still_refused() -> None:
    dental = text_of("837p_4010_deidentified_envelope.dat").replace("999999X999X9", "004010X097A1")
    batch = read_x12(dental.encode())
    assert batch.claims.empty and "is not read" in batch.rejected[0].problem


def test_wrong_group_and_set_counts_keep_the_intact_sets() -> None:
    """GE01 counts 1 of 2 sets, IEA01 1 of 2 groups (imsweb's x12_complex/x12_multiple_gs shapes)."""
    batch = read_x12(fixture("837p_envelope_counts_wrong.x12"))
    assert batch.rejected == []
    assert list(batch.claims["claim_id"]) == ["ACME-4010-0101", "ACME-4010-0102", "ACME-4010-0201"]
    assert [(p.envelope, p.segment_position, p.segment) for p in batch.warnings] == [
        ("ISA 000000124 / GS 46", 59, "GE"), ("ISA 000000124", 90, "IEA")]
    assert "GE01 does not count" in batch.warnings[0].problem
    assert "IEA01 does not count" in batch.warnings[1].problem


@pytest.mark.parametrize(("old", "new", "refused", "trailer"), [
    ("SE*28*0002~", "SE*29*0002~", "ISA 000000124 / GS 46 / ST 0002", "GE"),  # under the wrong GE01
    ("SE*28*0001~\nGE*1*47~", "SE*27*0001~\nGE*1*47~", "ISA 000000124 / GS 47 / ST 0001", "IEA"),  # wrong IEA01
])
def test_a_miscounted_set_under_a_wrong_trailer_is_refused(old, new, refused, trailer) -> None:
    """SE01 wrong and the envelope's trailer wrong too: the set may have lost segments, it does not land."""
    text = text_of("837p_envelope_counts_wrong.x12")
    assert text.count(old) == 1
    batch = read_x12(text.replace(old, new).encode())
    assert [(p.envelope, p.segment) for p in batch.rejected] == [(refused, trailer)]
    assert "SE01 does not count" in batch.rejected[0].problem and "trailer is wrong too" in batch.rejected[0].problem
    assert len(batch.claims) == 2


def test_a_miscounted_set_in_an_intact_envelope_is_still_read() -> None:
    batch = read_x12(text_of("837p_4010.x12").replace("SE*28*0001~", "SE*29*0001~").encode())
    assert len(batch.claims) == 1 and batch.rejected == [] and batch.warnings == []


def test_a_missing_se_rejects_its_set() -> None:
    text = text_of("bad_some_sets.x12").replace("SE*30*0001~\n", "", 1)
    batch = read_x12(text.encode())
    assert "GOOD-A1" not in set(batch.claims["claim_id"])
    first = batch.rejected[0]
    assert (first.envelope, first.segment) == ("ISA 000000700 / GS 30 / ST 0001", "ST")
    assert "no trailer SE" in first.problem


def test_empty_segments_are_skipped_with_a_warning() -> None:
    batch = read_x12(fixture("837p_5010_empty_segments.x12"))
    assert batch.rejected == [] and len(batch.claims) == 3
    assert [(p.envelope, p.segment_position, p.segment) for p in batch.warnings] == [
        ("ISA 000000123", 29, "LX"), ("ISA 000000123", 71, "SE")]
    assert all("empty segment" in p.problem for p in batch.warnings)


def test_an_iea_without_its_final_terminator_is_read() -> None:
    """CR-terminated, indented segments and no terminator after the last IEA (OopFactory's ST1309-XX)."""
    batch = read_x12(fixture("837p_5010_cr_unterminated_iea.txt"))
    assert batch.rejected == [] and batch.warnings == []
    assert list(batch.claims["claim_id"]) == list(read_x12(fixture("837p_5010.x12")).claims["claim_id"])


def test_a_truncated_set_is_still_refused() -> None:
    """Cut inside a set: the IEA is missing, the file is refused (a truncation is never bookkeeping)."""
    with pytest.raises(X12Error, match="IEA is missing"):
        read_x12(STANDARD_837P.split("LX*2~")[0].encode())


def test_data_after_the_last_iea_refuses_the_file() -> None:
    with pytest.raises(X12Error, match="data follows the interchange trailer"):
        read_x12((STANDARD_837P + "NOT AN INTERCHANGE\n").encode())


def test_trailing_whitespace_after_the_iea_is_fine() -> None:
    assert len(read_x12((STANDARD_837P + "\r\n\n  ").encode()).claims) == 3


def test_a_dental_837_is_rejected_by_set() -> None:
    dental = STANDARD_837P.replace("005010X222A1", "005010X224A2")
    batch = read_x12(dental.encode())
    assert batch.claims.empty and batch.transactions == 1
    assert "not read" in batch.rejected[0].problem and "X224" in batch.rejected[0].problem


def test_hl_numbering_senders_get_wrong_is_read_by_level_code() -> None:
    """Public samples repeat HL01 or name a parent that is not there; the loops are read in order by HL03."""
    batch = read_x12(_mutated("HL*4*3*23*0~", "HL*4*9*23*0~"))
    assert batch.rejected == [] and len(batch.claims) == 3
    assert claims_by_id(batch)["2025012300042"]["patient_name"] == "ARCHIBALDO PEMBERTONSKY"


@pytest.mark.parametrize(("old", "new", "column"), [
    ("DMG*D8*19430501*M~\n", "", "patient_dob"),
    ("N3*4417 MARMALADE HOLLOW RD*APT 9~\n", "", "patient_address"),
    ("HI*ABK:Z3A39*ABF:I10*ABF:E119~\n", "HI*ABF:I10~\n", "icd10_primary"),
    ("SBR*P*18*******CI~\n", "", "plan_type"),
    ("NM1*85*2*BEN KILDARE SERVICE*****XX*1234567893~\n", "", "billing_npi"),
    ("CLM*ACME-000123456-01*140*", "CLM*ACME-000123456-01*1X0*", "billed_amount"),
    ("DTP*472*D8*20250305~\nLX*2~", "LX*2~", "service_date"),
])
def test_a_claim_missing_a_field_lands_with_it_null(old, new, column) -> None:
    """Issue 24: one claim lacking a field used to refuse its whole transaction set."""
    batch = read_x12(_mutated(old, new))
    assert batch.rejected == [] and batch.skipped == []
    row = claims_by_id(batch)["ACME-000123456-01"]
    assert pd.isna(row[column])
    assert len(batch.claims) == 3  # the set's other claims land too


def test_a_claim_without_frequency_is_an_original() -> None:
    batch = read_x12(_mutated("CLM*ACME-000123456-01*140***11:B:1*", "CLM*ACME-000123456-01*140***11:B*"))
    assert batch.rejected == [] and claims_by_id(batch)["ACME-000123456-01"]["claim_version"] == 1


def test_a_claim_whose_units_cannot_be_held_is_skipped_alone() -> None:
    batch = read_x12(_mutated("SV1*HC:99213:25:59*100*UN*1***1:2~", "SV1*HC:99213:25:59*100*UN*ONE***1:2~"))
    assert batch.rejected == [] and "ACME-000123456-01" not in claims_by_id(batch)
    (problem,) = batch.skipped
    assert problem.segment == "CLM" and "units" in problem.problem
    assert problem.envelope == "ISA 000000123 / GS 45 / ST 0001"


def test_a_remittance_without_a_date_lands_with_it_null() -> None:
    text = text_of("835_5010.x12").replace("*DA*98765*20250415~", "*DA*98765~")
    batch = read_x12(recount(text))
    assert batch.rejected == [] and batch.remittances["adjudicated_at"].isna().any()


def test_invalid_values_are_kept_for_silver_to_judge() -> None:
    batch = read_x12(_mutated("SBR*P*18*******CI~", "SBR*P*18*******XX~"))
    row = claims_by_id(batch)["ACME-000123456-01"]
    assert row["plan_type"] == "XX" and batch.rejected == []
    silver = build_silver_claims(to_bronze(batch.claims), PHI_TEST_KEY)
    # an unknown plan type does not make the claim unusable (issue 24): it lands with the plan type unknown
    landed = silver.good.set_index("claim_id")["plan_type"]
    assert silver.rejects.empty and pd.isna(landed["ACME-000123456-01"]) and landed.notna().sum() == len(landed) - 1


def test_replacement_with_a_counter_that_is_not_a_number_is_version_2() -> None:
    batch = read_x12(_mutated("REF*D9*3~", "REF*D9*TRACE-42~"))
    assert claims_by_id(batch)["2025012300042"]["claim_version"] == 2


def test_unknown_facility_type_is_kept_as_sent() -> None:
    batch = read_x12(recount(text_of("837i_5010.x12").replace("*13:A:1*", "*65:A:1*")))
    assert claims_by_id(batch)["GH-2025-000777"]["place_of_service"] == "65"


def test_eligibility_k3_written_with_another_component_separator() -> None:
    piped = text_of("837p_5010_pipe_newline.x12")
    assert "K3|ELIG-VERIFIED:Y" in piped  # the literal text, ':' is not a separator in this file
    split = piped.replace("K3|ELIG-VERIFIED:Y", "K3|ELIG-VERIFIED>Y")  # a writer that split it
    for text in (piped, split):
        assert claims_by_id(read_x12(text.encode()))["ACME-000123456-01"]["eligibility_verified"] is True


# --------------------------------------------------------------------------------------------------
# Time zones and time formats
# --------------------------------------------------------------------------------------------------


def _with_times(bht: tuple[str, str], gs: tuple[str, str]) -> bytes:
    text = STANDARD_837P.replace("BHT*0019*00*BATCH0001*20250310*1425*CH~", f"BHT*0019*00*BATCH0001*{bht[0]}*{bht[1]}*CH~")
    return text.replace("*20250310*1430*45*", f"*{gs[0]}*{gs[1]}*45*").encode()


@pytest.mark.parametrize(("local", "utc"), [
    (("20250308", "1200"), "2025-03-08 17:00:00"),  # EST (UTC-5)
    (("20250309", "0130"), "2025-03-09 06:30:00"),  # before the gap, still EST
    (("20250309", "0230"), "2025-03-09 07:00:00"),  # nonexistent: moves to 03:00 EDT, the first instant after
    (("20250309", "0300"), "2025-03-09 07:00:00"),  # EDT (UTC-4)
    (("20251102", "0030"), "2025-11-02 04:30:00"),  # EDT
    (("20251102", "0130"), "2025-11-02 05:30:00"),  # ambiguous: the first occurrence (daylight time)
    (("20251102", "0230"), "2025-11-02 07:30:00"),  # EST again
])
def test_local_times_convert_to_utc_across_dst(local: tuple[str, str], utc: str) -> None:
    claims = read_x12(_with_times(local, ("20251231", "2359")), facility_tz="America/New_York").claims
    assert set(claims["submitted_at"]) == {TS(utc)}
    updated = read_x12(_with_times(("20250101", "0000"), local), facility_tz="America/New_York").claims
    assert set(updated["updated_at"]) == {TS(utc)}


@pytest.mark.parametrize(("clock", "expected"), [
    ("1425", "14:25:00"), ("142507", "14:25:07"), ("14250799", "14:25:07"), ("1425071", "14:25:07")])
def test_time_precision_is_seconds(clock: str, expected: str) -> None:
    claims = read_x12(_with_times(("20250310", clock), ("20250310", "235959"))).claims
    assert set(claims["submitted_at"]) == {TS(f"2025-03-10 {expected}")}


def test_remittance_times_use_the_facility_zone() -> None:
    batch = read_x12(fixture("835_5010.x12"), facility_tz="America/Chicago")
    rows = remittances_by_id(batch)
    assert rows["2025012300042"]["adjudicated_at"] == TS("2025-04-12 20:30:00")  # 15:30 CDT
    assert rows["GH-2025-000777"]["adjudicated_at"] == TS("2025-04-15 05:00:00")  # BPR16 00:00 CDT
    assert rows["MCR-7788"]["updated_at"] == TS("2025-04-15 17:00:00")


def test_an_unknown_time_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="facility_tz"):
        read_x12(fixture("837p_5010.x12"), facility_tz="Mars/Olympus")


# --------------------------------------------------------------------------------------------------
# The silver contract
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tz", ["UTC", "America/New_York"])
@pytest.mark.parametrize("name", [
    "837p_5010.x12", "837i_5010.x12", "837p_4010.x12", "837p_5010_pipe_newline.x12", "multi_envelope_837.x12",
    "mixed_837_835.x12", "bad_some_sets.x12",
])
def test_claims_pass_the_silver_contract(name: str, tz: str) -> None:
    claims = read_x12(fixture(name), facility_tz=tz).claims
    result = build_silver_claims(to_bronze(claims), PHI_TEST_KEY, facility_tz=tz)
    unusable = int(claims["payer_id"].isna().sum())  # bad_some_sets: a claim without a payer (a reject)
    assert result.stats["rows_rejected"] == unusable, result.rejects["reasons"].tolist()
    assert result.rejects["reasons"].str.contains("payer_id").all()
    assert len(result.good) == len(claims) - unusable


@pytest.mark.parametrize("tz", ["UTC", "America/New_York"])
@pytest.mark.parametrize("name", ["835_5010.x12", "835_4010.x12", "835_5010_caret_crlf.x12", "mixed_837_835.x12"])
def test_remittances_pass_the_silver_contract(name: str, tz: str) -> None:
    remittances = read_x12(fixture(name), facility_tz=tz).remittances
    result = build_silver_remittances(to_bronze(remittances), facility_tz=tz)
    assert result.stats["rows_rejected"] == 0, result.rejects["reasons"].tolist()
    assert len(result.good) == len(remittances)


# --------------------------------------------------------------------------------------------------
# PHI: in the PHI columns, nowhere else
# --------------------------------------------------------------------------------------------------

BAD_TEXTS = {
    "missing payer": _mutated("NM1*PR*2*KEY INSURANCE COMPANY*****PI*KEYINS01~\n", ""),
    "bad units": _mutated("*UN*12***1~", "*UN*QUIXOTEWORTH***1~"),
    "bad amount": _mutated("CLM*MCR-7788*95.5*", "CLM*MCR-7788*ZEBEDIAH*"),
    "junk segment": _mutated("DMG*D8*19430501*M~", "DMG*D8*19430501*M~\nquixoteworth 4417 MARMALADE HOLLOW~"),
    "broken hl": _mutated("HL*4*3*23*0~", "HL*4*9*23*0~"),
    "expect": STANDARD_837P.encode(),
    "iea": STANDARD_837P.replace("IEA*1*000000123~", "IEA*1*XQZ90817263~").encode(),
    "truncated": STANDARD_837P[:1200].encode(),
    "control numbers": STANDARD_837P.replace("ST*837*0001*", "ST*837*QUIXOTEWORTH*").encode(),
    "unknown set": STANDARD_837P.replace("ST*837*", "ST*ZEBEDIAH*").encode(),
}


def test_phi_never_reaches_problems_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    for path in sorted(p for p in FIXTURES.iterdir() if p.is_file()):
        try:
            batch = read_x12(path)
            texts += [str(p) for p in batch.rejected + batch.skipped + batch.warnings] + [repr(p) for p in batch.rejected]
        except X12Error as exc:
            texts += [str(exc), repr(exc), repr(exc.problem)]
    for label, data in BAD_TEXTS.items():
        try:
            batch = read_x12(data, expect="remittances" if label == "expect" else None)
            texts += [str(p) for p in batch.rejected + batch.skipped + batch.warnings]
            assert batch.rejected or batch.skipped or batch.warnings or label in ("missing payer", "bad amount", "broken hl"), label
        except X12Error as exc:
            texts += [str(exc), repr(exc.problem)]
    texts += [record.getMessage() for record in caplog.records]
    assert len(texts) > 20
    everything = "\n".join(texts).upper()
    leaked = [value for value in PHI_VALUES if value.upper() in everything]
    assert leaked == [], leaked


def test_phi_stays_in_the_phi_columns() -> None:
    claims = read_x12(fixture("837p_5010.x12")).claims
    phi = {"member_id", "patient_name", "patient_dob", "patient_address", "patient_zip"}
    others = claims.drop(columns=sorted(phi)).astype(str).to_string().upper()
    assert [v for v in PHI_VALUES if v in others] == []
    remittance_text = read_x12(fixture("835_5010.x12")).remittances.astype(str).to_string().upper()
    assert [v for v in PHI_VALUES if v in remittance_text] == []  # the 835's NM1*QC is not read


# --------------------------------------------------------------------------------------------------
# The mapping spec and its document
# --------------------------------------------------------------------------------------------------


def test_the_mapping_covers_every_source_column() -> None:
    for table in ("claims", "remittances"):
        assert x12_mapping.mapped_columns(table) == source_column_names(table)
    for mapping in x12_mapping.MAPPING:
        assert mapping.loop and mapping.segment and mapping.element and mapping.note
        assert mapping.transaction in ("837", "837P", "837I", "835")


def test_the_mapping_doc_is_up_to_date() -> None:
    assert (DOCS / "X12_MAPPING.md").read_text() == x12_mapping.mapping_markdown(), (
        "docs/X12_MAPPING.md is stale: python -m rcm_assets.lib.x12_mapping > docs/X12_MAPPING.md")


def test_the_parser_doc_names_the_pinned_parser() -> None:
    doc = (DOCS / "X12_PARSER.md").read_text()
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    pin = re.search(r'"pyx12==([0-9.]+)"', pyproject)
    assert pin is not None and f"pyx12 {pin.group(1)}" in doc


# --------------------------------------------------------------------------------------------------
# Scale: many claims with distinct ids
# --------------------------------------------------------------------------------------------------


def synthetic_837(n: int, per_set: int = 500) -> bytes:
    """An 837P of `n` claims (one subscriber each), `per_set` claims per transaction set."""
    head = STANDARD_837P.split("HL*2*1*22*0~\n", 1)[0].split("ST*837*0001*005010X222A1~\n", 1)
    isa_gs, header = head[0], head[1]
    claim = STANDARD_837P.split("HL*2*1*22*0~\n", 1)[1].split("CLM*VOIDME", 1)[0]
    out = [isa_gs]
    for number, start in enumerate(range(0, n, per_set), 1):
        out.append(f"ST*837*{number:04d}*005010X222A1~\n" + header)
        for k, i in enumerate(range(start, min(n, start + per_set))):
            out.append(f"HL*{k + 2}*1*22*0~\n" + claim.replace("ACME-000123456-01", f"SYN-{i:08d}"))
        out.append(f"SE*#*{number:04d}~\n")
    out.append("GE*#*45~\nIEA*#*000000123~\n")
    return recount("".join(out))


def synthetic_835(n: int, per_set: int = 500) -> bytes:
    text = text_of("835_5010.x12")
    isa_gs, rest = text.split("ST*835*1001~\n", 1)
    header, payment = rest.split("LX*1~\n", 1)
    payment = payment.split("SE*", 1)[0]
    first = payment.split("CLP*2025012300042", 1)[0]
    out = [isa_gs]
    for number, start in enumerate(range(0, n, per_set), 1):
        out.append(f"ST*835*{number:04d}~\n" + header + "LX*1~\n")
        out += [first.replace("ACME-000123456-01", f"SYN-{i:08d}") for i in range(start, min(n, start + per_set))]
        out.append(f"SE*#*{number:04d}~\n")
    out.append("GE*#*501~\nIEA*#*000000301~\n")
    return recount("".join(out))


def test_many_claims_and_remittances_read_completely() -> None:
    claims = read_x12(synthetic_837(2_000), facility_tz="America/New_York")
    assert len(claims.claims) == 2_000 and claims.claims["claim_id"].is_unique and claims.rejected == []
    assert claims.transactions == 4
    remittances = read_x12(synthetic_835(2_000))
    assert len(remittances.remittances) == 2_000 and remittances.remittances["claim_id"].is_unique
    assert remittances.rejected == []


def test_an_isa_inside_an_interchange_refuses_the_file() -> None:
    first = STANDARD_837P.rsplit("IEA*", 1)[0]
    with pytest.raises(X12Error, match="an ISA begins before the interchange trailer IEA"):
        read_x12((first + STANDARD_837P).encode())


def test_detail_frames_are_typed() -> None:
    batch = read_x12(fixture("835_4010.x12"))
    assert batch.remittance_details["patient_responsibility"].dtype == "float64"
    assert batch.adjustments["amount"].dtype == "float64" and batch.adjustments["line_number"].dtype == "int64"
    empty = read_x12(fixture("837p_5010.x12"))
    assert empty.adjustments.empty and list(empty.adjustments.columns)[:3] == ["claim_id", "adjudicated_at",
                                                                               "updated_at"]
