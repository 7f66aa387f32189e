"""The default synthetic world's truth: its payers (with the base denial rates and filing limits the
generator draws from), CPT/HCPCS codes with the typical charges of its fee schedule, the payer x family
prior-auth grid, the CPT family x ICD chapter consistency grid, ICD-10 codes and places of service.

This is the generator's answer key and lives only in `synthetic/`: nothing outside `synthetic/` may
import it (tests/test_layout.py). The pipeline learns these rules from outcomes or reads the partial
reference files a hospital supplies (`synthetic.reference_files` writes the demo's: payers, published
prior-auth lists for some payers, a chargemaster with the hospital's own list prices), never this module.
A drift scenario (a payer silently starting to require prior auth for a CPT family) is not reflected here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

UNKNOWN = "unknown"

# ---------------------------------------------------------------------------------------------------
# Payers
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Payer:
    payer_id: str
    name: str
    plan_type: str  # one of columns.PLAN_TYPES
    base_denial_rate: float  # denial probability of a clean claim (no named risk factor present)
    filing_limit_days: int  # timely filing limit: days from service date to receipt

    @property
    def base_logit(self) -> float:
        return math.log(self.base_denial_rate / (1.0 - self.base_denial_rate))


PAYER_LIST: tuple[Payer, ...] = (
    Payer("AETNA", "Aetna", "commercial", 0.065, 180),
    Payer("BCBS", "Blue Cross Blue Shield", "commercial", 0.055, 365),
    Payer("CIGNA", "Cigna", "commercial", 0.080, 90),
    Payer("UHC", "UnitedHealthcare", "commercial", 0.090, 90),
    Payer("HUMANA", "Humana Medicare Advantage", "medicare", 0.080, 365),
    Payer("MEDICARE", "Medicare Part B (MAC)", "medicare", 0.050, 365),
    Payer("MEDICAID_TX", "Texas Medicaid", "medicaid", 0.110, 95),
    Payer("SELF", "Self-pay", "self_pay", 0.035, 365),
)

PAYERS: dict[str, Payer] = {p.payer_id: p for p in PAYER_LIST}
PAYER_IDS: tuple[str, ...] = tuple(PAYERS)
PAYER_PLAN_TYPE: dict[str, str] = {p.payer_id: p.plan_type for p in PAYER_LIST}
PAYER_BASE_DENIAL_RATE: dict[str, float] = {p.payer_id: p.base_denial_rate for p in PAYER_LIST}
PAYER_BASE_LOGIT: dict[str, float] = {p.payer_id: p.base_logit for p in PAYER_LIST}
PAYER_FILING_LIMIT_DAYS: dict[str, int] = {p.payer_id: p.filing_limit_days for p in PAYER_LIST}
DEFAULT_FILING_LIMIT_DAYS = 90  # the strictest common limit, for payers we do not know

# ---------------------------------------------------------------------------------------------------
# CPT codes
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cpt:
    code: str
    family: str
    description: str
    typical_charge: float  # billed charge per unit (chargemaster-like list price, USD)


CPT_FAMILIES: tuple[str, ...] = ("em", "imaging", "radiology", "surgery", "lab", "therapy", "cardiology",
                                 "drugs", "biologics", "ambulance", "dme", "preventive")

CPT_LIST: tuple[Cpt, ...] = (
    # Evaluation and management
    Cpt("99202", "em", "Office visit, new patient, straightforward", 120.0),
    Cpt("99203", "em", "Office visit, new patient, low complexity", 200.0),
    Cpt("99204", "em", "Office visit, new patient, moderate complexity", 300.0),
    Cpt("99205", "em", "Office visit, new patient, high complexity", 400.0),
    Cpt("99211", "em", "Office visit, established patient, minimal", 60.0),
    Cpt("99212", "em", "Office visit, established patient, straightforward", 100.0),
    Cpt("99213", "em", "Office visit, established patient, low complexity", 150.0),
    Cpt("99214", "em", "Office visit, established patient, moderate complexity", 220.0),
    Cpt("99215", "em", "Office visit, established patient, high complexity", 300.0),
    Cpt("99222", "em", "Initial hospital inpatient care, moderate", 350.0),
    Cpt("99232", "em", "Subsequent hospital inpatient care, moderate", 180.0),
    Cpt("99283", "em", "Emergency department visit, moderate", 400.0),
    Cpt("99284", "em", "Emergency department visit, high", 700.0),
    Cpt("99285", "em", "Emergency department visit, highest", 1100.0),
    # Advanced imaging (CT / MRI / PET): the usual prior-auth targets
    Cpt("70450", "imaging", "CT head/brain without contrast", 900.0),
    Cpt("70551", "imaging", "MRI brain without contrast", 1800.0),
    Cpt("71250", "imaging", "CT thorax without contrast", 1100.0),
    Cpt("72141", "imaging", "MRI cervical spine without contrast", 1700.0),
    Cpt("72148", "imaging", "MRI lumbar spine without contrast", 1800.0),
    Cpt("73721", "imaging", "MRI lower extremity joint without contrast", 1600.0),
    Cpt("74177", "imaging", "CT abdomen and pelvis with contrast", 2200.0),
    Cpt("78815", "imaging", "PET/CT skull base to mid-thigh", 4500.0),
    # Plain radiology and ultrasound
    Cpt("71046", "radiology", "Chest X-ray, 2 views", 150.0),
    Cpt("73562", "radiology", "Knee X-ray, 3 views", 180.0),
    Cpt("76700", "radiology", "Ultrasound abdomen, complete", 450.0),
    Cpt("77067", "radiology", "Screening mammography, bilateral", 250.0),
    # Surgery
    Cpt("29881", "surgery", "Knee arthroscopy with meniscectomy", 6500.0),
    Cpt("27447", "surgery", "Total knee arthroplasty", 38000.0),
    Cpt("27130", "surgery", "Total hip arthroplasty", 40000.0),
    Cpt("47562", "surgery", "Laparoscopic cholecystectomy", 12000.0),
    Cpt("45378", "surgery", "Colonoscopy, diagnostic", 2200.0),
    Cpt("66984", "surgery", "Cataract removal with IOL insertion", 4500.0),
    Cpt("43239", "surgery", "Upper GI endoscopy with biopsy", 2500.0),
    # Laboratory
    Cpt("80053", "lab", "Comprehensive metabolic panel", 45.0),
    Cpt("80061", "lab", "Lipid panel", 60.0),
    Cpt("81001", "lab", "Urinalysis with microscopy", 20.0),
    Cpt("83036", "lab", "Hemoglobin A1c", 40.0),
    Cpt("84443", "lab", "Thyroid stimulating hormone (TSH)", 55.0),
    Cpt("85025", "lab", "Complete blood count with differential", 30.0),
    Cpt("87086", "lab", "Urine culture, colony count", 35.0),
    # Physical therapy (billed in 15-minute units)
    Cpt("97110", "therapy", "Therapeutic exercise, each 15 min", 60.0),
    Cpt("97112", "therapy", "Neuromuscular re-education, each 15 min", 65.0),
    Cpt("97140", "therapy", "Manual therapy, each 15 min", 55.0),
    Cpt("97161", "therapy", "PT evaluation, low complexity", 180.0),
    Cpt("97530", "therapy", "Therapeutic activities, each 15 min", 65.0),
    # Cardiology
    Cpt("93000", "cardiology", "Electrocardiogram, 12 lead, with interpretation", 80.0),
    Cpt("93015", "cardiology", "Cardiovascular stress test", 600.0),
    Cpt("93306", "cardiology", "Echocardiography, transthoracic, complete", 1200.0),
    Cpt("93458", "cardiology", "Left heart catheterization with angiography", 9000.0),
    Cpt("93880", "cardiology", "Duplex scan, extracranial arteries, bilateral", 700.0),
    # Inpatient surgery billed on institutional claims: typical charge of the whole stay
    Cpt("22633", "surgery", "Lumbar arthrodesis, posterior interbody, single level", 160000.0),
    Cpt("27236", "surgery", "Open treatment of femoral neck fracture, prosthetic replacement", 95000.0),
    Cpt("44140", "surgery", "Colectomy, partial, with anastomosis", 110000.0),
    Cpt("61510", "surgery", "Craniectomy for excision of brain tumor, supratentorial", 170000.0),
    Cpt("32480", "surgery", "Lobectomy of lung", 140000.0),
    Cpt("47135", "surgery", "Liver allotransplantation, orthotopic", 950000.0),
    Cpt("38240", "surgery", "Hematopoietic progenitor cell transplantation, allogeneic", 1050000.0),
    # HCPCS Level II: drugs (J codes, charge per billing unit of the code's dosage)
    Cpt("J3490", "drugs", "Unclassified drugs", 120.0),
    Cpt("J1885", "drugs", "Injection, ketorolac tromethamine, per 15 mg", 25.0),
    Cpt("J0696", "drugs", "Injection, ceftriaxone sodium, per 250 mg", 30.0),
    Cpt("J1100", "drugs", "Injection, dexamethasone sodium phosphate, 1 mg", 4.0),
    Cpt("J1815", "drugs", "Injection, insulin, per 5 units", 8.0),
    Cpt("J1439", "drugs", "Injection, ferric carboxymaltose, 1 mg", 6.0),
    # HCPCS Level II: biologics (the drugs payers put under prior authorization)
    Cpt("J9035", "biologics", "Injection, bevacizumab, 10 mg", 350.0),
    Cpt("J9271", "biologics", "Injection, pembrolizumab, 1 mg", 180.0),
    Cpt("J2505", "biologics", "Injection, pegfilgrastim, 6 mg", 15000.0),
    Cpt("J0585", "biologics", "Injection, onabotulinumtoxinA, 1 unit", 25.0),
    Cpt("J1459", "biologics", "Injection, immune globulin (Privigen), intravenous, 500 mg", 300.0),
    Cpt("Q4101", "biologics", "Apligraf (skin substitute), per square centimeter", 120.0),
    # HCPCS Level II: ambulance, durable medical equipment, preventive G codes
    Cpt("A0428", "ambulance", "Ambulance service, basic life support, non-emergency transport", 900.0),
    Cpt("A0425", "ambulance", "Ground mileage, per statute mile", 20.0),
    Cpt("E0114", "dme", "Crutches, underarm, other than wood, adjustable, pair", 110.0),
    Cpt("E0601", "dme", "Continuous positive airway pressure (CPAP) device", 1200.0),
    Cpt("G0439", "preventive", "Annual wellness visit, subsequent", 250.0),
    Cpt("G0008", "preventive", "Administration of influenza virus vaccine", 45.0),
)

CPTS: dict[str, Cpt] = {c.code: c for c in CPT_LIST}
CPT_CODES: tuple[str, ...] = tuple(CPTS)
CPT_FAMILY: dict[str, str] = {c.code: c.family for c in CPT_LIST}
CPT_TYPICAL_CHARGE: dict[str, float] = {c.code: c.typical_charge for c in CPT_LIST}
CPT_DESCRIPTION: dict[str, str] = {c.code: c.description for c in CPT_LIST}

# ---------------------------------------------------------------------------------------------------
# Prior authorization: published payer policy, (payer_id, cpt_family) pairs that need an auth number
# ---------------------------------------------------------------------------------------------------

PRIOR_AUTH_REQUIRED: frozenset[tuple[str, str]] = frozenset({
    ("AETNA", "imaging"), ("AETNA", "surgery"),
    ("BCBS", "surgery"),
    ("CIGNA", "imaging"), ("CIGNA", "surgery"), ("CIGNA", "cardiology"),
    ("UHC", "imaging"), ("UHC", "surgery"), ("UHC", "cardiology"),
    ("HUMANA", "imaging"), ("HUMANA", "surgery"), ("HUMANA", "therapy"),
    ("MEDICAID_TX", "imaging"), ("MEDICAID_TX", "surgery"), ("MEDICAID_TX", "therapy"),
    # biologics (specialty drugs) under the commercial, Medicare Advantage and Medicaid pharmacy policies
    ("AETNA", "biologics"), ("BCBS", "biologics"), ("CIGNA", "biologics"), ("UHC", "biologics"),
    ("HUMANA", "biologics"), ("MEDICAID_TX", "biologics"),
    ("MEDICAID_TX", "dme"),
})

# ---------------------------------------------------------------------------------------------------
# ICD-10-CM
# ---------------------------------------------------------------------------------------------------

# chapter key -> (first block, last block, chapter name); blocks compare as "<letter><2 digits>"
ICD_CHAPTERS: dict[str, tuple[str, str, str]] = {
    "infectious": ("A00", "B99", "Certain infectious and parasitic diseases"),
    "neoplasm": ("C00", "D49", "Neoplasms"),
    "blood": ("D50", "D89", "Diseases of the blood and immune mechanism"),
    "endocrine": ("E00", "E89", "Endocrine, nutritional and metabolic diseases"),
    "mental": ("F01", "F99", "Mental, behavioral and neurodevelopmental disorders"),
    "nervous": ("G00", "G99", "Diseases of the nervous system"),
    "eye": ("H00", "H59", "Diseases of the eye and adnexa"),
    "ear": ("H60", "H95", "Diseases of the ear and mastoid process"),
    "circulatory": ("I00", "I99", "Diseases of the circulatory system"),
    "respiratory": ("J00", "J99", "Diseases of the respiratory system"),
    "digestive": ("K00", "K95", "Diseases of the digestive system"),
    "skin": ("L00", "L99", "Diseases of the skin and subcutaneous tissue"),
    "musculoskeletal": ("M00", "M99", "Diseases of the musculoskeletal system"),
    "genitourinary": ("N00", "N99", "Diseases of the genitourinary system"),
    "pregnancy": ("O00", "O9A", "Pregnancy, childbirth and the puerperium"),
    "perinatal": ("P00", "P96", "Certain conditions originating in the perinatal period"),
    "congenital": ("Q00", "Q99", "Congenital malformations"),
    "symptoms": ("R00", "R99", "Symptoms, signs and abnormal findings"),
    "injury": ("S00", "T88", "Injury, poisoning and external causes"),
    "special": ("U00", "U85", "Codes for special purposes"),
    "external": ("V00", "Y99", "External causes of morbidity"),
    "factors": ("Z00", "Z99", "Factors influencing health status and contact with services"),
}


@dataclass(frozen=True)
class Icd10:
    code: str
    chapter: str
    description: str


ICD10_LIST: tuple[Icd10, ...] = (
    Icd10("I10", "circulatory", "Essential (primary) hypertension"),
    Icd10("I25.10", "circulatory", "Atherosclerotic heart disease without angina"),
    Icd10("I48.91", "circulatory", "Unspecified atrial fibrillation"),
    Icd10("I50.9", "circulatory", "Heart failure, unspecified"),
    Icd10("I63.9", "circulatory", "Cerebral infarction, unspecified"),
    Icd10("E11.9", "endocrine", "Type 2 diabetes mellitus without complications"),
    Icd10("E78.5", "endocrine", "Hyperlipidemia, unspecified"),
    Icd10("E03.9", "endocrine", "Hypothyroidism, unspecified"),
    Icd10("E66.9", "endocrine", "Obesity, unspecified"),
    Icd10("J06.9", "respiratory", "Acute upper respiratory infection, unspecified"),
    Icd10("J18.9", "respiratory", "Pneumonia, unspecified organism"),
    Icd10("J44.9", "respiratory", "Chronic obstructive pulmonary disease, unspecified"),
    Icd10("J45.909", "respiratory", "Unspecified asthma, uncomplicated"),
    Icd10("M17.11", "musculoskeletal", "Primary osteoarthritis, right knee"),
    Icd10("M17.12", "musculoskeletal", "Primary osteoarthritis, left knee"),
    Icd10("M16.11", "musculoskeletal", "Primary osteoarthritis, right hip"),
    Icd10("M54.50", "musculoskeletal", "Low back pain, unspecified"),
    Icd10("M23.211", "musculoskeletal", "Derangement of anterior horn of medial meniscus, right knee"),
    Icd10("M25.561", "musculoskeletal", "Pain in right knee"),
    Icd10("M79.1", "musculoskeletal", "Myalgia"),
    Icd10("S83.241A", "injury", "Other tear of medial meniscus, right knee, initial encounter"),
    Icd10("S06.0X0A", "injury", "Concussion without loss of consciousness, initial encounter"),
    Icd10("S52.501A", "injury", "Fracture of lower end of right radius, initial encounter"),
    Icd10("S93.401A", "injury", "Sprain of right ankle ligament, initial encounter"),
    Icd10("R07.9", "symptoms", "Chest pain, unspecified"),
    Icd10("R10.9", "symptoms", "Unspecified abdominal pain"),
    Icd10("R51.9", "symptoms", "Headache, unspecified"),
    Icd10("R53.83", "symptoms", "Other fatigue"),
    Icd10("R55", "symptoms", "Syncope and collapse"),
    Icd10("K21.9", "digestive", "Gastro-esophageal reflux disease without esophagitis"),
    Icd10("K80.20", "digestive", "Calculus of gallbladder without cholecystitis"),
    Icd10("K57.30", "digestive", "Diverticulosis of large intestine"),
    Icd10("Z00.00", "factors", "General adult medical examination without abnormal findings"),
    Icd10("Z12.11", "factors", "Encounter for screening for malignant neoplasm of colon"),
    Icd10("Z12.31", "factors", "Encounter for screening mammogram"),
    Icd10("Z23", "factors", "Encounter for immunization"),
    Icd10("G43.909", "nervous", "Migraine, unspecified"),
    Icd10("G47.33", "nervous", "Obstructive sleep apnea"),
    Icd10("F32.9", "mental", "Major depressive disorder, single episode, unspecified"),
    Icd10("F41.1", "mental", "Generalized anxiety disorder"),
    Icd10("N39.0", "genitourinary", "Urinary tract infection, site not specified"),
    Icd10("N18.30", "genitourinary", "Chronic kidney disease, stage 3 unspecified"),
    Icd10("H25.9", "eye", "Unspecified age-related cataract"),
    Icd10("C50.911", "neoplasm", "Malignant neoplasm of unspecified site of right female breast"),
    Icd10("D12.6", "neoplasm", "Benign neoplasm of colon, unspecified"),
    # The full ICD-10-CM grammar: a letter in the third character (Z3A, M1A, O9A), 7-character codes,
    # the placeholder X, 7th-character encounter / episode extensions
    Icd10("Z3A.39", "factors", "39 weeks gestation of pregnancy"),
    Icd10("S72.001A", "injury", "Fracture of unspecified part of neck of right femur, initial encounter"),
    Icd10("T36.0X5A", "injury", "Adverse effect of penicillins, initial encounter"),
    Icd10("O09.529", "pregnancy", "Supervision of elderly multigravida, unspecified trimester"),
    Icd10("M1A.0710", "musculoskeletal", "Idiopathic chronic gout, right ankle and foot, without tophus"),
    Icd10("O9A.212", "pregnancy", "Injury complicating pregnancy, second trimester"),
    Icd10("M80.08XA", "musculoskeletal",
          "Age-related osteoporosis with current pathological fracture, vertebra, initial encounter"),
    Icd10("T81.40XA", "injury", "Infection following a procedure, unspecified, initial encounter"),
    Icd10("S42.001A", "injury", "Fracture of unspecified part of right clavicle, initial encounter"),
    Icd10("C34.90", "neoplasm", "Malignant neoplasm of unspecified part of unspecified bronchus or lung"),
    Icd10("C4A.9", "neoplasm", "Merkel cell carcinoma, unspecified"),
    Icd10("D3A.00", "neoplasm", "Benign carcinoid tumor of unspecified site"),
    Icd10("A41.9", "infectious", "Sepsis, unspecified organism"),
    Icd10("D63.0", "blood", "Anemia in neoplastic disease"),
    Icd10("E11.621", "endocrine", "Type 2 diabetes mellitus with foot ulcer"),
    Icd10("L97.419", "skin", "Non-pressure chronic ulcer of right heel and midfoot, unspecified severity"),
    Icd10("Z51.11", "factors", "Encounter for antineoplastic chemotherapy"),
)

ICD10: dict[str, Icd10] = {c.code: c for c in ICD10_LIST}
ICD10_CODES: tuple[str, ...] = tuple(ICD10)
ICD10_CHAPTER: dict[str, str] = {c.code: c.chapter for c in ICD10_LIST}

# Which diagnosis chapters support which procedure families (a payer edit in the spirit of NCCI /
# LCD medical-necessity lists, coarsened to chapter level). E/M is fine with almost any diagnosis,
# but not with a pure screening / preventive Z code (that is a preventive visit, billed differently).
_ALL_CHAPTERS = frozenset(ICD_CHAPTERS)
CONSISTENT_CHAPTERS: dict[str, frozenset[str]] = {
    "em": _ALL_CHAPTERS - {"factors"},
    "imaging": frozenset({"circulatory", "respiratory", "musculoskeletal", "injury", "symptoms",
                          "digestive", "nervous", "neoplasm", "genitourinary"}),
    "radiology": frozenset({"respiratory", "musculoskeletal", "injury", "symptoms", "digestive",
                            "factors", "genitourinary", "neoplasm", "circulatory"}),
    "surgery": frozenset({"musculoskeletal", "injury", "digestive", "neoplasm", "eye", "factors"}),
    "lab": frozenset({"endocrine", "circulatory", "symptoms", "genitourinary", "factors",
                      "infectious", "digestive", "respiratory", "blood", "neoplasm"}),
    "therapy": frozenset({"musculoskeletal", "injury", "nervous", "symptoms"}),
    "cardiology": frozenset({"circulatory", "symptoms", "endocrine", "respiratory", "factors"}),
    "drugs": frozenset({"infectious", "neoplasm", "blood", "endocrine", "respiratory", "musculoskeletal",
                        "injury", "symptoms", "genitourinary", "skin", "nervous", "digestive", "factors"}),
    "biologics": frozenset({"neoplasm", "blood", "nervous", "skin", "endocrine", "musculoskeletal",
                            "digestive", "factors"}),
    "ambulance": frozenset({"injury", "circulatory", "symptoms", "respiratory", "nervous", "mental",
                            "pregnancy", "infectious", "endocrine", "genitourinary", "digestive"}),
    "dme": frozenset({"musculoskeletal", "injury", "nervous", "respiratory", "endocrine"}),
    "preventive": _ALL_CHAPTERS,
}
CONSISTENT_PAIRS: frozenset[tuple[str, str]] = frozenset(
    (fam, ch) for fam, chapters in CONSISTENT_CHAPTERS.items() for ch in chapters
)

# ---------------------------------------------------------------------------------------------------
# Place of service, modifiers, adjustment reason codes
# ---------------------------------------------------------------------------------------------------

PLACE_OF_SERVICE: dict[str, str] = {
    "02": "Telehealth provided other than in patient's home",
    "10": "Telehealth provided in patient's home",
    "11": "Office",
    "12": "Home",
    "19": "Off campus - outpatient hospital",
    "21": "Inpatient hospital",
    "22": "On campus - outpatient hospital",
    "23": "Emergency room - hospital",
    "24": "Ambulatory surgical center",
    "31": "Skilled nursing facility",
    "81": "Independent laboratory",
    "41": "Ambulance - land",
}
FACILITY_POS: frozenset[str] = frozenset({"19", "21", "22", "23", "24", "31"})
TELEHEALTH_POS: frozenset[str] = frozenset({"02", "10"})

MODIFIERS: dict[str, str] = {
    "25": "Significant, separately identifiable E/M service on the same day",
    "59": "Distinct procedural service",
    "26": "Professional component",
    "TC": "Technical component",
    "LT": "Left side",
    "RT": "Right side",
    "GT": "Interactive telecommunication (telehealth)",
    "JW": "Drug amount discarded / not administered to any patient",
    "JZ": "Zero drug amount discarded / not administered to any patient",
}
# Modifiers that unbundle edits; payers scrutinise them, so they carry a small extra denial risk.
AUDITED_MODIFIERS: frozenset[str] = frozenset({"25", "59"})


# ---------------------------------------------------------------------------------------------------
# Lookups
# ---------------------------------------------------------------------------------------------------


def cpt_family(code: str) -> str:
    """Family of a CPT or HCPCS Level II code ("em", "drugs", ...); "unknown" outside the reference."""
    return CPT_FAMILY.get(code, UNKNOWN)


def _icd_block(code: str) -> str:
    return code[:3].upper()


def icd_chapter(code: str) -> str:
    """ICD-10-CM chapter key of any code, by its 3-character block (not only reference codes)."""
    if not code:
        return UNKNOWN
    known = ICD10_CHAPTER.get(code)
    if known is not None:
        return known
    block = _icd_block(code)
    for chapter, (first, last, _) in ICD_CHAPTERS.items():
        if first <= block <= last:
            return chapter
    return UNKNOWN


def requires_prior_auth(payer_id: str, cpt_family: str) -> bool:
    """Published policy: does this payer require an authorization number for this CPT family?"""
    return (payer_id, cpt_family) in PRIOR_AUTH_REQUIRED


def filing_limit_days(payer_id: str) -> int:
    """Timely filing limit in days from service date; the strictest common limit when unknown."""
    return PAYER_FILING_LIMIT_DAYS.get(payer_id, DEFAULT_FILING_LIMIT_DAYS)


def typical_charge(cpt: str) -> float:
    """Typical billed charge per unit of a CPT code (NaN when unknown, so ratios stay missing)."""
    return CPT_TYPICAL_CHARGE.get(cpt, math.nan)


def is_consistent(cpt_family: str, icd_chapter: str) -> bool:
    """Does a diagnosis of this chapter support a procedure of this family?"""
    return (cpt_family, icd_chapter) in CONSISTENT_PAIRS
