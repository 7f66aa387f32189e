"""Synthetic claims, remittances and their ground truth, with named and known denial causes.

Real claims are PHI and cannot ship, so the project generates a source that behaves like one: claim
versions (corrected claims), late-arriving rows, remittances 14–60 days after submission, a second
remittance row for some claims, and fake but realistic PHI. The true denial probability of every claim
version is kept *outside* the source (`SyntheticData.ground_truth`): evaluation, benchmarks and tests
use it (Bayes-optimal AUC, calibration), the pipeline never does.

The generating process (logit scale, summed):

    payer base logit                             reference.PAYERS (clean-claim denial rate 4–15%)
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

Design choices worth knowing:
- Everything generated is returned and written, including rows whose `updated_at` lies after the
  last generated day (remittances of late submissions, second remittance rows). The source is a
  system of record; the pipeline extracts by `updated_at` day, so "future" rows simply appear on
  their day, like outcomes that have not arrived yet. Filter on `updated_at < data.end` (or use
  `until=`) for a snapshot "as of" the last generated day.
- A corrected claim (version 2, rarely 3) is resubmitted 1–7 days after the previous version,
  before adjudication; it usually fixes the cause (adds the prior auth, verifies eligibility,
  recodes the diagnosis). Only the latest version is adjudicated (one remittance per claim); ground
  truth holds a row per version with its own probability and its own draw (`adjudicated` tells which
  version the remittance belongs to).
- A second remittance row (appeal / payment correction) never changes whether the claim was denied:
  the label is the first adjudication; the second row carries a new adjudicated_at, rarc and, for
  paid claims, an adjusted paid amount.
- A late-arriving row of version 1 can reach the source after version 2 did: order by
  claim_version, not updated_at, to find the latest version.
- Everything is a pure function of the arguments: the same seed gives identical frames in any process.
"""

from __future__ import annotations

import io
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import sqlalchemy as sa

from rcm_assets.lib import reference as ref
from rcm_assets.lib.columns import source_column_names, source_columns

log = logging.getLogger("rcm.synthetic")

US_PER_DAY = 86_400_000_000
US_PER_MIN = 60_000_000
EPOCH_2000 = 10_957  # days from 1970-01-01 to 2000-01-01: claim numbers count days since 2000
MAX_CLAIMS_PER_DAY = 99_999  # claim_id = C + 5-digit day number + 5-digit sequence

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
PROVIDERS_PER_FAMILY = {"em": 120, "lab": 8, "therapy": 30, "radiology": 25, "imaging": 25,
                        "cardiology": 20, "surgery": 30}
BILLING_ORGS = 30
FAMILY_POS = {
    "em": {"11": 0.86, "22": 0.05, "10": 0.05, "02": 0.02, "31": 0.02},
    "imaging": {"22": 0.5, "19": 0.2, "11": 0.3},
    "radiology": {"11": 0.5, "22": 0.4, "23": 0.1},
    "surgery": {"24": 0.5, "22": 0.35, "21": 0.15},
    "lab": {"81": 0.5, "11": 0.35, "22": 0.15},
    "therapy": {"11": 0.7, "22": 0.2, "12": 0.1},
    "cardiology": {"11": 0.5, "22": 0.4, "21": 0.1},
}
POS_OVERRIDE = {"99283": "23", "99284": "23", "99285": "23", "99222": "21", "99232": "21",
                "27447": "21", "27130": "21"}
LATERAL_CPTS = ("29881", "27447", "27130", "73721", "73562", "66984")
MODIFIER_BITS = ("25", "59", "26", "TC", "LT", "RT", "GT")  # bit k of the mask = MODIFIER_BITS[k]
ELIG_UNVERIFIED = {"commercial": 0.04, "medicare": 0.03, "medicaid": 0.09, "self_pay": 0.06}
FEE_FACTOR = {"commercial": 0.62, "medicare": 0.42, "medicaid": 0.33, "self_pay": 0.55}
MEMBER_PREFIX = {"AETNA": "W", "CIGNA": "U", "UHC": "9", "HUMANA": "H", "MEDICAID_TX": "5", "SELF": "SP"}

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
_ICD_CHAPTER = tuple(ref.ICD10_CHAPTER[c] for c in ICD_CODES)
_CONSISTENT = np.array([[ref.is_consistent(f, ch) for ch in _ICD_CHAPTER] for f in FAMILIES])
_PA_REQUIRED = np.array([[ref.requires_prior_auth(p, f) for f in FAMILIES] for p in PAYER_IDS])
_BASE_LOGIT = np.array([ref.PAYER_BASE_LOGIT[p] for p in PAYER_IDS])
_FILING_LIMIT = np.array([ref.PAYER_FILING_LIMIT_DAYS[p] for p in PAYER_IDS], dtype=np.int64)
_PLAN_ELIG = np.array([ELIG_UNVERIFIED[p] for p in PLAN_TYPES])
_PLAN_FEE = np.array([FEE_FACTOR[p] for p in PLAN_TYPES])
_POS_ER = POS_CODES.index("23")
_POS_TELEHEALTH = np.array([c in ref.TELEHEALTH_POS for c in POS_CODES])
_POS_FACILITY = np.array([c in ref.FACILITY_POS for c in POS_CODES])
_MODIFIER_STRINGS = np.array(
    [",".join(m for k, m in enumerate(MODIFIER_BITS) if mask >> k & 1) or None
     for mask in range(1 << len(MODIFIER_BITS))], dtype=object)

Batch = dict[str, np.ndarray]


@dataclass(frozen=True)
class Drift:
    """From `start` (submission date), `payer_id` requires prior auth for `cpt_family`.

    The published policy (reference.PRIOR_AUTH_REQUIRED) does not change, so billers keep sending
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


@dataclass
class SyntheticData:
    """Source tables plus the hidden truth. Submissions cover [start, end); `end` is exclusive."""

    claims: pd.DataFrame
    remittances: pd.DataFrame
    ground_truth: pd.DataFrame
    start: date
    days: int
    seed: int
    drift: Drift | None = None
    summary: dict = field(default_factory=dict)

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


def _npi(rng: np.random.Generator, n: int) -> np.ndarray:
    """Unique, Luhn-valid NPIs (check digit over the prefix 80840 + 9 digits, as CMS specifies)."""
    body = 100_000_000 + rng.choice(100_000_000, size=n, replace=False)  # 9 digits, first digit 1
    digits = _digits(body, 9).astype(np.int64) - 48
    dbl = digits[:, ::2] * 2  # from the right of the 9 digits, every other digit starting rightmost
    total = 24 + (dbl // 10 + dbl % 10).sum(axis=1) + digits[:, 1::2].sum(axis=1)
    check = (10 - total % 10) % 10
    return _to_str(np.hstack([digits + 48, (check + 48)[:, None]]))


def _days_since_epoch(d: date) -> int:
    return int((np.datetime64(d, "D") - np.datetime64("1970-01-01", "D")).astype(np.int64))


def _ts(us: np.ndarray) -> np.ndarray:
    return us.astype("datetime64[us]").astype("datetime64[ns]")


def _day(days: np.ndarray) -> np.ndarray:
    return days.astype("datetime64[D]").astype("datetime64[ns]")


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


def _patients(rng: np.random.Generator, start_day: int, n: int) -> Batch:
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
    return {"payer": payer, "dob_day": dob_day, "sex": sex, "name": name, "address": address,
            "zip": zipcode, "member_id": _member_ids(rng, payer)}


def _providers(rng: np.random.Generator) -> Batch:
    """Rendering clinicians per CPT family, each billing under one organization, with habits."""
    fam = np.concatenate([np.full(PROVIDERS_PER_FAMILY[f], k) for k, f in enumerate(FAMILIES)])
    n = len(fam)
    npis = _npi(rng, n + BILLING_ORGS)
    org = rng.integers(BILLING_ORGS, size=n)
    return {
        "family": fam,
        "rendering_npi": npis[:n],
        "billing_npi": npis[n:][org],
        # habits: how often they forget prior auth or miscode (mean 1), their chargemaster, friction
        "pa_miss": rng.lognormal(-0.125, 0.5, n),
        "miscode": rng.lognormal(-0.125, 0.5, n),
        "charge": rng.lognormal(0.0, 0.1, n),
        "effect": rng.normal(0.0, 0.15, n),
    }


# ---------------------------------------------------------------------------------------------------
# claim versions
# ---------------------------------------------------------------------------------------------------


def _pick_icd(rng: np.random.Generator, fam: np.ndarray, consistent: np.ndarray) -> np.ndarray:
    """An ICD index per row: from chapters consistent with the CPT family, or deliberately not."""
    icd = np.empty(len(fam), dtype=np.int64)
    for k in range(len(FAMILIES)):
        for want in (True, False):
            rows = np.flatnonzero((fam == k) & (consistent == want))
            pool = np.flatnonzero(_CONSISTENT[k] == want)
            if len(rows):
                icd[rows] = pool[rng.integers(len(pool), size=len(rows))]
    return icd


def _cpt_weights() -> np.ndarray:
    fam_total = {f: sum(CPT_WEIGHT[c] for c in CPT_CODES if ref.CPT_FAMILY[c] == f) for f in FAMILIES}
    return np.array([FAMILY_MIX[ref.CPT_FAMILY[c]] * CPT_WEIGHT[c] / fam_total[ref.CPT_FAMILY[c]]
                     for c in CPT_CODES])


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


def _first_versions(rng: np.random.Generator, start_day: int, days: int, per_day: int,
                    pats: Batch, provs: Batch) -> Batch:
    n = days * per_day
    day = start_day + np.repeat(np.arange(days, dtype=np.int64), per_day)
    # time of day: mostly business hours, some overnight batch submissions; sorted within each day
    tod = np.where(rng.random(n) < 0.85, rng.uniform(7 / 24, 19 / 24, n), rng.random(n))
    tod = np.sort((tod * US_PER_DAY).astype(np.int64).reshape(days, per_day), axis=1).ravel()
    patient = (len(pats["payer"]) * rng.random(n) ** 1.5).astype(np.int64)  # some patients recur
    payer = pats["payer"][patient]

    cpt = _choice(rng, _cpt_weights(), n)
    fam = _CPT_FAM[cpt]
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

    mismatch = rng.random(n) < np.clip(0.04 * provs["miscode"][provider], 0, 0.5)
    icd = _pick_icd(rng, fam, ~mismatch)
    icd_count = 1 + np.minimum(rng.poisson(1.3, n), 11)
    units = np.ones(n, dtype=np.int64)
    therapy = fam == FAMILIES.index("therapy")
    units[therapy] = 1 + _choice(rng, np.array([0.2, 0.35, 0.3, 0.14, 0.01]), int(therapy.sum()))
    lab = fam == FAMILIES.index("lab")
    units[lab] += rng.random(int(lab.sum())) < 0.05
    charge = _CPT_CHARGE[cpt] * units * provs["charge"][provider] * rng.lognormal(0.0, 0.12, n)
    tail = rng.random(n) < 0.03
    charge[tail] *= rng.uniform(1.8, 4.0, int(tail.sum()))
    billed = np.clip(np.round(charge, 2), 0.01, 1_000_000.0)

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

    return {
        "claim_no": np.arange(n, dtype=np.int64), "version": np.ones(n, dtype=np.int64),
        "patient": patient, "payer": payer, "provider": provider, "cpt": cpt, "fam": fam, "icd": icd,
        "icd_count": icd_count.astype(np.int64), "units": units, "billed": billed,
        "service_day": day - lag, "submitted": day * US_PER_DAY + tod, "elig": elig,
        "pa_present": pa_present, "pos": pos, "mods": _modifiers(rng, cpt, fam, pos),
        "pa_no": rng.integers(10**9, 10**10, size=n),
    }


def _score(v: Batch, pats: Batch, provs: Batch, drift: Drift | None) -> None:
    """Named causes, true probability and the background share, added to the batch in place."""
    payer, fam = v["payer"], v["fam"]
    sub_day = v["submitted"] // US_PER_DAY
    drift_active = np.zeros(len(payer), dtype=bool)
    if drift is not None:
        drift_active = ((sub_day >= _days_since_epoch(drift.start))
                        & (payer == PAYER_IDS.index(drift.payer_id))
                        & (fam == FAMILIES.index(drift.cpt_family)))
    required = _PA_REQUIRED[payer, fam] | drift_active
    age = (v["service_day"] - pats["dob_day"][v["patient"]]) / 365.25
    ratio = v["billed"] / (_CPT_CHARGE[v["cpt"]] * v["units"])
    causes = {
        "missing_prior_auth": required & ~v["pa_present"],
        "eligibility_unverified": ~v["elig"],
        "timely_filing": (sub_day - v["service_day"]) > _FILING_LIMIT[payer],
        "dx_inconsistent": ~_CONSISTENT[fam, v["icd"]],
        "high_charge": ratio > HIGH_CHARGE_RATIO,
    }
    audited = (v["mods"] & 3) > 0
    small = (_BASE_LOGIT[payer] + provs["effect"][v["provider"]]
             + EFFECTS["audited_modifier"] * audited
             + EFFECTS["telehealth"] * _POS_TELEHEALTH[v["pos"]]
             + EFFECTS["emergency"] * (v["pos"] == _POS_ER)
             + EFFECTS["age_80_plus"] * (age >= 80))
    logit = small + sum(EFFECTS[name] * flag for name, flag in causes.items())
    v["prob"] = _sigmoid(logit)
    v["p_background"] = _sigmoid(small)
    v["required"] = required
    v["drift_active"] = drift_active
    v["audited_modifier"] = audited
    for name, flag in causes.items():
        v[f"cause_{name}"] = flag


_DERIVED = ("prob", "p_background", "required", "drift_active", "audited_modifier")


def _corrections(rng: np.random.Generator, prev: Batch, share_clean: float, share_fixable: float,
                 fix_rate: float) -> Batch:
    """The next version of some claims: resubmitted 1–7 days later, usually fixing the cause."""
    fixable = (prev["cause_missing_prior_auth"] | prev["cause_eligibility_unverified"]
               | prev["cause_dx_inconsistent"])
    chosen = np.flatnonzero(rng.random(len(fixable)) < np.where(fixable, share_fixable, share_clean))
    nxt = {k: a[chosen].copy() for k, a in prev.items()}
    m = len(chosen)
    nxt["version"] += 1
    nxt["submitted"] += (rng.uniform(1.0, 7.0, m) * US_PER_DAY).astype(np.int64)
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
    nxt["icd_count"][clean] = np.minimum(nxt["icd_count"][clean] + 1, 12)
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
    for name, code in CAUSE_CARC:
        hit = unassigned & v[f"cause_{name}"]
        carc[hit] = code
        unassigned &= ~hit
    carc[~denied] = None
    return denied, carc


def _remittances(rng: np.random.Generator, v: Batch, latest: np.ndarray, claim_ids: np.ndarray) -> pd.DataFrame:
    """One adjudication per claim (of its latest version); ~5% get a second row later."""
    idx = np.flatnonzero(latest)
    n = len(idx)
    denied = v["denied"][idx]
    carc = v["carc"][idx].copy()
    adj_lag = 14 * US_PER_DAY + (rng.triangular(0, 9, 46, n) * US_PER_DAY).astype(np.int64)
    adjudicated = v["submitted"][idx] + np.minimum(adj_lag, 60 * US_PER_DAY - 1)
    delay = np.clip(rng.exponential(120.0, n), 1, 36 * 60)  # minutes
    updated = adjudicated + (delay * US_PER_MIN).astype(np.int64)

    payer = v["payer"][idx]
    fee = _CPT_CHARGE[v["cpt"][idx]] * v["units"][idx] * _PLAN_FEE[payer] * rng.lognormal(0.0, 0.08, n)
    allowed = np.round(np.minimum(fee, v["billed"][idx]), 2)
    partial = ~denied & (rng.random(n) < 0.12)
    paid = np.where(partial, np.round(allowed * rng.uniform(0.4, 0.85, n), 2), allowed)
    carc[partial] = np.where(rng.random(int(partial.sum())) < 0.5, "1", "2")  # deductible / coinsurance
    status = np.where(denied, "denied", np.where(partial, "partial", "paid")).astype(object)
    paid = np.where(denied, 0.0, paid)
    allowed = np.where(denied, 0.0, allowed)
    rarc = pd.Series(carc, dtype=object).map(CARC_RARC).to_numpy(dtype=object)
    rarc[pd.isna(rarc)] = None

    s = np.flatnonzero(rng.random(n) < 0.05)
    adj2 = adjudicated[s] + (rng.uniform(7, 45, len(s)) * US_PER_DAY).astype(np.int64)
    upd2 = adj2 + (np.clip(rng.exponential(120.0, len(s)), 1, 36 * 60) * US_PER_MIN).astype(np.int64)
    paid2 = np.where(denied[s], 0.0,
                     np.round(np.minimum(paid[s] * rng.uniform(0.9, 1.05, len(s)), allowed[s]), 2))
    rarc2 = np.where(denied[s], "N10", "MA67").astype(object)  # appeal reviewed / correction

    ids = claim_ids[v["claim_no"][idx]]
    upd_all = np.concatenate([updated, upd2])
    order = np.argsort(upd_all, kind="stable")  # rows in the order they reached the source
    frame = pd.DataFrame({
        "claim_id": np.concatenate([ids, ids[s]])[order],
        "adjudicated_at": _ts(np.concatenate([adjudicated, adj2])[order]),
        "claim_status": np.concatenate([status, status[s]])[order],
        "paid_amount": np.concatenate([paid, paid2])[order],
        "allowed_amount": np.concatenate([allowed, allowed[s]])[order],
        "carc_code": np.concatenate([carc, carc[s]])[order],
        "rarc_code": np.concatenate([rarc, rarc2])[order],
        "updated_at": _ts(upd_all[order]),
    })
    return frame[source_column_names("remittances")]


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


def generate(start: date, days: int, claims_per_day: int, seed: int, drift: Drift | None = None) -> SyntheticData:
    """Generate `days` x `claims_per_day` claims submitted from `start` (UTC days), deterministically."""
    start = _as_date(start)
    days, claims_per_day = int(days), int(claims_per_day)
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    if not 1 <= claims_per_day <= MAX_CLAIMS_PER_DAY:
        raise ValueError(f"claims_per_day must be in 1..{MAX_CLAIMS_PER_DAY}, got {claims_per_day}")
    start_day = _days_since_epoch(start)
    if start_day < EPOCH_2000 or start_day - EPOCH_2000 + days > 99_999:
        raise ValueError("start must be on or after 2000-01-01 (claim numbers encode the day since 2000)")
    rng = np.random.default_rng(seed)

    pats = _patients(rng, start_day, days * claims_per_day)
    provs = _providers(rng)
    v1 = _first_versions(rng, start_day, days, claims_per_day, pats, provs)
    _score(v1, pats, provs, drift)
    v2 = _corrections(rng, v1, share_clean=0.015, share_fixable=0.28, fix_rate=0.9)
    _score(v2, pats, provs, drift)
    v3 = _corrections(rng, v2, share_clean=0.08, share_fixable=0.08, fix_rate=0.5)
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
    delay = np.where(late, rng.uniform(1.0, 10.0, m) * US_PER_DAY,
                     (0.5 + rng.exponential(15.0, m)) * US_PER_MIN).astype(np.int64)
    v["updated"] = v["submitted"] + delay
    v["latest"] = latest

    seq = np.tile(np.arange(1, claims_per_day + 1, dtype=np.int64), days)
    claim_ids = _prefixed("C", (v1["submitted"] // US_PER_DAY - EPOCH_2000) * 100_000 + seq, 10)
    order = np.lexsort((v["version"], v["claim_no"], v["submitted"]))
    v = {k: a[order] for k, a in v.items()}

    claims = _claims_frame(v, claim_ids, pats, provs)
    remits = _remittances(rng, v, v["latest"], claim_ids)
    truth = _truth_frame(v, claims)
    adjudicated = v["latest"]
    summary = {
        "claims": days * claims_per_day,
        "claim_rows": len(claims),
        "remittance_rows": len(remits),
        "denial_rate": float(v["denied"][adjudicated].mean()),
        "mean_true_probability": float(v["prob"][adjudicated].mean()),
        "corrected_claims": int((v["version"] == 2).sum()),
        "late_claim_rows": int(late.sum()),
    }
    return SyntheticData(claims=claims, remittances=remits, ground_truth=truth, start=start, days=days,
                         seed=seed, drift=drift, summary=summary)


def _claims_frame(v: Batch, claim_ids: np.ndarray, pats: Batch, provs: Batch) -> pd.DataFrame:
    p = v["patient"]
    pa = np.full(len(p), None, dtype=object)
    present = np.flatnonzero(v["pa_present"])
    pa[present] = _prefixed("PA", v["pa_no"][present], 10)
    frame = pd.DataFrame({
        "claim_id": claim_ids[v["claim_no"]],
        "claim_version": v["version"],
        "member_id": pats["member_id"][p],
        "patient_name": pats["name"][p],
        "patient_dob": _day(pats["dob_day"][p]),
        "patient_address": pats["address"][p],
        "patient_zip": pats["zip"][p],
        "patient_sex": pats["sex"][p],
        "payer_id": np.array(PAYER_IDS, dtype=object)[v["payer"]],
        "plan_type": np.array(PLAN_TYPES, dtype=object)[v["payer"]],
        "billing_npi": provs["billing_npi"][v["provider"]],
        "rendering_npi": provs["rendering_npi"][v["provider"]],
        "place_of_service": np.array(POS_CODES, dtype=object)[v["pos"]],
        "cpt_code": np.array(CPT_CODES, dtype=object)[v["cpt"]],
        "modifiers": _MODIFIER_STRINGS[v["mods"]],
        "icd10_primary": np.array(ICD_CODES, dtype=object)[v["icd"]],
        "icd10_count": v["icd_count"],
        "units": v["units"],
        "billed_amount": v["billed"].astype(np.float64),
        "service_date": _day(v["service_day"]),
        "submitted_at": _ts(v["submitted"]),
        "prior_auth_number": pa,
        "eligibility_verified": v["elig"].astype(bool),
        "updated_at": _ts(v["updated"]),
    })
    return frame[source_column_names("claims")]


def _truth_frame(v: Batch, claims: pd.DataFrame) -> pd.DataFrame:
    frame = pd.DataFrame({
        "claim_id": claims["claim_id"].to_numpy(),
        "claim_version": v["version"],
        "submitted_at": claims["submitted_at"].to_numpy(),
        "payer_id": claims["payer_id"].to_numpy(),
        "cpt_family": np.array(FAMILIES, dtype=object)[v["fam"]],
        "true_denial_probability": v["prob"],
        "denied": v["denied"],
        "adjudicated": v["latest"],
        "prior_auth_required": v["required"],
        "drift_active": v["drift_active"],
        **{f"cause_{name}": v[f"cause_{name}"] for name in CAUSES},
        "cause_audited_modifier": v["audited_modifier"],
        "denial_carc": v["carc"],
    })
    return frame[list(GROUND_TRUTH_COLUMNS)]


# ---------------------------------------------------------------------------------------------------
# writers
# ---------------------------------------------------------------------------------------------------

_SA_TYPES = {"string": sa.String, "int64": sa.BigInteger, "float64": sa.Float, "bool": sa.Boolean,
             "date": sa.Date, "timestamp": sa.DateTime}


def source_metadata() -> sa.MetaData:
    """SQLAlchemy tables of the source, from the registry, with indexes on updated_at and claim_id."""
    md = sa.MetaData()
    for table in ("claims", "remittances"):
        cols = [sa.Column(c.name, _SA_TYPES[c.dtype](), nullable=c.nullable) for c in source_columns(table)]
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
    md = source_metadata()
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


def write_landing_file(data: SyntheticData, day: date, landing_dir: Path, fmt: str = "csv",
                       table: str = "claims", suffix: str = "") -> Path:
    """`<table>_YYYY-MM-DD{suffix}.csv|parquet`: the rows of `table` that reached the source on `day`.

    Written atomically (hidden temp file, then rename) because a sensor watches the folder. CSV has a
    header of registry column names, timestamps/dates in the SQLite storage text, booleans as
    True/False and empty fields for null; Parquet keeps the frame's dtypes.
    """
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"fmt must be 'csv' or 'parquet', got {fmt!r}")
    day = _as_date(day)
    rows = landing_rows(data, day, table)
    path = Path(landing_dir) / f"{table}_{day.isoformat()}{suffix}.{fmt}"
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
