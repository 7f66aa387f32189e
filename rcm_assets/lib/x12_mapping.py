"""Where each registry column comes from in X12 837P/837I claims and 835 remittances, declared as data.

This module is the mapping specification that `x12.py` reads with and that the synthetic generator writes
against: the code tables below (plan types, facility types, claim frequencies, diagnosis qualifiers, the
eligibility convention) are imported by both, and `MAPPING` states loop, segment, element and qualifier of
every registry source column. `docs/X12_MAPPING.md` is generated from it by `mapping_markdown()` (a test
checks the file is up to date):

    python -m rcm_assets.lib.x12_mapping > docs/X12_MAPPING.md

Pure data and string formatting: no Dagster, no I/O.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from rcm_assets.lib.columns import source_column_names

# --------------------------------------------------------------------------------------------------
# Code tables shared by the reader and the generator
# --------------------------------------------------------------------------------------------------

# SBR09 claim filing indicator -> plan_type. Anything else is kept as sent (silver rejects it naming plan_type).
PLAN_TYPE_BY_FILING_CODE: dict[str, str] = {
    "CI": "commercial", "BL": "commercial", "HM": "commercial",
    "MA": "medicare", "MB": "medicare",
    "MC": "medicaid",
    "09": "self_pay", "ZZ": "self_pay",
}

# 837I CLM05-1 is the facility type code (first two digits of the UB-04 type of bill), not a place of
# service; these map to the CMS place-of-service code of the same setting. Unknown codes are kept as sent.
POS_BY_FACILITY_TYPE: dict[str, str] = {
    "11": "21",  # hospital inpatient -> inpatient hospital
    "12": "21",  # hospital inpatient, Part B only -> inpatient hospital
    "13": "22",  # hospital outpatient -> on campus outpatient hospital
    "18": "31",  # hospital swing bed -> skilled nursing facility
    "21": "31",  # skilled nursing inpatient -> skilled nursing facility
    "22": "31",  # skilled nursing, Part B -> skilled nursing facility
    "83": "24",  # ambulatory surgery center -> ambulatory surgical center
    "85": "21",  # critical access hospital -> inpatient hospital
    "86": "51",  # residential facility -> inpatient psychiatric facility
}

# CLM05-3 claim frequency type code.
FREQUENCY_ORIGINAL = "1"
FREQUENCY_REPLACEMENT = "7"  # a corrected claim: a new version
FREQUENCY_VOID = "8"  # cancels a prior claim: no row, counted in X12Batch.voids

# HI composite qualifiers: principal diagnosis and other diagnoses (5010 ABK/ABF, 4010 BK/BF).
PRINCIPAL_DIAGNOSIS_QUALIFIERS = ("ABK", "BK")
OTHER_DIAGNOSIS_QUALIFIERS = ("ABF", "BF")
DIAGNOSIS_QUALIFIERS = PRINCIPAL_DIAGNOSIS_QUALIFIERS + OTHER_DIAGNOSIS_QUALIFIERS

# Our convention for eligibility, which the 837 does not carry: a K3 segment in loop 2300 whose K301 is
# one of these. With ':' as the component separator a writer may split it (K3*ELIG-VERIFIED:Y parses as
# two components); the reader joins K301's components with ':' before comparing, so both spellings read.
ELIGIBILITY_K3: dict[str, bool] = {"ELIG-VERIFIED:Y": True, "ELIG-VERIFIED:N": False}

# 835
DENIED_CLAIM_STATUS = "4"  # CLP02 (the full rule: lib/remittance_status.py)
ALLOWED_AMOUNT_QUALIFIER = "AU"  # AMT01 in loop 2100: coverage (allowed) amount
PROCESS_DATE_QUALIFIER = "009"  # DTM01 in loop 2100: claim process date (our convention, see MAPPING)
SERVICE_DATE_QUALIFIER = "472"  # DTP01 of a service line
STATEMENT_DATES_QUALIFIER = "434"  # DTP01 of 837I loop 2300 statement from-through dates
REMARK_CODE_QUALIFIER = "HE"  # LQ01 of 835 loop 2110: remittance advice remark code

# Implementation guides the reader recognises (GS08, or ST03 in 5010) -> 837 variant.
PROFESSIONAL_GUIDES = ("005010X222", "004010X098")
INSTITUTIONAL_GUIDES = ("005010X223", "004010X096")


# --------------------------------------------------------------------------------------------------
# The mapping
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldMapping:
    """Where one registry column comes from in one kind of transaction set."""

    table: str  # registry table: claims | remittances
    column: str  # registry column
    transaction: str  # 837 (P and I) | 837P | 837I | 835
    loop: str  # X12 loop id, e.g. 2300; "GS" / "BHT" for envelope and header
    segment: str  # segment id, e.g. CLM
    element: str  # reference designator, e.g. CLM05-3 ("+" joins several)
    qualifier: str  # the qualifier that selects the segment, e.g. NM101=IL ("" when none)
    note: str  # conversion and fallbacks, in plain words


def _m(table: str, column: str, transaction: str, loop: str, segment: str, element: str, qualifier: str,
       note: str) -> FieldMapping:
    return FieldMapping(table, column, transaction, loop, segment, element, qualifier, note)


_TIME = ("local time of the sender, converted to naive UTC with facility_tz (nonexistent times move to the "
         "first instant after the gap, ambiguous ones read as daylight time); HHMM, HHMMSS and HHMMSSDD read, "
         "seconds kept")
_PLANS = ", ".join(f"{k}->{v}" for k, v in PLAN_TYPE_BY_FILING_CODE.items())
_FACILITY = ", ".join(f"{k}->{v}" for k, v in POS_BY_FACILITY_TYPE.items())

MAPPING: tuple[FieldMapping, ...] = (
    # ---- 837 claims: one row per CLM (loop 2300)
    _m("claims", "claim_id", "837", "2300", "CLM", "CLM01", "",
       "patient control number as sent"),
    _m("claims", "claim_version", "837", "2300", "CLM + REF", "CLM05-3; REF02", "REF01=F8",
       "by arrival order (x12.ClaimVersions): frequency 7 (replacement) -> one more than the latest version of "
       "the claim seen so far (2 when none is known), any other code (or none) -> 1; a replacement whose "
       "CLM01 is unknown joins the claim whose payer claim control number (835 CLP07) its REF*F8 names; "
       "REF*D9 is a clearinghouse trace number, never a version; 8 (void) -> no row, counted in X12Batch.voids"),
    _m("claims", "member_id", "837", "2010BA", "NM1", "NM109", "NM101=IL",
       "subscriber's member id (PHI, bronze only)"),
    _m("claims", "patient_name", "837", "2010CA / 2010BA", "NM1", "NM104 + ' ' + NM103", "NM101=QC / NM101=IL",
       "the patient: the dependent (2010CA NM1*QC) when the claim sits under an HL 23, else the subscriber; "
       "first name then last name (PHI, bronze only)"),
    _m("claims", "patient_dob", "837", "2010CA / 2010BA", "DMG", "DMG02", "DMG01=D8",
       "the patient's loop (as patient_name); CCYYMMDD; unreadable -> null (silver rejects the row)"),
    _m("claims", "patient_address", "837", "2010CA / 2010BA", "N3", "N301 + ' ' + N302", "",
       "the patient's loop; N302 appended when present (PHI, bronze only)"),
    _m("claims", "patient_zip", "837", "2010CA / 2010BA", "N4", "N403", "",
       "the patient's loop; 9 digits -> NNNNN-NNNN, 5 digits as sent (PHI, bronze only)"),
    _m("claims", "patient_sex", "837", "2010CA / 2010BA", "DMG", "DMG03", "",
       "F, M or U as sent"),
    _m("claims", "payer_id", "837", "2010BB", "NM1", "NM109", "NM101=PR",
       "payer identifier as sent"),
    _m("claims", "plan_type", "837", "2000B", "SBR", "SBR09", "",
       f"claim filing indicator: {_PLANS}; any other code kept as sent (silver rejects it naming plan_type)"),
    _m("claims", "billing_npi", "837", "2010AA", "NM1", "NM109", "NM101=85",
       "billing provider identifier (an NPI when NM108=XX)"),
    _m("claims", "rendering_npi", "837P", "2310B", "NM1", "NM109", "NM101=82",
       "claim-level rendering provider; absent -> the billing NPI"),
    _m("claims", "rendering_npi", "837I", "2310A", "NM1", "NM109", "NM101=71",
       "attending provider; absent -> the billing NPI"),
    _m("claims", "place_of_service", "837P", "2300", "CLM", "CLM05-1", "",
       "place of service code as sent"),
    _m("claims", "place_of_service", "837I", "2300", "CLM", "CLM05-1", "",
       f"facility type code mapped to a place of service: {_FACILITY}; unknown codes kept as sent"),
    _m("claims", "cpt_code", "837P", "2400 (first LX)", "SV1", "SV101-2", "SV101-1=HC",
       "procedure code of the first service line"),
    _m("claims", "cpt_code", "837I", "2400 (first LX)", "SV2", "SV202-2", "SV202-1=HC",
       "procedure code of the first service line (a line without a HCPCS code, e.g. room and board, "
       "gives null and silver rejects the row)"),
    _m("claims", "modifiers", "837P", "2400 (first LX)", "SV1", "SV101-3..SV101-6", "",
       "modifiers joined with ',' in order; null when none"),
    _m("claims", "modifiers", "837I", "2400 (first LX)", "SV2", "SV202-3..SV202-6", "",
       "modifiers joined with ',' in order; null when none"),
    _m("claims", "units", "837P", "2400 (first LX)", "SV1", "SV104", "",
       "whole number; a fraction is rounded up (0.5 unit -> 1)"),
    _m("claims", "units", "837I", "2400 (first LX)", "SV2", "SV205", "",
       "whole number; a fraction is rounded up"),
    _m("claims", "icd10_primary", "837", "2300", "HI", "HIxx-2", "HIxx-1=ABK (4010: BK)",
       "principal diagnosis; a '.' inserted after the 3rd character when longer than 3 (Z3A39 -> Z3A.39)"),
    _m("claims", "icd10_count", "837", "2300", "HI", "HIxx-1", "ABK, ABF (4010: BK, BF)",
       "number of diagnosis codes in all HI segments of the claim (admitting, reason-for-visit, external "
       "cause and other HI qualifiers are not counted)"),
    _m("claims", "billed_amount", "837", "2300", "CLM", "CLM02", "",
       "total claim charge"),
    _m("claims", "service_date", "837", "2400 (first LX)", "DTP", "DTP03", "DTP01=472",
       "D8 date, or the start of an RD8 range; when the first line has none: DTP*472 of loop 2300 (4010), "
       "then 837I DTP*434 statement dates (start)"),
    _m("claims", "submitted_at", "837", "BHT", "BHT", "BHT04 + BHT05", "",
       "creation date and time of the claim's transaction set; " + _TIME),
    _m("claims", "prior_auth_number", "837", "2300", "REF", "REF02", "REF01=G1",
       "prior authorization number; null when absent"),
    _m("claims", "eligibility_verified", "837", "2300", "K3", "K301", "",
       "our convention, not part of the 837: 'ELIG-VERIFIED:Y' -> true, 'ELIG-VERIFIED:N' -> false; "
       "missing -> false, counted in X12Batch.eligibility_unknown"),
    _m("claims", "updated_at", "837", "GS", "GS", "GS04 + GS05", "",
       "creation date and time of the claim's functional group (when the row reached us); " + _TIME),
    # ---- 835 remittances: one row per CLP (loop 2100)
    _m("remittances", "claim_id", "835", "2100", "CLP", "CLP01", "",
       "patient control number, as CLM01 of the claim"),
    _m("remittances", "claim_status", "835", "2100", "CLP + CAS", "CLP02; CLP03; CLP04; CAS01-CAS19; AMT02", "AMT01=AU",
       "remittance_status.classify_remittance (the table in docs/X12.md): 22 -> reversed; 4 -> denied; $0 paid "
       "under 1/2/3/19/20/21 with CO/PI/OA adjustments and no PR -> denied; paid > 0 and < charge with CO/PI "
       "beyond the contractual CARC 45/253, or paid > 0 and < AMT*AU -> partial; else paid"),
    _m("remittances", "paid_amount", "835", "2100", "CLP", "CLP04", "",
       "claim payment amount; a reversal's (negative) amount is stored as its magnitude; unreadable -> null "
       "(silver rejects the row)"),
    _m("remittances", "allowed_amount", "835", "2100", "AMT", "AMT02", "AMT01=AU",
       "coverage (allowed) amount; when absent: 0 for denials, else CLP04"),
    _m("remittances", "carc_code", "835", "2100 and 2110", "CAS", "CAS02, CAS05, ..., CAS17", "",
       "the CARC with the largest CO/PI amount summed over claim and service-line level (ties: the first seen); "
       "without CO/PI, the largest OA, then PR, then CR; bare code, no group prefix; null when no CAS"),
    _m("remittances", "cas_group", "835", "2100 and 2110", "CAS", "CAS01", "",
       "the group code of carc_code (CO, PI, OA, PR, CR)"),
    _m("remittances", "payer_claim_control_number", "835", "2100", "CLP", "CLP07", "",
       "the payer's own claim number: pairs a reversal with the payment it reverses; null when absent"),
    _m("remittances", "rarc_code", "835", "2100, then 2110", "MOA / MIA, then LQ", "MOA03 / MIA05; LQ02",
       "LQ01=HE", "MOA03 (professional) or MIA05 (institutional) first, else the first LQ*HE of a service line, "
       "else null"),
    _m("remittances", "adjudicated_at", "835", "2100, else header", "DTM, else BPR", "DTM02 + DTM03; BPR16",
       f"DTM01={PROCESS_DATE_QUALIFIER}",
       "claim process date (with DTM03 time when present), else the check/EFT effective date BPR16 at 00:00, "
       "or the group's GS04/GS05 when BPR16 lies after it (a payment dated after the ERA was produced); "
       + _TIME + ". DTM*009 and DTM03 are our convention: the 005010X221A1 guide lists only 036, 050, 232 "
       "and 233 in loop 2100 and marks DTM03 not used"),
    _m("remittances", "updated_at", "835", "GS", "GS", "GS04 + GS05", "",
       "creation date and time of the remittance's functional group; " + _TIME),
)

# Parsed and kept in X12Batch.remittance_details / X12Batch.adjustments, with no registry column yet.
UNMAPPED_835: tuple[tuple[str, str], ...] = (
    ("payer (1000A N1*PR N102, N104; REF*2U)", "X12Batch.remittance_details: payer_name, payer_id"),
    ("claim status code, charge, patient responsibility (CLP02, CLP03, CLP05)",
     "X12Batch.remittance_details"),
    ("every CAS adjustment (group code CAS01, reason, amount; claim and service-line level)",
     "X12Batch.adjustments: one row per reason/amount pair"),
)


def mapped_columns(table: str) -> list[str]:
    """Registry columns of `table` that MAPPING covers, in registry order."""
    covered = {m.column for m in MAPPING if m.table == table}
    return [c for c in source_column_names(table) if c in covered]


ACCEPTANCE_RULES: tuple[tuple[str, str], ...] = (
    ("the file is refused (X12Error)",
     "empty file; not X12 (binary or text without an ISA header); ISA truncated or malformed; IEA missing; "
     "a transaction set other than 837 or 835; data after the last IEA; with expect=, a transaction set of "
     "the other kind (an 835 where claims are expected)"),
    ("a functional group's sets are rejected (listed in X12Batch.rejected, one entry per set)",
     "GE missing, GS06 repeated (a duplicate of an earlier group)"),
    ("one transaction set is rejected (listed in X12Batch.rejected)",
     "SE02 differs from ST02, SE missing, ST02 repeated in the group, a malformed segment inside the set, an "
     "837 implementation other than professional or institutional (e.g. dental), an 835 without its BPR; an "
     "SE01 that miscounts the set while its GE or IEA trailer is wrong too (see the warnings)"),
    ("one claim lands no row (listed in X12Batch.skipped)",
     "a claim whose units (SV104 / SV205) are missing or not a number: the registry cannot hold a null there"),
    ("kept, with a warning (listed in X12Batch.warnings, naming the envelope and the segment)",
     "IEA02 differs from ISA13, IEA01 does not count the groups, GE02 differs from GS06, GE01 does not count "
     "the group's sets: the intact sets inside land (their SE trailers vouch for them); empty segments "
     "(terminators in a row) are skipped; an ST03/GS08 that names no guide (de-identified 999999X999X9) is "
     "read claim by claim, institutional when CLM05-2 is A"),
    ("kept", "every other transaction set and claim of the file; a field a claim lacks (DMG, N3/N4, SBR, payer, "
     "billing provider, diagnosis, service date, charge, CLP02/CLP04, a process date) lands as null and a value "
     "present but invalid (an unknown plan code, a bad NPI) as sent: silver flags or rejects that row naming "
     "the column; HL numbering out of order or naming a missing parent is accepted (loops are read in order by "
     "HL03); an SE01 that miscounts a set whose SE is there, in an intact envelope, is logged and the set read; "
     "an ISA12 other than 00401/00501 (de-identified samples write 99999) is read by the GS08 guide's version; "
     "a last IEA without its segment terminator is read"),
)


# --------------------------------------------------------------------------------------------------
# Documentation
# --------------------------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def mapping_markdown() -> str:
    """The text of docs/X12_MAPPING.md."""
    lines = [
        "# X12 to registry mapping",
        "",
        "Generated from `rcm_assets/lib/x12_mapping.py` by `mapping_markdown()`; do not edit by hand",
        "(`python -m rcm_assets.lib.x12_mapping > docs/X12_MAPPING.md`, a test checks it is current).",
        "The reader is `rcm_assets/lib/x12.py` (`read_x12`); the parser choice is in `docs/X12_PARSER.md`.",
        "",
        "Rows: one per claim (837 CLM, loop 2300) and one per claim payment (835 CLP, loop 2100). Dates and",
        "times in X12 are the sender's local time: the reader converts them to naive UTC with `facility_tz`",
        "(the facility's IANA zone, `RCM_FACILITY_TZ`), the same rule as the synthetic generator: a",
        "nonexistent local time (spring forward) moves to the first instant after the gap, an ambiguous one",
        "(fall back) reads as daylight time.",
        "",
    ]
    for table, title in (("claims", "837P / 837I -> `claims`"), ("remittances", "835 -> `remittances`")):
        lines += [f"## {title}", "", "| column | transaction | loop | segment | element | qualifier | note |",
                  "|---|---|---|---|---|---|---|"]
        for m in MAPPING:
            if m.table == table:
                lines.append("| " + " | ".join(_cell(x) for x in (
                    f"`{m.column}`", m.transaction, m.loop, m.segment, m.element, m.qualifier or "—", m.note)) + " |")
        lines.append("")
    lines += [
        "## Parsed from the 835 without a registry column yet",
        "",
        "The registry has no columns for these yet; `read_x12` returns them beside the remittances so that a",
        "later column can be added without re-reading files.",
        "",
        "| what | where in X12Batch |",
        "|---|---|",
    ]
    lines += [f"| {_cell(what)} | {_cell(where)} |" for what, where in UNMAPPED_835]
    lines += [
        "",
        "## What is accepted",
        "",
        "A file is accepted per transaction set: envelope damage at the interchange level refuses the file,",
        "a damaged functional group rejects its sets, a damaged transaction set rejects itself, and every",
        "other set of the same file is kept. A problem names the envelope (control numbers), the 1-based",
        "position of the segment in the file, the segment id and the problem in plain words, never a value",
        "from a claim.",
        "",
        "| outcome | when |",
        "|---|---|",
    ]
    lines += [f"| {_cell(outcome)} | {_cell(when)} |" for outcome, when in ACCEPTANCE_RULES]
    lines += [
        "",
        "## Limitations",
        "",
        "- **Eligibility is not in the 837.** `eligibility_verified` comes from our K3 convention",
        "  (`K3*ELIG-VERIFIED:Y` / `K3*ELIG-VERIFIED:N` in loop 2300). A claim without it reads as *not*",
        "  verified and is counted in `X12Batch.eligibility_unknown`: for files from a billing system that",
        "  does not write the K3, the column says nothing about eligibility and the model learns from a",
        "  constant. With ':' as the component separator the convention is not a valid K301 (a validator such",
        "  as pyx12 reports an invalid composite); the reader accepts both spellings.",
        "- **Process date in the 835.** `DTM*009` (and a time in DTM03) in loop 2100 is our convention, not in",
        "  the 005010X221A1 guide; payers' files carry BPR16, the payment's effective date, which may lie after",
        "  the file was created: then the group's creation date and time stand in, since the claim was",
        "  adjudicated before its ERA left the payer (and silver's `updated_at >= adjudicated_at` holds).",
        "- **Frequency codes.** Only 7 (replacement) makes a new version and 8 (void) removes the row; every",
        "  other frequency code (0, 2-5 interim and late-charge bills) reads as version 1.",
        "- **Reversals.** An 835 reversal (CLP02 22) lands as claim_status `reversed` with its amounts' magnitudes",
        "  and CLP07 in `payer_claim_control_number`; it is never a denial and never a reject.",
        "- **Versions across files.** `read_x12(..., versions=ClaimVersions(...))` counts replacements across",
        "  files read in arrival order; a file read alone knows only its own claims (a replacement is 2).",
        "- **First service line only.** `cpt_code`, `modifiers`, `units` and `service_date` come from LX 1;",
        "  the other lines are not read into the registry.",
        "- **Time zones.** X12 times carry no offset: a local time in the repeated hour of a fall-back night",
        "  reads as daylight time, one hour off if the sender meant standard time.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(mapping_markdown())
