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


# CPT Category I subsections (AMA CPT: the body systems of surgery, the subsections of radiology, pathology
# and laboratory, and medicine): (first, last, subsection) over the five-digit number. A number of a section
# between its listed subsections is "<section>_other".
CPT_SUBSECTION_RANGES: tuple[tuple[int, int, str], ...] = (
    (10004, 19499, "surgery_integumentary"), (20100, 29999, "surgery_musculoskeletal"),
    (30000, 32999, "surgery_respiratory"), (33016, 37799, "surgery_cardiovascular"),
    (38100, 38999, "surgery_hemic_lymphatic"), (39000, 39599, "surgery_mediastinum_diaphragm"),
    (40490, 49999, "surgery_digestive"), (50010, 53899, "surgery_urinary"), (54000, 55980, "surgery_male_genital"),
    (56405, 58999, "surgery_female_genital"), (59000, 59899, "surgery_maternity"),
    (60000, 60699, "surgery_endocrine"), (61000, 64999, "surgery_nervous"), (65091, 68899, "surgery_eye"),
    (69000, 69979, "surgery_ear"),
    (70010, 76499, "radiology_diagnostic"), (76506, 76999, "radiology_ultrasound"),
    (77001, 77022, "radiology_guidance"), (77046, 77067, "radiology_breast"), (77071, 77086, "radiology_bone_joint"),
    (77261, 77799, "radiology_oncology"), (78012, 79999, "radiology_nuclear"),
    (80047, 80081, "lab_organ_panels"), (80143, 80377, "lab_drug_assay"), (81000, 81099, "lab_urinalysis"),
    (81105, 81599, "lab_molecular"), (82009, 84999, "lab_chemistry"), (85002, 85999, "lab_hematology"),
    (86000, 86849, "lab_immunology"), (86850, 86999, "lab_transfusion"), (87003, 87999, "lab_microbiology"),
    (88000, 88099, "lab_anatomic"), (88104, 88199, "lab_cytopathology"), (88230, 88299, "lab_cytogenetics"),
    (88300, 88399, "lab_surgical_pathology"), (89049, 89398, "lab_other_procedures"),
    (90281, 90399, "medicine_immune_globulins"), (90460, 90749, "medicine_immunization"),
    (90785, 90899, "medicine_psychiatry"), (90935, 90999, "medicine_dialysis"),
    (91010, 91299, "medicine_gastroenterology"), (92002, 92499, "medicine_ophthalmology"),
    (92502, 92700, "medicine_otorhinolaryngology"), (92920, 93799, "medicine_cardiovascular"),
    (93880, 93998, "medicine_vascular"), (94002, 94799, "medicine_pulmonary"), (95004, 95199, "medicine_allergy"),
    (95700, 96020, "medicine_neurology"), (96360, 96549, "medicine_drug_administration"),
    (96900, 96999, "medicine_dermatology"), (97010, 97799, "medicine_physical_medicine"),
    (99000, 99199, "medicine_special_services"), (99500, 99607, "medicine_home_services"),
)


def procedure_subsection(code: object) -> str:
    """The public subsection of a procedure code, one level below `procedure_section`: the AMA CPT body
    system or subsection of a Category I code ("surgery_musculoskeletal", "lab_chemistry", …; "<section>_other"
    between listed subsections), else the code's section (E/M, anesthesia, Category II/III, each HCPCS Level II
    letter section); "unknown" for a missing or malformed code. Payers write many edits per subsection."""
    section = procedure_section(code)
    if section in ("surgery", "radiology", "pathology_lab", "medicine"):
        n = int(str(code).strip())
        found = next((name for first, last, name in CPT_SUBSECTION_RANGES if first <= n <= last), None)
        return found or f"{section}_other"
    return section


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
