"""Claim features known at submission time, the leakage guard, and the feature version.

One function, `compute_features`, serves both the gold asset (training) and the scoring path, so a
claim gets identical features wherever it is scored. It reads only `FeatureConfig.source_columns`, all of
which the column registry marks `decision_time`; any post-outcome (paid_amount, adjudicated_at, denied…)
or bookkeeping column (updated_at, _ingested_at…) reaching it is a `LeakageError`, never a silent drop.
Callers select the allowed columns with `decision_time_view` first.

What the features may know (docs/REFERENCE_DATA.md): the claim itself, the public structure of its codes
(`lib/code_structure`: CPT/HCPCS section, ICD chapter), the reference tables the hospital supplied
(`lib/reference_tables`: payers, prior-auth lists, chargemaster, code categories; each optional) and what
the pipeline learned point in time from its own history (`lib/learned`: denial-rate encodings, typical
charges, filing limits; `lib/payer_rules`: prior-auth rules). Never the synthetic generator's truth. A
value no table gives and history has not taught is NaN (unknown), never a guess: the filing limit of a
payer without a contract, the charge ratio of a code without a list price or history.

Output dtypes are fixed so that train and serve frames are interchangeable and Parquet round-trips are
exact: categoricals are pandas 'category' with fixed category lists from public code structure and the
hospital's coarse code categories (`categories_for`; values outside become "unknown"), so no hospital's
hundreds of payers or thousands of codes reach a categorical (HistGradientBoosting takes at most 255
categories): `payer_id` is a text context column (the fallback model, payer rules, monitoring and worklist
read it; the model does not, `MODEL_FEATURES`), and the model sees payers and codes through the learned
encodings. Flags and counts are int64 (0/1 for flags), continuous values float64.

Days are the facility's: `service_date` is a local calendar date and `submitted_at` naive UTC, so
`days_to_submit` (and the filing margin) count from the service date to the *local* date of submission in
`FeatureConfig.facility_tz` (RCM_FACILITY_TZ through the feature resource). The zone is part of the config,
hence of `feature_version`.

Everything is vectorised: string columns are factorized and the lookups run once per distinct value, so a
day of 20,000 claims takes milliseconds.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

from rcm_assets.lib import code_structure, settings
from rcm_assets.lib import learned as learned_lib
from rcm_assets.lib.code_sets import PLACE_OF_SERVICE_CODES
from rcm_assets.lib.columns import (
    DEFECT_COLUMNS,
    ICD_CODE_SET_COLUMN,
    Availability,
    availability_of,
    columns,
    phi_column_names,
)
from rcm_assets.lib.learned import LEARNED_FEATURES
from rcm_assets.lib.member_history import HISTORY_COLUMNS as HISTORY_COLUMNS  # re-exported: the feature API
from rcm_assets.lib.member_history import MEMBER_COUNT_FEATURES, member_code_counts
from rcm_assets.lib.member_history import MEMBER_WINDOWS_DAYS as MEMBER_WINDOWS_DAYS
from rcm_assets.lib.reference_tables import NO_TABLES, ReferenceTables
from rcm_assets.lib.reference_tables import PLAN_TYPES as REFERENCE_PLAN_TYPES

UNKNOWN = code_structure.UNKNOWN
KEY_COLUMNS: tuple[str, ...] = ("claim_id", "claim_version", "submitted_at", "dt")
# Not registry columns, but harmless partition keys a frame may carry.
ALLOWED_NON_REGISTRY: frozenset[str] = frozenset({"dt"})

# The claim defect flags of silver (INTERFACES B): predictors, not reasons to drop the claim.
DEFECT_FLAGS: tuple[str, ...] = DEFECT_COLUMNS
# Value of a learned feature when no learned tables are given (ad-hoc scoring, the probe set): what an
# empty learning window gives (`lib/learned`: every key at the prior rate, charge and filing limit unknown).
_PRIOR_LOGIT = float(np.log(learned_lib.DEFAULT_CONFIG.default_denial_rate
                            / (1 - learned_lib.DEFAULT_CONFIG.default_denial_rate)))
LEARNED_DEFAULTS: dict[str, float] = {name: _PRIOR_LOGIT for name in LEARNED_FEATURES} | {
    name: 0.0 for name in LEARNED_FEATURES if name.endswith("_rate")} | {
    "learned_typical_charge": np.nan, "learned_filing_limit_days": np.nan}

BASE_SOURCE_COLUMNS: tuple[str, ...] = (
    "claim_id", "claim_version", "payer_id", "plan_type", "billing_npi", "rendering_npi", "place_of_service",
    "cpt_code", "modifiers", "icd10_primary", "icd10_count", "units", "billed_amount", "service_date",
    "submitted_at", "prior_auth_number", "eligibility_verified", "patient_age", "patient_sex", "member_token",
)
DEFAULT_SOURCE_COLUMNS: tuple[str, ...] = (*BASE_SOURCE_COLUMNS, *DEFECT_FLAGS, ICD_CODE_SET_COLUMN)
REQUIRED_SOURCE_COLUMNS: frozenset[str] = frozenset(DEFAULT_SOURCE_COLUMNS)


class LeakageError(ValueError):
    """A column not known at submission time would reach the features or the scoring input."""

    def __init__(self, message: str, columns: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.columns = list(columns)


def check_decision_time(columns: Iterable[str]) -> None:
    """Raise `LeakageError` naming every column that is not `decision_time` in the registry.

    Refused: post-outcome columns (paid_amount, adjudicated_at, claim_status, denied, …), bookkeeping
    columns (updated_at, _ingested_at, _source, _run_id) and names the registry does not know (a new
    column must be registered with its availability before it can become a feature); `dt` is allowed.
    """
    refused: dict[str, list[str]] = {"post-outcome": [], "bookkeeping": [], "unregistered": []}
    for name in columns:
        if name in ALLOWED_NON_REGISTRY:
            continue
        level = availability_of(name)
        if level is Availability.POST_OUTCOME:
            refused["post-outcome"].append(name)
        elif level is Availability.BOOKKEEPING:
            refused["bookkeeping"].append(name)
        elif level is None:
            refused["unregistered"].append(name)
    bad = [c for names in refused.values() for c in names]
    if bad:
        detail = "; ".join(f"{kind} column(s) {', '.join(names)}" for kind, names in refused.items() if names)
        raise LeakageError(
            f"not known at submission time: {detail}. Features and scoring input may only read "
            "decision_time columns of the registry (select them with features.decision_time_view).",
            bad,
        )


# --------------------------------------------------------------------------------------------------
# Configuration and the output contract
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureConfig:
    """Knobs of the feature code; part of `feature_version`, so changing one changes the version.

    source_columns: the silver columns the features may read (validated: decision_time only, no PHI,
        and every column the features need).
    age_band_edges: lower edges of the patient age bands after the first ("<18", "18-34", …, "75+").
    charge_ratio_cap: upper clip of billed / (typical charge × units), so one typo cannot dominate.
    facility_tz: IANA time zone in which service dates are local dates (days are counted there).
    learned_rule_min_denials, learned_rule_window_days: a payer/procedure category no prior-auth list
        covers counts as requiring prior authorization on day D when at least this many claim versions
        without an authorization number were denied for an authorization reason, arrived on the window's
        days before D (`lib/payer_rules`).
    """

    source_columns: tuple[str, ...] = DEFAULT_SOURCE_COLUMNS
    age_band_edges: tuple[int, ...] = (18, 35, 50, 65, 75)
    charge_ratio_cap: float = 100.0
    facility_tz: str = settings.DEFAULT_FACILITY_TZ
    learned_rule_min_denials: int = 3
    learned_rule_window_days: int = 180

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        check_decision_time(self.source_columns)
        phi = sorted(set(self.source_columns) & phi_column_names())
        if phi:
            raise ValueError(f"PHI column(s) {', '.join(phi)} cannot be feature sources")
        missing = sorted(REQUIRED_SOURCE_COLUMNS - set(self.source_columns))
        if missing:
            raise ValueError(f"source_columns lacks {', '.join(missing)}, which the features read")
        edges = self.age_band_edges
        if not edges or list(edges) != sorted(set(edges)) or edges[0] <= 0 or edges[-1] > 90:
            raise ValueError(f"age_band_edges must be strictly increasing within (0, 90]: {edges}")
        if not self.charge_ratio_cap > 0:
            raise ValueError("charge_ratio_cap must be positive")
        settings.check_time_zone(self.facility_tz, setting="facility_tz")
        if self.learned_rule_min_denials < 1 or self.learned_rule_window_days < 1:
            raise ValueError("learned_rule_min_denials and learned_rule_window_days must be at least 1")

    @property
    def age_bands(self) -> tuple[str, ...]:
        e = self.age_band_edges
        inner = tuple(f"{lo}-{hi - 1}" for lo, hi in zip(e[:-1], e[1:], strict=True))
        return (f"<{e[0]}", *inner, f"{e[-1]}+", UNKNOWN)


DEFAULT_CONFIG = FeatureConfig()


def _with_unknown(values: Iterable[str]) -> tuple[str, ...]:
    return (*dict.fromkeys(values), UNKNOWN)


# Fixed category lists, all from public code structure or this module (never from a hospital's table, so
# a category code means the same in every run and no list outgrows HistGradientBoosting's 255).
CATEGORIES: dict[str, tuple[str, ...]] = {
    "plan_type": _with_unknown(REFERENCE_PLAN_TYPES),
    # the procedure category: the public sections, plus the hospital's categories (`categories_for`)
    "cpt_family": _with_unknown(code_structure.PROCEDURE_SECTIONS),
    "procedure_section": _with_unknown(code_structure.PROCEDURE_SECTIONS),
    "place_of_service": _with_unknown(PLACE_OF_SERVICE_CODES),
    "icd_chapter": _with_unknown(code_structure.ICD_CHAPTERS),
    "patient_sex": ("F", "M", "U"),
    "patient_age_band": DEFAULT_CONFIG.age_bands,  # default config; see categories_for(config)
}
CATEGORICAL_FEATURES: tuple[str, ...] = tuple(CATEGORIES)
# Text context of each row: stored in gold and the training set (the fallback model, payer rules,
# monitoring, worklist and drivers read them), never a model input (too many values for a categorical).
CONTEXT_COLUMNS: tuple[str, ...] = ("payer_id",)

INT_FEATURES: tuple[str, ...] = (
    "prior_auth_required", "prior_auth_present", "prior_auth_missing", "eligibility_verified",
    "days_to_submit", "past_filing_limit", "icd10_count", "units", "n_modifiers", "has_modifier_25",
    "has_modifier_59", *DEFECT_FLAGS, *MEMBER_COUNT_FEATURES,
)
FLOAT_FEATURES: tuple[str, ...] = ("filing_limit_days", "filing_margin_days", "charge_ratio", "log_billed_amount",
                                   *LEARNED_FEATURES)
NUMERIC_FEATURES: tuple[str, ...] = INT_FEATURES + FLOAT_FEATURES
MODEL_FEATURES: tuple[str, ...] = (*CATEGORICAL_FEATURES, *NUMERIC_FEATURES)
FEATURE_COLUMNS: tuple[str, ...] = (*CONTEXT_COLUMNS, *MODEL_FEATURES)
OUTPUT_COLUMNS: tuple[str, ...] = (*KEY_COLUMNS, *FEATURE_COLUMNS, "feature_version")

_FLAGS = ("prior_auth_required", "prior_auth_present", "prior_auth_missing", "eligibility_verified",
          "past_filing_limit", "has_modifier_25", "has_modifier_59", *DEFECT_FLAGS)


def _registry_bounds(name: str) -> tuple[float, float]:
    """(ge, le) of a silver claims column in the registry: the features that copy it share its bounds."""
    col = next(c for c in columns("claims", "silver") if c.name == name)
    if col.ge is None or col.le is None:
        raise KeyError(f"registry column {name} has no (ge, le) bounds")
    return col.ge, col.le


MAX_LOGIT = 20.0  # a learned log-odds beyond this is a bug, not a rate
# Plausible bounds of numeric features (gold checks); silver contracts already bound most inputs.
FEATURE_RANGES: dict[str, tuple[float, float]] = {
    **{f: (0, 1) for f in _FLAGS},
    "days_to_submit": (0, 3650),
    "filing_limit_days": (1, 3650),
    "filing_margin_days": (-3650, 3650),
    "icd10_count": _registry_bounds("icd10_count"),
    "units": _registry_bounds("units"),
    "n_modifiers": (0, 10),
    **{f: (0, 10_000) for f in MEMBER_COUNT_FEATURES},
    "charge_ratio": (0, DEFAULT_CONFIG.charge_ratio_cap),
    "log_billed_amount": (0, float(np.log1p(_registry_bounds("billed_amount")[1]))),
    **{f: (-MAX_LOGIT, MAX_LOGIT) for f in LEARNED_FEATURES if f.endswith("_logit")},
    **{f: (0, 1) for f in LEARNED_FEATURES if f.endswith("_rate")},
    "learned_typical_charge": (0, _registry_bounds("billed_amount")[1]),
    "learned_filing_limit_days": (1, 3650),
}
# Features that are unknown (NaN) when no table gives them and history has not taught them: missing values
# are information to the gradient boosting, never a reason to block a day. Every other feature: no nulls.
UNKNOWN_ALLOWED: tuple[str, ...] = ("filing_limit_days", "filing_margin_days", "charge_ratio",
                                    "learned_typical_charge", "learned_filing_limit_days")
MAX_NULL_RATE: dict[str, float] = {f: 0.0 for f in FEATURE_COLUMNS} | {f: 1.0 for f in UNKNOWN_ALLOWED}


def categories_for(config: FeatureConfig, reference: ReferenceTables = NO_TABLES) -> dict[str, tuple[str, ...]]:
    """The fixed category list of every categorical feature under `config` and the hospital's tables (its
    code categories join the public sections of `cpt_family`: at most `reference_tables.MAX_CATEGORIES`)."""
    family = _with_unknown((*code_structure.PROCEDURE_SECTIONS, *reference.categories()))
    return {**CATEGORIES, "cpt_family": family, "patient_age_band": config.age_bands}


def output_dtypes(config: FeatureConfig = DEFAULT_CONFIG, reference: ReferenceTables = NO_TABLES) -> dict[str, Any]:
    """The exact dtype of every output column (what `compute_features` returns, even for 0 rows)."""
    cats = categories_for(config, reference)
    return {
        "claim_id": np.dtype(object), "claim_version": np.dtype("int64"),
        "submitted_at": np.dtype("datetime64[ns]"), "dt": np.dtype(object),
        **{f: np.dtype(object) for f in CONTEXT_COLUMNS},
        **{f: pd.CategoricalDtype(list(cats[f])) for f in CATEGORICAL_FEATURES},
        **{f: np.dtype("int64") for f in INT_FEATURES},
        **{f: np.dtype("float64") for f in FLOAT_FEATURES},
        "feature_version": np.dtype(object),
    }


# --------------------------------------------------------------------------------------------------
# Feature version
# --------------------------------------------------------------------------------------------------


def _canonical(obj: Any) -> Any:
    """JSON-able, order-independent form (sets are sorted: their repr varies with the hash seed)."""
    if isinstance(obj, dict):
        return {str(k): _canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, set | frozenset):
        return sorted((_canonical(v) for v in obj), key=repr)
    if isinstance(obj, tuple | list):
        return [_canonical(v) for v in obj]
    if hasattr(obj, "__dataclass_fields__"):
        return {f.name: _canonical(getattr(obj, f.name)) for f in fields(obj)}
    return obj


# Raise when the features change meaning on purpose (e.g. a new feature, another definition). The version
# also follows the computed values on a fixed probe set (`_probe_claims`), so a change nobody announced is
# caught too, while a comment, a renamed local or a refactor that computes the same values changes nothing.
# 3: the hospital's reference tables, public code structure, defect flags and learned statistics instead of
# the generator's reference module
# 4: learned CARC shares by payer x procedure subsection x diagnosis chapter, payer x procedure authorization
# and procedure frequency denials
FEATURE_LOGIC_VERSION = 4
PROBE_ROWS = 2_000
# Codes the probe walks: every public CPT/HCPCS section, ICD-10 and ICD-9 chapters, malformed values
_PROBE_CODES = ("99213", "00142", "27447", "70551", "80053", "93000", "99500", "3074F", "0042T", "0001U",
                "A0428", "E0601", "G0439", "J9271", "Q4101", "L3000", "99999", "BAD", None)
_PROBE_DIAGNOSES = ("I10", "E11.9", "M17.11", "S72.001A", "Z00.00", "C50.911", "O9A.212", "R07.9", "F32.9",
                    "4019", "250.00", "V70.0", "E880.9", "Q99.9", "XYZ", None)


def _probe_claims(config: FeatureConfig, payers: Iterable[str] = ()) -> pd.DataFrame:
    """A fixed, deterministic frame of decision-time claims that walks public code sections, chapters,
    places of service and the supplied payers with varied prior auth, eligibility, modifiers, ages, units,
    charges, filing delays and defects: what feature_version measures the features on."""
    n = PROBE_ROWS
    i = np.arange(n)
    pick = lambda values, step: np.array(list(values), dtype=object)[(i * step) % len(values)]  # noqa: E731
    submitted = pd.Timestamp("2025-03-01 13:00") + pd.to_timedelta(i * 3_607, unit="s")
    service = (submitted - pd.to_timedelta((i * 7) % 400, unit="D")).normalize()
    frame = pd.DataFrame({
        "claim_id": [f"PROBE-{k:05d}" for k in i], "claim_version": 1 + (i % 3),
        "payer_id": pick([*sorted(payers)[:200], "60054", "UNLISTED"], 1),
        "plan_type": pick([*REFERENCE_PLAN_TYPES[:4], None], 3),
        "billing_npi": pick(["1234567893", None], 7), "rendering_npi": pick(["1245319599", "1234567893"], 5),
        "place_of_service": pick(["11", "21", "22", "23", "81", "99", None], 5),
        "cpt_code": pick(_PROBE_CODES, 7),
        "modifiers": pick([None, "25", "59", "25,59", "LT", "26,TC"], 11), "icd10_primary": pick(_PROBE_DIAGNOSES, 13),
        "icd10_count": 1 + (i % 25), "units": 1 + (i * 17) % 1_500, "billed_amount": 10.0 + (i * 137.31) % 90_000,
        "service_date": service.to_numpy(dtype="datetime64[ns]"),
        "submitted_at": submitted.to_numpy(dtype="datetime64[ns]"),
        "prior_auth_number": np.where(i % 4 == 0, None, "PA0000000001").astype(object),
        "eligibility_verified": i % 9 != 0, "patient_age": np.where(i % 37 == 0, np.nan, (i * 3) % 91),
        "patient_sex": pick(["F", "M", "U"], 1),
        "member_token": pick([*(f"{k:032x}" for k in range(25)), None], 3),
        "icd_code_set": pick(["icd10", "icd9", None], 2),
        **{flag: ((i + k) % (5 + k) == 0).astype("int64") for k, flag in enumerate(DEFECT_FLAGS)},
    })
    return frame[list(config.source_columns)]


def _probe_tables() -> ReferenceTables:
    """Small fixed tables for the probe, so the fingerprint walks the code paths of every supplied table
    (contract filing limits, prior-auth lists, list prices, categories) even when the hospital has none."""
    return ReferenceTables(
        payers=pd.DataFrame({"payer_id": ["60054", "UNLISTED"], "payer_name": ["Probe", None],
                             "plan_type": ["commercial", None], "filing_limit_days": [90.0, np.nan]}),
        prior_auth_list=pd.DataFrame({"payer_id": ["60054", "60054"], "procedure_code": ["70551", "J9271"],
                                      "effective_from": pd.to_datetime([None, "2025-01-01"]),
                                      "effective_to": pd.to_datetime([None, None])}),
        chargemaster=pd.DataFrame({"procedure_code": ["99213", "70551", "J9271"], "description": [None] * 3,
                                   "list_price": [150.0, 1800.0, 180.0]}),
        code_categories=pd.DataFrame({"procedure_code": ["70551", "27447"], "category": ["imaging", "surgery"]}),
    )


def _probe_fingerprint(config: FeatureConfig, reference: ReferenceTables) -> str:
    """sha256 of the features of the probe claims under the hospital's tables and under the probe's own:
    values, dtypes and categories."""
    payers = [] if reference.payers is None else reference.payers["payer_id"].tolist()
    h = hashlib.sha256()
    for tables in (reference, _probe_tables()):
        features = _features(_probe_claims(config, payers), config, "probe", reference=tables)
        h.update(json.dumps([[c, str(features[c].dtype)] for c in features.columns]).encode())
        h.update(pd.util.hash_pandas_object(features, index=False).to_numpy().tobytes())
    return h.hexdigest()


_VERSIONS: dict[tuple[FeatureConfig, str], str] = {}


def feature_version(config: FeatureConfig = DEFAULT_CONFIG, reference: ReferenceTables = NO_TABLES) -> str:
    """16 hex chars of sha256(FEATURE_LOGIC_VERSION + the reference tables' content version + config + the
    features computed on the probe claims).

    It changes when the features do, and only then: a comment or a refactor keeps it (no dead period
    where gold no longer matches the champion), a real change of code, of a supplied reference table or
    of the configuration gives a new version, which gold rows and predictions carry so each score traces
    to its features. Learned statistics are data of the day (recorded in gold's metadata), not part of it.
    """
    key = (config, reference.version)
    if key not in _VERSIONS:
        h = hashlib.sha256()
        h.update(f"logic {FEATURE_LOGIC_VERSION}".encode())
        h.update(f"reference {reference.version}".encode())
        h.update(json.dumps(_canonical(config), sort_keys=True).encode())
        h.update(_probe_fingerprint(config, reference).encode())
        _VERSIONS[key] = h.hexdigest()[:16]
    return _VERSIONS[key]


# --------------------------------------------------------------------------------------------------
# Computation
# --------------------------------------------------------------------------------------------------


def decision_time_view(silver_claims: pd.DataFrame, config: FeatureConfig = DEFAULT_CONFIG) -> pd.DataFrame:
    """Only the columns the features may read (`config.source_columns`) plus `dt` when present.

    The one selection used by the gold asset and the scoring path: bookkeeping and any other silver
    column stay behind. Raises KeyError naming required columns the frame lacks.
    """
    missing = [c for c in config.source_columns if c not in silver_claims.columns]
    if missing:
        raise KeyError(f"claims frame lacks feature source column(s) {missing}")
    keep = list(config.source_columns) + (["dt"] if "dt" in silver_claims.columns else [])
    return silver_claims[keep]


class _Distinct:
    """A column factorized once: lookups run per distinct value and are broadcast by code."""

    def __init__(self, values: pd.Series) -> None:
        codes, uniques = pd.factorize(values, use_na_sentinel=True)
        self.codes = codes  # -1 for missing
        self.uniques = list(uniques)

    def map(self, fn: Callable[[Any], Any], na: Any, dtype: Any) -> np.ndarray:
        """fn(value) per row; `na` for missing values."""
        table = np.array([fn(u) for u in self.uniques] + [na], dtype=dtype)
        return table[self.codes]  # code -1 picks the trailing `na`

    def lookup(self, table: Iterable[Any], na: Any, dtype: Any) -> np.ndarray:
        """Per row, the value a whole-table lookup (one value per distinct value, in `uniques` order) gave."""
        values = np.empty(len(self.uniques) + 1, dtype=dtype)
        values[:-1] = list(table)
        values[-1] = na
        return values[self.codes]

    def categorical(self, categories: tuple[str, ...], fn: Callable[[Any], str] = str,
                    na: str = UNKNOWN) -> pd.Categorical:
        """Fixed-category categorical of fn(value); outside the list → "unknown", missing → `na`."""
        position = {c: i for i, c in enumerate(categories)}
        fallback = position.get(UNKNOWN, -1)
        codes = self.map(lambda v: position.get(fn(v), fallback), position.get(na, fallback), "int16")
        return pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(list(categories)))


def _modifier_set(value: str) -> frozenset[str]:
    return frozenset(m.strip().upper() for m in value.split(",") if m.strip())


def _day_numbers(values: pd.Series) -> np.ndarray:
    return values.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]").astype("int64")


def compute_features(silver_claims: pd.DataFrame, config: FeatureConfig = DEFAULT_CONFIG,
                     learned_rules: pd.DataFrame | None = None, reference: ReferenceTables = NO_TABLES,
                     learned: learned_lib.LearnedTables | None = None,
                     history: pd.DataFrame | None = None) -> pd.DataFrame:
    """Features of each claim version (one output row per input row, input order, RangeIndex).

    The input must hold decision-time columns only (use `decision_time_view`); anything else raises
    `LeakageError` before a value is read. Without a `dt` column (ad-hoc scoring), `dt` is the
    submission date. `reference`: the hospital's reference tables (each optional). `learned_rules` (dt,
    payer_id, cpt_family: `payer_rules.rules_in_force`) adds the payer prior-authorization rules in force on
    each row's day to the published lists. `learned` (`lib/learned.LearnedTables`) gives the point-in-time
    statistics of each row's day; without it the learned features take `LEARNED_DEFAULTS`. `history`
    (`HISTORY_COLUMNS` of the hospital's earlier silver claims rows; more is harmless) is where the member
    counts look for earlier claims (`member_code_counts`); the input rows themselves always count too.
    """
    return _features(silver_claims, config, feature_version(config, reference), learned_rules, reference, learned,
                     history)


def _learned_requirement(dt: np.ndarray, payer: np.ndarray, family: np.ndarray,
                         rules: pd.DataFrame | None) -> np.ndarray:
    """True where (dt, payer, procedure category) has a learned prior-authorization rule in force."""
    if rules is None or rules.empty:
        return np.zeros(len(dt), dtype=bool)
    rows = pd.MultiIndex.from_arrays([pd.Index(dt, dtype=object), pd.Index(payer, dtype=object),
                                      pd.Index(family, dtype=object)])
    known = pd.MultiIndex.from_arrays([rules["dt"].astype(str).to_numpy(dtype=object),
                                       rules["payer_id"].astype(str).to_numpy(dtype=object),
                                       rules["cpt_family"].astype(str).to_numpy(dtype=object)])
    return np.asarray(rows.isin(known), dtype=bool)


def _learned_values(src: pd.DataFrame, dt: np.ndarray, learned: learned_lib.LearnedTables | None
                    ) -> dict[str, np.ndarray]:
    """The LEARNED_FEATURES columns: from `lib/learned` on the view with its days, or the defaults."""
    n = len(src)
    if learned is None:
        return {name: np.full(n, LEARNED_DEFAULTS[name], dtype="float64") for name in LEARNED_FEATURES}
    values = learned_lib.learned_features(src.assign(dt=dt).reset_index(drop=True), learned)
    return {name: values[name].to_numpy(dtype="float64") for name in LEARNED_FEATURES}


def _text(values: pd.Series) -> np.ndarray:
    """Claim text as given, stripped; missing stays None."""
    return _Distinct(values).map(lambda v: str(v).strip(), None, object)


def _features(silver_claims: pd.DataFrame, config: FeatureConfig, version: str,
              learned_rules: pd.DataFrame | None = None, reference: ReferenceTables = NO_TABLES,
              learned: learned_lib.LearnedTables | None = None, history: pd.DataFrame | None = None
              ) -> pd.DataFrame:
    """`compute_features` with the version to stamp given (feature_version computes it from this)."""
    check_decision_time(silver_claims.columns)
    src = decision_time_view(silver_claims, config)
    n = len(src)
    cats = categories_for(config, reference)

    payer_col = _Distinct(src["payer_id"])
    payer = payer_col.map(lambda v: str(v).strip(), UNKNOWN, object)
    code = _Distinct(src["cpt_code"])
    section_of = code.map(code_structure.procedure_section, UNKNOWN, object)
    section = pd.Categorical(section_of, categories=list(cats["procedure_section"]))
    # the hospital's category of the code, else its public section (the learned payer rules key on it)
    listed = code.lookup(reference.category(code.uniques), None, object)
    family = np.where(pd.isna(listed), section_of, listed).astype(object)

    code_sets = src[ICD_CODE_SET_COLUMN]
    diagnosis = _Distinct(pd.Series(list(zip(src["icd10_primary"].astype(object).where(src["icd10_primary"].notna(), None),
                                             code_sets.astype(object).where(code_sets.notna(), None), strict=True)),
                                    dtype=object))
    chapter_of = diagnosis.map(lambda pair: code_structure.icd_chapter(*pair), UNKNOWN, object)
    chapter = pd.Categorical(chapter_of, categories=list(cats["icd_chapter"]))

    # plan type: the claim's, else the payer's in payers.csv, else unknown
    claim_plan = _Distinct(src["plan_type"]).map(lambda v: str(v).strip().lower(), None, object)
    payer_plan = payer_col.lookup(reference.plan_type(payer_col.uniques), None, object)
    plan = np.where(pd.isna(claim_plan), payer_plan, claim_plan)
    plan = pd.Categorical(np.where(pd.isna(plan), UNKNOWN, plan).astype(object), categories=list(cats["plan_type"]))
    plan = plan.fillna(UNKNOWN)

    dt = (src["dt"].to_numpy(dtype=object) if "dt" in src.columns
          else src["submitted_at"].dt.strftime("%Y-%m-%d").to_numpy(dtype=object))
    learned_values = _learned_values(src, dt, learned)

    # filing limit: the contract in payers.csv, else learned from timely-filing denials, else unknown
    contract_limit = payer_col.lookup(reference.filing_limit_days(payer_col.uniques), np.nan, "float64")
    filing_limit = np.where(np.isnan(contract_limit), learned_values["learned_filing_limit_days"], contract_limit)

    pa_listed = reference.prior_auth_listed(src["payer_id"].astype(object), src["cpt_code"], src["service_date"])
    pa_required = pa_listed | _learned_requirement(dt, payer, family, learned_rules)
    pa_present = _Distinct(src["prior_auth_number"]).map(lambda v: bool(str(v).strip()), False, bool)

    modifiers = _Distinct(src["modifiers"])
    n_modifiers = modifiers.map(lambda v: len(_modifier_set(v)), 0, "int64")
    has_25 = modifiers.map(lambda v: "25" in _modifier_set(v), False, bool)
    has_59 = modifiers.map(lambda v: "59" in _modifier_set(v), False, bool)

    submitted_on = settings.local_dates(src["submitted_at"], config.facility_tz)  # the facility's calendar
    days_to_submit = _day_numbers(submitted_on) - _day_numbers(src["service_date"])
    margin = filing_limit - days_to_submit

    units = src["units"].to_numpy(dtype="int64")
    billed = src["billed_amount"].to_numpy(dtype="float64")
    # typical charge per unit: the chargemaster's list price, else learned from history, else unknown
    price = code.lookup(reference.list_price(code.uniques), np.nan, "float64")
    typical = np.where(np.isnan(price), learned_values["learned_typical_charge"], price)
    with np.errstate(invalid="ignore", divide="ignore"):
        charge_ratio = np.minimum(billed / (typical * units), config.charge_ratio_cap)
    charge_ratio = np.where(typical > 0, charge_ratio, np.nan)

    age = src["patient_age"].to_numpy(dtype="float64")
    age_codes = np.searchsorted(np.asarray(config.age_band_edges, dtype="float64"), age, side="right")
    age_codes = np.where(np.isnan(age), len(config.age_bands) - 1, age_codes)
    age_band = pd.Categorical.from_codes(age_codes, dtype=pd.CategoricalDtype(list(config.age_bands)))

    def flag(a: np.ndarray) -> np.ndarray:
        return np.asarray(a, dtype=bool).astype("int64")

    defects = {name: src[name].fillna(0).to_numpy(dtype="int64") for name in DEFECT_FLAGS}
    member_counts = member_code_counts(src, history)

    out = pd.DataFrame({
        "claim_id": src["claim_id"].to_numpy(dtype=object),
        "claim_version": src["claim_version"].to_numpy(dtype="int64"),
        "submitted_at": src["submitted_at"].to_numpy(dtype="datetime64[ns]"),
        "dt": dt,
        "payer_id": payer,
        "plan_type": plan,
        "cpt_family": pd.Categorical(family, categories=list(cats["cpt_family"])),
        "procedure_section": section,
        "place_of_service": _Distinct(src["place_of_service"]).categorical(cats["place_of_service"],
                                                                         lambda v: str(v).strip()),
        "icd_chapter": chapter,
        "patient_sex": _Distinct(src["patient_sex"]).categorical(cats["patient_sex"], lambda v: str(v).strip().upper(),
                                                                 na="U"),
        "patient_age_band": age_band,
        "prior_auth_required": flag(pa_required),
        "prior_auth_present": flag(pa_present),
        "prior_auth_missing": flag(pa_required & ~pa_present),
        "eligibility_verified": flag(src["eligibility_verified"].to_numpy(dtype=bool)),
        "days_to_submit": days_to_submit,
        "past_filing_limit": flag(margin < 0),
        "icd10_count": src["icd10_count"].to_numpy(dtype="int64"),
        "units": units,
        "n_modifiers": n_modifiers,
        "has_modifier_25": flag(has_25),
        "has_modifier_59": flag(has_59),
        **defects,
        **member_counts,
        "filing_limit_days": filing_limit.astype("float64"),
        "filing_margin_days": margin.astype("float64"),
        "charge_ratio": charge_ratio.astype("float64"),
        "log_billed_amount": np.log1p(billed),
        **learned_values,
        "feature_version": version,
    }, index=pd.RangeIndex(n))
    return out
