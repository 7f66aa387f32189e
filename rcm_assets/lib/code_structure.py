"""What the public structure of a code says about it, with no table from anyone: the CPT/HCPCS section of a
procedure code and the chapter of a diagnosis code.

The features need a coarse procedure category and diagnosis chapter for every claim, including codes no
hospital table lists (thousands of codes, new ones every quarter). The code sets themselves are
structured: CPT Category I sections are ranges of the five-digit number (AMA CPT, "Sections": E/M
99202-99499, anesthesia 00100-01999, surgery 10004-69990, radiology 70010-79999, pathology and laboratory
80047-89398, medicine 90281-99199 and 99500-99607), Category II ends in F, Category III in T, PLA in U;
HCPCS Level II sections are named by their first letter (CMS). ICD-10-CM chapters are ranges of the
three-character category (CDC/NCHS tabular list); ICD-9-CM chapters are ranges of the three-digit
category, V codes (supplementary factors) and E codes (external causes).

Pure data and lookups; nothing here knows a payer's policy or a denial rate.
"""

from __future__ import annotations

import re

UNKNOWN = "unknown"

# --------------------------------------------------------------------------------------------------
# CPT / HCPCS sections
# --------------------------------------------------------------------------------------------------

# CPT Category I: (first, last, section) over the five-digit number
CPT_CATEGORY_I_RANGES: tuple[tuple[int, int, str], ...] = (
    (100, 1999, "anesthesia"),
    (10004, 69990, "surgery"),
    (70010, 79999, "radiology"),
    (80047, 89398, "pathology_lab"),
    (90281, 99199, "medicine"),
    (99202, 99499, "evaluation_management"),
    (99500, 99607, "medicine"),
)
# HCPCS Level II sections by first letter (CMS HCPCS Level II code set)
HCPCS_LEVEL_II_SECTIONS: dict[str, str] = {
    "A": "hcpcs_transport_supplies", "B": "hcpcs_enteral_parenteral", "C": "hcpcs_outpatient_pps",
    "D": "hcpcs_dental", "E": "hcpcs_dme", "G": "hcpcs_procedures_professional", "H": "hcpcs_behavioral_health",
    "J": "hcpcs_drugs", "K": "hcpcs_dme_temporary", "L": "hcpcs_orthotics_prosthetics",
    "M": "hcpcs_other_medical", "P": "hcpcs_pathology_lab", "Q": "hcpcs_temporary", "R": "hcpcs_radiology",
    "S": "hcpcs_private_payer", "T": "hcpcs_state_medicaid", "U": "hcpcs_laboratory_covid",
    "V": "hcpcs_vision_hearing",
}
CPT_OTHER_SECTIONS: dict[str, str] = {
    "F": "cpt_category_ii", "T": "cpt_category_iii", "U": "cpt_pla", "M": "cpt_maaa",
}
PROCEDURE_SECTIONS: tuple[str, ...] = (
    *dict.fromkeys(s for _, _, s in CPT_CATEGORY_I_RANGES), *CPT_OTHER_SECTIONS.values(),
    *HCPCS_LEVEL_II_SECTIONS.values(), "cpt_unassigned",
)
_FIVE_DIGITS = re.compile(r"\d{5}")
_FOUR_DIGITS_LETTER = re.compile(r"\d{4}[A-Z]")
_HCPCS_II = re.compile(r"[A-Z]\d{4}")


def procedure_section(code: object) -> str:
    """The public section of a CPT or HCPCS Level II code ("radiology", "hcpcs_drugs", …); "unknown" for a
    missing or malformed code, "cpt_unassigned" for a five-digit number outside every section."""
    if not isinstance(code, str):
        return UNKNOWN
    c = code.strip().upper()
    if _FIVE_DIGITS.fullmatch(c):
        n = int(c)
        for first, last, section in CPT_CATEGORY_I_RANGES:
            if first <= n <= last:
                return section
        return "cpt_unassigned"
    if _FOUR_DIGITS_LETTER.fullmatch(c):
        return CPT_OTHER_SECTIONS.get(c[-1], UNKNOWN)
    if _HCPCS_II.fullmatch(c):
        return HCPCS_LEVEL_II_SECTIONS.get(c[0], UNKNOWN)
    return UNKNOWN


# --------------------------------------------------------------------------------------------------
# ICD chapters (ICD-10-CM and ICD-9-CM map to the same chapter keys)
# --------------------------------------------------------------------------------------------------

# chapter key -> (first category, last category); categories compare as "<letter><digit><digit|letter>"
ICD10_CHAPTER_RANGES: dict[str, tuple[str, str]] = {
    "infectious": ("A00", "B99"), "neoplasm": ("C00", "D49"), "blood": ("D50", "D89"),
    "endocrine": ("E00", "E89"), "mental": ("F01", "F99"), "nervous": ("G00", "G99"), "eye": ("H00", "H59"),
    "ear": ("H60", "H95"), "circulatory": ("I00", "I99"), "respiratory": ("J00", "J99"),
    "digestive": ("K00", "K95"), "skin": ("L00", "L99"), "musculoskeletal": ("M00", "M99"),
    "genitourinary": ("N00", "N99"), "pregnancy": ("O00", "O9A"), "perinatal": ("P00", "P96"),
    "congenital": ("Q00", "Q99"), "symptoms": ("R00", "R99"), "injury": ("S00", "T88"),
    "special": ("U00", "U85"), "external": ("V00", "Y99"), "factors": ("Z00", "Z99"),
}
# ICD-9-CM chapters over the three-digit category (V and E codes apart)
ICD9_CHAPTER_RANGES: tuple[tuple[int, int, str], ...] = (
    (1, 139, "infectious"), (140, 239, "neoplasm"), (240, 279, "endocrine"), (280, 289, "blood"),
    (290, 319, "mental"), (320, 359, "nervous"), (360, 379, "eye"), (380, 389, "ear"),
    (390, 459, "circulatory"), (460, 519, "respiratory"), (520, 579, "digestive"), (580, 629, "genitourinary"),
    (630, 679, "pregnancy"), (680, 709, "skin"), (710, 739, "musculoskeletal"), (740, 759, "congenital"),
    (760, 779, "perinatal"), (780, 799, "symptoms"), (800, 999, "injury"),
)
ICD_CHAPTERS: tuple[str, ...] = tuple(ICD10_CHAPTER_RANGES)
_ICD10 = re.compile(r"[A-Z]\d[0-9A-Z](\.?[0-9A-Z]{1,4})?")
_ICD9_NUMERIC = re.compile(r"\d{3}(\.?\d{1,2})?")
_ICD9_V = re.compile(r"V\d{2}(\.?\d{1,2})?")
_ICD9_E = re.compile(r"E[89]\d{2}(\.?\d)?")
_ICD9_E_DOTTED = re.compile(r"E[89]\d{2}\.\d")


def icd10_chapter(code: str) -> str:
    category = code[:3]
    for chapter, (first, last) in ICD10_CHAPTER_RANGES.items():
        if first <= category <= last:
            return chapter
    return UNKNOWN


def icd9_chapter(code: str) -> str:
    if _ICD9_V.fullmatch(code):
        return "factors"
    if _ICD9_E.fullmatch(code):
        return "external"
    if not _ICD9_NUMERIC.fullmatch(code):
        return UNKNOWN
    n = int(code[:3])
    return next((chapter for first, last, chapter in ICD9_CHAPTER_RANGES if first <= n <= last), UNKNOWN)


def icd_code_set(code: object) -> str | None:
    """"icd9" or "icd10" by the code's grammar; None when it is neither. A code starting with a digit is
    ICD-9 (and `E800.0`, an ICD-9 external cause written with its dot); any letter-digit-alphanumeric code is
    read as ICD-10, the current set: ICD-9 V and E codes written without a dot look like ICD-10 codes, and
    silver's `icd_code_set` (from the claim's qualifier, X12 BK/BF vs ABK/ABF) settles those."""
    if not isinstance(code, str):
        return None
    c = code.strip().upper()
    if _ICD9_NUMERIC.fullmatch(c) or _ICD9_E_DOTTED.fullmatch(c):
        return "icd9"
    if _ICD10.fullmatch(c):
        return "icd10"
    return None


def icd_chapter(code: object, code_set: object = None) -> str:
    """Chapter key of an ICD-10-CM or ICD-9-CM diagnosis ("circulatory", …): the same keys in both code
    sets, so a model sees one chapter whatever the claim's era. `code_set` ("icd9"/"icd10") overrides the
    guess from the grammar; "unknown" for a missing or unparsable code."""
    if not isinstance(code, str) or not code.strip():
        return UNKNOWN
    c = code.strip().upper()
    kind = code_set if code_set in ("icd9", "icd10") else icd_code_set(c)
    if kind == "icd9":
        return icd9_chapter(c)
    if kind == "icd10" and _ICD10.fullmatch(c):
        return icd10_chapter(c)
    return UNKNOWN
