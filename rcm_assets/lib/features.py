"""Claim features known at submission time, the leakage guard, and the feature version.

One function, `compute_features`, serves both the gold asset (training) and the scoring path, so a
claim gets identical features wherever it is scored. It reads only `FeatureConfig.source_columns`, all of
which the column registry marks `decision_time`; any post-outcome (paid_amount, adjudicated_at, denied…)
or bookkeeping column (updated_at, _ingested_at…) reaching it is a `LeakageError`, never a silent drop.
Callers select the allowed columns with `decision_time_view` first.

Output dtypes are fixed so that train and serve frames are interchangeable and Parquet round-trips are
exact: categoricals are pandas 'category' with the fixed category lists in `CATEGORIES` (from the
reference data; values outside the reference become "unknown"), flags and counts are int64 (0/1 for
flags), continuous values float64 (NaN only for `charge_ratio` of a CPT code outside the reference).

Days are the facility's: `service_date` is a local calendar date and `submitted_at` naive UTC, so
`days_to_submit` (and the filing margin) count from the service date to the *local* date of submission in
`FeatureConfig.facility_tz` (RCM_FACILITY_TZ through the feature resource). The zone is part of the config,
hence of `feature_version`.

Everything is vectorised: string columns are factorized and the reference lookups run once per distinct
value, so a day of 20,000 claims takes milliseconds.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

from rcm_assets.lib import reference as ref
from rcm_assets.lib import settings
from rcm_assets.lib.columns import PLAN_TYPES, Availability, availability_of, columns, phi_column_names

UNKNOWN = ref.UNKNOWN
KEY_COLUMNS: tuple[str, ...] = ("claim_id", "claim_version", "submitted_at", "dt")
# Not registry columns, but harmless partition keys a frame may carry.
ALLOWED_NON_REGISTRY: frozenset[str] = frozenset({"dt"})

DEFAULT_SOURCE_COLUMNS: tuple[str, ...] = (
    "claim_id", "claim_version", "payer_id", "plan_type", "place_of_service", "cpt_code", "modifiers",
    "icd10_primary", "icd10_count", "units", "billed_amount", "service_date", "submitted_at",
    "prior_auth_number", "eligibility_verified", "patient_age", "patient_sex",
)
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
    learned_rule_min_denials, learned_rule_window_days: a payer/CPT family the reference does not cover
        counts as requiring prior authorization on day D when at least this many claim versions without
        an authorization number were denied for an authorization reason, arrived on the window's days
        before D (`lib/payer_rules`).
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
    return (*values, UNKNOWN)


CATEGORIES: dict[str, tuple[str, ...]] = {
    "payer_id": _with_unknown(ref.PAYER_IDS),
    "plan_type": _with_unknown(PLAN_TYPES),
    "cpt_family": _with_unknown(ref.CPT_FAMILIES),
    "place_of_service": _with_unknown(ref.PLACE_OF_SERVICE),
    "icd_chapter": _with_unknown(ref.ICD_CHAPTERS),
    "patient_sex": ("F", "M", "U"),
    "patient_age_band": DEFAULT_CONFIG.age_bands,  # default config; see categories_for(config)
}
CATEGORICAL_FEATURES: tuple[str, ...] = tuple(CATEGORIES)

INT_FEATURES: tuple[str, ...] = (
    "prior_auth_required", "prior_auth_present", "prior_auth_missing", "eligibility_verified",
    "days_to_submit", "filing_limit_days", "filing_margin_days", "past_filing_limit",
    "cpt_icd_consistent", "icd10_count", "units", "n_modifiers", "has_modifier_25", "has_modifier_59",
)
FLOAT_FEATURES: tuple[str, ...] = ("charge_ratio", "log_billed_amount")
NUMERIC_FEATURES: tuple[str, ...] = INT_FEATURES + FLOAT_FEATURES
FEATURE_COLUMNS: tuple[str, ...] = (
    "payer_id", "plan_type", "cpt_family", "place_of_service", "icd_chapter", "patient_sex",
    "patient_age_band", *NUMERIC_FEATURES,
)
OUTPUT_COLUMNS: tuple[str, ...] = (*KEY_COLUMNS, *FEATURE_COLUMNS, "feature_version")

_FLAGS = ("prior_auth_required", "prior_auth_present", "prior_auth_missing", "eligibility_verified",
          "past_filing_limit", "cpt_icd_consistent", "has_modifier_25", "has_modifier_59")


def _registry_bounds(name: str) -> tuple[float, float]:
    """(ge, le) of a silver claims column in the registry: the features that copy it share its bounds."""
    col = next(c for c in columns("claims", "silver") if c.name == name)
    if col.ge is None or col.le is None:
        raise KeyError(f"registry column {name} has no (ge, le) bounds")
    return col.ge, col.le


# Plausible bounds of numeric features (gold checks); silver contracts already bound most inputs.
FEATURE_RANGES: dict[str, tuple[float, float]] = {
    **{f: (0, 1) for f in _FLAGS},
    "days_to_submit": (0, 3650),
    "filing_limit_days": (1, 3650),
    "filing_margin_days": (-3650, 3650),
    "icd10_count": _registry_bounds("icd10_count"),
    "units": _registry_bounds("units"),
    "n_modifiers": (0, 10),
    "charge_ratio": (0, DEFAULT_CONFIG.charge_ratio_cap),
    "log_billed_amount": (0, float(np.log1p(_registry_bounds("billed_amount")[1]))),
}
# Highest acceptable share of missing values; only charge_ratio may be missing (CPT outside reference).
MAX_NULL_RATE: dict[str, float] = {f: 0.0 for f in FEATURE_COLUMNS} | {"charge_ratio": 0.05}


def categories_for(config: FeatureConfig) -> dict[str, tuple[str, ...]]:
    """The fixed category list of every categorical feature under `config`."""
    return {**CATEGORIES, "patient_age_band": config.age_bands}


def output_dtypes(config: FeatureConfig = DEFAULT_CONFIG) -> dict[str, Any]:
    """The exact dtype of every output column (what `compute_features` returns, even for 0 rows)."""
    cats = categories_for(config)
    return {
        "claim_id": np.dtype(object), "claim_version": np.dtype("int64"),
        "submitted_at": np.dtype("datetime64[ns]"), "dt": np.dtype(object),
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


def _reference_data() -> dict[str, Any]:
    """The reference tables the features read (payers, CPT, prior auth, ICD, POS)."""
    return {
        "payers": ref.PAYER_LIST, "default_filing_limit": ref.DEFAULT_FILING_LIMIT_DAYS,
        "cpts": ref.CPT_LIST, "cpt_families": ref.CPT_FAMILIES, "prior_auth": ref.PRIOR_AUTH_REQUIRED,
        "icd_chapters": ref.ICD_CHAPTERS, "icd10": ref.ICD10_LIST, "consistent": ref.CONSISTENT_CHAPTERS,
        "place_of_service": ref.PLACE_OF_SERVICE, "plan_types": PLAN_TYPES, "unknown": UNKNOWN,
    }


# Raise when the features change meaning on purpose (e.g. a new feature, another definition). The version
# also follows the computed values on a fixed probe set (`_probe_claims`), so a change nobody announced is
# caught too, while a comment, a renamed local or a refactor that computes the same values changes nothing.
FEATURE_LOGIC_VERSION = 2  # 2: prior_auth_required also from learned payer rules
PROBE_ROWS = 2_000


def _probe_claims(config: FeatureConfig) -> pd.DataFrame:
    """A fixed, deterministic frame of decision-time claims that walks every payer, CPT code, ICD code
    and place of service of the reference with varied prior auth, eligibility, modifiers, ages, units,
    charges and filing delays: what feature_version measures the features on."""
    n = PROBE_ROWS
    i = np.arange(n)
    pick = lambda values, step: np.array(values, dtype=object)[(i * step) % len(values)]  # noqa: E731
    submitted = pd.Timestamp("2025-03-01 13:00") + pd.to_timedelta(i * 3_607, unit="s")
    service = (submitted - pd.to_timedelta((i * 7) % 400, unit="D")).normalize()
    return pd.DataFrame({
        "claim_id": [f"PROBE-{k:05d}" for k in i], "claim_version": 1 + (i % 3),
        "payer_id": pick([*ref.PAYER_IDS, "UNLISTED"], 1), "plan_type": pick(PLAN_TYPES, 3),
        "place_of_service": pick([*ref.PLACE_OF_SERVICE, "99"], 5), "cpt_code": pick([*ref.CPT_CODES, "00000"], 7),
        "modifiers": pick([None, "25", "59", "25,59", "LT", "26,TC"], 11), "icd10_primary": pick(ref.ICD10_CODES, 13),
        "icd10_count": 1 + (i % 25), "units": 1 + (i * 17) % 1_500, "billed_amount": 10.0 + (i * 137.31) % 90_000,
        "service_date": service.to_numpy(dtype="datetime64[ns]"),
        "submitted_at": submitted.to_numpy(dtype="datetime64[ns]"),
        "prior_auth_number": np.where(i % 4 == 0, None, "PA0000000001").astype(object),
        "eligibility_verified": i % 9 != 0, "patient_age": (i * 3) % 91, "patient_sex": pick(["F", "M", "U"], 1),
    })[list(config.source_columns)]


def _probe_fingerprint(config: FeatureConfig) -> str:
    """sha256 of the features of the probe claims: values, dtypes and categories."""
    features = _features(_probe_claims(config), config, version="probe")
    h = hashlib.sha256(json.dumps([[c, str(features[c].dtype)] for c in features.columns]).encode())
    h.update(pd.util.hash_pandas_object(features, index=False).to_numpy().tobytes())
    return h.hexdigest()


@functools.lru_cache(maxsize=32)
def feature_version(config: FeatureConfig = DEFAULT_CONFIG) -> str:
    """16 hex chars of sha256(FEATURE_LOGIC_VERSION + reference data + config + the features computed on
    the probe claims).

    It changes when the features do, and only then: a comment or a refactor keeps it (no dead period
    where gold no longer matches the champion), a real change of code, reference data or configuration
    gives a new version, which gold rows and predictions carry so each score traces to its features.
    """
    h = hashlib.sha256()
    h.update(f"logic {FEATURE_LOGIC_VERSION}".encode())
    h.update(json.dumps(_canonical(_reference_data()), sort_keys=True).encode())
    h.update(json.dumps(_canonical(config), sort_keys=True).encode())
    h.update(_probe_fingerprint(config).encode())
    return h.hexdigest()[:16]


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

    def categorical(self, categories: tuple[str, ...], fn: Callable[[Any], str] = str) -> pd.Categorical:
        """Fixed-category categorical of fn(value); outside the list or missing → "unknown"."""
        position = {c: i for i, c in enumerate(categories)}
        fallback = position.get(UNKNOWN, -1)
        codes = self.map(lambda v: position.get(fn(v), fallback), fallback, "int16")
        return pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(list(categories)))


def _grid(rows: tuple[str, ...], cols: tuple[str, ...], fn: Callable[[str, str], bool]) -> np.ndarray:
    return np.array([[fn(r, c) for c in cols] for r in rows], dtype=bool)


def _modifier_set(value: str) -> frozenset[str]:
    return frozenset(m.strip().upper() for m in value.split(",") if m.strip())


def _day_numbers(values: pd.Series) -> np.ndarray:
    return values.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]").astype("int64")


def compute_features(silver_claims: pd.DataFrame, config: FeatureConfig = DEFAULT_CONFIG,
                     learned_rules: pd.DataFrame | None = None) -> pd.DataFrame:
    """Features of each claim version (one output row per input row, input order, RangeIndex).

    The input must hold decision-time columns only (use `decision_time_view`); anything else raises
    `LeakageError` before a value is read. Without a `dt` column (ad-hoc scoring), `dt` is the
    submission date. `learned_rules` (dt, payer_id, cpt_family: `payer_rules.rules_in_force`) adds the
    payer prior-authorization rules in force on each row's day to the reference's.
    """
    return _features(silver_claims, config, feature_version(config), learned_rules)


def _learned_requirement(dt: np.ndarray, payer: pd.Categorical, family: pd.Categorical,
                         rules: pd.DataFrame | None) -> np.ndarray:
    """True where (dt, payer, family) has a learned prior-authorization rule in force."""
    if rules is None or rules.empty:
        return np.zeros(len(dt), dtype=bool)
    rows = pd.MultiIndex.from_arrays([pd.Index(dt, dtype=object), np.asarray(payer, dtype=object),
                                      np.asarray(family, dtype=object)])
    known = pd.MultiIndex.from_arrays([rules["dt"].astype(str).to_numpy(dtype=object),
                                       rules["payer_id"].to_numpy(dtype=object),
                                       rules["cpt_family"].to_numpy(dtype=object)])
    return np.asarray(rows.isin(known), dtype=bool)


def _features(silver_claims: pd.DataFrame, config: FeatureConfig, version: str,
              learned_rules: pd.DataFrame | None = None) -> pd.DataFrame:
    """`compute_features` with the version to stamp given (feature_version computes it from this)."""
    check_decision_time(silver_claims.columns)
    src = decision_time_view(silver_claims, config)
    n = len(src)
    cats = categories_for(config)

    payer = _Distinct(src["payer_id"]).categorical(cats["payer_id"])
    cpt = _Distinct(src["cpt_code"])
    family = cpt.categorical(cats["cpt_family"], ref.cpt_family)
    chapter = _Distinct(src["icd10_primary"]).categorical(cats["icd_chapter"], ref.icd_chapter)

    # payer × family and family × chapter policy tables, indexed by the fixed category codes
    pa_required = _grid(cats["payer_id"], cats["cpt_family"], ref.requires_prior_auth)[payer.codes, family.codes]
    consistent = _grid(cats["cpt_family"], cats["icd_chapter"], ref.is_consistent)[family.codes, chapter.codes]
    filing_limit = np.array([ref.filing_limit_days(p) for p in cats["payer_id"]], dtype="int64")[payer.codes]

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
    typical = cpt.map(ref.typical_charge, np.nan, "float64")
    with np.errstate(invalid="ignore", divide="ignore"):
        charge_ratio = np.minimum(billed / (typical * units), config.charge_ratio_cap)

    age = src["patient_age"].to_numpy(dtype="float64")
    age_codes = np.searchsorted(np.asarray(config.age_band_edges, dtype="float64"), age, side="right")
    age_codes = np.where(np.isnan(age), len(config.age_bands) - 1, age_codes)
    age_band = pd.Categorical.from_codes(age_codes, dtype=pd.CategoricalDtype(list(config.age_bands)))

    dt = (src["dt"].to_numpy(dtype=object) if "dt" in src.columns
          else src["submitted_at"].dt.strftime("%Y-%m-%d").to_numpy(dtype=object))
    pa_required = pa_required | _learned_requirement(dt, payer, family, learned_rules)

    def flag(a: np.ndarray) -> np.ndarray:
        return np.asarray(a, dtype=bool).astype("int64")

    out = pd.DataFrame({
        "claim_id": src["claim_id"].to_numpy(dtype=object),
        "claim_version": src["claim_version"].to_numpy(dtype="int64"),
        "submitted_at": src["submitted_at"].to_numpy(dtype="datetime64[ns]"),
        "dt": dt,
        "payer_id": payer,
        "plan_type": _Distinct(src["plan_type"]).categorical(cats["plan_type"]),
        "cpt_family": family,
        "place_of_service": _Distinct(src["place_of_service"]).categorical(cats["place_of_service"]),
        "icd_chapter": chapter,
        "patient_sex": _Distinct(src["patient_sex"]).categorical(cats["patient_sex"]),
        "patient_age_band": age_band,
        "prior_auth_required": flag(pa_required),
        "prior_auth_present": flag(pa_present),
        "prior_auth_missing": flag(pa_required & ~pa_present),
        "eligibility_verified": flag(src["eligibility_verified"].to_numpy(dtype=bool)),
        "days_to_submit": days_to_submit,
        "filing_limit_days": filing_limit,
        "filing_margin_days": margin,
        "past_filing_limit": flag(margin < 0),
        "cpt_icd_consistent": flag(consistent),
        "icd10_count": src["icd10_count"].to_numpy(dtype="int64"),
        "units": units,
        "n_modifiers": n_modifiers,
        "has_modifier_25": flag(has_25),
        "has_modifier_59": flag(has_59),
        "charge_ratio": charge_ratio,
        "log_billed_amount": np.log1p(billed),
        "feature_version": version,
    }, index=pd.RangeIndex(n))
    return out
