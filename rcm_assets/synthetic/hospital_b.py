"""World "hospital B": a second synthetic hospital whose rules the pipeline has never seen.

The default world (generator.py, world.py) was written together with the pipeline: 8 named payers, 75 codes,
a payer x family prior-auth grid. Hospital B checks that nothing of it leaked into the pipeline: every rule
here is drawn from generator parameters (`build_world(world_seed)`), lives only in this module, and no
module outside `synthetic/` may import it (tests/test_layout.py).

    payers          15-40 numeric 5-digit payer ids (60054, 62308, ...), names, plan types, each with a
                    clean-claim denial rate and a contractual timely-filing limit (90-365 days)
    codes           >= 2,000 CPT/HCPCS codes of valid grammar across the CPT sections (E/M, anesthesia,
                    surgery by body system, radiology, pathology/lab, medicine, Category III) and the
                    HCPCS Level II letters, each with a typical charge and a heavy-tailed volume
    diagnoses       ~600 ICD-10-CM codes of valid grammar; services before 2015-10-01 carry ICD-9-CM
    hidden rules    (logit scale, summed; CARC of the dominant cause)
      payer base logit
      + missing prior auth: payer x code subsets (not payer x family)    3.0 -> 197
      + code group x diagnosis chapter edits, payer-specific flips       2.2 -> 11
      + modifier 25 on a non-E/M code at payers that deny it             2.5 -> 4
      + frequency limit: the member's (k+1)th claim of a code within
        N days at the payers that apply the code's limit                 3.0 -> 119
      + timely filing per payer                                          4.5 -> 29
      + eligibility not verified                                         2.0 -> 27
      + charge above 1.75x the code's typical charge                     1.3 -> 45
      + claim defects (`defects`): a test NPI failing its check digit, ICD-9 on a service date on/after
        2015-10-01, a missing date of birth                              2.5 -> 16 (RARC N290/M76/N329)
      + provider random effect, modifier 59, age 80+                     small

`generate_hospital_b` returns a `SyntheticData` with the same source schema (claims, remittances) and
ground truth (`true_denial_probability` per claim version, plus B's own cause columns) as the default world,
so every writer (`write_source`, landing files, `reference_files.write_reference_files`) takes it.
Deterministic: the same (seed, world_seed) gives identical frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from rcm_assets.lib.columns import source_column_names
from rcm_assets.synthetic import generator as gen
from rcm_assets.synthetic import world

WORLD = "hospital_b"
DEFAULT_WORLD_SEED = 24
ICD10_START = date(2015, 10, 1)

# CPT sections and their sub-groups (body systems): (group, section, first, last, codes drawn)
CPT_GROUPS: tuple[tuple[str, str, int, int, int], ...] = (
    ("em", "evaluation_management", 99202, 99499, 70),
    ("anesthesia", "anesthesia", 100, 1999, 90),
    ("surg_integumentary", "surgery", 10004, 19499, 140),
    ("surg_musculoskeletal", "surgery", 20100, 29999, 220),
    ("surg_respiratory_cardio", "surgery", 30000, 39599, 160),
    ("surg_digestive", "surgery", 40490, 49999, 170),
    ("surg_urinary_genital", "surgery", 50010, 59899, 140),
    ("surg_nervous_eye_ear", "surgery", 60000, 69990, 160),
    ("rad_diagnostic", "radiology", 70010, 76499, 160),
    ("rad_ultrasound_nuclear", "radiology", 76506, 79999, 130),
    ("lab_chemistry", "pathology_lab", 80047, 84999, 200),
    ("lab_hematology_micro", "pathology_lab", 85002, 89398, 160),
    ("med_cardiology", "medicine", 92950, 93799, 80),
    ("med_therapy", "medicine", 97010, 97799, 50),
    ("med_other", "medicine", 90281, 92700, 150),
)
CATEGORY_III = ("cpt_category_iii", "category_iii", 1, 999, 30)  # 0001T .. 0999T
# HCPCS Level II: letter -> (group, codes drawn)
HCPCS_GROUPS: dict[str, tuple[str, int]] = {
    "A": ("hcpcs_transport_supplies", 40), "B": ("hcpcs_enteral", 15), "C": ("hcpcs_outpatient_pps", 40),
    "E": ("hcpcs_dme", 50), "G": ("hcpcs_procedures", 60), "H": ("hcpcs_behavioral", 25),
    "J": ("hcpcs_drugs", 220), "K": ("hcpcs_dme_temporary", 20), "L": ("hcpcs_orthotics", 40),
    "Q": ("hcpcs_temporary", 40), "S": ("hcpcs_private_payer", 30), "T": ("hcpcs_medicaid", 15),
    "V": ("hcpcs_vision_hearing", 20),
}
SECTION_MIX = {"em": 0.30, "anesthesia": 0.02, "surgery": 0.08, "radiology": 0.11, "pathology_lab": 0.19,
               "medicine": 0.15, "category_iii": 0.005, "hcpcs": 0.145}
SECTION_CHARGE = {"evaluation_management": (180.0, 0.5), "anesthesia": (900.0, 0.6), "surgery": (3500.0, 1.0),
                  "radiology": (600.0, 0.8), "pathology_lab": (60.0, 0.7), "medicine": (250.0, 0.8),
                  "category_iii": (500.0, 0.8), "hcpcs": (120.0, 1.0)}
SECTION_POS = {
    "evaluation_management": {"11": 0.8, "22": 0.09, "02": 0.05, "23": 0.06},
    "anesthesia": {"24": 0.5, "22": 0.3, "21": 0.2},
    "surgery": {"24": 0.4, "22": 0.4, "21": 0.2},
    "radiology": {"22": 0.5, "11": 0.3, "19": 0.2},
    "pathology_lab": {"81": 0.5, "11": 0.3, "22": 0.2},
    "medicine": {"11": 0.6, "22": 0.3, "12": 0.1},
    "category_iii": {"22": 0.6, "11": 0.4},
    "hcpcs": {"11": 0.5, "22": 0.3, "12": 0.2},
}
PLAN_MIX = {"commercial": 0.55, "medicare": 0.2, "medicaid": 0.2, "self_pay": 0.05}
NAME_A = ("Lone Star", "Gulf Coast", "Heartland", "Prairie", "Summit", "Pioneer", "Keystone", "Liberty",
          "Cascade", "Meridian", "Harbor", "Frontier", "Evergreen", "Sunbelt", "Granite", "Bayou", "Mesa",
          "Red River", "Pinnacle", "Blue Ridge", "Northwind", "Clearwater", "Magnolia", "Canyon")
NAME_B = ("Health Plan", "Health", "Care", "Benefits", "Mutual", "Community Health", "HMO", "Choice")
PLAN_SUFFIX = {"commercial": "", "medicare": " Medicare Advantage", "medicaid": " Medicaid", "self_pay": ""}
ELIG_UNVERIFIED = {"commercial": 0.04, "medicare": 0.03, "medicaid": 0.09, "self_pay": 0.06}
FEE_FACTOR = {"commercial": 0.6, "medicare": 0.4, "medicaid": 0.33, "self_pay": 0.5}
EFFECTS_B: dict[str, float] = {
    "timely_filing": 4.5, "missing_prior_auth": 3.0, "frequency_limit": 3.0, "modifier_rule": 2.5,
    "defect": 2.5, "dx_inconsistent": 2.2, "eligibility_unverified": 2.0, "high_charge": 1.3,
    "modifier_59": 0.35, "age_80_plus": 0.15,
}
# attribution order (largest first) and CARC
CAUSE_CARC_B: tuple[tuple[str, str], ...] = (
    ("timely_filing", "29"), ("missing_prior_auth", "197"), ("frequency_limit", "119"),
    ("modifier_rule", "4"), ("defect", "16"), ("dx_inconsistent", "11"), ("eligibility_unverified", "27"),
    ("high_charge", "45"),
)
CARC_RARC_B = {"197": "M62", "27": "N30", "11": "M76", "4": "N519", "119": "N362", "16": "N290", "50": "N115"}
HIGH_CHARGE_RATIO = 1.75
DEFECT_KINDS = ("test_npi", "icd9_after_cutoff", "missing_dob")
DEFECT_RATE = 0.004  # each kind, per first submission
DEFECT_RARC = {"test_npi": "N290", "icd9_after_cutoff": "M76", "missing_dob": "N329"}
SERIES_SHARE = 0.22  # claims that repeat an earlier claim's member and code (therapy series, repeat labs)
BILLING_ORGS = gen.BILLING_ORGS
GROUND_TRUTH_COLUMNS_B = gen.GROUND_TRUTH_COLUMNS + (
    "world", "procedure_group", "cause_modifier_rule", "cause_frequency_limit", "cause_defect", "defect_kind",
)


@dataclass(frozen=True)
class HospitalB:
    """The hidden world: payers, codes, diagnoses and the rules denials are drawn from (arrays indexed by
    payer, code, group, chapter)."""

    world_seed: int
    payer_ids: tuple[str, ...]
    payer_names: tuple[str, ...]
    plan_types: tuple[str, ...]
    payer_weight: np.ndarray
    base_logit: np.ndarray
    filing_limit: np.ndarray
    codes: tuple[str, ...]
    code_group: np.ndarray  # index into groups
    code_section: tuple[str, ...]
    typical_charge: np.ndarray
    code_weight: np.ndarray
    groups: tuple[str, ...]
    icd10: tuple[str, ...]
    icd9: tuple[str, ...]
    icd_chapter: np.ndarray  # index into chapters
    chapters: tuple[str, ...]
    consistent: np.ndarray  # [payer, group, chapter] bool
    base_consistent: np.ndarray  # [group, chapter]: what billers code for
    pa_required: np.ndarray  # [payer, code] bool
    deny_25_without_em: np.ndarray  # [payer] bool
    freq_limit: np.ndarray  # [code] claims allowed within the window (0: no limit)
    freq_window: np.ndarray  # [code] days
    freq_payer: np.ndarray  # [payer] bool: applies frequency limits

    @property
    def published_pa_payers(self) -> np.ndarray:
        """Payers whose prior-auth list is published (the commercial ones): the rest are unknown."""
        return np.array([p == "commercial" for p in self.plan_types])


def _hcpcs_code(letter: str, numbers: np.ndarray) -> list[str]:
    return [f"{letter}{n:04d}" for n in numbers]


def build_world(world_seed: int = DEFAULT_WORLD_SEED) -> HospitalB:
    """Draw hospital B's payers, code set and hidden rules from `world_seed`."""
    rng = np.random.default_rng([world_seed, 0xB0B])
    # payers: 15-40, unique numeric 5-digit ids
    n_pay = int(rng.integers(15, 41))
    ids = rng.choice(np.arange(10_000, 100_000), size=n_pay, replace=False)
    plans = np.array(list(PLAN_MIX))[rng.choice(len(PLAN_MIX), size=n_pay, p=list(PLAN_MIX.values()))]
    plans[0], plans[1] = "medicare", "commercial"  # every world has both
    names = [f"{NAME_A[rng.integers(len(NAME_A))]} {NAME_B[rng.integers(len(NAME_B))]}{PLAN_SUFFIX[p]}"
             for p in plans]
    base_rate = np.clip(rng.lognormal(np.log(0.055), 0.35, n_pay), 0.02, 0.15)
    limits = rng.choice(np.array([90, 95, 120, 180, 365]), size=n_pay, p=[0.3, 0.1, 0.2, 0.2, 0.2])
    limits[plans == "medicare"] = 365
    payer_weight = rng.pareto(1.2, n_pay) + 0.2

    # codes
    codes: list[str] = []
    groups: list[str] = []
    sections: list[str] = []
    group_names: list[str] = []
    for group, section, lo, hi, k in (*CPT_GROUPS, CATEGORY_III):
        nums = np.sort(rng.choice(np.arange(lo, hi + 1), size=k, replace=False))
        codes += [f"{n:04d}T" for n in nums] if section == "category_iii" else [f"{n:05d}" for n in nums]
        group_names.append(group)
        groups += [group] * k
        sections += [section] * k
    for letter, (group, k) in HCPCS_GROUPS.items():
        nums = np.sort(rng.choice(np.arange(1, 10_000), size=k, replace=False))
        codes += _hcpcs_code(letter, nums)
        group_names.append(group)
        groups += [group] * k
        sections += ["hcpcs"] * k
    n_codes = len(codes)
    code_group = np.array([group_names.index(g) for g in groups], dtype=np.int64)
    section_key = np.array(sections, dtype=object)
    charge = np.empty(n_codes)
    for section, (median, sd) in SECTION_CHARGE.items():
        rows = np.flatnonzero(section_key == section)
        charge[rows] = np.round(rng.lognormal(np.log(median), sd, len(rows)), 2)
    # volume: heavy-tailed within a section, sections mixed as SECTION_MIX
    weight = np.empty(n_codes)
    for section, share in SECTION_MIX.items():
        key = "evaluation_management" if section == "em" else section
        rows = np.flatnonzero(section_key == key)
        w = 1.0 / (rng.permutation(len(rows)) + 8.0) ** 0.7
        weight[rows] = share * w / w.sum()

    # diagnoses: ICD-10-CM of valid grammar, and an ICD-9-CM form of each for services before 2015-10-01
    chapters = tuple(world.ICD_CHAPTERS)
    icd10: list[str] = []
    while len(icd10) < 600:
        letter = "ABCDEFGHIJKLMNOPQRSTZ"[rng.integers(21)]
        block = f"{letter}{rng.integers(0, 100):02d}"
        tail = "" if rng.random() < 0.2 else "." + "".join(str(d) for d in rng.integers(0, 10, rng.integers(1, 3)))
        code = block + tail
        if world.icd_chapter(code) != world.UNKNOWN and code not in icd10:
            icd10.append(code)
    icd9: list[str] = []
    for code10 in icd10:  # V codes for the Z chapter (factors influencing health status), else numeric
        while True:
            code = (f"V{rng.integers(1, 92):02d}.{rng.integers(0, 10)}" if code10.startswith("Z")
                    else f"{rng.integers(1, 1000):03d}.{rng.integers(0, 100):02d}")
            if code not in icd9:
                icd9.append(code)
                break
    icd_chapter = np.array([chapters.index(world.icd_chapter(c)) for c in icd10], dtype=np.int64)

    # rules
    n_groups, n_ch = len(group_names), len(chapters)
    base_consistent = rng.random((n_groups, n_ch)) < 0.6
    base_consistent[group_names.index("em")] = True
    flips = rng.random((n_pay, n_groups, n_ch)) < 0.08
    consistent = base_consistent[None, :, :] ^ flips
    pa_share = {"surgery": 0.35, "radiology": 0.3, "medicine": 0.1, "anesthesia": 0.1, "hcpcs": 0.2}
    pa_program = rng.random(n_pay) < 0.8
    pa_program[plans == "self_pay"] = False
    pa = np.zeros((n_pay, n_codes), dtype=bool)
    for section, share in pa_share.items():
        rows = np.flatnonzero(section_key == section)
        pa[:, rows] = rng.random((n_pay, len(rows))) < share
    pa &= pa_program[:, None]
    deny25 = rng.random(n_pay) < 0.5
    freq_limit = np.zeros(n_codes, dtype=np.int64)
    freq_window = np.zeros(n_codes, dtype=np.int64)
    eligible = np.isin(section_key, ["pathology_lab", "medicine", "radiology"])
    limited = np.flatnonzero(eligible & (rng.random(n_codes) < 0.3))
    freq_limit[limited] = rng.choice([1, 2, 4], size=len(limited), p=[0.5, 0.3, 0.2])
    freq_window[limited] = rng.choice([14, 30, 60], size=len(limited))
    freq_payer = rng.random(n_pay) < 0.6

    return HospitalB(
        world_seed=world_seed, payer_ids=tuple(str(i) for i in ids), payer_names=tuple(names),
        plan_types=tuple(str(p) for p in plans), payer_weight=payer_weight,
        base_logit=np.log(base_rate / (1 - base_rate)), filing_limit=limits.astype(np.int64),
        codes=tuple(codes), code_group=code_group, code_section=tuple(sections), typical_charge=charge,
        code_weight=weight, groups=tuple(group_names), icd10=tuple(icd10), icd9=tuple(icd9),
        icd_chapter=icd_chapter, chapters=chapters, consistent=consistent, base_consistent=base_consistent,
        pa_required=pa, deny_25_without_em=deny25, freq_limit=freq_limit, freq_window=freq_window,
        freq_payer=freq_payer,
    )


# ---------------------------------------------------------------------------------------------------
# generation
# ---------------------------------------------------------------------------------------------------


def _patients(rng: np.random.Generator, w: HospitalB, start_day: int, n: int) -> gen.Batch:
    size = max(200, n // 4)
    payer = rng.choice(len(w.payer_ids), size=size, p=w.payer_weight / w.payer_weight.sum())
    plan = np.array(w.plan_types)[payer]
    u = rng.random(size)
    age = np.select([plan == "medicare", plan == "medicaid"],
                    [np.where(u < 0.88, rng.triangular(65, 70, 98, size), rng.uniform(25, 65, size)),
                     np.where(u < 0.45, rng.uniform(0, 18, size), rng.uniform(18, 65, size))],
                    np.where(u < 0.2, rng.uniform(0, 18, size), rng.uniform(18, 75, size)))
    sex = np.array(["F", "M", "U"], dtype=object)[gen._choice(rng, np.array([0.53, 0.465, 0.005]), size)]
    first = np.where(sex == "M", np.array(gen.MALE_FIRST, dtype=object)[rng.integers(len(gen.MALE_FIRST), size=size)],
                     np.array(gen.FEMALE_FIRST, dtype=object)[rng.integers(len(gen.FEMALE_FIRST), size=size)])
    last = np.array(gen.LAST_NAMES, dtype=object)[rng.integers(len(gen.LAST_NAMES), size=size)]
    streets = np.array([f"{s} {x}" for s in gen.STREETS for x in gen.STREET_SUFFIX], dtype=object)
    address = rng.integers(100, 19_999, size=size).astype(str).astype(object) + " " + \
        streets[rng.integers(len(streets), size=size)]
    zipcode = gen._prefixed("", rng.integers(1, 100, size=size) + 100 * rng.integers(600, 630, size=size), 5)
    seq = (np.arange(size, dtype=np.int64) * 387_420_489 + int(rng.integers(10**9))) % 10**9
    return {"payer": payer, "dob_day": start_day - np.floor(age * 365.25).astype(np.int64), "sex": sex,
            "name": first + " " + last, "address": address, "zip": zipcode,
            "member_id": gen._prefixed("B", seq, 9)}


def _providers(rng: np.random.Generator, w: HospitalB) -> gen.Batch:
    per_group = np.maximum(3, np.bincount(w.code_group, weights=w.code_weight) * 400).astype(np.int64)
    group = np.repeat(np.arange(len(w.groups)), per_group)
    n = len(group)
    npis = gen._npi(rng, n + BILLING_ORGS)
    org = rng.integers(BILLING_ORGS, size=n)
    return {"group": group, "org": org, "rendering_npi": npis[:n], "billing_npi": npis[n:][org],
            "pa_miss": rng.lognormal(-0.125, 0.5, n), "miscode": rng.lognormal(-0.125, 0.5, n),
            "charge": rng.lognormal(0.0, 0.1, n), "effect": rng.normal(0.0, 0.15, n)}


def _frequency_flag(w: HospitalB, patient: np.ndarray, code: np.ndarray, payer: np.ndarray,
                    service_day: np.ndarray) -> np.ndarray:
    """The member's claim of a limited code beyond the code's limit within its window (by service date,
    earlier claims of the same member and code counted), at payers that apply frequency limits."""
    n = len(code)
    limit, window = w.freq_limit[code], w.freq_window[code]
    out = np.zeros(n, dtype=bool)
    rows = np.flatnonzero((limit > 0) & w.freq_payer[payer])
    if not len(rows):
        return out
    all_limited = np.flatnonzero(limit > 0)  # claims at any payer count toward the member's history
    key = patient[all_limited] * len(w.codes) + code[all_limited]
    order = np.lexsort((all_limited, service_day[all_limited], key))
    sk, sd = key[order], service_day[all_limited][order]
    combined = sk.astype(np.float64) * 1e6 + sd  # sorted by (key, day)
    pos_of = np.empty(n, dtype=np.int64)
    pos_of[all_limited[order]] = np.arange(len(order))
    p = pos_of[rows]
    lo = np.searchsorted(combined, combined[p] - window[rows], side="left")
    prior = p - lo  # earlier (or same-day earlier) claims of this member and code within the window
    out[rows] = prior >= limit[rows]
    return out


def _first_versions(rng: np.random.Generator, w: HospitalB, start_day: int, days: int, per_day: int,
                    pats: gen.Batch, provs: gen.Batch, tz: str, defect_rate: float) -> gen.Batch:
    n = days * per_day
    day = start_day + np.repeat(np.arange(days, dtype=np.int64), per_day)
    tod = np.where(rng.random(n) < 0.85, rng.uniform(7 / 24, 19 / 24, n), rng.random(n))
    tod = np.sort(gen._whole_s(tod * gen.US_PER_DAY).reshape(days, per_day), axis=1).ravel()
    patient = (len(pats["payer"]) * rng.random(n) ** 1.5).astype(np.int64)
    code = rng.choice(len(w.codes), size=n, p=w.code_weight / w.code_weight.sum())
    # series: a share of claims repeat an earlier claim's member and code (up to 45 days back)
    series = rng.random(n) < SERIES_SHARE
    back = rng.random(n)
    for d in range(1, days):  # copies from the earlier days only (at most 45 days back), uniformly
        rows = np.arange(d * per_day, (d + 1) * per_day)
        rows = rows[series[rows]]
        src = d * per_day - 1 - (back[rows] * min(d, 45) * per_day).astype(np.int64)
        patient[rows], code[rows] = patient[src], code[src]
    payer = pats["payer"][patient]
    group = w.code_group[code]
    section = np.array(w.code_section, dtype=object)[code]
    provider = np.empty(n, dtype=np.int64)
    for g in np.unique(group):
        rows = np.flatnonzero(group == g)
        pool = np.flatnonzero(provs["group"] == g)
        provider[rows] = pool[rng.integers(len(pool), size=len(rows))]
    pos_codes = np.empty(n, dtype=object)
    for sec, dist in SECTION_POS.items():
        rows = np.flatnonzero(section == sec)
        pos_codes[rows] = np.array(list(dist), dtype=object)[gen._choice(rng, dist, len(rows))]
    # diagnosis: coded from the chapters most payers accept for the group, unless the provider miscodes
    mismatch = rng.random(n) < np.clip(0.04 * provs["miscode"][provider], 0, 0.5)
    icd = np.empty(n, dtype=np.int64)
    ok = w.base_consistent[group][:, w.icd_chapter]  # (n, n_icd) bool
    for want in (True, False):
        rows = np.flatnonzero(mismatch != want)
        u = rng.random(len(rows))
        pools = ok[rows] == want
        counts = pools.sum(axis=1)
        cum = np.cumsum(pools, axis=1)
        target = np.minimum((u * counts).astype(np.int64), np.maximum(counts - 1, 0))
        pick = (cum <= target[:, None]).sum(axis=1)
        icd[rows] = np.where(counts > 0, pick, rng.integers(len(w.icd10), size=len(rows)))
    icd_count = 1 + np.minimum(rng.poisson(1.3, n), 11)
    units = np.ones(n, dtype=np.int64)
    drug = np.flatnonzero(np.array([c.startswith("J") for c in w.codes])[code])
    units[drug] = rng.integers(1, 200, size=len(drug))
    therapy = np.flatnonzero(np.array(w.groups)[group] == "med_therapy")
    units[therapy] = rng.integers(1, 5, size=len(therapy))
    charge = w.typical_charge[code] * units * provs["charge"][provider] * rng.lognormal(0.0, 0.12, n)
    tail = rng.random(n) < 0.03
    charge[tail] *= rng.uniform(1.8, 4.0, int(tail.sum()))
    billed = np.clip(np.round(charge, 2), 0.01, gen.MAX_BILLED)
    limit = w.filing_limit[payer]
    lag = 1 + np.minimum(np.floor(rng.gamma(1.3, 5.0, n)), 29).astype(np.int64)
    u = rng.random(n)
    moderate = (u >= 0.935) & (u < 0.975)
    lag[moderate] = rng.integers(31, np.maximum(limit[moderate] - 5, 32))
    breach = u >= 0.975
    lag[breach] = limit[breach] + 1 + np.floor(rng.exponential(25.0, int(breach.sum()))).astype(np.int64)
    service_day = day - lag
    plan = np.array(w.plan_types)[payer]
    p_unverified = np.array([ELIG_UNVERIFIED[p] for p in plan]) * np.where(pos_codes == "23", 2.5, 1.0)
    elig = rng.random(n) >= p_unverified
    required = w.pa_required[payer, code]
    p_present = np.where(required, 1 - np.clip(0.15 * provs["pa_miss"][provider], 0, 0.8), 0.03)
    pa_present = rng.random(n) < p_present
    em = np.array(w.groups)[group] == "em"
    r = rng.random((4, n))
    mod25 = (em & (r[0] < 0.08) & (pos_codes != "23")) | (~em & (r[0] < 0.02))  # 25 without E/M: an error
    mod59 = np.isin(section, ["surgery", "pathology_lab", "medicine"]) & (r[1] < 0.05)
    lateral = (section == "surgery") & (r[2] < 0.3)
    mods = np.full(n, None, dtype=object)
    parts = [np.where(mod25, "25", ""), np.where(mod59, "59", ""),
             np.where(lateral & (r[3] < 0.5), "LT", np.where(lateral, "RT", ""))]
    joined = np.array([",".join(x for x in t if x) for t in zip(*parts, strict=True)], dtype=object)
    mods[joined != ""] = joined[joined != ""]
    # defects (first submissions only; a correction fixes them)
    defect = np.full(n, -1, dtype=np.int64)
    if defect_rate:
        d = rng.random(n)
        # ICD-9 on an ICD-10 date; V codes read as ICD-10 grammar, so only the numeric ICD-9 codes
        after = (service_day >= gen._days_since_epoch(ICD10_START)) & ~np.char.startswith(
            np.array(w.icd9)[icd], "V")
        defect[d < defect_rate] = 0
        defect[(d >= defect_rate) & (d < 2 * defect_rate) & after] = 1
        defect[(d >= 2 * defect_rate) & (d < 3 * defect_rate)] = 2
    return {
        "claim_no": np.arange(n, dtype=np.int64), "version": np.ones(n, dtype=np.int64), "patient": patient,
        "payer": payer, "provider": provider, "code": code, "group": group, "icd": icd,
        "icd_count": icd_count.astype(np.int64), "units": units, "billed": billed, "service_day": service_day,
        "submitted": gen._local_to_utc(day * gen.US_PER_DAY + tod, tz), "sub_day": day, "elig": elig,
        "pa_present": pa_present, "pa_no": rng.integers(10**9, 10**10, size=n), "pos": pos_codes,
        "mods": mods, "mod25": mod25, "mod59": mod59, "defect": defect,
        "frequency": _frequency_flag(w, patient, code, payer, service_day),
    }


def _score(w: HospitalB, v: gen.Batch, pats: gen.Batch, provs: gen.Batch) -> None:
    payer, code = v["payer"], v["code"]
    age = (v["service_day"] - pats["dob_day"][v["patient"]]) / 365.25
    ratio = v["billed"] / (w.typical_charge[code] * v["units"])
    days_to_submit = v["sub_day"] - v["service_day"]
    em = np.array(w.groups)[v["group"]] == "em"
    causes = {
        "timely_filing": days_to_submit > w.filing_limit[payer],
        "missing_prior_auth": w.pa_required[payer, code] & ~v["pa_present"],
        "frequency_limit": v["frequency"],
        "modifier_rule": v["mod25"] & ~em & w.deny_25_without_em[payer],
        "defect": v["defect"] >= 0,
        "dx_inconsistent": ~w.consistent[payer, v["group"], w.icd_chapter[v["icd"]]],
        "eligibility_unverified": ~v["elig"],
        "high_charge": ratio > HIGH_CHARGE_RATIO,
    }
    small = (w.base_logit[payer] + provs["effect"][v["provider"]] + EFFECTS_B["modifier_59"] * v["mod59"]
             + EFFECTS_B["age_80_plus"] * (age >= 80))
    logit = small + sum(EFFECTS_B[name] * flag for name, flag in causes.items())
    v["prob"] = gen._sigmoid(logit)
    v["p_background"] = gen._sigmoid(small)
    v["required"] = w.pa_required[payer, code]
    v["days_to_submit"] = days_to_submit
    for name, flag in causes.items():
        v[f"cause_{name}"] = flag


_DERIVED = ("prob", "p_background", "required", "days_to_submit")


def _corrections(rng: np.random.Generator, w: HospitalB, prev: gen.Batch, tz: str) -> gen.Batch:
    fixable = (prev["cause_missing_prior_auth"] | prev["cause_eligibility_unverified"]
               | prev["cause_dx_inconsistent"] | prev["cause_defect"] | prev["cause_modifier_rule"])
    chosen = np.flatnonzero(rng.random(len(fixable)) < np.where(fixable, 0.28, 0.015))
    nxt = {k: a[chosen].copy() for k, a in prev.items()}
    m = len(chosen)
    nxt["version"] += 1
    nxt["submitted"] += gen._whole_s(rng.uniform(1.0, 7.0, m) * gen.US_PER_DAY)
    nxt["sub_day"] = gen._local_day(nxt["submitted"], tz)
    fix = rng.random((4, m)) < 0.9
    nxt["pa_present"] |= nxt["cause_missing_prior_auth"] & fix[0]
    nxt["pa_no"] = rng.integers(10**9, 10**10, size=m)
    nxt["elig"] |= nxt["cause_eligibility_unverified"] & fix[1]
    recode = np.flatnonzero(nxt["cause_dx_inconsistent"] & fix[2])
    for i in recode:  # few rows: a diagnosis this payer accepts for the group
        ok = np.flatnonzero(w.consistent[nxt["payer"][i], nxt["group"][i], w.icd_chapter])
        if len(ok):
            nxt["icd"][i] = ok[rng.integers(len(ok))]
    nxt["defect"][fix[3]] = -1
    drop25 = nxt["cause_modifier_rule"] & fix[3]
    nxt["mod25"][drop25] = False
    nxt["mods"][drop25] = np.array([",".join(x for x in (m or "").split(",") if x != "25") or None
                                    for m in nxt["mods"][drop25]], dtype=object)
    return {k: a for k, a in nxt.items() if not k.startswith("cause_") and k not in _DERIVED}


def _outcomes(rng: np.random.Generator, v: gen.Batch) -> tuple[np.ndarray, np.ndarray]:
    n = len(v["prob"])
    denied = rng.random(n) < v["prob"]
    background = rng.random(n) < v["p_background"] / v["prob"]
    bg_codes = np.array([c for c, _ in gen.BACKGROUND_CARCS], dtype=object)
    carc = bg_codes[gen._choice(rng, np.array([p for _, p in gen.BACKGROUND_CARCS]), n)]
    unassigned = ~background
    for name, code in CAUSE_CARC_B:
        hit = unassigned & v[f"cause_{name}"]
        carc[hit] = code
        unassigned &= ~hit
    carc[~denied] = None
    return denied, carc


def _remittances(rng: np.random.Generator, w: HospitalB, v: gen.Batch, claim_ids: np.ndarray) -> pd.DataFrame:
    """One first adjudication per claim (its latest version), ~5% a second row later."""
    idx = np.flatnonzero(v["latest"])
    n = len(idx)
    denied = v["denied"][idx]
    carc = v["carc"][idx].copy()
    adj_lag = 14 * gen.US_PER_DAY + gen._whole_s(rng.triangular(0, 9, 46, n) * gen.US_PER_DAY)
    adjudicated = v["submitted"][idx] + np.minimum(adj_lag, 60 * gen.US_PER_DAY - gen.US_PER_S)
    updated = gen._minutes_later(rng, adjudicated)
    fee_factor = np.array([FEE_FACTOR[p] for p in w.plan_types])[v["payer"][idx]]
    fee = w.typical_charge[v["code"][idx]] * v["units"][idx] * fee_factor * rng.lognormal(0.0, 0.08, n)
    allowed_if_paid = np.round(np.minimum(fee, v["billed"][idx]), 2)
    partial = ~denied & (rng.random(n) < 0.12)
    paid = np.where(partial, np.round(allowed_if_paid * rng.uniform(0.4, 0.85, n), 2), allowed_if_paid)
    carc[partial] = np.where(rng.random(int(partial.sum())) < 0.5, "1", "2")
    status = np.where(denied, "denied", np.where(partial, "partial", "paid")).astype(object)
    paid = np.where(denied, 0.0, paid)
    allowed = np.where(denied, 0.0, allowed_if_paid)
    rarc = pd.Series(carc, dtype=object).map(CARC_RARC_B).to_numpy(dtype=object)
    defect = v["defect"][idx]
    for k, kind in enumerate(DEFECT_KINDS):
        rarc[(carc == "16") & (defect == k)] = DEFECT_RARC[kind]
    rarc[pd.isna(rarc)] = None
    s = np.flatnonzero(rng.random(n) < 0.05)
    adj2 = adjudicated[s] + gen._whole_s(rng.uniform(7, 45, len(s)) * gen.US_PER_DAY)
    paid2 = np.where(denied[s], 0.0, np.round(np.minimum(paid[s] * rng.uniform(0.9, 1.05, len(s)), allowed[s]), 2))
    status2 = np.where(denied[s], "denied", np.where(paid2 < allowed[s], "partial", "paid")).astype(object)
    ids = claim_ids[v["claim_no"][idx]]
    upd_all = np.concatenate([updated, gen._minutes_later(rng, adj2)])
    order = np.argsort(upd_all, kind="stable")
    frame = pd.DataFrame({
        "claim_id": np.concatenate([ids, ids[s]])[order],
        "adjudicated_at": gen._ts(np.concatenate([adjudicated, adj2])[order]),
        "claim_status": np.concatenate([status, status2])[order],
        "paid_amount": np.concatenate([paid, paid2])[order],
        "allowed_amount": np.concatenate([allowed, allowed[s]])[order],
        "carc_code": np.concatenate([carc, carc[s]])[order],
        "rarc_code": np.concatenate([rarc, np.where(denied[s], "N10", "MA67").astype(object)])[order],
        "updated_at": gen._ts(upd_all[order]),
        "payer_claim_control_number": np.full(len(order), None, dtype=object),  # X12-only columns (CLP07, CAS01)
        "cas_group": np.full(len(order), None, dtype=object),
    })
    return frame[source_column_names("remittances")]


def _bad_check_digit(npi: str) -> str:
    return npi[:9] + str((int(npi[9]) + 1 + int(npi[3]) % 8) % 10)


def generate_hospital_b(start: date | str, days: int, claims_per_day: int, seed: int,
                        world_seed: int = DEFAULT_WORLD_SEED, defects: bool = True,
                        facility_tz: str = "UTC") -> gen.SyntheticData:
    """Hospital B's claims, remittances and ground truth: `days` x `claims_per_day` claims submitted
    from `start`; `defects` adds the claim defects (test NPIs, ICD-9 on a service date from 2015-10-01,
    missing dates of birth) at DEFECT_RATE each. Deterministic for (seed, world_seed)."""
    start = gen._as_date(start)
    days, claims_per_day = int(days), int(claims_per_day)
    if days < 1 or not 1 <= claims_per_day <= gen.MAX_CLAIMS_PER_DAY:
        raise ValueError(f"days must be >= 1 and claims_per_day in 1..{gen.MAX_CLAIMS_PER_DAY}")
    start_day = gen._days_since_epoch(start)
    if start_day < gen.EPOCH_2000 or start_day - gen.EPOCH_2000 + days > 99_999:
        raise ValueError("start must be on or after 2000-01-01 (claim numbers encode the day since 2000)")
    tz = gen._check_tz(facility_tz)
    w = build_world(world_seed)
    rng = np.random.default_rng([seed, 0xB])
    pats = _patients(rng, w, start_day, days * claims_per_day)
    provs = _providers(rng, w)
    v1 = _first_versions(rng, w, start_day, days, claims_per_day, pats, provs, tz, DEFECT_RATE if defects else 0.0)
    _score(w, v1, pats, provs)
    v2 = _corrections(rng, w, v1, tz)
    _score(w, v2, pats, provs)
    latest = np.concatenate([~np.isin(v1["claim_no"], v2["claim_no"]), np.ones(len(v2["claim_no"]), dtype=bool)])
    v = {k: np.concatenate([v1[k], v2[k]]) for k in v1}
    v["denied"], v["carc"] = _outcomes(rng, v)
    m = len(v["submitted"])
    late = rng.random(m) < 0.02
    v["updated"] = v["submitted"] + gen._whole_s(np.where(late, rng.uniform(1.0, 10.0, m) * gen.US_PER_DAY,
                                                          (0.5 + rng.exponential(15.0, m)) * gen.US_PER_MIN))
    v["latest"] = latest
    seq = np.tile(np.arange(1, claims_per_day + 1, dtype=np.int64), days)
    claim_ids, _ = gen._claim_ids(rng, v1["sub_day"], seq, provs["org"][v1["provider"]], v1["patient"], 0.8)
    order = np.lexsort((v["version"], v["claim_no"], v["submitted"]))
    v = {k: a[order] for k, a in v.items()}
    remits = _remittances(rng, w, v, claim_ids)
    committed, _ = gen._commit_times(rng, v["updated"], 0.0)
    remits_committed, _ = gen._commit_times(rng, gen._us(remits["updated_at"]), 0.0)

    p = v["patient"]
    rendering = provs["rendering_npi"][v["provider"]].copy()
    test_npi = np.flatnonzero(v["defect"] == 0)
    rendering[test_npi] = [_bad_check_digit(x) for x in rendering[test_npi]]
    icd9_era = v["service_day"] < gen._days_since_epoch(ICD10_START)
    dx = np.where(icd9_era | (v["defect"] == 1), np.array(w.icd9, dtype=object)[v["icd"]],
                  np.array(w.icd10, dtype=object)[v["icd"]])
    dob = gen._day(np.minimum(pats["dob_day"][p], v["service_day"]))
    dob[v["defect"] == 2] = np.datetime64("NaT")
    pa = np.full(m, None, dtype=object)
    present = np.flatnonzero(v["pa_present"])
    pa[present] = gen._prefixed("PA", v["pa_no"][present], 10)
    columns = {
        "claim_id": claim_ids[v["claim_no"]], "claim_version": v["version"], "member_id": pats["member_id"][p],
        "patient_name": pats["name"][p], "patient_dob": dob, "patient_address": pats["address"][p],
        "patient_zip": pats["zip"][p], "patient_sex": pats["sex"][p],
        "payer_id": np.array(w.payer_ids, dtype=object)[v["payer"]],
        "plan_type": np.array(w.plan_types, dtype=object)[v["payer"]],
        "billing_npi": provs["billing_npi"][v["provider"]], "rendering_npi": rendering,
        "place_of_service": v["pos"], "cpt_code": np.array(w.codes, dtype=object)[v["code"]],
        "modifiers": v["mods"], "icd10_primary": dx, "icd10_count": v["icd_count"], "units": v["units"],
        "billed_amount": v["billed"].astype(np.float64), "service_date": gen._day(v["service_day"]),
        "submitted_at": gen._ts(v["submitted"]), "prior_auth_number": pa,
        "eligibility_verified": v["elig"].astype(bool), "updated_at": gen._ts(v["updated"]),
    }
    claims = pd.DataFrame({name: columns[name] for name in source_column_names("claims")}, copy=False)
    defect_kind = np.array([None, *DEFECT_KINDS], dtype=object)[v["defect"] + 1]
    truth = pd.DataFrame({
        "claim_id": claim_ids[v["claim_no"]], "claim_version": v["version"],
        "submitted_at": gen._ts(v["submitted"]), "payer_id": columns["payer_id"],
        "cpt_family": np.array(w.code_section, dtype=object)[v["code"]],
        "true_denial_probability": v["prob"], "denied": v["denied"], "adjudicated": v["latest"],
        "prior_auth_required": v["required"], "drift_active": np.zeros(m, dtype=bool),
        **{f"cause_{name}": v[f"cause_{name}"] for name in gen.CAUSES},
        "cause_audited_modifier": v["mod25"] | v["mod59"], "denial_carc": v["carc"],
        "days_to_submit": v["days_to_submit"], "in_place_updates": np.zeros(m, dtype=np.int64),
        "appeal_status": np.full(m, None, dtype=object), "world": WORLD,
        "procedure_group": np.array(w.groups, dtype=object)[v["group"]],
        "cause_modifier_rule": v["cause_modifier_rule"], "cause_frequency_limit": v["cause_frequency_limit"],
        "cause_defect": v["cause_defect"], "defect_kind": defect_kind,
    })[list(GROUND_TRUTH_COLUMNS_B)]
    adjudicated = v["latest"]
    summary = {
        "world": WORLD, "world_seed": world_seed, "claims": days * claims_per_day, "claim_rows": len(claims),
        "remittance_rows": len(remits), "denial_rate": float(v["denied"][adjudicated].mean()),
        "mean_true_probability": float(v["prob"][adjudicated].mean()),
        "corrected_claims": int((v["version"] == 2).sum()), "late_claim_rows": int(late.sum()),
        "facility_tz": tz, "payers": len(w.payer_ids), "codes": len(w.codes),
        "codes_billed": int(len(np.unique(v["code"]))), "in_place_updates": 0, "appeals": 0,
        "late_commit_claim_rows": 0, "late_commit_remittance_rows": 0,
        **{f"defects_{kind}": int((v["defect"][v["version"] == 1] == k).sum()) for k, kind in enumerate(DEFECT_KINDS)},
        **{f"cause_{name}": int(v[f"cause_{name}"][adjudicated].sum()) for name, _ in CAUSE_CARC_B},
    }
    return gen.SyntheticData(claims=claims, remittances=remits, ground_truth=truth, start=start, days=days,
                             seed=seed, summary=summary, facility_tz=tz, world=WORLD,
                             committed_at={"claims": pd.Series(gen._ts(committed), name="committed_at"),
                                           "remittances": pd.Series(gen._ts(remits_committed), name="committed_at")})
