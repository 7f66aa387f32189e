"""The likely denial reason of a claim: a CARC category predicted from the features known at submission.

A score says *how likely* a denial is; a biller also needs *what to fix*. The reason model answers "if
this claim is denied, which CARC category will the payer give?" — trained on the denied claims of the
denial model's own point-in-time window, labelled with the category of the **first adjudication's**
CARC (the denial model's own label row, `labels.first_adjudications`: an appeal never relabels). The categories are the
registry's (`columns.CARC_CATEGORIES`, the `carc_category` silver derives), so the pipeline, the
remittances and the worklist speak one vocabulary.

One multi-class gradient boosting model (the default) or one binary model per category
(`strategy="one_vs_rest"`): `benchmarks/bench_worklist.py` measures both on the generator's world; the
multi-class model is as accurate, gives probabilities that sum to one by construction and fits/scores in
one pass (figures in the README's worklist section).

Quality is the top-1 accuracy on denied claims and the macro one-vs-rest AUC of the category
probabilities. On synthetic data the ceiling is known: `bayes_reason_probabilities` turns the
generator's cause structure (which cause wins the CARC, and how often a background code does) into
the true category probabilities of each claim. No Dagster and no MLflow here.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from rcm_assets.lib.columns import CARC_CATEGORIES, CARC_CATEGORY_VALUES
from rcm_assets.lib.modelling import (
    TrainingSet,
    category_codes,
    limit_threads,
    model_inputs,
    time_holdout_split,
)

log = logging.getLogger("rcm.reasons")

REASON_CATEGORIES: tuple[str, ...] = CARC_CATEGORY_VALUES
STRATEGIES = ("multiclass", "one_vs_rest")
# Categories in a biller's words (the worklist's "likely reason" column).
CATEGORY_LABELS: dict[str, str] = {
    "authorization": "prior authorisation",
    "eligibility": "eligibility / coverage",
    "timely_filing": "timely filing",
    "coding": "coding / medical necessity",
    "pricing": "charge above fee schedule",
    "administrative": "billing error or duplicate",
    "other": "other",
}
# The non-default types a fitted reason model holds (besides what the denial model's list trusts);
# pass `SKOPS_TRUSTED_TYPES` to `mlflow.sklearn.log_model(skops_trusted_types=...)`. A test checks it.
SKOPS_TRUSTED_TYPES: tuple[str, ...] = (
    "rcm_assets.lib.modelling.category_codes",
    "functools.partial",
    "sklearn.utils.validation.check_array",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn._loss.link.MultinomialLogit",
    "sklearn._loss.link.LogitLink",
    "sklearn._loss.loss.HalfMultinomialLoss",
    "sklearn._loss.loss.HalfBinomialLoss",
    "sklearn._loss.link.Interval",
)
REASON_HGB_PARAMS: dict[str, Any] = {
    "learning_rate": 0.15,
    "max_iter": 150,
    "max_depth": 4,
    "max_leaf_nodes": 15,
    "min_samples_leaf": 20,
    "l2_regularization": 1.0,
    "early_stopping": True,
    "validation_fraction": 0.15,
    "n_iter_no_change": 10,
}


# --------------------------------------------------------------------------------------------------
# Labels (point in time)
# --------------------------------------------------------------------------------------------------


def reason_training_set(ts: TrainingSet) -> TrainingSet:
    """The denied claims of a denial training set, labelled with their first adjudication's category.

    `ts` is the denial model's point-in-time set (`modelling.training_frame` on silver remittances, which
    carry `carc_category`): the category comes from the very remittance row that gave the denial label.
    Rows keep their submission order (for `time_holdout_split`). A denial without a CARC is "other".
    """
    if ts.first_outcome is None or "carc_category" not in ts.first_outcome.columns:
        raise KeyError("the training set carries no first-adjudication 'carc_category': build it from silver "
                       "remittances (modelling.training_frame keeps the column when the outcomes have it)")
    category = ts.first_outcome["carc_category"]
    category = category.where(category.isin(REASON_CATEGORIES), "other")
    idx = np.flatnonzero(ts.y.to_numpy() == 1)
    y = pd.Series(category.to_numpy(dtype=object)[idx], name="carc_category", dtype=object)
    counts = y.value_counts()
    stats = {**ts.stats, "denied": int(len(idx)),
             "categories": {c: int(counts.get(c, 0)) for c in REASON_CATEGORIES}}
    return TrainingSet(ts.X.iloc[idx].reset_index(drop=True), y,
                       ts.claim_keys.iloc[idx].reset_index(drop=True), stats)


def reason_holdout_split(rs: TrainingSet, holdout_fraction: float = 0.2) -> tuple[TrainingSet, TrainingSet]:
    """`modelling.time_holdout_split` for category labels: the latest `holdout_fraction` of submissions."""
    codes = pd.Series(pd.Categorical(rs.y, categories=list(REASON_CATEGORIES)).codes.astype("int64"),
                      name=rs.y.name)
    parts = time_holdout_split(TrainingSet(rs.X, codes, rs.claim_keys, rs.stats), holdout_fraction)
    names = np.asarray(REASON_CATEGORIES, dtype=object)
    return tuple(TrainingSet(p.X, pd.Series(names[p.y.to_numpy()], name=rs.y.name, dtype=object), p.claim_keys,
                             {k: v for k, v in p.stats.items() if k != "denial_rate"}) for p in parts)


# --------------------------------------------------------------------------------------------------
# Fit and predict
# --------------------------------------------------------------------------------------------------


def _prepare(X: pd.DataFrame) -> Pipeline:
    """Select the fitted feature columns and code categoricals with the features' fixed category lists
    (the denial model's encoding, so the same trusted callable)."""
    categorical = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
    select = ColumnTransformer([("features", "passthrough", model_inputs(X))], remainder="drop",
                               verbose_feature_names_out=False)
    encode = FunctionTransformer(category_codes, kw_args={"categories": {c: list(X[c].cat.categories)
                                                                          for c in categorical}},
                                 feature_names_out="one-to-one")
    return Pipeline([("select", select), ("encode", encode)]).set_output(transform="pandas")


def fit_reason_model(X: pd.DataFrame, y: pd.Series | np.ndarray, seed: int = 0, strategy: str = "multiclass",
                     params: Mapping[str, Any] | None = None, n_threads: int | None = None) -> Pipeline:
    """Gradient boosting on the category of denied claims (native categorical splits, like the denial
    model); `strategy` is one multi-class model or one binary model per category."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    y = np.asarray(y, dtype=object)
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} rows, y has {len(y)}")
    if len(np.unique(y)) < 2:
        raise ValueError("the denied claims carry a single category; cannot fit a reason model")
    if len(X) < 100:
        raise ValueError(f"too few denied claims to fit a reason model ({len(X)}; need at least 100)")
    categorical = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
    hgb = HistGradientBoostingClassifier(**{**REASON_HGB_PARAMS, **(params or {}), "random_state": seed,
                                            "categorical_features": categorical or None})
    model = hgb if strategy == "multiclass" else OneVsRestClassifier(hgb)
    pipeline = Pipeline([("prepare", _prepare(X)), ("model", model)])
    with limit_threads(n_threads):
        pipeline.fit(X, y)
    return pipeline


def predict_reasons(model: Pipeline, frame: pd.DataFrame, n_threads: int | None = None) -> pd.DataFrame:
    """Probability of each category (`REASON_CATEGORIES` columns, rows of `frame`); a category the
    model never saw gets 0."""
    if not len(frame):
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in REASON_CATEGORIES})
    with limit_threads(n_threads):
        proba = model.predict_proba(frame)
    out = pd.DataFrame(proba, columns=[str(c) for c in model.classes_], index=frame.index)
    return out.reindex(columns=list(REASON_CATEGORIES), fill_value=0.0).astype("float64")


def top_reasons(proba: pd.DataFrame) -> pd.DataFrame:
    """The most likely category per row, its probability and its label in a biller's words."""
    values = proba.to_numpy(dtype="float64")
    best = values.argmax(axis=1) if len(values) else np.array([], dtype="int64")
    category = np.asarray(proba.columns, dtype=object)[best]
    return pd.DataFrame({
        "reason_category": category,
        "reason_probability": values[np.arange(len(values)), best] if len(values) else np.array([], "float64"),
        "reason": [CATEGORY_LABELS.get(c, c) for c in category],
    }, index=proba.index)


# --------------------------------------------------------------------------------------------------
# Quality
# --------------------------------------------------------------------------------------------------


def reason_metrics(y_true: Sequence[str] | pd.Series, proba: pd.DataFrame) -> dict[str, Any]:
    """Top-1 accuracy and macro one-vs-rest ROC AUC (over the categories present with both classes),
    with the per-category AUCs and counts."""
    y = np.asarray(y_true, dtype=object)
    if len(y) != len(proba):
        raise ValueError(f"{len(y)} labels for {len(proba)} probability rows")
    values = proba.to_numpy(dtype="float64")
    cols = list(proba.columns)
    top = np.asarray(cols, dtype=object)[values.argmax(axis=1)] if len(y) else np.array([], dtype=object)
    aucs: dict[str, float] = {}
    for j, c in enumerate(cols):
        positive = y == c
        if 0 < positive.sum() < len(y):
            aucs[c] = float(roc_auc_score(positive, values[:, j]))
    return {
        "n": float(len(y)),
        "top1_accuracy": float((top == y).mean()) if len(y) else math.nan,
        "macro_auc": float(np.mean(list(aucs.values()))) if aucs else math.nan,
        "category_auc": aucs,
        "category_counts": {c: int((y == c).sum()) for c in cols},
    }


def reason_metric_values(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """Scalar, finite metrics for MLflow (per-category AUCs flattened)."""
    out = {f"{prefix}{k}": float(v) for k, v in metrics.items()
           if isinstance(v, int | float) and math.isfinite(v)}
    out.update({f"{prefix}auc_{c}": v for c, v in metrics.get("category_auc", {}).items() if math.isfinite(v)})
    return out


def bayes_reason_probabilities(
    true_probability: np.ndarray | pd.Series,
    causes: pd.DataFrame,
    effects: Mapping[str, float],
    cause_carc: Sequence[tuple[str, str]],
    background_carcs: Sequence[tuple[str, float]],
    carc_categories: Mapping[str, str] = CARC_CATEGORIES,
) -> pd.DataFrame:
    """True P(category | denied, claim) under a generator that denies with `true_probability` and names
    the denial by its dominant cause unless the background alone explains it.

    The generator's process: logit(p) = background logit + sum of effects of the named causes present;
    a denial is a background denial with probability p_background / p (its CARC drawn from
    `background_carcs`), otherwise it carries the CARC of the first cause present in `cause_carc` order.
    `causes` holds one boolean column `cause_<name>` per named cause. Returns `REASON_CATEGORIES` columns.
    """
    p = np.clip(np.asarray(true_probability, dtype="float64"), 1e-12, 1 - 1e-12)
    logit = np.log(p / (1 - p))
    named = np.zeros(len(p))
    for name, _ in cause_carc:
        named = named + effects[name] * causes[f"cause_{name}"].to_numpy(dtype=bool)
    p_background = 1.0 / (1.0 + np.exp(-(logit - named)))
    share_background = np.clip(p_background / p, 0.0, 1.0)
    out = pd.DataFrame(0.0, index=causes.index, columns=list(REASON_CATEGORIES))
    weights = np.array([w for _, w in background_carcs], dtype="float64")
    for (code, _), w in zip(background_carcs, weights / weights.sum(), strict=True):
        out[carc_categories.get(code, "other")] += share_background * w
    unassigned = np.ones(len(p), dtype=bool)
    for name, code in cause_carc:
        hit = unassigned & causes[f"cause_{name}"].to_numpy(dtype=bool)
        out.loc[hit, carc_categories.get(code, "other")] += 1.0 - share_background[hit]
        unassigned &= ~hit
    return out
