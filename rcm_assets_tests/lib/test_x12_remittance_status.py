"""The remittance cases of docs/X12.md, one test per row (the ids are the table's case names), and the 835
and 837 shapes public senders write (fixtures reproducing them: subscriber-is-patient 4010 with ICD-9 and
other-payer loops, reversals, several CAS groups, PLB, .dat/.rmt names)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from rcm_assets.lib import landing
from rcm_assets.lib.columns import CLAIM_STATUSES
from rcm_assets.lib.remittance_status import classify_remittance
from rcm_assets.lib.x12 import ClaimVersions, read_x12

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "x12"
DOC = Path(__file__).resolve().parents[2] / "docs" / "X12.md"

# (case, CLP02, charge, paid, CAS [(group, reason, amount)], status, denied, carc, group[, AMT*AU allowed])
CASES = [
    ("reversal", "22", -120.0, -120.0, [("CO", "45", -30.0)], "reversed", False, "45", "CO"),
    ("denied-by-status", "4", 250.0, 0.0, [("CO", "29", 250.0)], "denied", True, "29", "CO"),
    ("whole-claim-write-off", "1", 300.0, 0.0, [("CO", "45", 40.0), ("CO", "197", 260.0)], "denied", True,
     "197", "CO"),
    ("whole-claim-other-adjustment", "3", 80.0, 0.0, [("OA", "23", 80.0)], "denied", True, "23", "OA"),
    ("deductible", "1", 200.0, 0.0, [("CO", "45", 50.0), ("PR", "1", 150.0)], "paid", False, "45", "CO"),
    ("partial-payment", "1", 500.0, 300.0, [("CO", "45", 100.0), ("CO", "16", 100.0)], "partial", False,
     "45", "CO"),
    ("largest-co-not-first", "1", 500.0, 100.0, [("CO", "45", 100.0), ("CO", "197", 300.0)], "partial", False,
     "197", "CO"),
    ("patient-share", "1", 140.0, 100.0, [("PR", "1", 20.0), ("CO", "45", 20.0)], "partial", False, "45", "CO",
     120.0),
    ("contractual-only", "1", 140.0, 100.0, [("PR", "1", 20.0), ("CO", "45", 20.0)], "paid", False, "45", "CO"),
    ("paid-in-full", "1", 95.5, 95.5, [], "paid", False, None, None),
    ("zero-no-adjustment", "2", 50.0, 0.0, [], "paid", False, None, None),
    ("other-status-zero", "25", 136.9, 0.0, [("CO", "45", 136.9)], "paid", False, "45", "CO"),
]


@pytest.mark.parametrize(("status_code", "charge", "paid", "cas", "status", "denied", "carc", "group", "allowed"),
                         [(*c[1:], None)[:9] for c in CASES], ids=[c[0] for c in CASES])
def test_remittance_case(status_code, charge, paid, cas, status, denied, carc, group, allowed) -> None:
    outcome = classify_remittance(status_code, paid, charge, cas, allowed=allowed)
    assert (outcome.claim_status, outcome.denied, outcome.carc_code, outcome.cas_group) == (
        status, denied, carc, group)
    assert outcome.claim_status in CLAIM_STATUSES


def test_the_doc_table_lists_exactly_the_tested_cases() -> None:
    rows = re.findall(r"^\| `([a-z-]+)` \|", DOC.read_text(), flags=re.MULTILINE)
    assert rows == [c[0] for c in CASES]


def test_a_public_835_lands_reversals_denials_and_reasons_per_the_standard() -> None:
    """Before issue 24: CLP02 22 rows were rejected (negative amounts), $0 under status 1 with CO-197 read as
    paid, and the reason was the first CAS (CO-45)."""
    batch = read_x12(FIXTURES / "835_public_shapes.rmt")
    rows = batch.remittances.set_index("claim_id")
    assert batch.rejected == [] and len(rows) == 5
    assert rows.loc["PAY-1", ["claim_status", "carc_code", "cas_group"]].tolist() == ["denied", "197", "CO"]
    assert rows.loc["PAY-2", "claim_status"] == "paid"  # $0 paid: the deductible, not a denial
    assert rows.loc["PAY-3", "claim_status"] == "partial"
    assert rows.loc["PAY-4", ["claim_status", "paid_amount", "payer_claim_control_number"]].tolist() == [
        "reversed", 120.0, "PCN-0004"]
    assert rows.loc["PAY-5", ["claim_status", "cas_group"]].tolist() == ["denied", "OA"]


def test_reversals_pass_silver_and_are_never_rejected() -> None:
    from rcm_assets.lib.transforms import build_silver_remittances
    from rcm_assets_tests.lib.test_x12 import to_bronze

    remittances = read_x12(FIXTURES / "835_public_shapes.rmt").remittances
    result = build_silver_remittances(to_bronze(remittances), facility_tz="UTC")
    assert result.stats["rows_rejected"] == 0, result.rejects["reasons"].tolist()
    reversed_rows = result.good[result.good["claim_status"] == "reversed"]
    assert len(reversed_rows) == 1 and not reversed_rows["denied"].any()


def test_a_4010_subscriber_is_patient_837_with_icd9_lands_every_claim() -> None:
    """Subscriber is the patient (DMG in 2010BA, no 2000C), claim-level and line-level DTP*472, ICD-9 BK/BF,
    an other-payer loop (2320/2330) ignored; before issue 24 the set was refused."""
    batch = read_x12(FIXTURES / "837p_4010_subscriber_patient.dat")
    assert batch.rejected == [] and batch.skipped == []
    claims = batch.claims
    assert claims["claim_id"].tolist() == ["OLD-1", "OLD-2", "OLD-1", "OLD-3"]
    # OLD-3's subscriber loop has no DMG, N3 or N4 (situational in the guide): it lands with them null
    assert claims["patient_dob"].tolist()[:3] == [pd.Timestamp("1960-01-01")] * 3
    assert pd.isna(claims["patient_dob"].iloc[3]) and claims["patient_sex"].iloc[3] is None
    assert claims["service_date"].tolist() == [pd.Timestamp(d) for d in (
        "2007-02-15", "2007-02-16", "2007-02-15", "2007-02-20")]
    assert claims["icd10_primary"].tolist() == ["401.9", "784.0", "401.9", "V70.0"]  # BK after BF
    assert claims["payer_id"].tolist() == ["60054"] * 4  # not the other payer of loop 2330B
    # the replacement is version 2 by arrival (REF*D9*TRACE-99 is a trace number, never a version)
    assert claims["claim_version"].tolist() == [1, 1, 2, 1]


def test_versions_count_across_files_and_follow_ref_f8() -> None:
    versions = ClaimVersions(latest={"OLD-1": 3}, payer_claims={"PCN-OLD-1": "OLD-1"})
    batch = read_x12(FIXTURES / "837p_4010_subscriber_patient.dat", versions=versions)
    assert batch.claims["claim_version"].tolist() == [1, 1, 4, 1]
    assert versions.assign("NEW-NUMBER", "7", "PCN-OLD-1") == ("OLD-1", 5)


@pytest.mark.parametrize("name", ["remit.dat", "remit.rmt", "remit.era", "claims.837i", "REMIT20250601", "x.out"])
def test_any_name_whose_content_starts_with_isa_is_x12(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes((FIXTURES / "835_public_shapes.rmt").read_bytes())
    assert landing.is_x12_name(path)
    (tmp_path / "notes.out").write_text("claim_id,payer\n1,2\n")
    assert not landing.is_x12_name(tmp_path / "notes.out")
