"""Top drivers of a denial score, in a biller's words: what moved this claim's probability most.

Method: grouped occlusion through the serving model ("what would the probability be without this?").
Each driver is a group of features that describe one fixable cause or one context of the claim; the
claim is scored again with that group set to its *clean* value (prior authorisation on file, eligibility
verified, submitted within a week of service, a code pair payers have not denied as inconsistent, billed
at the typical charge, no audited modifier, no claim defect: a valid NPI, diagnosis and procedure code,
place of service and demographics) or, for context that no biller changes (payer, place of service),
averaged over the mix of the day's claims. A driver's effect is the drop in probability, in
probability points, of the boosted trees before calibration (`smooth_predict`); drivers are ranked by the drop in log-odds, so a claim pushed near certainty by two
causes (where fixing either alone moves the probability little) still names both.

Why not TreeSHAP: the denial model is scikit-learn HistGradientBoosting with *native categorical splits*
inside a calibration wrapper. shap's TreeExplainer reads HGB trees as numeric thresholds only; on a model
with categorical splits its values do not even add up to the model output (shap 0.51.0, the last release
for Python 3.11: max additivity error 4.4 logits on a two-feature example; 0 without categoricals;
shap issue #3436). Occlusion needs nothing from the model but `predict_proba`, so it explains the
calibrated probability a biller sees, works for any model the registry serves, and costs one batched
prediction of (groups × claims) rows — `benchmarks/bench_worklist.py` measures it for 20,000 claims.
Features move together (the prior-auth flags, the filing margin), so they are occluded as groups and the
group stays internally consistent.

Each group names the registry source columns it comes from (`source_columns`): all decision-time, none
PHI (tested), so a sentence never quotes a value a biller does not already see on the claim. Payer names
and filing limits come from the hospital's reference tables when it supplied them (`payers.csv`), else the
claim's payer id and the learned limit; a limit nobody knows is said to be unknown, never guessed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from rcm_assets.lib.code_sets import PLACE_OF_SERVICE_CODES
from rcm_assets.lib.features import FEATURE_COLUMNS
from rcm_assets.lib.modelling import limit_threads, predict_denial
from rcm_assets.lib.reference_tables import NO_TABLES, ReferenceTables

Predict = Callable[[pd.DataFrame], np.ndarray]

PROMPT_SUBMISSION_DAYS = 7  # "submitted promptly": the filing reference for a late claim
MIN_EFFECT = 0.005  # half a probability point: smaller moves are not worth a biller's line
MIN_LOGIT_EFFECT = 0.1  # in log-odds: below the smallest cause the generator knows (0.15)
TOP_N = 3
CONTEXT_VALUES = 8  # context groups are averaged over at most this many of the day's values


@dataclass(frozen=True)
class DriverGroup:
    """Features occluded together, the registry columns they derive from, and whether a biller can act."""

    name: str
    features: tuple[str, ...]
    source_columns: tuple[str, ...]
    actionable: bool


GROUPS: tuple[DriverGroup, ...] = (
    DriverGroup("prior_auth", ("prior_auth_present", "prior_auth_missing"),
                ("prior_auth_number", "payer_id", "cpt_code"), True),
    DriverGroup("eligibility", ("eligibility_verified",), ("eligibility_verified",), True),
    DriverGroup("timely_filing", ("days_to_submit", "filing_margin_days", "past_filing_limit"),
                ("service_date", "submitted_at", "payer_id"), True),
    DriverGroup("coding", ("procedure_diagnosis_inconsistency_rate", "group_chapter_inconsistency_rate",
                           "payer_group_chapter_inconsistency_rate"), ("cpt_code", "icd10_primary", "payer_id"), True),
    DriverGroup("charge", ("charge_ratio", "log_billed_amount"), ("billed_amount", "cpt_code", "units"), True),
    DriverGroup("modifiers", ("n_modifiers", "has_modifier_25", "has_modifier_59"), ("modifiers",), True),
    DriverGroup("npi", ("defect_npi",), ("billing_npi", "rendering_npi"), True),
    DriverGroup("diagnosis_code", ("defect_diagnosis_code",), ("icd10_primary", "service_date"), True),
    DriverGroup("procedure_code", ("defect_procedure_code",), ("cpt_code",), True),
    DriverGroup("place_of_service_code", ("defect_place_of_service",), ("place_of_service",), True),
    DriverGroup("demographics", ("defect_demographics",), ("patient_age", "patient_sex"), True),
    DriverGroup("payer", ("plan_type", "payer_denial_logit"), ("payer_id", "plan_type"), False),
    DriverGroup("place_of_service", ("place_of_service",), ("place_of_service",), False),
    # the procedure and diagnosis as context: their categories and learned denial rates (no biller changes a
    # code that is right; a wrong one is a defect or the coding group)
    DriverGroup("procedure", ("cpt_family", "procedure_section", "icd_chapter", "procedure_denial_logit",
                              "diagnosis_denial_logit", "payer_procedure_denial_logit"),
                ("cpt_code", "icd10_primary", "payer_id"), False),
)
GROUP_NAMES: tuple[str, ...] = tuple(g.name for g in GROUPS)
# Driver group -> the denial category it points to (a driver agrees with the predicted reason).
GROUP_CATEGORY: dict[str, str] = {
    "prior_auth": "authorization", "eligibility": "eligibility", "timely_filing": "timely_filing",
    "coding": "coding", "charge": "pricing", "modifiers": "administrative", "npi": "administrative",
    "diagnosis_code": "coding", "procedure_code": "coding", "place_of_service_code": "administrative",
    "demographics": "administrative", "payer": "other", "place_of_service": "other", "procedure": "other",
}
DEFECT_GROUPS: tuple[str, ...] = ("npi", "diagnosis_code", "procedure_code", "place_of_service_code", "demographics")


def smooth_predict(model: Any, n_threads: int | None = 1) -> Predict:
    """The score drivers are measured on: for the denial model (`modelling.fit_model`), the boosted trees'
    own probability before the isotonic calibration, whose flat steps would hide a real change (a fix
    that lands on the same step moves the calibrated probability by exactly 0); the calibration is
    monotone, so directions and ranking agree. Any other model: its `predict_proba`."""
    try:
        prepare = model.named_steps["prepare"]
        trees = model.named_steps["model"].estimator.estimator
        trees.predict_proba  # noqa: B018 - the attribute chain is the check
    except (AttributeError, KeyError, TypeError):
        return lambda frame: predict_denial(model, frame, n_threads=n_threads)

    def predict(frame: pd.DataFrame) -> np.ndarray:
        with limit_threads(n_threads):
            return trees.predict_proba(prepare.transform(frame))[:, 1]
    return predict


# --------------------------------------------------------------------------------------------------
# Occlusion
# --------------------------------------------------------------------------------------------------


def _clean(features: pd.DataFrame, group: DriverGroup) -> pd.DataFrame:
    """The claims with one fixable group set to its clean value."""
    out = features.copy(deep=False)
    if group.name == "prior_auth":
        out["prior_auth_present"] = 1
        out["prior_auth_missing"] = 0
    elif group.name == "eligibility":
        out["eligibility_verified"] = 1
    elif group.name == "timely_filing":
        days = np.minimum(features["days_to_submit"].to_numpy(), PROMPT_SUBMISSION_DAYS)
        margin = features["filing_limit_days"].to_numpy() - days
        out["days_to_submit"] = days
        out["filing_margin_days"] = margin
        out["past_filing_limit"] = (margin < 0).astype("int64")
    elif group.name == "coding":
        for name in group.features:
            out[name] = 0.0
    elif group.name == "charge":
        ratio = features["charge_ratio"].to_numpy(dtype="float64")
        clean_ratio = np.where(np.isnan(ratio), ratio, np.minimum(ratio, 1.0))
        billed = np.expm1(features["log_billed_amount"].to_numpy(dtype="float64"))
        with np.errstate(invalid="ignore", divide="ignore"):
            scaled = np.where(np.isnan(ratio) | (ratio <= 0), billed, billed * clean_ratio / ratio)
        out["charge_ratio"] = clean_ratio
        out["log_billed_amount"] = np.log1p(scaled)
    elif group.name == "modifiers" or group.name in DEFECT_GROUPS:
        for name in group.features:
            out[name] = 0
    else:
        raise ValueError(f"{group.name} is a context group; it has no clean value")
    return out


def _context_values(features: pd.DataFrame, group: DriverGroup) -> list[tuple[dict[str, object], float]]:
    """The day's most common value combinations of a context group with their shares (renormalised)."""
    counts = features.groupby(list(group.features), observed=True).size().sort_values(ascending=False)
    top = counts.head(CONTEXT_VALUES)
    shares = top / top.sum()
    out = []
    for values, share in shares.items():
        values = values if isinstance(values, tuple) else (values,)
        out.append((dict(zip(group.features, values, strict=True)), float(share)))
    return out


def _occlusion(predict: Predict, features: pd.DataFrame, groups: Sequence[DriverGroup]
               ) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(probability, reference probability per group, reference log-odds per group) from one batched
    prediction; context groups average over the day's mix (probabilities and log-odds).

    Only the rows a variant changes are predicted again: a claim whose group already holds the clean (or
    the context) value keeps its own probability, which is what predicting the unchanged row would give
    (the model scores each row on its own). Most claims are already clean on most fixable groups, so this
    predicts roughly half the rows of every variant in full."""
    n = len(features)
    parts: list[pd.DataFrame] = [features]
    plan: list[tuple[str, float, np.ndarray]] = []  # (group, weight, changed row positions) per variant
    for group in groups:
        if group.actionable:
            variants = [(_clean(features, group), 1.0)]
        else:
            variants = []
            for values, share in _context_values(features, group):
                variant = features.copy(deep=False)
                for name, value in values.items():
                    variant[name] = _constant(value, n, features[name].dtype)
                variants.append((variant, share))
        for variant, weight in variants:
            changed = np.flatnonzero(_changed(features, variant, group.features))
            parts.append(variant.iloc[changed])
            plan.append((group.name, weight, changed))
    p_all = np.asarray(predict(pd.concat(parts, ignore_index=True)), dtype="float64")
    base = p_all[:n]
    base_logit = _logit(base)
    ref_p = {g.name: np.zeros(n) for g in groups}
    ref_logit = {g.name: np.zeros(n) for g in groups}
    offset = n
    for name, weight, changed in plan:
        row, row_logit = base.copy(), base_logit.copy()
        row[changed] = p_all[offset:offset + len(changed)]
        row_logit[changed] = _logit(row[changed])
        offset += len(changed)
        ref_p[name] += weight * row
        ref_logit[name] += weight * row_logit
    return base, ref_p, ref_logit


def _constant(value: object, n: int, dtype: Any) -> Any:
    """`n` copies of a context value in the column's dtype (categories kept, numbers as numbers)."""
    if isinstance(dtype, pd.CategoricalDtype):
        return pd.Categorical(np.full(n, value, dtype=object), dtype=dtype)
    return np.full(n, value, dtype=dtype)


def _changed(features: pd.DataFrame, variant: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """Rows where `variant` differs from `features` in any of `columns` (a missing value equals a missing one)."""
    changed = np.zeros(len(features), dtype=bool)
    for name in columns:
        a, b = features[name], variant[name]
        if isinstance(a.dtype, pd.CategoricalDtype) and isinstance(b.dtype, pd.CategoricalDtype) \
                and a.dtype == b.dtype:
            changed |= a.cat.codes.to_numpy() != b.cat.codes.to_numpy()
            continue
        same = a.eq(b).fillna(False).to_numpy(dtype=bool) | (a.isna().to_numpy() & b.isna().to_numpy())
        changed |= ~same
    return changed


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def driver_effects(predict: Predict, features: pd.DataFrame, groups: Sequence[DriverGroup] = GROUPS,
                   scale: str = "probability") -> pd.DataFrame:
    """Drop per claim (rows) when each group (columns) is made clean or averaged over the day's context
    mix: in probability points (`scale="probability"`) or in log-odds (`"logit"`). One batched prediction;
    rows and index of `features`."""
    frames = _effect_frames(predict, features, groups)
    return frames[0] if scale == "probability" else frames[1]


def _effect_frames(predict: Predict, features: pd.DataFrame, groups: Sequence[DriverGroup] = GROUPS
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    index = features.index
    features = features[[c for c in FEATURE_COLUMNS if c in features.columns]]
    if len(features) == 0:
        empty = pd.DataFrame({g.name: pd.Series(dtype="float64") for g in groups}, index=index)
        return empty, empty.copy()
    base, ref_p, ref_logit = _occlusion(predict, features, groups)
    prob = pd.DataFrame({name: base - ref for name, ref in ref_p.items()}, index=index)
    logit = pd.DataFrame({name: _logit(base) - ref for name, ref in ref_logit.items()}, index=index)
    return prob, logit


def top_drivers(effects: pd.DataFrame, n: int = TOP_N, min_effect: float = MIN_EFFECT,
                order_by: pd.DataFrame | None = None, min_order: float = 0.0) -> pd.DataFrame:
    """The `n` groups with the largest positive effect per claim: columns driver_1..n and
    driver_1_effect..n (probability points, 0–1). A group counts when its effect reaches `min_effect`;
    with `order_by` (log-odds effects) groups are ranked by it and must also reach `min_order` there —
    so a claim pushed near certainty by two causes still names both (each alone moves the probability
    little)."""
    values = effects.to_numpy(dtype="float64")
    order_values = values if order_by is None else order_by[effects.columns].to_numpy(dtype="float64")
    names = np.asarray(effects.columns, dtype=object)
    rows = np.arange(len(values))
    order = np.argsort(-order_values, axis=1, kind="stable")[:, :n] if len(values) else np.empty((0, n), "int64")
    out = {}
    for k in range(n):
        idx = order[:, k] if order.shape[1] > k else np.zeros(len(values), dtype="int64")
        effect = values[rows, idx] if len(values) else np.array([], dtype="float64")
        ranked = order_values[rows, idx] if len(values) else np.array([], dtype="float64")
        keep = (ranked >= min_order) & (effect >= min_effect) if order_by is not None else effect >= min_effect
        out[f"driver_{k + 1}"] = np.where(keep, names[idx] if len(values) else names[:0], None).astype(object)
        out[f"driver_{k + 1}_effect"] = np.where(keep, effect, 0.0)
    return pd.DataFrame(out, index=effects.index)


# --------------------------------------------------------------------------------------------------
# Sentences
# --------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _payer_names(reference: ReferenceTables) -> dict[str, str]:
    """payer_id -> payer_name of payers.csv, built once per tables object (not once per sentence: a
    1,000-claim request spent most of its sentence time re-indexing the payers)."""
    if reference.payers is None:
        return {}
    return {p: n for p, n in zip(reference.payers["payer_id"], reference.payers["payer_name"], strict=True)
            if isinstance(n, str) and n}


def _payer_name(payer: str, reference: ReferenceTables) -> str:
    """The payer's name in payers.csv, else its id as the claim carries it."""
    return _payer_names(reference).get(payer, payer)


def _number(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")


DEFECT_SENTENCES: dict[str, str] = {
    "npi": "billing or rendering NPI is missing, malformed or fails its check digit: correct the NPI",
    "diagnosis_code": ("principal diagnosis is missing, unparsable or of the wrong code set for the service date "
                       "(ICD-10 from 2015-10-01): correct the diagnosis code"),
    "procedure_code": "procedure code is missing, malformed or deleted: correct the CPT/HCPCS code",
    "place_of_service_code": "place of service is missing or not a CMS code: correct the place of service",
    "demographics": "patient date of birth or sex is missing: complete the demographics",
}


def sentence(group: str, claim: dict[str, object], reference: ReferenceTables = NO_TABLES) -> str:
    """One driver in a biller's words, from the claim's features (and cpt_code when present)."""
    payer = str(claim.get("payer_id"))
    payer_name = _payer_name(payer, reference)
    family = str(claim.get("cpt_family"))
    cpt = claim.get("cpt_code")
    procedure = f"CPT {cpt} ({family})" if cpt else f"procedure category {family}"
    if group in DEFECT_SENTENCES:
        return DEFECT_SENTENCES[group]
    if group == "prior_auth":
        if int(claim.get("prior_auth_missing", 0)):
            return f"prior authorisation missing; {payer_name} requires it for {procedure}"
        return "no prior authorisation number on the claim"
    if group == "eligibility":
        return "eligibility not verified before submission"
    if group == "timely_filing":
        days, limit = int(claim["days_to_submit"]), _number(claim.get("filing_limit_days"))
        if not np.isfinite(limit):
            return (f"submitted {days} days after service; {payer_name}'s timely filing limit is unknown "
                    "(add it to payers.csv)")
        if int(claim.get("past_filing_limit", 0)):
            return (f"submitted {days} days after service, past {payer_name}'s {limit:.0f}-day "
                    "timely filing limit")
        return (f"submitted {days} days after service; {limit - days:.0f} days left of {payer_name}'s "
                f"{limit:.0f}-day filing limit")
    if group == "coding":
        rates = (_number(claim.get(name)) for name in ("procedure_diagnosis_inconsistency_rate",
                                                        "payer_group_chapter_inconsistency_rate"))
        rate = max((r for r in rates if np.isfinite(r)), default=float("nan"))
        share = f" ({rate:.0%} of such claims)" if np.isfinite(rate) and rate > 0 else ""
        return (f"payers have denied {procedure} with a {claim.get('icd_chapter')} diagnosis as inconsistent"
                f"{share}: check medical necessity / coding")
    if group == "charge":
        ratio = _number(claim.get("charge_ratio"))
        if np.isfinite(ratio):
            return f"billed {ratio:.1f}x the typical charge for {procedure}"
        return f"charge for {procedure} could not be compared with a list price or typical charge"
    if group == "modifiers":
        mods = [m for m, flag in (("25", "has_modifier_25"), ("59", "has_modifier_59")) if int(claim.get(flag, 0))]
        if mods:
            return f"modifier {'/'.join(mods)} on the claim: payers audit it"
        return f"{int(claim.get('n_modifiers', 0))} modifier(s) on the claim"
    if group == "payer":
        return f"{payer_name} ({claim.get('plan_type')}) denies more claims than the day's payer mix"
    if group == "procedure":
        return (f"{procedure} with a {claim.get('icd_chapter')} diagnosis is denied more often than the "
                "day's mix")
    if group == "place_of_service":
        pos = str(claim.get("place_of_service"))
        return f"place of service {pos} ({PLACE_OF_SERVICE_CODES.get(pos, 'unlisted')}) is denied more often"
    raise KeyError(f"unknown driver group {group!r}")


def driver_sentences(top: pd.DataFrame, features: pd.DataFrame, n: int = TOP_N,
                     reference: ReferenceTables = NO_TABLES) -> pd.DataFrame:
    """driver_1_text..n for the rows of `top_drivers`; `features` may carry cpt_code."""
    wanted = [c for c in ("payer_id", "plan_type", "cpt_family", "cpt_code", "icd_chapter", "place_of_service",
                          "prior_auth_missing", "days_to_submit", "filing_limit_days", "past_filing_limit",
                          "charge_ratio", "n_modifiers", "has_modifier_25", "has_modifier_59",
                          "procedure_diagnosis_inconsistency_rate", "payer_group_chapter_inconsistency_rate")
              if c in features.columns]
    # the claims' values as plain Python objects (what `to_dict("records")` gives), only for the claims
    # with a driver: building a dict per claim was most of the time of a day's sentences
    named = np.zeros(len(top), dtype=bool)
    for k in range(1, n + 1):
        named |= top[f"driver_{k}"].notna().to_numpy()
    rows = np.flatnonzero(named)
    picked = features.iloc[rows]
    values = [picked[c].astype(object).tolist() for c in wanted]
    records = [dict(zip(wanted, claim, strict=True)) for claim in zip(*values, strict=True)] if wanted else \
        [{} for _ in rows]
    out = {}
    for k in range(1, n + 1):
        groups = top[f"driver_{k}"].to_numpy(dtype=object)[rows]
        texts = np.full(len(top), None, dtype=object)
        texts[rows] = [sentence(g, rec, reference) if g is not None else None
                       for g, rec in zip(groups, records, strict=True)]
        out[f"driver_{k}_text"] = texts
    return pd.DataFrame(out, index=top.index)


def explain(predict: Predict, features: pd.DataFrame, n: int = TOP_N,
            reference: ReferenceTables = NO_TABLES) -> pd.DataFrame:
    """Top `n` drivers per claim: group names, effects and sentences (rows and index of `features`).
    Ranked by log-odds drop (at least `MIN_LOGIT_EFFECT`), shown as probability points (> 0)."""
    prob, logit = _effect_frames(predict, features)
    top = top_drivers(prob, n, min_effect=1e-9, order_by=logit, min_order=MIN_LOGIT_EFFECT)
    return pd.concat([top, driver_sentences(top, features, n, reference)], axis=1)
