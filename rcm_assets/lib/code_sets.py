"""The code sets and grammars of claim and remittance codes, each a named rule the contracts check.

Pure data plus small predicates (no Dagster). The column registry (`columns.py`) names the rules of a
column (`Column(..., rules=("icd10cm_format",))`), `contracts.py` turns each into a pandera check of the
same name, so a reject reason reads `icd10_primary:icd10cm_format` — never the failing value, which may
be PHI. Every rule has a grammar (`pattern`, a full-match regex); a closed list (`values`) or a predicate
(`predicate`, judged on values that match the grammar) narrows it where the grammar alone would let
invalid codes through. When a column has several rules, a value is reported under the first rule it
breaks (a 9-digit NPI is `npi_format`, not also `npi_check_digit`).

Decisions, with their sources:

- claim_id (`x12_claim_id`): X12 837 CLM01, patient control number, AN 1–38; we take letters, digits and
  dashes, starting with a letter or digit (`ACME-000123456-01`). Case is kept as sent.
- cpt_code (`cpt_hcpcs_code`): any HCPCS procedure code. Level I (AMA CPT): Category I `99213`,
  Category II `3074F`, Category III `0042T`, and the CPT sections with the same shape, PLA `0001U` and
  MAAA `0002M`; Level II (CMS HCPCS): one letter A–V then four digits (`J3490`). The letters F, I, N and O
  begin no HCPCS Level II section (CMS HCPCS Level II code set; sections A transport/supplies … V
  vision/hearing), so they are refused. The column keeps its name `cpt_code`.
- ICD-10-CM (`icd10cm_format`, CDC/NCHS): a letter, a digit, a letter or digit (`Z3A`,
  `M1A`, `C4A`), then optionally a '.' (or no dot: X12 sends codes without it) and 1–4 letters or digits,
  the placeholder `X` included (`S72.001A`, `T36.0X5A`, `M1A.0710`). At most 7 characters without the dot.
  Lowercase is refused: the code set is published uppercase, and two spellings of one code would be two
  categories downstream; normalize upstream.
- icd10_primary (`icd_diagnosis_code`): the principal diagnosis in either code set a claim may carry:
  ICD-10-CM (above) or ICD-9-CM (`icd9cm_format`, CDC/NCHS ICD-9-CM, the HIPAA code set for services
  before 2015-10-01): three digits (`250`, `250.00`, `25000`: 3 digits, optionally '.' and 1-2 digits),
  supplementary V codes (`V22.1`, `V221`: V, 2 digits, optionally '.' and 1-2 digits) and external-cause
  E codes (`E849.0`, `E8490`: E, 3 digits, optionally '.' and 1 digit). Which set a code is in is
  `icd_code_set`: a code only one grammar admits is in that set; a dotless code both admit (`E8490`,
  `V221`) is read in the set that was in force on its service date, since X12 tells them apart only by
  its qualifier (ABK/ABF vs BK/BF), which silver does not keep. ICD-10-CM replaced ICD-9-CM for services
  on and after 2015-10-01 (45 CFR 162.1002(c)(2)-(3); CMS, ICD-10 compliance date): `icd_set_mismatch`
  is true for an ICD-9 code on/after that date and an ICD-10 code before it. That is a claim defect, not a
  reject; ICD-9 on an older service date is correct coding.
- deleted procedure codes (`procedure_code_deleted`): what we can know without the licensed AMA CPT
  data files is a short list of codes whose deletion is published with its effective date
  (`DELETED_PROCEDURE_CODES`, each with its source); a listed code is a defect on a service date on or
  after its deletion. Any other code that matches the grammar is taken as valid: we cannot tell an
  unlisted deleted code, or a code never issued, from a valid one (the full CPT code set is licensed;
  the CMS HCPCS Level II annual file would extend the list for Level II codes).
- patient_zip (`zip_or_zip4`): USPS ZIP `02134` or ZIP+4 `02134-1705`; the 9 digits without the hyphen
  (`021341705`) are accepted too, because that is how X12 N403 carries a ZIP+4.
- billing_npi / rendering_npi (`npi_format`, `npi_check_digit`): 10 digits whose last is the Luhn check
  digit computed over the prefix 80840 and the first 9 digits (CMS, "Requirements for National Provider
  Identifier check digit").
- place_of_service (`cms_pos_code`): the CMS Place of Service code set, every code assigned today
  (27 Outreach site/street since 2023-10-01, 66 PACE center since 2024-08-01); unassigned numbers are
  refused.
- carc_code (`x12_carc_code`): the X12 Claim Adjustment Reason Codes whose status is current (list
  retrieved from x12.org, August 2026): 1–308 less the deactivated numbers, and the current A*, B* and
  P* codes. Deactivated codes (`CARC_DEACTIVATED`: e.g. 15, 42, all D*, W* and Y* codes) are refused; a
  payer may not send them after their stop date. One representation: the bare reason code as X12 CAS02
  carries it (`197`), without the group code (`CO-197` is refused) and without leading zeros; the group
  code belongs in its own column (`CAS_GROUP_CODES`, X12 CAS01), which X12 ingestion will fill.
- rarc_code (`x12_rarc_code`): the X12 Remittance Advice Remark Code grammar, `M1`–`M999`,
  `MA01`–`MA999`, `N1`–`N999` (the list grows three times a year; the grammar does not go stale).
- CAS group codes (`x12_cas_group_code`): CO, OA, PI, PR (X12 005010) and CR (corrections and
  reversals, 004010 only, kept so that older files stay readable). No column uses it yet.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class CodeRule:
    """A named validity rule of a code column: grammar, optionally a closed list or a predicate."""

    name: str  # the check name in reject reasons, e.g. "icd10cm_format"
    pattern: str  # full-match regex every valid code satisfies
    description: str
    source: str
    values: frozenset[str] | None = None  # the closed list, when the grammar lets invalid codes through
    predicate: Callable[[str], bool] | None = field(default=None, compare=False)  # on grammar matches

    def is_valid(self, code: object) -> bool:
        """One code: a str that matches the grammar, is listed (if there is a list) and passes the predicate."""
        if not isinstance(code, str) or re.fullmatch(self.pattern, code) is None:
            return False
        if self.values is not None and code not in self.values:
            return False
        return self.predicate is None or bool(self.predicate(code))

    def valid(self, codes: pd.Series) -> pd.Series:
        """Element-wise `is_valid` of a column (vectorised; the predicate runs once per distinct value).

        Nulls are True: whether a column may be null is the contract's `not_nullable` check, not a rule's.
        """
        values = codes.astype("object")
        present = values.notna()
        is_str = values.map(lambda v: isinstance(v, str))
        text = values.where(is_str, "")
        ok = is_str & text.str.fullmatch(self.pattern).fillna(False).astype(bool)
        if self.values is not None:
            ok &= text.isin(self.values)
        if self.predicate is not None:
            verdict = {v: bool(self.predicate(v)) for v in pd.unique(text[ok])}
            ok &= text.map(lambda v: verdict.get(v, False)).astype(bool)
        return (ok | ~present).astype(bool)


# --------------------------------------------------------------------------------------------------
# claims
# --------------------------------------------------------------------------------------------------

CLAIM_ID = CodeRule(
    "x12_claim_id", r"[A-Za-z0-9][A-Za-z0-9-]{0,37}",
    "claim number as X12 CLM01 carries it: 1-38 letters, digits or dashes, not starting with a dash",
    "ASC X12 005010X222A1 / X223A2, CLM01 patient control number (AN 1-38)",
)

# First letters of HCPCS Level II sections; F, I, N and O begin none.
HCPCS_LEVEL2_LETTERS = "ABCDEGHJKLMPQRSTUV"
CPT_HCPCS = CodeRule(
    "cpt_hcpcs_code", rf"\d{{5}}|\d{{4}}[FTUM]|[{HCPCS_LEVEL2_LETTERS}]\d{{4}}",
    "HCPCS procedure code: CPT Category I (5 digits), Category II (4 digits + F), Category III (4 digits + T), "
    "PLA (4 digits + U), MAAA (4 digits + M), or HCPCS Level II (a section letter A-V + 4 digits)",
    "AMA CPT code set; CMS HCPCS Level II code set (sections A-V; F, I, N, O unused)",
)

ICD10CM = CodeRule(
    "icd10cm_format", r"[A-Z][0-9][0-9A-Z](?:\.?[0-9A-Z]{1,4})?",
    "ICD-10-CM code: letter, digit, letter or digit, then optionally '.' and 1-4 letters or digits "
    "(placeholder X included); uppercase",
    "CDC/NCHS ICD-10-CM tabular list and official guidelines (codes of 3 to 7 characters)",
)

ICD9CM = CodeRule(
    "icd9cm_format", r"\d{3}(?:\.?\d{1,2})?|V\d{2}(?:\.?\d{1,2})?|E\d{3}(?:\.?\d)?",
    "ICD-9-CM diagnosis code: 3 digits (then optionally '.' and 1-2 digits), V + 2 digits (then optionally "
    "'.' and 1-2 digits) or E + 3 digits (then optionally '.' and 1 digit)",
    "CDC/NCHS ICD-9-CM tabular list (diagnoses, V and E supplementary classifications)",
)

ICD_DIAGNOSIS = CodeRule(
    "icd_diagnosis_code", f"{ICD10CM.pattern}|{ICD9CM.pattern}",
    "a diagnosis code of ICD-10-CM or ICD-9-CM (which one must match the service date: `icd_code_set`)",
    "CDC/NCHS ICD-10-CM and ICD-9-CM; 45 CFR 162.1002",
)

# ICD-10-CM is the HIPAA code set for diagnoses on services from this date on (ICD-9-CM before it).
ICD10_EFFECTIVE = pd.Timestamp("2015-10-01")
ICD10, ICD9 = "icd10", "icd9"


def icd_code_set(codes: pd.Series, service_dates: pd.Series) -> pd.Series:
    """'icd10' | 'icd9' | None per row: the code set of each diagnosis code (None: missing or neither
    grammar). A code both grammars admit (dotless V/E codes) is read in the set in force on its date."""
    # judged once per distinct code (codes repeat), then spread to the rows
    index, uniques = pd.factorize(codes.astype("object"), use_na_sentinel=True)
    distinct = pd.Series(uniques, dtype="object")
    in10 = np.append(ICD10CM.valid(distinct).to_numpy(dtype=bool), False)[index]  # -1 (null) -> False
    in9 = np.append(ICD9CM.valid(distinct).to_numpy(dtype=bool), False)[index]
    dated10 = (pd.to_datetime(service_dates) >= ICD10_EFFECTIVE).to_numpy(dtype=bool)
    out = np.full(len(codes), None, dtype="object")
    out[in9 & ~in10] = ICD9
    out[in10 & ~in9] = ICD10
    both = in9 & in10
    out[both & dated10] = ICD10
    out[both & ~dated10] = ICD9
    return pd.Series(out, index=codes.index, dtype="object")


def icd_set_mismatch(code_set: pd.Series, service_dates: pd.Series) -> pd.Series:
    """True where the code set does not match the service date (ICD-9 from 2015-10-01, ICD-10 before);
    False where it matches or no code set is known (a missing or unparsable code is judged by its rule)."""
    dated10 = (pd.to_datetime(service_dates) >= ICD10_EFFECTIVE).to_numpy()
    is9, is10 = code_set.eq(ICD9).to_numpy(), code_set.eq(ICD10).to_numpy()
    return pd.Series((is9 & dated10) | (is10 & ~dated10), index=code_set.index, dtype="bool")


# Procedure codes deleted from the code set, with the first service date on which they are invalid.
# Only deletions we can cite; see the module docstring for what the list cannot know.
_AMA_EM_2021 = "AMA, CPT 2021 E/M office or other outpatient services revisions (99201 deleted 2021-01-01)"
_AMA_EM_2023 = ("AMA, CPT 2023 E/M revisions: hospital observation, consultation, nursing facility and "
                "home/domiciliary families (codes deleted 2023-01-01)")
_CMS_PFS_2017 = ("CMS CY 2017 Physician Fee Schedule final rule: screening/diagnostic mammography "
                 "77055-77057 and G0202/G0204/G0206 replaced by 77065-77067 from 2017-01-01")
DELETED_PROCEDURE_CODES: dict[str, tuple[str, str]] = {
    "99201": ("2021-01-01", _AMA_EM_2021),
    **{c: ("2023-01-01", _AMA_EM_2023) for c in (
        "99217", "99218", "99219", "99220", "99224", "99225", "99226",  # observation care
        "99241", "99251",  # lowest office and inpatient consultation levels
        "99318",  # annual nursing facility assessment
        "99324", "99325", "99326", "99327", "99328", "99334", "99335", "99336", "99337",  # domiciliary
        "99339", "99340",  # care plan oversight, domiciliary/home
        "99343",  # home visit, new patient, moderate MDM
    )},
    **{c: ("2017-01-01", _CMS_PFS_2017) for c in ("77055", "77056", "77057", "G0202", "G0204", "G0206")},
}


def procedure_code_deleted(codes: pd.Series, service_dates: pd.Series) -> pd.Series:
    """True where the procedure code is in `DELETED_PROCEDURE_CODES` and the service date is on or after
    its deletion (the same code on an earlier date was valid)."""
    since = pd.to_datetime(codes.astype("object").map(
        {code: when for code, (when, _source) in DELETED_PROCEDURE_CODES.items()}), errors="coerce")
    return (since.notna() & (pd.to_datetime(service_dates) >= since)).astype("bool")


ZIP_OR_ZIP4 = CodeRule(
    "zip_or_zip4", r"\d{5}(?:-?\d{4})?",
    "USPS ZIP (5 digits) or ZIP+4 (02134-1705, or 021341705 as X12 N403 carries it)",
    "USPS Publication 28; ASC X12 N403 postal code",
)

NPI_FORMAT = CodeRule(
    "npi_format", r"\d{10}", "National Provider Identifier: 10 digits",
    "45 CFR 162.406; CMS NPI standard",
)


def npi_check_digit_ok(npi: str) -> bool:
    """Luhn check of a 10-digit NPI over the card-issuer prefix 80840 (constant 24 in the CMS method)."""
    if re.fullmatch(r"\d{10}", npi) is None:
        return False
    total = 24
    for i, ch in enumerate(reversed(npi[:9])):  # double every other digit from the rightmost of the 9
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d // 10 + d % 10
    return (10 - total % 10) % 10 == int(npi[9])


NPI_CHECK_DIGIT = CodeRule(
    "npi_check_digit", r"\d{10}",
    "the 10th digit of the NPI is the Luhn check digit of 80840 + its first 9 digits",
    "CMS, Requirements for National Provider Identifier (NPI) and NPI Enumerator check digit (ISO 7812)",
    predicate=npi_check_digit_ok,
)

# CMS Place of Service code set: every code assigned today (unassigned: 28-30, 35-40, 43-48, 59, 63, 64,
# 67-70, 73-80, 82-98).
PLACE_OF_SERVICE_CODES: dict[str, str] = {
    "01": "Pharmacy", "02": "Telehealth provided other than in patient's home", "03": "School",
    "04": "Homeless shelter", "05": "Indian Health Service free-standing facility",
    "06": "Indian Health Service provider-based facility", "07": "Tribal 638 free-standing facility",
    "08": "Tribal 638 provider-based facility", "09": "Prison/correctional facility",
    "10": "Telehealth provided in patient's home", "11": "Office", "12": "Home",
    "13": "Assisted living facility", "14": "Group home", "15": "Mobile unit", "16": "Temporary lodging",
    "17": "Walk-in retail health clinic", "18": "Place of employment/worksite",
    "19": "Off campus-outpatient hospital", "20": "Urgent care facility", "21": "Inpatient hospital",
    "22": "On campus-outpatient hospital", "23": "Emergency room-hospital", "24": "Ambulatory surgical center",
    "25": "Birthing center", "26": "Military treatment facility", "27": "Outreach site/street",
    "31": "Skilled nursing facility", "32": "Nursing facility", "33": "Custodial care facility",
    "34": "Hospice", "41": "Ambulance-land", "42": "Ambulance-air or water", "49": "Independent clinic",
    "50": "Federally qualified health center", "51": "Inpatient psychiatric facility",
    "52": "Psychiatric facility-partial hospitalization", "53": "Community mental health center",
    "54": "Intermediate care facility/individuals with intellectual disabilities",
    "55": "Residential substance abuse treatment facility", "56": "Psychiatric residential treatment center",
    "57": "Non-residential substance abuse treatment facility", "58": "Non-residential opioid treatment facility",
    "60": "Mass immunization center", "61": "Comprehensive inpatient rehabilitation facility",
    "62": "Comprehensive outpatient rehabilitation facility", "65": "End-stage renal disease treatment facility",
    "66": "Programs of All-Inclusive Care for the Elderly (PACE) center", "71": "Public health clinic",
    "72": "Rural health clinic", "81": "Independent laboratory", "99": "Other place of service",
}
PLACE_OF_SERVICE = CodeRule(
    "cms_pos_code", r"\d{2}", "a place-of-service code assigned in the CMS code set",
    "CMS Place of Service Code Set (POS 27 eff. 2023-10-01, POS 66 eff. 2024-08-01)",
    values=frozenset(PLACE_OF_SERVICE_CODES),
)

# --------------------------------------------------------------------------------------------------
# remittances (X12 835)
# --------------------------------------------------------------------------------------------------


def _numbers(values: Iterable[int]) -> frozenset[str]:
    return frozenset(str(v) for v in values)


def _prefixed(prefix: str, numbers: Iterable[int]) -> frozenset[str]:
    return frozenset(f"{prefix}{n}" for n in numbers)


CARC_MAX_NUMBER = 308  # highest numeric CARC in the list this set was taken from
_CARC_NUMBERS_DEACTIVATED = _numbers((
    15, 17, 25, 28, 30, 36, 37, 38, 41, 42, 43, 46, 47, 48, 52, 57, 62, 63, 64, 65, 67, 68, 71, 72, 73, 77,
    79, 80, 81, 82, 83, 84, 86, 87, 88, 92, 93, 98, 99, 113, 120, 123, 124, 125, 126, 127, 138, 141, 145,
    156, 162, 165, 168, 191, 196, 214, 217, 218, 220, 221, 230, 244, 255,
))
CARC_DEACTIVATED: frozenset[str] = (
    _CARC_NUMBERS_DEACTIVATED
    | frozenset({"A2", "A3", "A4", "A7", "B2", "B3", "B5", "B6", "B17", "B18", "B19", "B21"})
    | _prefixed("D", range(1, 24)) | _prefixed("W", range(1, 10)) | _prefixed("Y", range(1, 4))
)
CARC_CODES: frozenset[str] = (
    (_numbers(range(1, CARC_MAX_NUMBER + 1)) - _CARC_NUMBERS_DEACTIVATED)
    | frozenset({"A0", "A1", "A5", "A6", "A8", "B1", "B4", "B7", "B8", "B9"})
    | _prefixed("B", (10, 11, 12, 13, 14, 15, 16, 20, 22, 23))
    | _prefixed("P", range(1, 33))
)
# Deactivated codes are accepted too: a remittance from before a code's deactivation carries it rightly,
# and payers keep sending a retired code for a while; rejecting them would block whole days.
CARC = CodeRule(
    "x12_carc_code", r"[1-9]\d{0,2}|[ABDPWY][0-9]{1,2}",
    "an X12 claim adjustment reason code, current or deactivated, bare (as CAS02: '197', not 'CO-197')",
    "X12 external code list 139, Claim Adjustment Reason Codes (every published code, retrieved August 2026)",
    values=CARC_CODES | CARC_DEACTIVATED,
)

RARC = CodeRule(
    "x12_rarc_code", r"M[1-9]\d{0,2}|MA\d{2,3}|N[1-9]\d{0,2}",
    "an X12 remittance advice remark code: M1-M999, MA01-MA999 or N1-N999",
    "X12 external code list 411, Remittance Advice Remark Codes",
)

# X12 CAS01 claim adjustment group codes.
CAS_GROUP_CODES: dict[str, str] = {
    "CO": "Contractual obligations",
    "OA": "Other adjustments",
    "PI": "Payor initiated reductions",
    "PR": "Patient responsibility",
    "CR": "Corrections and reversals (004010 only; not in 005010)",
}
CAS_GROUP = CodeRule(
    "x12_cas_group_code", r"[A-Z]{2}", "an X12 claim adjustment group code (CAS01)",
    "ASC X12 835 005010X221A1, CAS01 claim adjustment group code",
    values=frozenset(CAS_GROUP_CODES),
)

# --------------------------------------------------------------------------------------------------
# the rules by name (what the column registry refers to)
# --------------------------------------------------------------------------------------------------

RULES: dict[str, CodeRule] = {r.name: r for r in (
    CLAIM_ID, CPT_HCPCS, ICD10CM, ICD9CM, ICD_DIAGNOSIS, ZIP_OR_ZIP4, NPI_FORMAT, NPI_CHECK_DIGIT, PLACE_OF_SERVICE, CARC, RARC,
    CAS_GROUP,
)}


def rule(name: str) -> CodeRule:
    """The rule called `name`; KeyError naming the known rules otherwise."""
    try:
        return RULES[name]
    except KeyError:
        raise KeyError(f"unknown code rule {name!r}; known: {sorted(RULES)}") from None


__all__ = [
    "CARC_CODES",
    "CARC_DEACTIVATED",
    "CAS_GROUP_CODES",
    "DELETED_PROCEDURE_CODES",
    "ICD10_EFFECTIVE",
    "HCPCS_LEVEL2_LETTERS",
    "PLACE_OF_SERVICE_CODES",
    "RULES",
    "CodeRule",
    "icd_code_set",
    "icd_set_mismatch",
    "npi_check_digit_ok",
    "procedure_code_deleted",
    "rule",
]
