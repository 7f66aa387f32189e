"""Synthetic claims, remittances and their ground truth, with named and known denial causes.

Real claims are PHI and cannot ship, so the project generates a source that behaves like one: claim
versions (corrected claims), late-arriving rows, remittances 14–60 days after submission, a second
remittance row for some claims, and fake but realistic PHI. The true denial probability of every claim
version is kept *outside* the source (`SyntheticData.ground_truth`): evaluation, benchmarks and tests
use it (Bayes-optimal AUC, calibration), the pipeline never does.

The generating process (logit scale, summed):

    payer base logit                             world.PAYERS (clean-claim denial rate 4–15%)
    + missing prior auth where required          large    -> CARC 197
    + eligibility not verified                   large    -> CARC 27
    + timely filing breach (service -> submit)   huge     -> CARC 29
    + CPT/ICD inconsistency                      large    -> CARC 11
    + charge far above the CPT's typical charge  moderate -> CARC 45
    + modifier 25/59, telehealth, ER, age 80+    small
    + rendering-provider random effect           small
    background denials (no named cause)          -> CARC 16 / 50 / 18

The realized outcome is one Bernoulli draw per version. A denial's CARC names the dominant cause
present, or a background code with the probability that the background alone explains the denial.

Realism: the mess real billing systems send, on by default (`Realism`, presets "none", "default",
"heavy"; every field is a rate and 0 switches that part off). Each part is drawn from its own random
stream, so "none" reproduces the clean world draw for draw; with a part on, the clean process above is
still the one that decides every probability, cause and outcome.

    in_place_update_rate    a version's row is updated in place 1–60 days after its first state (same
                            claim_id, claim_version, submitted_at, service_date; later updated_at):
                            eligibility verified or prior auth added after such a denial (5x as likely
                            there), else a corrected billed_amount, patient_zip or modifiers. Both
                            states are rows of `claims` (the commit history a CDC feed gives).
    appeal_rate             share of denied claims (without a correction row) appealed: a second
                            remittance 15–60 days after the first adjudication, `paid` (overturned;
                            likelier for eligibility, auth and background denials) or `denied` (upheld)
    hcpcs_rate              share of claims billed with HCPCS Level II codes: drugs and biologics in
                            their dosage units (often hundreds), ambulance, DME, preventive G codes;
                            JW/JZ modifiers on drugs; payers require prior auth for biologics
    zip4_rate               share of patients whose ZIP is ZIP+4 ("75201-1234")
    icd_full_grammar_rate   share of primary diagnoses re-drawn (keeping their consistency with the
                            procedure) from codes that use the whole ICD-10-CM grammar: a letter in the
                            third character (Z3A.39, M1A.0710, O9A.212), 7 characters, the placeholder X
    claim_id_format_rate    share of billing organisations whose claim ids are not the legacy
                            "C" + 10 digits: date + sequence, ORG-account-suffix, CLM + 13 digits,
                            PAT…-ENC…, and a long 38-character form (X12 CLM01, letters, digits, dashes)
    institutional_rate      share of claims that are inpatient stays (POS 21, surgery family): 6–25
                            diagnoses, the stay's charge (typical charge up to ~$1M, capped at $5M)
    late_commit_rate        share of rows (both tables) committed after 02:00 UTC of the day after their
                            updated_at (replica lag, long transactions); the rest commit seconds after
    resent_file_rate        share of landing days that also get an exact and an overlapping copy of the
                            day's file (`write_landing_files`; see `write_resent_landing_files`)

Facility time zone (`facility_tz`, IANA name): submission days are the facility's local calendar days,
submissions happen in local business hours (some overnight batches) and are stored as naive UTC
timestamps; service dates are local dates. Timely filing (and the drift start) count local days from
the service date to the local submission date (`ground_truth.days_to_submit`). Nonexistent local times
(spring forward) shift forward, ambiguous ones (fall back) read as daylight time.

Commit times: the source tables cannot show when a row was committed, so `SyntheticData.committed_at`
keeps it beside them; `source_as_of(data, at)` is what a query at `at` would have seen.

Design choices worth knowing:
- Everything generated is returned and written, including rows whose `updated_at` lies after the
  last generated day (remittances of late submissions, second remittance rows). The source is a
  system of record; the pipeline extracts by `updated_at` day, so "future" rows simply appear on
  their day, like outcomes that have not arrived yet. Filter on `updated_at < data.end` (or use
  `until=`) for a snapshot "as of" the last generated day.
- A corrected claim (version 2, rarely 3) is resubmitted 1–7 days after the previous version,
  before adjudication; it usually fixes the cause (adds the prior auth, verifies eligibility,
  recodes the diagnosis). Only the latest version is adjudicated (one first remittance per claim);
  ground truth holds a row per version with its own probability and its own draw (`adjudicated`
  tells which version the remittances belong to).
- Ground truth describes a version as it was first submitted: an in-place update never changes its
  probability, causes or `denied` (`in_place_updates` counts the later states).
- A second remittance row (appeal / payment correction) never changes whether the claim was denied:
  the label is the first adjudication; the second row carries a new adjudicated_at, rarc and, for
  paid claims, an adjusted paid amount (`appeal_status` tells overturned / upheld appeals).
- A late-arriving row of version 1 can reach the source after version 2 did: order by
  claim_version, not updated_at, to find the latest version.
- Every timestamp (submitted_at, updated_at, adjudicated_at, committed_at) is a whole second: X12 carries
  HHMMSS at most, so the X12 files of `synthetic.x12` hold exactly the instants of the source.
- Everything is a pure function of the arguments: the same seed gives identical frames in any process.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import tempfile
import zoneinfo
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa

from rcm_assets.lib.columns import source_column_names, source_columns
from rcm_assets.synthetic import world as ref

log = logging.getLogger("rcm.synthetic")

US_PER_DAY = 86_400_000_000
US_PER_HOUR = 3_600_000_000
US_PER_MIN = 60_000_000
US_PER_S = 1_000_000
EPOCH_2000 = 10_957  # days from 1970-01-01 to 2000-01-01: claim numbers count days since 2000
MAX_CLAIMS_PER_DAY = 99_999  # claim_id = C + 5-digit day number + 5-digit sequence
MAX_BILLED = 5_000_000.0  # institutional stays are capped here; professional claims stay far below
MAX_CLAIM_ID_LENGTH = 38  # X12 837 CLM01
EXTRACTION_HOUR_UTC = 2  # the nightly extraction a late commit misses

# Logit-scale effects of the named causes (see module docstring).
EFFECTS: dict[str, float] = {
    "missing_prior_auth": 3.0,
    "eligibility_unverified": 2.0,
    "timely_filing": 4.5,
    "dx_inconsistent": 2.2,
    "high_charge": 1.3,
    "audited_modifier": 0.35,
    "telehealth": 0.25,
    "emergency": 0.2,
    "age_80_plus": 0.15,
}
HIGH_CHARGE_RATIO = 1.75  # billed / (typical charge x units) above which payers price-review
# Causes in the order a denial is attributed to them (largest effect first) and their CARC.
CAUSE_CARC: tuple[tuple[str, str], ...] = (
    ("timely_filing", "29"),
    ("missing_prior_auth", "197"),
    ("dx_inconsistent", "11"),
    ("eligibility_unverified", "27"),
    ("high_charge", "45"),
)
BACKGROUND_CARCS = (("16", 0.4), ("50", 0.35), ("18", 0.25))
CARC_RARC: dict[str, str] = {"197": "M62", "27": "N30", "11": "M76", "16": "MA130", "50": "N115"}
GROUND_TRUTH_COLUMNS = (
    "claim_id", "claim_version", "submitted_at", "payer_id", "cpt_family", "true_denial_probability",
    "denied", "adjudicated", "prior_auth_required", "drift_active", "cause_missing_prior_auth",
    "cause_eligibility_unverified", "cause_timely_filing", "cause_dx_inconsistent",
    "cause_high_charge", "cause_audited_modifier", "denial_carc",
    "days_to_submit", "in_place_updates", "appeal_status",
)
CAUSES = tuple(name for name, _ in CAUSE_CARC)

# --- volume mix (what this synthetic provider bills; not reference knowledge) -----------------------
PAYER_MIX = {"UHC": 0.19, "BCBS": 0.18, "AETNA": 0.11, "CIGNA": 0.09, "HUMANA": 0.09,
             "MEDICARE": 0.20, "MEDICAID_TX": 0.10, "SELF": 0.04}
FAMILY_MIX = {"em": 0.42, "lab": 0.18, "therapy": 0.08, "radiology": 0.08, "imaging": 0.09,
              "cardiology": 0.08, "surgery": 0.07}
CPT_WEIGHT = {
    "99213": 10, "99214": 8, "99212": 3, "99215": 2, "99203": 2, "99204": 2, "99202": 1, "99205": 0.5,
    "99211": 1, "99222": 0.8, "99232": 1.5, "99283": 1, "99284": 1, "99285": 0.6,
    "80053": 3, "85025": 4, "80061": 2, "83036": 2, "84443": 1.5, "81001": 1.5, "87086": 1,
    "97110": 4, "97140": 2, "97112": 1.5, "97530": 2, "97161": 0.8,
    "72148": 2, "73721": 1.5, "70450": 2, "70551": 1.2, "74177": 2, "71250": 1.2, "72141": 1, "78815": 0.4,
    "71046": 4, "73562": 2, "76700": 1.5, "77067": 2,
    "45378": 3, "66984": 2, "43239": 2, "29881": 1.5, "47562": 1, "27447": 0.8, "27130": 0.6,
    "93000": 5, "93306": 2, "93015": 1, "93880": 0.8, "93458": 0.4,
}
# HCPCS Level II lines (realism.hcpcs_rate): relative volume and billing units per line, drawn as
# ("one", value), ("int", low, high) inclusive, or ("pick", values, weights)
HCPCS_WEIGHT = {
    "J1885": 6, "J0696": 6, "J1100": 8, "J3490": 3, "J1815": 4, "J1439": 1.5,
    "J9035": 1.5, "J9271": 1.5, "J2505": 1, "J0585": 1.5, "J1459": 0.8, "Q4101": 0.7,
    "A0428": 2.5, "A0425": 2.5, "E0114": 1.5, "E0601": 1, "G0439": 4, "G0008": 3,
}
HCPCS_UNITS: dict[str, tuple] = {
    "J1885": ("pick", (1, 2), (0.6, 0.4)),  # 15 mg, 30 mg
    "J0696": ("pick", (2, 4, 8), (0.2, 0.6, 0.2)),  # 500 mg, 1 g, 2 g
    "J1100": ("int", 4, 20),  # 4–20 mg
    "J3490": ("one", 1),
    "J1815": ("int", 2, 300),  # 10–1,500 insulin units (per 5 units)
    "J1439": ("pick", (750, 1500), (0.85, 0.15)),  # one dose / the two-dose course on one line
    "J9035": ("int", 30, 150),  # 300–1,500 mg
    "J9271": ("pick", (200, 400), (0.7, 0.3)),  # 200 mg q3w / 400 mg q6w
    "J2505": ("one", 1),
    "J0585": ("int", 50, 400),
    "J1459": ("int", 40, 280),  # 20–140 g
    "Q4101": ("int", 10, 44),  # square centimetres
    "A0428": ("one", 1),
    "A0425": ("int", 2, 60),  # miles
    "E0114": ("one", 1), "E0601": ("one", 1), "G0439": ("one", 1), "G0008": ("one", 1),
}
# Inpatient surgery on institutional claims (realism.institutional_rate); codes the clean world never
# bills, so a claim is institutional exactly when its code is one of these
INPATIENT_WEIGHT = {"22633": 5, "27236": 4, "44140": 4, "61510": 1.5, "32480": 2, "47135": 0.6,
                    "38240": 0.6}
INSTITUTIONAL_DX_COUNT = (6, 25)  # diagnoses on an inpatient claim
# Diagnoses only the full-grammar realism draws (the clean world never does)
FULL_GRAMMAR_ICD = ("Z3A.39", "S72.001A", "T36.0X5A", "O09.529", "M1A.0710", "O9A.212", "M80.08XA",
                    "T81.40XA", "S42.001A", "C34.90", "C4A.9", "D3A.00", "A41.9", "D63.0", "E11.621",
                    "L97.419", "Z51.11")
PROVIDERS_PER_FAMILY = {"em": 120, "lab": 8, "therapy": 30, "radiology": 25, "imaging": 25,
                        "cardiology": 20, "surgery": 30,
                        "drugs": 15, "biologics": 12, "ambulance": 6, "dme": 6, "preventive": 20}
BASE_FAMILIES = tuple(f for f in ref.CPT_FAMILIES if f in FAMILY_MIX)  # the clean world's families
BILLING_ORGS = 30
FAMILY_POS = {
    "em": {"11": 0.86, "22": 0.05, "10": 0.05, "02": 0.02, "31": 0.02},
    "imaging": {"22": 0.5, "19": 0.2, "11": 0.3},
    "radiology": {"11": 0.5, "22": 0.4, "23": 0.1},
    "surgery": {"24": 0.5, "22": 0.35, "21": 0.15},
    "lab": {"81": 0.5, "11": 0.35, "22": 0.15},
    "therapy": {"11": 0.7, "22": 0.2, "12": 0.1},
    "cardiology": {"11": 0.5, "22": 0.4, "21": 0.1},
    "drugs": {"11": 0.55, "22": 0.3, "23": 0.1, "19": 0.05},
    "biologics": {"22": 0.55, "19": 0.25, "11": 0.2},
    "ambulance": {"41": 1.0},
    "dme": {"12": 0.8, "11": 0.2},
    "preventive": {"11": 0.9, "22": 0.1},
}
POS_OVERRIDE = {"99283": "23", "99284": "23", "99285": "23", "99222": "21", "99232": "21",
                "27447": "21", "27130": "21"}
LATERAL_CPTS = ("29881", "27447", "27130", "73721", "73562", "66984")
# bit k of the mask = MODIFIER_BITS[k]; the clean world uses the first 7 bits only
MODIFIER_BITS = ("25", "59", "26", "TC", "LT", "RT", "GT", "JW", "JZ")
ELIG_UNVERIFIED = {"commercial": 0.04, "medicare": 0.03, "medicaid": 0.09, "self_pay": 0.06}
FEE_FACTOR = {"commercial": 0.62, "medicare": 0.42, "medicaid": 0.33, "self_pay": 0.55}
MEMBER_PREFIX = {"AETNA": "W", "CIGNA": "U", "UHC": "9", "HUMANA": "H", "MEDICAID_TX": "5", "SELF": "SP"}
# Appeals: probability that an appeal overturns a denial, by the denial's CARC (others: background)
APPEAL_OVERTURN = {"27": 0.6, "197": 0.5, "11": 0.4, "45": 0.3, "29": 0.1}
APPEAL_OVERTURN_BACKGROUND = 0.45
# Claim id formats of billing organisations (realism.claim_id_format_rate), see _claim_ids
CLAIM_ID_FORMATS = ("legacy", "date_seq", "org_account", "clm", "patient_encounter", "long")
ORG_MNEMONICS = ("ACME", "NORTHSTAR", "BAYVIEW", "LONESTAR", "MERIDIAN", "CEDARPARK", "PINNACLE",
                 "SUMMITMED", "RIVERBEND", "HILLCREST", "GULFCOAST", "PRAIRIE", "SANMARCOS", "TRINITYHC",
                 "BRAZOSVAL", "CAPROCK", "PECANGROVE", "MESQUITE", "BLUEBONNET", "STONEBRIAR",
                 "ALAMOHLTH", "RIOGRANDE", "PANHANDLE", "PERMIAN", "HIGHPLAINS", "COASTAL", "LAKEWAY",
                 "FRISCOMED", "KATYFAM", "WOODLANDS")

FEMALE_FIRST = (
    "Mary Patricia Jennifer Linda Elizabeth Barbara Susan Jessica Sarah Karen Lisa Nancy Betty Sandra "
    "Margaret Ashley Kimberly Emily Donna Michelle Carol Amanda Melissa Deborah Stephanie Rebecca Sharon "
    "Laura Cynthia Dorothy Amy Kathleen Angela Shirley Emma Brenda Pamela Nicole Anna Samantha Katherine "
    "Christine Debra Rachel Carolyn Janet Maria Olivia Heather Helen Catherine Diane Julie Victoria Joyce "
    "Lauren Kelly Christina Ruth Joan Virginia Judith Evelyn Hannah Andrea Megan Cheryl Jacqueline Madison "
    "Sophia Abigail Teresa Isabella Sara Janice Martha Gloria Kathryn Ann Charlotte Judy Amber Julia Grace "
    "Denise Danielle Marilyn Beverly Ava Rosa Guadalupe Ana Lucia Mei Priya Aisha Fatima Ngoc"
).split()
MALE_FIRST = (
    "James Robert John Michael David William Richard Joseph Thomas Christopher Charles Daniel Matthew "
    "Anthony Mark Donald Steven Andrew Paul Joshua Kenneth Kevin Brian Timothy Ronald George Jason Edward "
    "Jeffrey Ryan Jacob Nicholas Gary Eric Jonathan Stephen Larry Justin Scott Brandon Benjamin Samuel "
    "Gregory Alexander Patrick Frank Raymond Jack Dennis Jerry Tyler Aaron Jose Adam Nathan Henry Zachary "
    "Douglas Peter Kyle Noah Ethan Jeremy Christian Walter Keith Austin Roger Terry Sean Gerald Carl Dylan "
    "Harold Jordan Jesse Bryan Lawrence Arthur Gabriel Bruce Logan Billy Joe Alan Juan Elijah Willie Albert "
    "Wayne Randy Mason Vincent Liam Roy Bobby Carlos Luis Miguel Jorge Wei Raj Omar Minh Hiroshi"
).split()
LAST_NAMES = (
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez "
    "Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez Clark "
    "Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green Adams "
    "Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Gomez Phillips Evans Turner Diaz Parker "
    "Cruz Edwards Collins Reyes Stewart Morris Morales Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper "
    "Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward Richardson Watson Brooks Chavez Wood James "
    "Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo Sanders Patel Myers Long Ross Foster Jimenez "
    "Powell Jenkins Perry Russell Sullivan Bell Coleman Butler Henderson Barnes Gonzales Fisher Vasquez "
    "Simmons Romero Jordan Patterson Alexander Hamilton Graham Reynolds Griffin Wallace Moreno West Cole "
    "Hayes Bryant Herrera Gibson Ellis Tran Medina Aguilar Stevens Murray Ford Castro Marshall Owens "
    "Harrison Fernandez McDonald Woods Washington Kennedy Wells Vargas Henry Chen Freeman Webb Tucker "
    "Guzman Burns Crawford Olson Simpson Porter Hunter Gordon Mendez Silva Shaw Snyder Mason Dixon Munoz "
    "Hunt Hicks Holmes Palmer Wagner Black Robertson Boyd Rose Stone Salazar Fox Warren Mills Meyer Rice "
    "Schmidt Garza Daniels Ferguson Nichols Stephens Soto Weaver Ryan Gardner Payne Grant Dunn Kelley "
    "Spencer Hawkins Arnold Pierce Vazquez Hansen Peters Santos Hart Bradley Knight Elliott O'Brien Pham"
).split()
STREETS = (
    "Main Oak Pine Maple Cedar Elm Washington Lake Hill Park Walnut Sunset Lincoln Jackson Church Willow "
    "Highland Meadow Forest River Spring Ridge Valley Mesquite Magnolia Pecan Live_Oak Bluebonnet "
    "Travis Lamar Guadalupe Houston Commerce Mockingbird Preston Westheimer Bissonnet Montrose Alamo"
).replace("_", " ").split(" ")
STREET_SUFFIX = ("St", "Ave", "Rd", "Dr", "Ln", "Blvd", "Ct", "Way", "Pkwy", "Trl")
ZIP3 = {"752": 0.14, "750": 0.08, "751": 0.04, "760": 0.06, "761": 0.07, "770": 0.14, "773": 0.05,
        "774": 0.05, "775": 0.03, "782": 0.1, "787": 0.09, "786": 0.03, "799": 0.04, "794": 0.02,
        "797": 0.02, "730": 0.01, "708": 0.01, "871": 0.01, "850": 0.01}
BCBS_PREFIXES = ("ZGP", "XOD", "XOF", "JQU", "YID", "ZGD", "XDB", "HZE")
MBI_LETTERS = np.frombuffer(b"ACDEFGHJKMNPQRTUVWXY", dtype=np.uint8)
MBI_ALNUM = np.frombuffer(b"0123456789ACDEFGHJKMNPQRTUVWXY", dtype=np.uint8)


# --- lookup arrays over the reference (index order = reference order) --------------------------------
PAYER_IDS = ref.PAYER_IDS
FAMILIES = ref.CPT_FAMILIES
CPT_CODES = ref.CPT_CODES
ICD_CODES = ref.ICD10_CODES
POS_CODES = tuple(ref.PLACE_OF_SERVICE)
PLAN_TYPES = tuple(ref.PAYER_PLAN_TYPE[p] for p in PAYER_IDS)
_CPT_FAM = np.array([FAMILIES.index(ref.CPT_FAMILY[c]) for c in CPT_CODES], dtype=np.int64)
_CPT_CHARGE = np.array([ref.CPT_TYPICAL_CHARGE[c] for c in CPT_CODES])
_HCPCS = np.array([c in HCPCS_WEIGHT for c in CPT_CODES])
_INPATIENT = np.array([c in INPATIENT_WEIGHT for c in CPT_CODES])
_ICD_CHAPTER = tuple(ref.ICD10_CHAPTER[c] for c in ICD_CODES)
_ICD_FULL_GRAMMAR = np.array([c in FULL_GRAMMAR_ICD for c in ICD_CODES])
_CONSISTENT = np.array([[ref.is_consistent(f, ch) for ch in _ICD_CHAPTER] for f in FAMILIES])
_PA_REQUIRED = np.array([[ref.requires_prior_auth(p, f) for f in FAMILIES] for p in PAYER_IDS])
_BASE_LOGIT = np.array([ref.PAYER_BASE_LOGIT[p] for p in PAYER_IDS])
_FILING_LIMIT = np.array([ref.PAYER_FILING_LIMIT_DAYS[p] for p in PAYER_IDS], dtype=np.int64)
_PLAN_ELIG = np.array([ELIG_UNVERIFIED[p] for p in PLAN_TYPES])
_PLAN_FEE = np.array([FEE_FACTOR[p] for p in PLAN_TYPES])
_POS_ER = POS_CODES.index("23")
_POS_INPATIENT = POS_CODES.index("21")
_POS_TELEHEALTH = np.array([c in ref.TELEHEALTH_POS for c in POS_CODES])
_POS_FACILITY = np.array([c in ref.FACILITY_POS for c in POS_CODES])
_MODIFIER_STRINGS = np.array(
    [",".join(m for k, m in enumerate(MODIFIER_BITS) if mask >> k & 1) or None
     for mask in range(1 << len(MODIFIER_BITS))], dtype=object)
_MOD_25, _MOD_59, _MOD_JW, _MOD_JZ = (1 << MODIFIER_BITS.index(m) for m in ("25", "59", "JW", "JZ"))

Batch = dict[str, np.ndarray]

# Claim defects (generate(defects=True); off by default until silver flags them instead of rejecting):
# kinds, the rate of each per first submission, their logit effect, CARC 16 with a RARC naming the field
DEFECT_KINDS = ("test_npi", "icd9_after_cutoff", "missing_dob")
DEFECT_RATE = 0.004
DEFECT_EFFECT = 2.5
DEFECT_RARC = {"test_npi": "N290", "icd9_after_cutoff": "M76", "missing_dob": "N329"}
ICD10_START_DAY = 16_709  # 2015-10-01: services before it are coded in ICD-9-CM
_ICD9_RNG = np.random.default_rng(0x9CD)
# an ICD-9-CM form of each reference diagnosis (V codes for the Z chapter), for services before 2015-10-01
ICD9_OF = tuple(f"V{_ICD9_RNG.integers(1, 92):02d}.{_ICD9_RNG.integers(0, 10)}" if c.startswith("Z")
                else f"{_ICD9_RNG.integers(1, 1000):03d}.{_ICD9_RNG.integers(0, 100):02d}" for c in ref.ICD10_CODES)


@dataclass(frozen=True)
class Drift:
    """From `start` (submission date), `payer_id` requires prior auth for `cpt_family`.

    The published policy (world.PRIOR_AUTH_REQUIRED) does not change, so billers keep sending
    these claims without an authorization number and denials rise: the scenario monitoring must catch.
    """

    start: date
    payer_id: str
    cpt_family: str

    def __post_init__(self) -> None:
        start = self.start
        if isinstance(start, str):
            start = date.fromisoformat(start)
        if isinstance(start, datetime):
            start = start.date()
        object.__setattr__(self, "start", start)
        if self.payer_id not in ref.PAYERS:
            raise ValueError(f"unknown payer {self.payer_id!r}; known: {list(ref.PAYER_IDS)}")
        if self.cpt_family not in ref.CPT_FAMILIES:
            raise ValueError(f"unknown CPT family {self.cpt_family!r}; known: {list(ref.CPT_FAMILIES)}")


@dataclass(frozen=True)
class Realism:
    """How much of the real-world mess to generate; every field is a rate in [0, 1], 0 switches it off.

    See the module docstring for what each part does. Presets: `Realism.preset("none" | "default" |
    "heavy")`; `Realism()` is "none" (the clean world).
    """

    in_place_update_rate: float = 0.0
    appeal_rate: float = 0.0
    hcpcs_rate: float = 0.0
    zip4_rate: float = 0.0
    icd_full_grammar_rate: float = 0.0
    claim_id_format_rate: float = 0.0
    institutional_rate: float = 0.0
    late_commit_rate: float = 0.0
    resent_file_rate: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
                raise ValueError(f"Realism.{f.name} must be a rate in [0, 1], got {value!r}")
            object.__setattr__(self, f.name, float(value))
        if self.hcpcs_rate + self.institutional_rate > 0.5:
            raise ValueError("hcpcs_rate + institutional_rate must leave at least half the claims professional")

    @classmethod
    def preset(cls, name: str) -> Realism:
        """The named preset: "none", "default" or "heavy"."""
        try:
            return REALISM_PRESETS[name]
        except KeyError:
            raise ValueError(f"unknown realism preset {name!r}; known: {list(REALISM_PRESETS)}") from None

    @classmethod
    def of(cls, value: Realism | str) -> Realism:
        """A Realism as is, or the preset of that name."""
        if isinstance(value, Realism):
            return value
        if isinstance(value, str):
            return cls.preset(value)
        raise TypeError(f"realism must be a Realism or a preset name, got {type(value).__name__}")


REALISM_PRESETS: dict[str, Realism] = {
    "none": Realism(),
    "default": Realism(in_place_update_rate=0.04, appeal_rate=0.35, hcpcs_rate=0.06, zip4_rate=0.4,
                       icd_full_grammar_rate=0.05, claim_id_format_rate=0.8, institutional_rate=0.015,
                       late_commit_rate=0.01, resent_file_rate=0.2),
    "heavy": Realism(in_place_update_rate=0.12, appeal_rate=0.6, hcpcs_rate=0.15, zip4_rate=0.6,
                     icd_full_grammar_rate=0.2, claim_id_format_rate=1.0, institutional_rate=0.05,
                     late_commit_rate=0.05, resent_file_rate=0.6),
}


@dataclass
class SyntheticData:
    """Source tables plus the hidden truth. Submissions cover [start, end) local days; `end` is exclusive.

    `committed_at` holds, per source table ("claims", "remittances"), when each row was committed
    (aligned with the frame's rows): most rows seconds after their updated_at, late commits hours later.
    """

    claims: pd.DataFrame
    remittances: pd.DataFrame
    ground_truth: pd.DataFrame
    start: date
    days: int
    seed: int
    drift: Drift | None = None
    summary: dict = field(default_factory=dict)
    realism: Realism = field(default_factory=Realism)
    facility_tz: str = "UTC"
    committed_at: dict[str, pd.Series] = field(default_factory=dict)
    world: str = "default"  # "default" or "hospital_b" (synthetic.hospital_b): which rules drew the data

    @property
    def end(self) -> date:
        return (pd.Timestamp(self.start) + pd.Timedelta(days=self.days)).date()


# ---------------------------------------------------------------------------------------------------
# small vectorized helpers
# ---------------------------------------------------------------------------------------------------


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """ASCII digits of non-negative ints as a (n, width) uint8 matrix, zero padded."""
    out = np.empty((len(values), width), dtype=np.uint8)
    v = np.asarray(values, dtype=np.int64).copy()
    for pos in range(width - 1, -1, -1):
        out[:, pos] = 48 + v % 10
        v //= 10
    return out


def _to_str(mat: np.ndarray) -> np.ndarray:
    """(n, w) uint8 ASCII matrix -> object array of str (fixed width, no per-row Python formatting)."""
    mat = np.ascontiguousarray(mat, dtype=np.uint8)
    if mat.shape[0] == 0:
        return np.empty(0, dtype=object)
    return mat.view(f"S{mat.shape[1]}").ravel().astype(f"U{mat.shape[1]}").astype(object)


def _prefixed(prefix: str, values: np.ndarray, width: int) -> np.ndarray:
    pre = np.frombuffer(prefix.encode(), dtype=np.uint8)
    mat = np.hstack([np.broadcast_to(pre, (len(values), len(pre))), _digits(values, width)])
    return _to_str(mat)


def _choice(rng: np.random.Generator, weights: dict[str, float] | np.ndarray, n: int) -> np.ndarray:
    p = np.asarray(list(weights.values()) if isinstance(weights, dict) else weights, dtype=float)
    return rng.choice(len(p), size=n, p=p / p.sum())


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _npi(rng: np.random.Generator, n: int, first_digit: int = 1) -> np.ndarray:
    """Unique, Luhn-valid NPIs (check digit over the prefix 80840 + 9 digits, as CMS specifies)."""
    body = first_digit * 100_000_000 + rng.choice(100_000_000, size=n, replace=False)
    digits = _digits(body, 9).astype(np.int64) - 48
    dbl = digits[:, ::2] * 2  # from the right of the 9 digits, every other digit starting rightmost
    total = 24 + (dbl // 10 + dbl % 10).sum(axis=1) + digits[:, 1::2].sum(axis=1)
    check = (10 - total % 10) % 10
    return _to_str(np.hstack([digits + 48, (check + 48)[:, None]]))


def _days_since_epoch(d: date) -> int:
    return int((np.datetime64(d, "D") - np.datetime64("1970-01-01", "D")).astype(np.int64))


def _whole_s(us: np.ndarray) -> np.ndarray:
    """Microseconds (a time of day or a delay, >= 0) truncated to whole seconds as int64: every source
    timestamp is a whole second, as X12 carries them (HHMMSS)."""
    return np.asarray(us).astype(np.int64) // US_PER_S * US_PER_S


def _ts(us: np.ndarray) -> np.ndarray:
    return us.astype("datetime64[us]").astype("datetime64[ns]")


def _day(days: np.ndarray) -> np.ndarray:
    return days.astype("datetime64[D]").astype("datetime64[ns]")


def _check_tz(name: str) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError(f"facility_tz must be an IANA time zone name, got {name!r}")
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r} (expected an IANA name such as America/New_York)") from exc
    return name


def _local_to_utc(local_us: np.ndarray, tz: str) -> np.ndarray:
    """Naive local wall-clock microseconds -> naive UTC microseconds. Nonexistent times (spring
    forward) move to the first valid instant after the gap; ambiguous ones (fall back) read as DST."""
    if tz == "UTC":
        return local_us
    idx = pd.DatetimeIndex(local_us.astype("datetime64[us]"))
    aware = idx.tz_localize(tz, ambiguous=np.ones(len(idx), dtype=bool), nonexistent="shift_forward")
    return aware.tz_convert("UTC").tz_localize(None).to_numpy().astype("datetime64[us]").astype(np.int64)


def _local_day(utc_us: np.ndarray, tz: str) -> np.ndarray:
    """The facility's local calendar day (days since 1970-01-01) of naive UTC microseconds."""
    if tz == "UTC":
        return utc_us // US_PER_DAY
    idx = pd.DatetimeIndex(utc_us.astype("datetime64[us]")).tz_localize("UTC").tz_convert(tz)
    return idx.tz_localize(None).to_numpy().astype("datetime64[D]").astype(np.int64)


def _realism_rng(seed: int) -> np.random.Generator:
    """The realism layer's own stream: the clean world's draws never depend on realism settings."""
    return np.random.default_rng([seed, 0x5EA1])
# ---------------------------------------------------------------------------------------------------
# populations: patients and providers
# ---------------------------------------------------------------------------------------------------


def _mbi(rng: np.random.Generator, n: int) -> np.ndarray:
    """Medicare Beneficiary Identifier shape (1EG4TE5MK73): letters without S L O I B Z."""
    r = rng.integers(0, 1 << 30, size=(n, 11))
    mat = np.empty((n, 11), dtype=np.uint8)
    for pos, kind in enumerate("NAXNAXNAANN"):
        if kind == "N":
            mat[:, pos] = 49 + r[:, pos] % 9 if pos == 0 else 48 + r[:, pos] % 10
        elif kind == "A":
            mat[:, pos] = MBI_LETTERS[r[:, pos] % len(MBI_LETTERS)]
        else:
            mat[:, pos] = MBI_ALNUM[r[:, pos] % len(MBI_ALNUM)]
    return _to_str(mat)


def _member_ids(rng: np.random.Generator, payer: np.ndarray) -> np.ndarray:
    """Payer-style member ids, unique within a payer (a scrambled sequence, not random draws)."""
    out = np.empty(len(payer), dtype=object)
    for k, pid in enumerate(PAYER_IDS):
        idx = np.flatnonzero(payer == k)
        n = len(idx)
        # i -> (i*A + B) mod 10^9 is a bijection for A coprime to 10: unique, random-looking ids
        seq = (np.arange(n, dtype=np.int64) * 387_420_489 + int(rng.integers(10**9))) % 10**9
        if n == 0:
            continue
        if pid == "MEDICARE":
            out[idx] = _mbi(rng, n)  # random; collisions in 20^4*30^2*10^5 are negligible
        elif pid == "BCBS":
            pre = np.array(BCBS_PREFIXES, dtype=object)[rng.integers(len(BCBS_PREFIXES), size=n)]
            out[idx] = pre + _prefixed("", seq, 9)
        else:
            out[idx] = _prefixed(MEMBER_PREFIX.get(pid, "M"), seq, 9)
    return out


def _patients(rng: np.random.Generator, rr: np.random.Generator, start_day: int, n: int,
              zip4_rate: float) -> Batch:
    """A patient pool: demographics, payer and PHI strings, reused across claims."""
    size = max(200, n // 3)
    payer = _choice(rng, PAYER_MIX, size)
    plan = np.array(PLAN_TYPES)[payer]
    u = rng.random(size)
    commercial_age = np.where(u < 0.2, rng.uniform(0, 18, size),
                              np.where(u < 0.95, rng.uniform(18, 65, size), rng.uniform(65, 80, size)))
    age = np.select(
        [plan == "medicare", plan == "medicaid", plan == "self_pay"],
        [np.where(u < 0.88, rng.triangular(65, 70, 98, size), rng.uniform(25, 65, size)),
         np.where(u < 0.45, rng.uniform(0, 18, size), rng.uniform(18, 65, size)),
         rng.uniform(18, 65, size)],
        commercial_age,
    )
    dob_day = start_day - np.floor(age * 365.25).astype(np.int64)
    sex = np.array(["F", "M", "U"], dtype=object)[_choice(rng, np.array([0.54, 0.455, 0.005]), size)]
    female = np.array([f"{f} {la}" for f in FEMALE_FIRST for la in LAST_NAMES], dtype=object)
    male = np.array([f"{m} {la}" for m in MALE_FIRST for la in LAST_NAMES], dtype=object)
    as_male = (sex == "M") | ((sex == "U") & (rng.random(size) < 0.5))
    name = np.where(as_male, male[rng.integers(len(male), size=size)],
                    female[rng.integers(len(female), size=size)])
    streets = np.array([f"{s} {x}" for s in STREETS for x in STREET_SUFFIX], dtype=object)
    number = rng.integers(100, 19_999, size=size).astype(str).astype(object)
    street = streets[rng.integers(len(streets), size=size)]
    apt = rng.integers(1, 400, size=size).astype(str).astype(object)
    address = number + " " + street
    has_apt = rng.random(size) < 0.22
    address[has_apt] = address[has_apt] + " Apt " + apt[has_apt]
    zip3 = np.array(list(ZIP3), dtype=object)[_choice(rng, ZIP3, size)]
    zipcode = zip3 + _prefixed("", rng.integers(1, 100, size=size), 2)
    plus4 = np.flatnonzero(rr.random(size) < zip4_rate)  # realism: ZIP+4 (CASS-standardized address)
    zipcode[plus4] = zipcode[plus4] + _prefixed("-", rr.integers(1, 10_000, size=len(plus4)), 4)
    return {"payer": payer, "dob_day": dob_day, "sex": sex, "name": name, "address": address,
            "zip": zipcode, "member_id": _member_ids(rng, payer), "zip4_count": np.array(len(plus4))}


def _providers(rng: np.random.Generator, rr: np.random.Generator) -> Batch:
    """Rendering clinicians per CPT family, each billing under one organization, with habits.

    The clean world's families come from the main stream; the realism-only families (drugs,
    ambulance, ...) from the realism stream, with NPIs starting with 2 so the two never collide."""
    fam = np.concatenate([np.full(PROVIDERS_PER_FAMILY[f], FAMILIES.index(f)) for f in BASE_FAMILIES])
    n = len(fam)
    npis = _npi(rng, n + BILLING_ORGS)
    org = rng.integers(BILLING_ORGS, size=n)
    base = {
        "family": fam,
        "org": org,
        "rendering_npi": npis[:n],
        # habits: how often they forget prior auth or miscode (mean 1), their chargemaster, friction
        "pa_miss": rng.lognormal(-0.125, 0.5, n),
        "miscode": rng.lognormal(-0.125, 0.5, n),
        "charge": rng.lognormal(0.0, 0.1, n),
        "effect": rng.normal(0.0, 0.15, n),
    }
    extra_fam = np.concatenate([np.full(PROVIDERS_PER_FAMILY[f], FAMILIES.index(f))
                                for f in FAMILIES if f not in BASE_FAMILIES])
    m = len(extra_fam)
    extra = {
        "family": extra_fam,
        "org": rr.integers(BILLING_ORGS, size=m),
        "rendering_npi": _npi(rr, m, first_digit=2),
        "pa_miss": rr.lognormal(-0.125, 0.5, m),
        "miscode": rr.lognormal(-0.125, 0.5, m),
        "charge": rr.lognormal(0.0, 0.1, m),
        "effect": rr.normal(0.0, 0.15, m),
    }
    out = {k: np.concatenate([base[k], extra[k]]) for k in base}
    out["billing_npi"] = npis[n:][out["org"]]
    return out


# ---------------------------------------------------------------------------------------------------
# claim versions
# ---------------------------------------------------------------------------------------------------

_BASE_ICD = ~_ICD_FULL_GRAMMAR


def _pick_icd(rng: np.random.Generator, fam: np.ndarray, consistent: np.ndarray,
              allowed: np.ndarray = _BASE_ICD, fallback: bool = True) -> np.ndarray:
    """An ICD index per row among `allowed` codes: from chapters consistent with the CPT family, or
    deliberately not. Where no allowed code has the wanted consistency, any allowed code (fallback)
    or -1 (no fallback: the caller keeps what it had)."""
    icd = np.full(len(fam), -1, dtype=np.int64)
    for k in range(len(FAMILIES)):
        for want in (True, False):
            rows = np.flatnonzero((fam == k) & (consistent == want))
            if not len(rows):
                continue
            pool = np.flatnonzero((_CONSISTENT[k] == want) & allowed)
            if not len(pool):
                if not fallback:
                    continue
                pool = np.flatnonzero(allowed)
            icd[rows] = pool[rng.integers(len(pool), size=len(rows))]
    return icd


def _cpt_weights(realism: Realism) -> np.ndarray:
    """Draw weights over the reference codes: the clean mix, plus HCPCS and inpatient shares. Trailing
    zero weights are cut so the clean world draws exactly as it always has."""
    fam_total = {f: sum(w for c, w in CPT_WEIGHT.items() if ref.CPT_FAMILY[c] == f) for f in BASE_FAMILIES}
    base = np.array([FAMILY_MIX[ref.CPT_FAMILY[c]] * CPT_WEIGHT[c] / fam_total[ref.CPT_FAMILY[c]]
                     if c in CPT_WEIGHT else 0.0 for c in CPT_CODES])
    hcpcs = np.array([HCPCS_WEIGHT.get(c, 0.0) for c in CPT_CODES])
    inpatient = np.array([INPATIENT_WEIGHT.get(c, 0.0) for c in CPT_CODES])
    w = base * (1.0 - realism.hcpcs_rate - realism.institutional_rate)
    if realism.hcpcs_rate:
        w = w + realism.hcpcs_rate * hcpcs / hcpcs.sum()
    if realism.institutional_rate:
        w = w + realism.institutional_rate * inpatient / inpatient.sum()
    return w[: np.flatnonzero(w).max() + 1]


def _modifiers(rng: np.random.Generator, cpt: np.ndarray, fam: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Modifier bitmask (bit k = MODIFIER_BITS[k]) following common billing patterns."""
    n = len(cpt)
    r = rng.random((6, n))
    fam_in = lambda *names: np.isin(fam, [FAMILIES.index(f) for f in names])  # noqa: E731
    facility = _POS_FACILITY[pos]
    lateral = np.isin(cpt, [CPT_CODES.index(c) for c in LATERAL_CPTS]) & (r[3] < 0.85)
    diag = fam_in("imaging", "radiology", "cardiology")
    return (
        (fam_in("em") & (r[0] < 0.08) & (pos != _POS_ER)) * 1  # 25: E/M with a same-day procedure
        | (fam_in("therapy", "surgery", "lab") & (r[1] < 0.05)) * 2  # 59: distinct procedure
        | (diag & facility & (r[2] < 0.5)) * 4  # 26: professional component read in a facility
        | (diag & ~facility & (r[2] < 0.1)) * 8  # TC: technical component only
        | (lateral & (r[4] < 0.5)) * 16  # LT
        | (lateral & (r[4] >= 0.5)) * 32  # RT
        | (_POS_TELEHEALTH[pos] & (r[5] < 0.6)) * 64  # GT
    ).astype(np.int64)




def _hcpcs_units(rr: np.random.Generator, cpt: np.ndarray, units: np.ndarray) -> None:
    """Billing units of HCPCS lines in place: the code's dosage unit, often hundreds for biologics."""
    for code, rule in HCPCS_UNITS.items():
        rows = np.flatnonzero(cpt == CPT_CODES.index(code))
        if not len(rows):
            continue
        if rule[0] == "one":
            units[rows] = rule[1]
        elif rule[0] == "int":
            units[rows] = rr.integers(rule[1], rule[2] + 1, size=len(rows))
        else:
            units[rows] = np.array(rule[1])[_choice(rr, np.array(rule[2]), len(rows))]


def _first_versions(rng: np.random.Generator, rr: np.random.Generator, start_day: int, days: int,
                    per_day: int, pats: Batch, provs: Batch, realism: Realism, tz: str) -> Batch:
    n = days * per_day
    day = start_day + np.repeat(np.arange(days, dtype=np.int64), per_day)  # the facility's local days
    # time of day: mostly business hours, some overnight batch submissions; sorted within each day
    tod = np.where(rng.random(n) < 0.85, rng.uniform(7 / 24, 19 / 24, n), rng.random(n))
    tod = np.sort(_whole_s(tod * US_PER_DAY).reshape(days, per_day), axis=1).ravel()
    patient = (len(pats["payer"]) * rng.random(n) ** 1.5).astype(np.int64)  # some patients recur
    payer = pats["payer"][patient]

    cpt = _choice(rng, _cpt_weights(realism), n)
    fam = _CPT_FAM[cpt]
    inst = _INPATIENT[cpt]  # institutional (inpatient facility) claims: realism only
    provider = np.empty(n, dtype=np.int64)
    pos = np.empty(n, dtype=np.int64)
    for k, f in enumerate(FAMILIES):
        rows = np.flatnonzero(fam == k)
        pool = np.flatnonzero(provs["family"] == k)
        provider[rows] = pool[rng.integers(len(pool), size=len(rows))]
        dist = FAMILY_POS[f]
        pos[rows] = np.array([POS_CODES.index(c) for c in dist])[_choice(rng, dist, len(rows))]
    for code, place in POS_OVERRIDE.items():
        pos[cpt == CPT_CODES.index(code)] = POS_CODES.index(place)
    pos[inst] = _POS_INPATIENT

    mismatch = rng.random(n) < np.clip(0.04 * provs["miscode"][provider], 0, 0.5)
    icd = _pick_icd(rng, fam, ~mismatch)
    if realism.icd_full_grammar_rate:
        g = np.flatnonzero(rr.random(n) < realism.icd_full_grammar_rate)
        new = _pick_icd(rr, fam[g], ~mismatch[g], _ICD_FULL_GRAMMAR, fallback=False)
        icd[g[new >= 0]] = new[new >= 0]
    icd_count = 1 + np.minimum(rng.poisson(1.3, n), 11)
    lo, hi = INSTITUTIONAL_DX_COUNT
    icd_count[inst] = lo + rr.binomial(hi - lo, 0.45, int(inst.sum()))
    units = np.ones(n, dtype=np.int64)
    therapy = fam == FAMILIES.index("therapy")
    units[therapy] = 1 + _choice(rng, np.array([0.2, 0.35, 0.3, 0.14, 0.01]), int(therapy.sum()))
    lab = fam == FAMILIES.index("lab")
    units[lab] += rng.random(int(lab.sum())) < 0.05
    if realism.hcpcs_rate:
        _hcpcs_units(rr, cpt, units)
    charge = _CPT_CHARGE[cpt] * units * provs["charge"][provider] * rng.lognormal(0.0, 0.12, n)
    tail = rng.random(n) < 0.03
    charge[tail] *= rng.uniform(1.8, 4.0, int(tail.sum()))
    charge[inst] *= rr.lognormal(0.0, 0.3, int(inst.sum()))  # length of stay
    billed = np.clip(np.round(charge, 2), 0.01, MAX_BILLED)

    # days from service to submission: usually 1–30; a moderate tail; ~2.5% past the filing limit
    limit = _FILING_LIMIT[payer]
    lag = 1 + np.minimum(np.floor(rng.gamma(1.3, 5.0, n)), 29).astype(np.int64)
    u = rng.random(n)
    moderate = (u >= 0.935) & (u < 0.975)
    lag[moderate] = rng.integers(31, np.maximum(limit[moderate] - 5, 32))
    breach = u >= 0.975
    lag[breach] = limit[breach] + 1 + np.floor(rng.exponential(25.0, int(breach.sum()))).astype(np.int64)

    p_unverified = _PLAN_ELIG[payer] * np.where(pos == _POS_ER, 2.5, 1.0)
    elig = rng.random(n) >= p_unverified
    # prior auth attached when the published policy asks for it, unless the provider forgets
    published = _PA_REQUIRED[payer, fam]
    p_present = np.where(published, 1 - np.clip(0.15 * provs["pa_miss"][provider], 0, 0.8), 0.03)
    pa_present = rng.random(n) < p_present
    mods = _modifiers(rng, cpt, fam, pos)
    drug = np.flatnonzero(np.isin(fam, [FAMILIES.index("drugs"), FAMILIES.index("biologics")]))
    r = rr.random(len(drug))  # Medicare's single-dose container rule: JZ (nothing wasted) or JW
    mods[drug] |= np.where(r < 0.55, _MOD_JZ, np.where(r < 0.65, _MOD_JW, 0))

    return {
        "claim_no": np.arange(n, dtype=np.int64), "version": np.ones(n, dtype=np.int64),
        "patient": patient, "payer": payer, "provider": provider, "cpt": cpt, "fam": fam, "icd": icd,
        "icd_count": icd_count.astype(np.int64), "units": units, "billed": billed,
        "service_day": day - lag, "submitted": _local_to_utc(day * US_PER_DAY + tod, tz), "sub_day": day,
        "elig": elig, "pa_present": pa_present, "pos": pos, "mods": mods,
        "pa_no": rng.integers(10**9, 10**10, size=n), "inst": inst,
    }


def _score(v: Batch, pats: Batch, provs: Batch, drift: Drift | None) -> None:
    """Named causes, true probability and the background share, added to the batch in place."""
    payer, fam = v["payer"], v["fam"]
    sub_day = v["sub_day"]  # the facility's local submission day
    drift_active = np.zeros(len(payer), dtype=bool)
    if drift is not None:
        drift_active = ((sub_day >= _days_since_epoch(drift.start))
                        & (payer == PAYER_IDS.index(drift.payer_id))
                        & (fam == FAMILIES.index(drift.cpt_family)))
    required = _PA_REQUIRED[payer, fam] | drift_active
    age = (v["service_day"] - pats["dob_day"][v["patient"]]) / 365.25
    ratio = v["billed"] / (_CPT_CHARGE[v["cpt"]] * v["units"])
    days_to_submit = sub_day - v["service_day"]
    causes = {
        "missing_prior_auth": required & ~v["pa_present"],
        "eligibility_unverified": ~v["elig"],
        "timely_filing": days_to_submit > _FILING_LIMIT[payer],
        "dx_inconsistent": ~_CONSISTENT[fam, v["icd"]],
        "high_charge": ratio > HIGH_CHARGE_RATIO,
    }
    if "defect" in v:  # generate(defects=True) only: the clean world's draws stay as they were
        causes["defect"] = v["defect"] >= 0
    audited = (v["mods"] & (_MOD_25 | _MOD_59)) > 0
    small = (_BASE_LOGIT[payer] + provs["effect"][v["provider"]]
             + EFFECTS["audited_modifier"] * audited
             + EFFECTS["telehealth"] * _POS_TELEHEALTH[v["pos"]]
             + EFFECTS["emergency"] * (v["pos"] == _POS_ER)
             + EFFECTS["age_80_plus"] * (age >= 80))
    logit = small + sum(EFFECTS.get(name, DEFECT_EFFECT) * flag for name, flag in causes.items())
    v["prob"] = _sigmoid(logit)
    v["p_background"] = _sigmoid(small)
    v["required"] = required
    v["drift_active"] = drift_active
    v["audited_modifier"] = audited
    v["days_to_submit"] = days_to_submit
    for name, flag in causes.items():
        v[f"cause_{name}"] = flag


_DERIVED = ("prob", "p_background", "required", "drift_active", "audited_modifier", "days_to_submit")


def _corrections(rng: np.random.Generator, prev: Batch, share_clean: float, share_fixable: float,
                 fix_rate: float, tz: str) -> Batch:
    """The next version of some claims: resubmitted 1–7 days later, usually fixing the cause."""
    fixable = (prev["cause_missing_prior_auth"] | prev["cause_eligibility_unverified"]
               | prev["cause_dx_inconsistent"])
    chosen = np.flatnonzero(rng.random(len(fixable)) < np.where(fixable, share_fixable, share_clean))
    nxt = {k: a[chosen].copy() for k, a in prev.items()}
    m = len(chosen)
    nxt["version"] += 1
    nxt["submitted"] += _whole_s(rng.uniform(1.0, 7.0, m) * US_PER_DAY)
    nxt["sub_day"] = _local_day(nxt["submitted"], tz)
    fix = rng.random((3, m)) < fix_rate
    nxt["pa_present"] |= nxt["cause_missing_prior_auth"] & fix[0]
    nxt["pa_no"] = rng.integers(10**9, 10**10, size=m)
    nxt["elig"] |= nxt["cause_eligibility_unverified"] & fix[1]
    recode = nxt["cause_dx_inconsistent"] & fix[2]
    nxt["icd"][recode] = _pick_icd(rng, nxt["fam"][recode], np.ones(int(recode.sum()), dtype=bool))
    # a correction without a fixable cause changes something else: the charge and the dx count
    clean = ~(nxt["cause_missing_prior_auth"] | nxt["cause_eligibility_unverified"]
              | nxt["cause_dx_inconsistent"])
    nxt["billed"][clean] = np.round(nxt["billed"][clean] * rng.uniform(0.85, 1.1, int(clean.sum())), 2)
    if "defect" in nxt:
        nxt["defect"][:] = -1  # the corrected claim carries a valid NPI, code set and date of birth
    cap = np.where(nxt["inst"], INSTITUTIONAL_DX_COUNT[1], 12)
    nxt["icd_count"][clean] = np.minimum(nxt["icd_count"][clean] + 1, cap[clean])
    return {k: a for k, a in nxt.items() if not k.startswith("cause_") and k not in _DERIVED}


# ---------------------------------------------------------------------------------------------------
# outcomes
# ---------------------------------------------------------------------------------------------------


def _outcomes(rng: np.random.Generator, v: Batch) -> tuple[np.ndarray, np.ndarray]:
    """Realized denial per version and the CARC the denial carries."""
    n = len(v["prob"])
    denied = rng.random(n) < v["prob"]
    background = rng.random(n) < v["p_background"] / v["prob"]
    bg_codes = np.array([c for c, _ in BACKGROUND_CARCS], dtype=object)
    carc = bg_codes[_choice(rng, np.array([w for _, w in BACKGROUND_CARCS]), n)]
    unassigned = ~background
    order = CAUSE_CARC if "cause_defect" not in v else (*CAUSE_CARC[:2], ("defect", "16"), *CAUSE_CARC[2:])
    for name, code in order:
        hit = unassigned & v[f"cause_{name}"]
        carc[hit] = code
        unassigned &= ~hit
    carc[~denied] = None
    return denied, carc


def _minutes_later(rng: np.random.Generator, us: np.ndarray) -> np.ndarray:
    """When a remittance row reached the source: 1 minute to 36 hours after adjudication."""
    return us + _whole_s(np.clip(rng.exponential(120.0, len(us)), 1, 36 * 60) * US_PER_MIN)


def _remittances(rng: np.random.Generator, rr: np.random.Generator, v: Batch, latest: np.ndarray,
                 claim_ids: np.ndarray, appeal_rate: float) -> tuple[pd.DataFrame, Batch]:
    """One first adjudication per claim (of its latest version); ~5% get a second row later (payment
    correction or reviewed denial); with realism, a share of the other denials is appealed.

    Returns the frame (rows in the order they reached the source) and, per version of `v`, the first
    adjudication time (-1 when not adjudicated) and the appeal status (None, "overturned", "upheld")."""
    idx = np.flatnonzero(latest)
    n = len(idx)
    denied = v["denied"][idx]
    carc = v["carc"][idx].copy()
    adj_lag = 14 * US_PER_DAY + _whole_s(rng.triangular(0, 9, 46, n) * US_PER_DAY)
    adjudicated = v["submitted"][idx] + np.minimum(adj_lag, 60 * US_PER_DAY - US_PER_S)
    updated = _minutes_later(rng, adjudicated)

    payer = v["payer"][idx]
    fee = _CPT_CHARGE[v["cpt"][idx]] * v["units"][idx] * _PLAN_FEE[payer] * rng.lognormal(0.0, 0.08, n)
    allowed_if_paid = np.round(np.minimum(fee, v["billed"][idx]), 2)
    partial = ~denied & (rng.random(n) < 0.12)
    paid = np.where(partial, np.round(allowed_if_paid * rng.uniform(0.4, 0.85, n), 2), allowed_if_paid)
    carc[partial] = np.where(rng.random(int(partial.sum())) < 0.5, "1", "2")  # deductible / coinsurance
    status = np.where(denied, "denied", np.where(partial, "partial", "paid")).astype(object)
    paid = np.where(denied, 0.0, paid)
    allowed = np.where(denied, 0.0, allowed_if_paid)
    rarc = pd.Series(carc, dtype=object).map(CARC_RARC).to_numpy(dtype=object)
    rarc[pd.isna(rarc)] = None

    s = np.flatnonzero(rng.random(n) < 0.05)
    adj2 = adjudicated[s] + _whole_s(rng.uniform(7, 45, len(s)) * US_PER_DAY)
    upd2 = _minutes_later(rng, adj2)
    paid2 = np.where(denied[s], 0.0,
                     np.round(np.minimum(paid[s] * rng.uniform(0.9, 1.05, len(s)), allowed[s]), 2))
    rarc2 = np.where(denied[s], "N10", "MA67").astype(object)  # appeal reviewed / correction
    # a correction that pays less than allowed is a partial payment, as an 835 reader reads it
    status2 = np.where(denied[s], "denied", np.where(paid2 < allowed[s], "partial", "paid")).astype(object)

    # realism: appeals of denials that have no second row yet, overturned (paid) or upheld
    candidates = denied.copy()
    candidates[s] = False
    a = np.flatnonzero(candidates & (rr.random(n) < appeal_rate)) if appeal_rate else np.empty(0, np.int64)
    p_over = pd.Series(carc[a], dtype=object).map(APPEAL_OVERTURN).fillna(APPEAL_OVERTURN_BACKGROUND)
    over = rr.random(len(a)) < p_over.to_numpy(dtype=float)
    adj3 = adjudicated[a] + _whole_s(rr.uniform(15, 60, len(a)) * US_PER_DAY)
    upd3 = _minutes_later(rr, adj3)
    allowed3 = np.where(over, allowed_if_paid[a], 0.0)
    carc3 = np.where(over, None, carc[a]).astype(object)

    ids = claim_ids[v["claim_no"][idx]]
    upd_all = np.concatenate([updated, upd2, upd3])
    order = np.argsort(upd_all, kind="stable")  # rows in the order they reached the source
    frame = pd.DataFrame({
        "claim_id": np.concatenate([ids, ids[s], ids[a]])[order],
        "adjudicated_at": _ts(np.concatenate([adjudicated, adj2, adj3])[order]),
        "claim_status": np.concatenate([status, status2, np.where(over, "paid", "denied").astype(object)])[order],
        "paid_amount": np.concatenate([paid, paid2, allowed3])[order],
        "allowed_amount": np.concatenate([allowed, allowed[s], allowed3])[order],
        "carc_code": np.concatenate([carc, carc[s], carc3])[order],
        "rarc_code": np.concatenate([rarc, rarc2, np.full(len(a), "N10", dtype=object)])[order],
        "payer_claim_control_number": np.full(len(order), None, dtype=object),  # X12-only columns (CLP07, CAS01)
        "cas_group": np.full(len(order), None, dtype=object),
        "updated_at": _ts(upd_all[order]),
    })
    first_adjudicated = np.full(len(latest), -1, dtype=np.int64)
    first_adjudicated[idx] = adjudicated
    appeal_status = np.full(len(latest), None, dtype=object)
    appeal_status[idx[a]] = np.where(over, "overturned", "upheld")
    info = {"first_adjudicated": first_adjudicated, "appeal_status": appeal_status}
    return frame[source_column_names("remittances")], info


# ---------------------------------------------------------------------------------------------------
# realism: claim ids, in-place updates, commit times
# ---------------------------------------------------------------------------------------------------


def _ymd(days: np.ndarray) -> np.ndarray:
    """YYYYMMDD of day numbers as an (n, 8) ASCII matrix (formatted once per distinct day)."""
    days = np.asarray(days, dtype=np.int64)
    if not len(days):
        return np.empty((0, 8), dtype=np.uint8)
    lo = int(days.min())
    span = np.arange(lo, int(days.max()) + 1).astype("datetime64[D]")
    text = np.ascontiguousarray(np.datetime_as_string(span, unit="D").astype("S10"))
    return text.view(np.uint8).reshape(-1, 10)[:, [0, 1, 2, 3, 5, 6, 8, 9]][days - lo]


def _compose(n: int, *parts: str | np.ndarray) -> np.ndarray:
    """n fixed-width strings from parts: str constants or (n, w) ASCII matrices (built in C)."""
    cols = [np.broadcast_to(np.frombuffer(p.encode(), dtype=np.uint8), (n, len(p))) if isinstance(p, str) else p
            for p in parts]
    return _to_str(np.hstack(cols))


def _n_digits(values: np.ndarray) -> np.ndarray:
    """Decimal digits of non-negative ints (integer comparisons: no float rounding at powers of ten)."""
    return np.searchsorted(10 ** np.arange(1, 19, dtype=np.int64), values, side="right") + 1


def _claim_ids(rr: np.random.Generator, day: np.ndarray, seq: np.ndarray, org: np.ndarray,
               patient: np.ndarray, format_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """Claim ids in the format of each claim's billing organisation (X12 CLM01: 1–38 letters, digits,
    dashes), unique per claim: every format embeds a per-claim unique number and the formats differ
    in shape. `day` is the local submission day of the original claim, `seq` its number that day.

        legacy             C + 5-digit day since 2000 + 5-digit sequence     C0912300042
        date_seq           YYYYMMDD + 5-digit sequence                        2025012300042
        org_account        ORG-10-digit account-01                            ACME-0001234567-01
        clm                CLM + 13 digits                                    CLM0000912300042
        patient_encounter  PAT<account>-ENC<encounter>                        PAT12345-ENC987654
        long               ORG-YYYYMMDD-10-digit account-7-digit sequence     (up to 38 characters)

    Returns the ids and the format index of each claim."""
    fmt_of_org = np.zeros(BILLING_ORGS, dtype=np.int64)
    k = int(round(format_rate * BILLING_ORGS))
    if k:
        fmt_of_org[rr.permutation(BILLING_ORGS)[:k]] = 1 + np.arange(k) % (len(CLAIM_ID_FORMATS) - 1)
    fmt = fmt_of_org[org]
    number = (day - EPOCH_2000) * 100_000 + seq  # unique per claim (day, sequence)
    claim_no = np.arange(len(day), dtype=np.int64)
    out = np.empty(len(day), dtype=object)
    for f, name in enumerate(CLAIM_ID_FORMATS):
        rows = np.flatnonzero(fmt == f)
        if not len(rows):
            continue
        if name == "legacy":
            out[rows] = _prefixed("C", number[rows], 10)
        elif name == "clm":
            out[rows] = _prefixed("CLM", number[rows], 13)
        elif name == "date_seq":
            out[rows] = _compose(len(rows), _ymd(day[rows]), _digits(seq[rows], 5))
        elif name == "patient_encounter":  # unpadded numbers: one fixed width per group of digit counts
            pat, enc = 10_000 + patient[rows], 100_000 + claim_no[rows]
            widths = _n_digits(pat) * 100 + _n_digits(enc)
            for w in np.unique(widths):
                sub = np.flatnonzero(widths == w)
                out[rows[sub]] = _compose(len(sub), "PAT", _digits(pat[sub], int(w // 100)), "-ENC",
                                          _digits(enc[sub], int(w % 100)))
        else:  # org_account, long: the organisation's mnemonic first
            for o in np.unique(org[rows]):
                sub = rows[org[rows] == o]
                mnemonic = ORG_MNEMONICS[o]
                if name == "org_account":  # i -> (i*A + B) mod 10^10 is a bijection: unique accounts
                    account = (claim_no[sub] * 387_420_489 + 1_234_567) % 10**10
                    out[sub] = _compose(len(sub), f"{mnemonic}-", _digits(account, 10), "-01")
                else:
                    out[sub] = _compose(len(sub), f"{mnemonic}-", _ymd(day[sub]), "-",
                                        _digits(1_000_000 + patient[sub], 10), "-", _digits(seq[sub], 7))
    return out, fmt


UPDATE_KINDS = ("eligibility", "prior_auth", "billed_amount", "patient_zip", "modifiers")


def _in_place_updates(rr: np.random.Generator, v: Batch, zips: np.ndarray, first_adjudicated: np.ndarray,
                      realism: Realism) -> Batch:
    """Later states of some version rows (at most one each), as a batch of update rows.

    `parent` indexes the version in `v`; `kind` indexes UPDATE_KINDS. A zip correction either adds the
    +4 (address standardization, when ZIP+4 is on) or fixes a typo, which is then put into the first
    state (`zips` is changed in place)."""
    rate = realism.in_place_update_rate
    m = len(v["version"])
    fixable_denial = v["latest"] & v["denied"] & (v["cause_eligibility_unverified"] | v["cause_missing_prior_auth"])
    chosen = np.flatnonzero(rr.random(m) < np.where(fixable_denial, min(1.0, 5 * rate), rate)) if rate else \
        np.empty(0, np.int64)
    k = len(chosen)
    r = rr.random((3, k))
    other = np.select([r[1] < 0.5, r[1] < 0.75], [2, 3], 4)
    kind = np.where(~v["elig"][chosen] & (r[0] < 0.85), 0,
                    np.where(v["cause_missing_prior_auth"][chosen] & (r[0] < 0.85), 1, other))
    first = v["updated"][chosen]
    later = first + _whole_s(rr.uniform(1.0, 60.0, k) * US_PER_DAY)
    after_denial = fixable_denial[chosen] & (kind <= 1)  # the biller fixes it once the denial arrives
    fixed = np.minimum(first_adjudicated[chosen] + _whole_s(rr.uniform(0.5, 10.0, k) * US_PER_DAY),
                       first + 60 * US_PER_DAY)
    u = {key: v[key][chosen].copy() for key in ("elig", "pa_present", "pa_no", "billed", "mods")}
    u.update(parent=chosen, kind=kind, updated=np.where(after_denial, fixed, later), zip=zips[chosen].copy())
    u["elig"][kind == 0] = True
    pa = kind == 1
    u["pa_present"][pa] = True
    u["pa_no"][pa] = rr.integers(10**9, 10**10, size=int(pa.sum()))
    b = kind == 2
    u["billed"][b] = np.clip(np.round(u["billed"][b] * rr.uniform(0.85, 1.15, int(b.sum())), 2), 0.01, MAX_BILLED)
    md = np.flatnonzero(kind == 4)
    u["mods"][md] ^= np.where(v["fam"][chosen[md]] == FAMILIES.index("em"), _MOD_25, _MOD_59)
    z = np.flatnonzero(kind == 3)
    add4 = np.array([realism.zip4_rate > 0 and len(x) == 5 for x in u["zip"][z]], dtype=bool)
    u["zip"][z[add4]] = u["zip"][z[add4]] + _prefixed("-", rr.integers(1, 10_000, size=int(add4.sum())), 4)
    typo = z[~add4]
    shift = rr.integers(1, 10, size=len(typo))
    zips[chosen[typo]] = np.array([x[:4] + str((int(x[4]) + d) % 10) + x[5:]
                                   for x, d in zip(u["zip"][typo], shift, strict=True)], dtype=object)
    return u


def _commit_times(rr: np.random.Generator, updated: np.ndarray, late_rate: float) -> tuple[np.ndarray, int]:
    """Commit time of each row: seconds after updated_at, or for a late share after 02:00 UTC of the next
    day (a nightly extraction at 02:00 misses them). Returns the times and how many are late."""
    n = len(updated)
    # whole seconds, and never the second of the write itself: 1–5 s after it
    committed = updated + US_PER_S + _whole_s(rr.uniform(0.05, 5.0, n) * US_PER_S)
    if not late_rate:
        return committed, 0
    late = np.flatnonzero(rr.random(n) < late_rate)
    cutoff = (updated[late] // US_PER_DAY + 1) * US_PER_DAY + EXTRACTION_HOUR_UTC * US_PER_HOUR
    delay = np.minimum(rr.exponential(3.0, len(late)), 20.0) * US_PER_HOUR
    committed[late] = cutoff + US_PER_S + _whole_s(delay)
    return committed, len(late)


# ---------------------------------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------------------------------


def _as_date(value: date | str) -> date:
    if isinstance(value, str):
        return date.fromisoformat(value)
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    raise TypeError(f"expected a date, got {type(value).__name__}")


def generate(start: date, days: int, claims_per_day: int, seed: int, drift: Drift | None = None,
             realism: Realism | str = "default", facility_tz: str = "UTC", defects: bool = False) -> SyntheticData:
    """Generate `days` x `claims_per_day` claims submitted from `start` (the facility's local days),
    deterministically, with the real-world mess of `realism` (a `Realism` or a preset name: "none",
    "default", "heavy") and submissions in the local time of `facility_tz` (stored as naive UTC).

    defects=True adds claim defects at DEFECT_RATE each (a test NPI failing its check digit, ICD-9 on a
    service date from 2015-10-01, a missing date of birth; CARC 16, logit +2.5, fixed by a correction)
    from their own random stream, and codes services before 2015-10-01 in ICD-9-CM. Off by default: the
    pipeline rejects these rows until silver flags them (the `defects` change)."""
    start = _as_date(start)
    days, claims_per_day = int(days), int(claims_per_day)
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    if not 1 <= claims_per_day <= MAX_CLAIMS_PER_DAY:
        raise ValueError(f"claims_per_day must be in 1..{MAX_CLAIMS_PER_DAY}, got {claims_per_day}")
    start_day = _days_since_epoch(start)
    if start_day < EPOCH_2000 or start_day - EPOCH_2000 + days > 99_999:
        raise ValueError("start must be on or after 2000-01-01 (claim numbers encode the day since 2000)")
    real = Realism.of(realism)
    tz = _check_tz(facility_tz)
    rng = np.random.default_rng(seed)
    rr = _realism_rng(seed)

    pats = _patients(rng, rr, start_day, days * claims_per_day, real.zip4_rate)
    provs = _providers(rng, rr)
    v1 = _first_versions(rng, rr, start_day, days, claims_per_day, pats, provs, real, tz)
    if defects:
        v1["defect"] = _draw_defects(seed, v1)
    _score(v1, pats, provs, drift)
    v2 = _corrections(rng, v1, share_clean=0.015, share_fixable=0.28, fix_rate=0.9, tz=tz)
    _score(v2, pats, provs, drift)
    v3 = _corrections(rng, v2, share_clean=0.08, share_fixable=0.08, fix_rate=0.5, tz=tz)
    _score(v3, pats, provs, drift)
    # latest version per claim: v1 not corrected, v2 not corrected again, every v3
    latest = np.concatenate([~np.isin(v1["claim_no"], v2["claim_no"]),
                             ~np.isin(v2["claim_no"], v3["claim_no"]),
                             np.ones(len(v3["claim_no"]), dtype=bool)])
    v = {k: np.concatenate([b[k] for b in (v1, v2, v3)]) for k in v1}
    v["denied"], v["carc"] = _outcomes(rng, v)

    # when each row reached the source: minutes after submission, ~2% days later
    m = len(v["submitted"])
    late = rng.random(m) < 0.02
    delay = _whole_s(np.where(late, rng.uniform(1.0, 10.0, m) * US_PER_DAY,
                              (0.5 + rng.exponential(15.0, m)) * US_PER_MIN))
    v["updated"] = v["submitted"] + delay
    v["latest"] = latest

    seq = np.tile(np.arange(1, claims_per_day + 1, dtype=np.int64), days)
    claim_ids, id_format = _claim_ids(rr, v1["sub_day"], seq, provs["org"][v1["provider"]], v1["patient"],
                                      real.claim_id_format_rate)
    order = np.lexsort((v["version"], v["claim_no"], v["submitted"]))
    v = {k: a[order] for k, a in v.items()}

    remits, outcome = _remittances(rng, rr, v, v["latest"], claim_ids, real.appeal_rate)
    zips = pats["zip"][v["patient"]]
    upd = _in_place_updates(rr, v, zips, outcome["first_adjudicated"], real)
    committed, late_claims = _commit_times(rr, v["updated"], real.late_commit_rate)
    # an update is made on, and commits after, the committed first state
    upd["updated"] = np.maximum(upd["updated"], committed[upd["parent"]] + US_PER_MIN)
    upd_committed, late_updates = _commit_times(rr, upd["updated"], real.late_commit_rate)
    upd_committed = np.maximum(upd_committed, committed[upd["parent"]] + US_PER_S)
    claims, claims_committed = _claims_frame(v, upd, zips, committed, upd_committed, claim_ids, pats, provs)
    remits_committed, late_remits = _commit_times(rr, _us(remits["updated_at"]), real.late_commit_rate)
    n_updates = np.bincount(upd["parent"], minlength=m)
    truth = _truth_frame(v, claim_ids, n_updates, outcome["appeal_status"])
    if defects:
        claims, truth, remits = _apply_defects(v, claims, truth, remits, claim_ids)

    adjudicated = v["latest"]
    first = v["version"] == 1
    appeals = outcome["appeal_status"]
    summary = {
        "claims": days * claims_per_day,
        "claim_rows": len(claims),
        "remittance_rows": len(remits),
        "denial_rate": float(v["denied"][adjudicated].mean()),
        "mean_true_probability": float(v["prob"][adjudicated].mean()),
        "corrected_claims": int((v["version"] == 2).sum()),
        "late_claim_rows": int(late.sum()),
        "facility_tz": tz,
        "in_place_updates": len(upd["parent"]),
        **{f"in_place_updates_{name}": int((upd["kind"] == k).sum()) for k, name in enumerate(UPDATE_KINDS)},
        "appeals": int(pd.notna(appeals).sum()),
        "appeals_overturned": int((appeals == "overturned").sum()),
        "hcpcs_claims": int((_HCPCS[v["cpt"]] & first).sum()),
        "zip4_patients": int(pats["zip4_count"]),
        "full_grammar_dx_versions": int(_ICD_FULL_GRAMMAR[v["icd"]].sum()),
        "non_legacy_claim_ids": int((id_format > 0).sum()),
        "institutional_claims": int((v["inst"] & first).sum()),
        "claims_over_1m": int(((v["billed"] > 1_000_000) & first).sum()),
        "late_commit_claim_rows": late_claims + late_updates,
        "late_commit_remittance_rows": late_remits,
    }
    if defects:
        kinds = truth.loc[truth["claim_version"] == 1, "defect_kind"].value_counts()
        summary.update({f"defects_{kind}": int(kinds.get(kind, 0)) for kind in DEFECT_KINDS})
    return SyntheticData(claims=claims, remittances=remits, ground_truth=truth, start=start, days=days,
                         seed=seed, drift=drift, summary=summary, realism=real, facility_tz=tz,
                         committed_at={"claims": claims_committed,
                                       "remittances": pd.Series(_ts(remits_committed), name="committed_at")})


def _draw_defects(seed: int, v: Batch) -> np.ndarray:
    """Defect kind per first version (index into DEFECT_KINDS, -1 none), from the defects' own stream."""
    d = np.random.default_rng([seed, 0xDEF]).random(len(v["claim_no"]))
    numeric9 = ~np.char.startswith(np.array(ICD9_OF)[v["icd"]], "V")  # V codes read as ICD-10 grammar
    kind = np.full(len(d), -1, dtype=np.int64)
    kind[d < DEFECT_RATE] = 0
    kind[(d >= DEFECT_RATE) & (d < 2 * DEFECT_RATE) & (v["service_day"] >= ICD10_START_DAY) & numeric9] = 1
    kind[(d >= 2 * DEFECT_RATE) & (d < 3 * DEFECT_RATE)] = 2
    return kind


def _apply_defects(v: Batch, claims: pd.DataFrame, truth: pd.DataFrame, remits: pd.DataFrame,
                   claim_ids: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Write the defects of `v` into the claim rows (all states of a version), ICD-9 codes on services
    before 2015-10-01, the defect columns into the truth and the RARC naming the field into remittances."""
    key = pd.MultiIndex.from_arrays([claim_ids[v["claim_no"]], v["version"]])
    kind = pd.Series(v["defect"], index=key)
    rows = kind.reindex(pd.MultiIndex.from_arrays([claims["claim_id"], claims["claim_version"]])).to_numpy()
    icd_index = pd.Series(v["icd"], index=key).reindex(
        pd.MultiIndex.from_arrays([claims["claim_id"], claims["claim_version"]])).to_numpy()
    claims = claims.copy()
    npi = claims["rendering_npi"].to_numpy(dtype=object).copy()
    bad = np.flatnonzero(rows == 0)
    npi[bad] = [x[:9] + str((int(x[9]) + 1 + int(x[3]) % 8) % 10) for x in npi[bad]]
    claims["rendering_npi"] = npi
    icd9_era = claims["service_date"].to_numpy() < np.datetime64("2015-10-01")
    as9 = np.flatnonzero(icd9_era | (rows == 1))
    dx = claims["icd10_primary"].to_numpy(dtype=object).copy()
    dx[as9] = np.array(ICD9_OF, dtype=object)[icd_index[as9]]
    claims["icd10_primary"] = dx
    dob = claims["patient_dob"].to_numpy().copy()
    dob[rows == 2] = np.datetime64("NaT")
    claims["patient_dob"] = dob
    truth = truth.assign(cause_defect=v["defect"] >= 0,
                         defect_kind=np.array([None, *DEFECT_KINDS], dtype=object)[v["defect"] + 1])
    adjudicated = truth[truth["adjudicated"]].set_index("claim_id")["defect_kind"]
    rarc = remits["claim_id"].map(adjudicated).map(DEFECT_RARC)
    remits = remits.assign(rarc_code=np.where((remits["carc_code"] == "16") & rarc.notna(), rarc,
                                              remits["rarc_code"]))
    return claims, truth, remits


def _us(column: pd.Series) -> np.ndarray:
    return column.to_numpy().astype("datetime64[us]").astype(np.int64)


_ROW_KEYS = ("claim_no", "version", "patient", "payer", "provider", "pos", "cpt", "mods", "icd", "icd_count",
             "units", "billed", "service_day", "submitted", "pa_present", "pa_no", "elig", "updated")


def _claims_frame(v: Batch, upd: Batch, zips: np.ndarray, committed: np.ndarray, upd_committed: np.ndarray,
                  claim_ids: np.ndarray, pats: Batch, provs: Batch) -> tuple[pd.DataFrame, pd.Series]:
    """The claims table as its commit history: each version's first state, its later state (if any)
    right after it. Returns the frame and the commit time of each row."""
    rows = {k: v[k] for k in _ROW_KEYS} | {"zip": zips, "committed": committed}
    if len(upd["parent"]):
        parent = upd["parent"]
        later = {k: upd[k] if k in upd else v[k][parent] for k in _ROW_KEYS} | {
            "zip": upd["zip"], "committed": upd_committed}
        order = np.argsort(np.concatenate([np.arange(len(zips)) * 2, parent * 2 + 1]), kind="stable")
        rows = {k: np.concatenate([rows[k], later[k]])[order] for k in rows}
    p = rows["patient"]
    pa = np.full(len(p), None, dtype=object)
    present = np.flatnonzero(rows["pa_present"])
    pa[present] = _prefixed("PA", rows["pa_no"][present], 10)
    columns = {
        "claim_id": claim_ids[rows["claim_no"]],
        "claim_version": rows["version"],
        "member_id": pats["member_id"][p],
        "patient_name": pats["name"][p],
        # a newborn of the first days can be drawn born after a service dated before the start: born that day
        "patient_dob": _day(np.minimum(pats["dob_day"][p], rows["service_day"])),
        "patient_address": pats["address"][p],
        "patient_zip": rows["zip"],
        "patient_sex": pats["sex"][p],
        "payer_id": np.array(PAYER_IDS, dtype=object)[rows["payer"]],
        "plan_type": np.array(PLAN_TYPES, dtype=object)[rows["payer"]],
        "billing_npi": provs["billing_npi"][rows["provider"]],
        "rendering_npi": provs["rendering_npi"][rows["provider"]],
        "place_of_service": np.array(POS_CODES, dtype=object)[rows["pos"]],
        "cpt_code": np.array(CPT_CODES, dtype=object)[rows["cpt"]],
        "modifiers": _MODIFIER_STRINGS[rows["mods"]],
        "icd10_primary": np.array(ICD_CODES, dtype=object)[rows["icd"]],
        "icd10_count": rows["icd_count"],
        "units": rows["units"],
        "billed_amount": rows["billed"].astype(np.float64),
        "service_date": _day(rows["service_day"]),
        "submitted_at": _ts(rows["submitted"]),
        "prior_auth_number": pa,
        "eligibility_verified": rows["elig"].astype(bool),
        "updated_at": _ts(rows["updated"]),
    }
    # registry order; copy=False leaves one block per column (consolidating a million rows of object
    # columns into one 2-D block costs more than everything else the frame construction does)
    frame = pd.DataFrame({name: columns[name] for name in source_column_names("claims")}, copy=False)
    return frame, pd.Series(_ts(rows["committed"]), name="committed_at")


def _truth_frame(v: Batch, claim_ids: np.ndarray, n_updates: np.ndarray, appeal_status: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame({
        "claim_id": claim_ids[v["claim_no"]],
        "claim_version": v["version"],
        "submitted_at": _ts(v["submitted"]),
        "payer_id": np.array(PAYER_IDS, dtype=object)[v["payer"]],
        "cpt_family": np.array(FAMILIES, dtype=object)[v["fam"]],
        "true_denial_probability": v["prob"],
        "denied": v["denied"],
        "adjudicated": v["latest"],
        "prior_auth_required": v["required"],
        "drift_active": v["drift_active"],
        **{f"cause_{name}": v[f"cause_{name}"] for name in CAUSES},
        "cause_audited_modifier": v["audited_modifier"],
        "denial_carc": v["carc"],
        "days_to_submit": v["days_to_submit"],
        "in_place_updates": n_updates.astype(np.int64),
        "appeal_status": appeal_status,
    })
    return frame[list(GROUND_TRUTH_COLUMNS)]


def source_as_of(data: SyntheticData, at: datetime | date | str | pd.Timestamp,
                 in_place: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(claims, remittances) as a query of the source at `at` would have seen them: the rows committed
    at or before `at` (naive UTC, or aware and converted), in source order.

    in_place=True models a source that really overwrites rows: each (claim_id, claim_version) keeps only
    its latest committed state. Without `data.committed_at` rows count as committed at their updated_at.
    """
    at = pd.Timestamp(at)
    if at.tzinfo is not None:
        at = at.tz_convert("UTC").tz_localize(None)
    cut = at.to_datetime64().astype("datetime64[ns]")
    out = []
    for table, frame in (("claims", data.claims), ("remittances", data.remittances)):
        committed = data.committed_at.get(table, frame["updated_at"]).to_numpy()
        if len(committed) != len(frame):
            raise ValueError(f"committed_at[{table!r}] is not aligned with the {table} rows")
        mask = committed <= cut
        seen = frame[mask]
        if table == "claims" and in_place:
            key = pd.Series(committed[mask], index=seen.index)
            newest = key.groupby([seen["claim_id"], seen["claim_version"]], sort=False).idxmax()
            seen = seen.loc[np.sort(newest.to_numpy())]
        out.append(seen.reset_index(drop=True))
    return out[0], out[1]


# ---------------------------------------------------------------------------------------------------
# writers
# ---------------------------------------------------------------------------------------------------

_SA_TYPES = {"string": sa.String, "int64": sa.BigInteger, "float64": sa.Float, "bool": sa.Boolean,
             "date": sa.Date, "timestamp": sa.DateTime}


def source_metadata(nullable: frozenset[str] = frozenset()) -> sa.MetaData:
    """SQLAlchemy tables of the source, from the registry, with indexes on updated_at and claim_id.
    Columns named `table.column` in `nullable` accept nulls although the registry says otherwise (a
    real source carries defects: a claim without a date of birth)."""
    md = sa.MetaData()
    for table in ("claims", "remittances"):
        cols = [sa.Column(c.name, _SA_TYPES[c.dtype](), nullable=c.nullable or f"{table}.{c.name}" in nullable)
                for c in source_columns(table)]
        t = sa.Table(table, md, *cols)
        sa.Index(f"ix_{table}_updated_at", t.c.updated_at)
        sa.Index(f"ix_{table}_claim_id", t.c.claim_id)
    return md


def storage_columns(frame: pd.DataFrame, table: str) -> dict[str, np.ndarray]:
    """Columns in SQLAlchemy's SQLite storage format: `YYYY-MM-DD HH:MM:SS.ffffff` timestamps,
    `YYYY-MM-DD` dates, 0/1 booleans, None for null (also what the CSV landing files carry)."""
    out: dict[str, np.ndarray] = {}
    for c in source_columns(table):
        s = frame[c.name]
        if c.dtype == "timestamp":
            a = s.to_numpy().astype("datetime64[us]")
            txt = np.datetime_as_string(a, unit="us").astype("S26")
            txt.view(np.uint8).reshape(-1, 26)[:, 10] = ord(" ")
            vals = txt.astype("U26").astype(object)
            vals[np.isnat(a)] = None
        elif c.dtype == "date":
            a = s.to_numpy().astype("datetime64[D]")
            vals = np.datetime_as_string(a, unit="D").astype(object)
            vals[np.isnat(a)] = None
        elif c.dtype == "bool":
            vals = s.to_numpy().astype(np.int64)
        else:
            vals = s.to_numpy()
        out[c.name] = vals
    return out


def _chunks(n: int, size: int) -> Iterator[slice]:
    for lo in range(0, n, size):
        yield slice(lo, min(n, lo + size))


def storage_table(frame: pd.DataFrame, table: str) -> pa.Table:
    """The same storage format as `storage_columns`, as an Arrow table (booleans 0/1), built in C."""
    arrays = []
    for c in source_columns(table):
        a = frame[c.name].to_numpy()
        if c.dtype == "timestamp":
            arr = pa.array(a.astype("datetime64[us]"), from_pandas=True).cast(pa.string())
        elif c.dtype == "date":
            arr = pa.array(a.astype("datetime64[D]"), from_pandas=True).cast(pa.string())
        elif c.dtype == "bool":
            arr = pa.array(a.astype(np.int64))
        elif c.dtype == "string":
            arr = pa.array(a, type=pa.string(), from_pandas=True)
        else:
            arr = pa.array(a.astype(np.int64 if c.dtype == "int64" else np.float64))
        arrays.append(arr)
    return pa.Table.from_arrays(arrays, names=source_column_names(table))


def _sqlite_path(url: sa.URL) -> str | None:
    """The file behind a SQLite URL, or None for in-memory databases (no second connection possible)."""
    db = url.database
    if not db or db == ":memory:" or db.startswith("file:") or url.query:
        return None
    return db


def _insert_adbc(path: str, table: str, frame: pd.DataFrame, chunk: int) -> None:
    """SQLite bulk load through the ADBC driver in one transaction (Arrow batches bound in C, about
    3x faster than sqlite3 executemany)."""
    import adbc_driver_sqlite.dbapi as adbc

    with adbc.connect(path) as conn:
        cur = conn.cursor()
        try:
            for sl in _chunks(len(frame), chunk):
                cur.adbc_ingest(table, storage_table(frame.iloc[sl], table), mode="append")
            conn.commit()
        finally:
            cur.close()


def _insert_sqlite(conn: sa.Connection, table: str, frame: pd.DataFrame, chunk: int) -> None:
    cols = source_column_names(table)
    sql = f'INSERT INTO "{table}" ({", ".join(cols)}) VALUES ({", ".join("?" * len(cols))})'
    cur = conn.connection.dbapi_connection.cursor()
    try:
        for sl in _chunks(len(frame), chunk):
            data = storage_columns(frame.iloc[sl], table)
            cur.executemany(sql, zip(*(data[c].tolist() for c in cols), strict=True))
    finally:
        cur.close()


def _insert_copy(conn: sa.Connection, table: str, frame: pd.DataFrame, chunk: int) -> None:
    """PostgreSQL COPY FROM STDIN (CSV). Arrow quotes every string and leaves nulls unquoted and
    empty, which COPY reads as NULL; booleans go out as true/false."""
    cols = source_column_names(table)
    bools = {c.name for c in source_columns(table) if c.dtype == "bool"}
    sql = f'COPY "{table}" ({", ".join(cols)}) FROM STDIN WITH (FORMAT csv)'
    options = pacsv.WriteOptions(include_header=False)
    cur = conn.connection.dbapi_connection.cursor()
    try:
        for sl in _chunks(len(frame), chunk):
            tbl = storage_table(frame.iloc[sl], table)
            for name in bools:
                k = tbl.schema.get_field_index(name)
                tbl = tbl.set_column(k, name, tbl.column(k).cast(pa.bool_()))
            buf = io.BytesIO()
            pacsv.write_csv(tbl, buf, options)
            buf.seek(0)
            cur.copy_expert(sql, buf)
    finally:
        cur.close()


def _insert_generic(conn: sa.Connection, t: sa.Table, frame: pd.DataFrame, chunk: int) -> None:
    kinds = {c.name: c.dtype for c in source_columns(t.name)}
    for sl in _chunks(len(frame), chunk):
        part = frame.iloc[sl]
        cols = {}
        for name, kind in kinds.items():
            s = part[name]
            if kind == "timestamp":
                cols[name] = [None if pd.isna(x) else x.to_pydatetime() for x in s]
            elif kind == "date":
                cols[name] = [None if pd.isna(x) else x.date() for x in s]
            else:
                cols[name] = s.astype(object).where(s.notna(), None).tolist()
        conn.execute(t.insert(), [dict(zip(cols, row, strict=True)) for row in zip(*cols.values(), strict=True)])


def _with_installed_driver(url: str) -> sa.URL:
    """SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3; the project installs psycopg2."""
    u = sa.make_url(url)
    if u.drivername == "postgresql":
        try:
            import psycopg  # noqa: F401
        except ImportError:
            u = u.set(drivername="postgresql+psycopg2")
    return u


def write_source(data: SyntheticData, url: str, replace: bool = True, chunk_rows: int = 200_000) -> None:
    """Write `claims` and `remittances` to the SQL source at `url` (any SQLAlchemy URL).

    Writes everything generated, including rows whose updated_at lies after the last generated day
    (future outcomes); the pipeline extracts by updated_at day. replace=True drops and recreates both
    tables; replace=False appends (creating them when missing). Indexes are built after the load,
    several times faster than maintaining them row by row. Values are stored as SQLAlchemy stores them
    (see `storage_columns`). A SQLite file is loaded through ADBC (in-memory SQLite through sqlite3
    executemany), PostgreSQL (psycopg2) through COPY, other dialects through chunked executemany.
    """
    engine = sa.create_engine(_with_installed_driver(url))
    md = source_metadata(frozenset(f"{name}.{column}" for name, frame in (("claims", data.claims),
                                                                          ("remittances", data.remittances))
                                   for column in frame.columns[frame.isna().any().to_numpy()]))
    try:
        with engine.begin() as conn:
            if replace:
                md.drop_all(conn, checkfirst=True)
            md.create_all(conn, checkfirst=True)
            for t in md.sorted_tables:  # dropped again and rebuilt after the bulk load
                for ix in t.indexes:
                    ix.drop(conn, checkfirst=True)
        dialect, driver = engine.dialect.name, engine.dialect.driver
        sqlite_file = _sqlite_path(engine.url) if dialect == "sqlite" else None
        tables = (("claims", data.claims), ("remittances", data.remittances))
        if sqlite_file is not None:
            engine.dispose()  # release the file before the ADBC connection writes to it
            for name, frame in tables:
                _insert_adbc(sqlite_file, name, frame, chunk_rows)
        with engine.begin() as conn:
            for name, frame in tables if sqlite_file is None else ():
                if dialect == "sqlite" and driver == "pysqlite":
                    _insert_sqlite(conn, name, frame, chunk_rows)
                elif dialect == "postgresql" and driver == "psycopg2":
                    _insert_copy(conn, name, frame, chunk_rows)
                else:
                    _insert_generic(conn, md.tables[name], frame, min(chunk_rows, 20_000))
            for t in md.sorted_tables:
                for ix in t.indexes:
                    ix.create(conn, checkfirst=True)
    finally:
        engine.dispose()
    log.info("wrote source %s: %d claim rows, %d remittance rows",
             sa.make_url(url).render_as_string(hide_password=True), len(data.claims), len(data.remittances))


def _atomic_write(path: Path, write: Callable[[str], object]) -> Path:
    """Write through a hidden temp file in the same folder, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_ground_truth(data: SyntheticData, path: Path) -> Path:
    """The hidden truth as Parquet, outside the source and the lake (evaluation only)."""
    path = Path(path)
    _atomic_write(path, lambda tmp: data.ground_truth.to_parquet(tmp, index=False))
    log.info("wrote ground truth: %d claim versions", len(data.ground_truth))
    return path


def landing_rows(data: SyntheticData, day: date, table: str = "claims") -> pd.DataFrame:
    """Rows of `table` whose updated_at falls on `day` (UTC), registry source columns."""
    if table not in ("claims", "remittances"):
        raise ValueError(f"table must be 'claims' or 'remittances', got {table!r}")
    frame = data.claims if table == "claims" else data.remittances
    lo = np.datetime64(_as_date(day), "D").astype("datetime64[ns]")
    upd = frame["updated_at"].to_numpy()
    rows = frame[(upd >= lo) & (upd < lo + np.timedelta64(1, "D"))]
    return rows[source_column_names(table)].reset_index(drop=True)


def _check_landing_args(fmt: str, table: str) -> None:
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"fmt must be 'csv' or 'parquet', got {fmt!r}")
    if table not in ("claims", "remittances"):
        raise ValueError(f"table must be 'claims' or 'remittances', got {table!r}")


def _write_rows(rows: pd.DataFrame, path: Path, fmt: str, table: str) -> Path:
    if fmt == "parquet":
        _atomic_write(path, lambda tmp: rows.to_parquet(tmp, index=False))
    else:
        out = rows.copy()
        stored = storage_columns(rows, table)
        for c in source_columns(table):
            if c.dtype in ("timestamp", "date"):
                out[c.name] = stored[c.name]
        _atomic_write(path, lambda tmp: out.to_csv(tmp, index=False))
    log.info("wrote landing file %s (%d rows)", path.name, len(rows))
    return path


def write_landing_file(data: SyntheticData, day: date, landing_dir: Path, fmt: str = "csv",
                       table: str = "claims", suffix: str = "") -> Path:
    """`<table>_YYYY-MM-DD{suffix}.csv|parquet`: the rows of `table` that reached the source on `day`.

    Written atomically (hidden temp file, then rename) because a sensor watches the folder. CSV has a
    header of registry column names, timestamps/dates in the SQLite storage text, booleans as
    True/False and empty fields for null; Parquet keeps the frame's dtypes.
    """
    _check_landing_args(fmt, table)
    day = _as_date(day)
    path = Path(landing_dir) / f"{table}_{day.isoformat()}{suffix}.{fmt}"
    return _write_rows(landing_rows(data, day, table), path, fmt, table)


RESENT_SUFFIX = "_resent"  # an exact copy of the day's file under another name
OVERLAP_SUFFIX = "_overlap"  # part of the day's rows again, some of them twice


def write_resent_landing_files(data: SyntheticData, day: date, landing_dir: Path, fmt: str = "csv",
                               table: str = "claims", overlap_share: float = 0.5,
                               repeat_share: float = 0.1) -> dict[str, Path]:
    """The day's landing file plus what partners really send again, so the pipeline must de-duplicate
    by content, not by file name:

        <table>_YYYY-MM-DD.<fmt>          "file": the day's rows (`write_landing_file`)
        <table>_YYYY-MM-DD_resent.<fmt>   "resent": a byte-identical copy (a partner re-sends the file)
        <table>_YYYY-MM-DD_overlap.<fmt>  "overlap": the last `overlap_share` of the day's rows (a
                                          re-extraction that started mid-day), with `repeat_share` of
                                          them a second time (a retried batch), in updated_at order

    Every row of every file is a row of that day; deterministic for (data.seed, day).
    """
    _check_landing_args(fmt, table)
    if not 0.0 < overlap_share <= 1.0 or not 0.0 <= repeat_share <= 1.0:
        raise ValueError("overlap_share must be in (0, 1] and repeat_share in [0, 1]")
    day = _as_date(day)
    folder = Path(landing_dir)
    main = write_landing_file(data, day, folder, fmt=fmt, table=table)
    resent = folder / f"{table}_{day.isoformat()}{RESENT_SUFFIX}.{fmt}"
    _atomic_write(resent, lambda tmp: shutil.copyfile(main, tmp))
    log.info("wrote landing file %s (exact copy of %s)", resent.name, main.name)
    rows = landing_rows(data, day, table)
    rng = np.random.default_rng([data.seed, day.toordinal(), 0x0F11E])
    part = rows.iloc[int(len(rows) * (1.0 - overlap_share)):]
    repeated = rng.choice(len(part), size=int(round(len(part) * repeat_share)), replace=False)
    overlap = pd.concat([part, part.iloc[np.sort(repeated)]]).sort_values("updated_at", kind="stable")
    path = folder / f"{table}_{day.isoformat()}{OVERLAP_SUFFIX}.{fmt}"
    _write_rows(overlap.reset_index(drop=True), path, fmt, table)
    return {"file": main, "resent": resent, "overlap": path}


def resends_day(data: SyntheticData, day: date) -> bool:
    """Does `day` get re-sent landing files (a `data.realism.resent_file_rate` share of days)?"""
    rate = data.realism.resent_file_rate
    return bool(rate) and np.random.default_rng([data.seed, _as_date(day).toordinal(), 0x5E4D]).random() < rate


def write_landing_files(data: SyntheticData, days: list[date], landing_dir: Path, fmt: str = "csv",
                        tables: tuple[str, ...] = ("claims",)) -> list[Path]:
    """Landing files of `days` for `tables` (days without rows get none); on the days `resends_day`
    picks, also the re-sent exact and overlapping copies (`write_resent_landing_files`)."""
    written: list[Path] = []
    for day in days:
        for table in tables:
            if not len(landing_rows(data, day, table)):
                continue
            if resends_day(data, day):
                written.extend(write_resent_landing_files(data, day, landing_dir, fmt=fmt, table=table).values())
            else:
                written.append(write_landing_file(data, day, landing_dir, fmt=fmt, table=table))
    return written
