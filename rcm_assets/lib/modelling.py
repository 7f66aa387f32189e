"""Training set, model fit and calibration, metrics, drift (PSI) and plots for the denial model.

No Dagster and no MLflow here: the `model` asset wires these pure functions to the lake and to MLflow.

The point-in-time rule lives in `training_frame`: a label is an outcome (remittance) whose row had
reached the source *and* whose adjudication happened before the training cutoff. A claim without such
an outcome is left out (counted in the stats), never labelled "paid" by default — that would teach the
model that recent claims are rarely denied.

The fitted model is a scikit-learn `Pipeline` (column selector → category codes → calibrated gradient
boosting), so `mlflow.sklearn` can save it (see `SKOPS_TRUSTED_TYPES`) and scoring can pass a whole gold
frame: the selector picks the feature columns it was fitted on and ignores keys and `feature_version`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
from matplotlib.figure import Figure
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.inspection import permutation_importance
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from threadpoolctl import threadpool_limits

from rcm_assets.lib import labels
from rcm_assets.lib.features import CONTEXT_COLUMNS, FEATURE_COLUMNS
from rcm_assets.lib.labels import _run_starts, _sortable, joint_codes, sorted_codes  # noqa: F401 (re-exported)

log = logging.getLogger("rcm.modelling")

KEY_COLUMNS = ("claim_id", "claim_version", "submitted_at", "dt")
# Columns of the first adjudication a training set carries beside its label when the outcomes have them:
# the reason model's label and the paid claims' allowed amount (expected payment) come from the same row.
OUTCOME_DETAILS = ("carc_category", "allowed_amount")
FIRST_PREFIX = "first_"
TRAINING_STATS_ATTR = "training_stats"

# The fitted Pipeline is made of scikit-learn types plus one function of this module (`category_codes`).
# mlflow 3.17 saves sklearn models with skops by default; skops refuses to *load* types it does not trust
# by default. These are the non-default types a fitted DenialModel contains (checked by a test with
# skops.io.get_untrusted_types); pass them as
# `mlflow.sklearn.log_model(..., skops_trusted_types=list(SKOPS_TRUSTED_TYPES))`. Loading needs
# rcm_assets importable, as scoring does anyway.
SKOPS_TRUSTED_TYPES: tuple[str, ...] = (
    "rcm_assets.lib.modelling.category_codes",
    "functools.partial",  # HGB's internal numeric preprocessor: partial(check_array, dtype=float64)
    "sklearn.utils.validation.check_array",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",  # only with calibration="sigmoid"
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
)

# Shallow trees, a brisk learning rate and early stopping: the denial process is close to additive on the
# logit scale once the features encode the payer rules (prior auth missing, filing margin), so depth buys
# little, while scoring cost grows with the number of trees (~35–50 here; benchmarks/bench_model.py).
DEFAULT_HGB_PARAMS: dict[str, Any] = {
    "learning_rate": 0.2,
    "max_iter": 200,
    "max_depth": 4,
    "max_leaf_nodes": 15,
    "min_samples_leaf": 40,
    "l2_regularization": 1.0,
    "max_bins": 255,
    "early_stopping": True,
    "validation_fraction": 0.1,
    "n_iter_no_change": 10,
}


DenialModel = Pipeline
"""A fitted `Pipeline([("prepare", Pipeline([select, encode])), ("model", CalibratedClassifierCV)])`."""


class TrainingSet(NamedTuple):
    """Features, labels and keys of one training window, rows in submission-time order."""

    X: pd.DataFrame  # feature columns only
    y: pd.Series  # int64 0/1 (1 = denied), index aligned with X
    claim_keys: pd.DataFrame  # claim_id, claim_version, submitted_at, dt, feature_version
    stats: dict[str, Any]
    # the label's remittance row: adjudicated_at and the OUTCOME_DETAILS the outcomes had, aligned with X
    first_outcome: pd.DataFrame | None = None


# --------------------------------------------------------------------------------------------------
# Training set (point in time)
# --------------------------------------------------------------------------------------------------


class TrainingRows(NamedTuple):
    """The point-in-time selection of one window: which gold rows, in submission order, with their labels."""

    rows: np.ndarray  # positions in the gold frame of the labelled claims, in submission-time order
    labels: pd.DataFrame  # aligned with rows: denied, later_rows, overturned, adjudicated_at, OUTCOME_DETAILS
    stats: dict[str, Any]


def training_rows(
    gold: pd.DataFrame,
    outcomes: pd.DataFrame,
    cutoff: pd.Timestamp,
    window_start: pd.Timestamp,
    window_end: pd.Timestamp,
) -> TrainingRows:
    """Select the labelled claim versions of one submission window from gold's keys and the outcomes
    known at `cutoff`.

    - Each claim version is represented by its first gold row (its submission).
    - Every version submitted in [window_start, window_end) is a candidate, originals of corrected claims
      included: a denied original followed by a paid correction is two training rows, each with its own
      label (the denial is what the model must learn to predict).
    - Its label is its own first adjudication known at the cutoff (`labels.first_adjudications`: the
      first non-reversal remittance to reach the source that was adjudicated between the version's
      submission and the next version's; an appeal never relabels it). The versions submitted after the
      window but before the cutoff bound the window versions' answers, so gold up to the cutoff is passed.
      A version without a label is left out and counted as `unlabelled`.
    Needs only gold's keys (claim_id, claim_version, submitted_at, optional dt and feature_version), so a
    caller can select first and read the features of the chosen rows alone. Pure: the result depends
    only on rows visible at `cutoff`.
    """
    cutoff, window_start, window_end = map(pd.Timestamp, (cutoff, window_start, window_end))
    if window_end > cutoff:
        log.warning("training window ends %s after the cutoff %s", window_end, cutoff)
    missing = [c for c in ("claim_id", "claim_version", "submitted_at") if c not in gold]
    if missing:
        raise KeyError(f"gold frame lacks columns {missing}")

    # The selection runs on a narrow frame of keys with claim ids as integer codes in their text order
    # and one numpy lexsort per ordering (on a 180-day window of 20,000 claims a day, pandas' multi-key
    # sorts, merges and validation of 5 M text keys took 115 s and 9 GB).
    has_dt = "dt" in gold.columns
    keys, outcomes = _coded_keys(gold, outcomes, ["claim_version", "submitted_at", *(["dt"] if has_dt else [])])

    # One row per claim version: its first gold row (the submission). A copy in a later partition can
    # only be an in-place update that slipped past gold's lookback; it was not known at submission.
    visible = keys[(keys["submitted_at"] < cutoff).to_numpy()]
    claim, version = visible["claim_id"].to_numpy(), visible["claim_version"].to_numpy(dtype="int64")
    order = np.lexsort((_sortable(visible["dt"]), version, claim) if has_dt else (version, claim))
    first_of_version = order[_run_starts(claim[order], version[order])]
    versions = visible.iloc[first_of_version].reset_index(drop=True)  # claim, version order
    submitted = versions["submitted_at"]
    in_window = ((submitted >= window_start) & (submitted < window_end)).to_numpy()
    version_claims = versions["claim_id"].to_numpy()
    corrected = np.append(version_claims[1:] == version_claims[:-1], False)[:len(versions)]

    answers = labels.answer_positions(outcomes, versions, cutoff)
    mine = in_window[answers.version]
    version_at, outcome_at = answers.version[mine], answers.remittance[mine]
    # labelled versions in submission order (claim id, then version, break ties); features taken from gold once
    by_submission = np.lexsort((versions["claim_version"].to_numpy()[version_at], version_claims[version_at],
                                _sortable(submitted)[version_at]))
    version_at, outcome_at = version_at[by_submission], outcome_at[by_submission]
    details = [c for c in OUTCOME_DETAILS if c in outcomes.columns]
    chosen = outcomes[["adjudicated_at", *details]].iloc[outcome_at].reset_index(drop=True)
    chosen.insert(0, "denied", labels.denied_flags(outcomes)[outcome_at])
    chosen["later_rows"] = answers.later_rows[mine][by_submission]
    chosen["overturned"] = answers.overturned[mine][by_submission]
    rows = versions["_row"].to_numpy()[version_at]
    known = labels.known_at(outcomes, cutoff)
    has_label = np.zeros(len(versions), dtype=bool)
    has_label[answers.version] = True
    # outcomes known for the claim, but none answers this version (adjudicated before it, or after the next)
    stale = in_window & ~has_label & np.isin(version_claims, outcomes["claim_id"].to_numpy()[known])
    feature_versions = (sorted(pd.unique(gold["feature_version"].to_numpy()[rows]).tolist())
                        if "feature_version" in gold.columns else [])
    stats = {
        "cutoff": cutoff.isoformat(),
        "window_start": window_start.isoformat(),
        "window_end": window_end.isoformat(),
        "gold_rows": int(len(gold)),
        "corrected_versions": int((in_window & corrected).sum()),
        "repeated_version_rows": int(len(visible) - len(versions)),
        "claims_in_window": int(len(np.unique(version_claims[in_window]))),
        "versions_in_window": int(in_window.sum()),
        "outcomes_matured": int(len(np.unique(outcomes["claim_id"].to_numpy()[known]))),
        "labelled": int(len(rows)),
        "unlabelled": int(in_window.sum() - len(rows)),
        "outcome_before_version": int(stale.sum()),
        "labels_with_later_outcome_rows": int((chosen["later_rows"] > 0).sum()),
        "labels_overturned_later": int(chosen["overturned"].astype(bool).sum()),
        "denial_rate": float(chosen["denied"].astype(bool).mean()) if len(chosen) else math.nan,
        "feature_versions": feature_versions,
    }
    return TrainingRows(rows, chosen, stats)


def training_set_of(selected: pd.DataFrame, selection: TrainingRows,
                    feature_columns: Sequence[str] = FEATURE_COLUMNS) -> TrainingSet:
    """The TrainingSet of a selection, given the gold rows it chose (`selected`, in the selection's order)."""
    if len(selected) != len(selection.rows):
        raise ValueError(f"{len(selected)} gold rows given for a selection of {len(selection.rows)}")
    selected = selected.reset_index(drop=True)
    key_cols = [c for c in (*KEY_COLUMNS, "feature_version") if c in selected.columns]
    y = selection.labels["denied"].astype(bool).astype("int64").rename("denied")
    details = ["adjudicated_at", *[c for c in OUTCOME_DETAILS if c in selection.labels.columns]]
    return TrainingSet(selected[list(feature_columns)], y, selected[key_cols], selection.stats,
                       selection.labels[details])


def training_frame(
    gold: pd.DataFrame,
    outcomes: pd.DataFrame,
    cutoff: pd.Timestamp,
    window_start: pd.Timestamp,
    window_end: pd.Timestamp,
    feature_columns: Sequence[str] = FEATURE_COLUMNS,
) -> TrainingSet:
    """Join gold features of one submission window to the outcomes known at `cutoff` (`training_rows`
    selects; the chosen rows' features are taken from gold once, so the same rows in the same order)."""
    missing = [c for c in feature_columns if c not in gold]
    if missing:
        raise KeyError(f"gold frame lacks columns {missing}")
    selection = training_rows(gold, outcomes, cutoff, window_start, window_end)
    return training_set_of(gold.iloc[selection.rows], selection, feature_columns)


def training_table(selected: pa.Table, selection: TrainingRows, key: str) -> pa.Table:
    """One selection in its stored form, in Arrow (the chosen gold rows, in the selection's order, are not
    copied): plus `denied` and the `first_*` outcome columns; the stats by key in the pandas metadata, as
    `attrs` (read back, the frame has them and plain object text, like every table of the lake). Kept out
    of pandas: at 20,000 claims a day a week's 3.6 M rows as Python strings were ~2 GB of the step's peak."""
    if selected.num_rows != len(selection.rows):
        raise ValueError(f"{selected.num_rows} gold rows given for a selection of {len(selection.rows)}")
    columns = {name: selected[name] for name in selected.column_names}
    columns["denied"] = pa.array(selection.labels["denied"].astype(bool).astype("int64").to_numpy())
    for name in ("adjudicated_at", *[c for c in OUTCOME_DETAILS if c in selection.labels.columns]):
        values = selection.labels[name]
        if isinstance(values.dtype, pd.StringDtype):
            columns[FIRST_PREFIX + name] = pa.array(values.astype(object).where(values.notna(), None).to_numpy(),
                                                    type=pa.string())
        else:
            columns[FIRST_PREFIX + name] = pa.Array.from_pandas(values.to_numpy())
    table = pa.table(columns)
    head = table.slice(0, 0).to_pandas()
    head.attrs = {TRAINING_STATS_ATTR: {key: selection.stats}}
    return table.replace_schema_metadata(pa.Schema.from_pandas(head, preserve_index=False).metadata)


def training_stats_of(table: pa.Table) -> dict[str, dict]:
    """The stats by key that `training_table` put in a table's pandas metadata."""
    return table.slice(0, 0).to_pandas().attrs.get(TRAINING_STATS_ATTR, {})


def from_training_table(frame: pd.DataFrame, key: str, column: str,
                        feature_columns: Sequence[str] = FEATURE_COLUMNS) -> TrainingSet:
    """The TrainingSet of `key` that `training_table` stored (the same rows, order, dtypes and stats)."""
    missing = [c for c in (*feature_columns, "denied", column) if c not in frame.columns]
    if missing:
        raise KeyError(f"stored training set lacks columns {missing}")
    stats = frame.attrs.get(TRAINING_STATS_ATTR, {})
    if key not in stats:
        raise KeyError(f"stored training set has no stats for {key} (has {sorted(stats)})")
    mine = (frame[column] == key).to_numpy()
    rows = frame if mine.all() else frame[mine].reset_index(drop=True)
    first = [c for c in rows.columns if c.startswith(FIRST_PREFIX)]
    key_cols = [c for c in (*KEY_COLUMNS, "feature_version") if c in rows.columns]
    return TrainingSet(rows[list(feature_columns)], rows["denied"].astype("int64").rename("denied"),
                       rows[key_cols], dict(stats[key]),
                       rows[first].rename(columns=lambda c: c[len(FIRST_PREFIX):]) if first else None)


def _coded_keys(gold: pd.DataFrame, outcomes: pd.DataFrame, columns: Sequence[str]
                ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """gold's claim_id + `columns` + `_row` (position in gold) and `outcomes`, with claim_id as int64
    codes ordered like the ids' text (the same codes in both; ids already coded so pass as they are)."""
    gold_codes, outcome_codes = joint_codes(gold["claim_id"], outcomes["claim_id"])
    keys = pd.DataFrame({"claim_id": gold_codes, **{c: gold[c].to_numpy() for c in columns},
                         "_row": np.arange(len(gold))})
    return keys, outcomes.assign(claim_id=outcome_codes)


def data_fingerprint(ts: TrainingSet, params: Mapping[str, Any]) -> str:
    """A short hash of what a week's model is fitted on: the labelled claims, their labels, their feature
    version and the training parameters. Two runs with the same fingerprint train the same model, so a
    re-run after a failure reuses the registered version instead of registering a duplicate."""
    digest = hashlib.sha256()
    keys = ts.claim_keys[[c for c in ("claim_id", "claim_version", "submitted_at", "feature_version")
                          if c in ts.claim_keys.columns]]
    digest.update(pd.util.hash_pandas_object(keys.assign(denied=ts.y.to_numpy()), index=False).to_numpy().tobytes())
    digest.update(json.dumps(params, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def time_holdout_split(ts: TrainingSet, holdout_fraction: float = 0.2) -> tuple[TrainingSet, TrainingSet]:
    """Split into (train, holdout) where the holdout is the latest `holdout_fraction` of submissions."""
    if not 0 < holdout_fraction < 1:
        raise ValueError("holdout_fraction must be in (0, 1)")
    order = np.argsort(ts.claim_keys["submitted_at"].to_numpy(), kind="stable")
    n_train = len(order) - int(round(len(order) * holdout_fraction))
    parts = []
    for name, idx in (("train", order[:n_train]), ("holdout", order[n_train:])):
        keys = ts.claim_keys.iloc[idx].reset_index(drop=True)
        y = ts.y.iloc[idx].reset_index(drop=True)
        stats = {**ts.stats, "part": name, "rows": int(len(idx)),
                 "denial_rate": float(y.mean()) if len(y) else math.nan}
        if len(keys):
            stats["submitted_from"] = keys["submitted_at"].min().isoformat()
            stats["submitted_to"] = keys["submitted_at"].max().isoformat()
        first = None if ts.first_outcome is None else ts.first_outcome.iloc[idx].reset_index(drop=True)
        parts.append(TrainingSet(ts.X.iloc[idx].reset_index(drop=True), y, keys, stats, first))
    return parts[0], parts[1]


# --------------------------------------------------------------------------------------------------
# Fit
# --------------------------------------------------------------------------------------------------


def fit_model(
    X: pd.DataFrame,
    y: pd.Series | np.ndarray,
    seed: int = 0,
    calibration_fraction: float = 0.2,
    calibration: str = "isotonic",
    params: Mapping[str, Any] | None = None,
    n_threads: int | None = None,
    max_fit_rows: int | None = None,
) -> DenialModel:
    """Gradient boosting on the earlier rows, calibrated on the latest `calibration_fraction`.

    Rows must be in submission-time order (`training_frame` guarantees it), so calibration is fitted
    on claims newer than any the trees saw — as scoring will be. Columns of pandas 'category' dtype
    (fixed category lists from the features) are encoded in the pipeline and split natively as
    categories by the trees (HGB categorical support). Isotonic calibration falls back to sigmoid when
    the calibration slice is small (< 1,000 rows), where isotonic overfits. `n_threads` caps OpenMP
    threads for the fit (see `limit_threads`). With `max_fit_rows`, the trees learn from a seeded uniform
    sample of that many of the earlier rows (in their order) when there are more: on 2.9 M rows (180 days
    at 20,000 claims a day) a 1 M-row sample fits 3x faster for 0.0006 less holdout AUC; the calibration
    slice is never sampled.
    """
    y = np.asarray(y).astype("int64")
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} rows, y has {len(y)}")
    if len(np.unique(y)) < 2:
        raise ValueError("y has a single class; cannot fit a denial model")
    n_cal = int(round(len(X) * calibration_fraction))
    n_fit = len(X) - n_cal
    if n_cal < 100 or n_fit < 100:
        raise ValueError(f"too few rows to fit and calibrate ({len(X)}); need at least 500")
    if calibration == "isotonic" and n_cal < 1000:
        calibration = "sigmoid"

    prepare = _preprocessor(X)
    Xs = prepare.fit_transform(X)
    X_fit, y_fit = Xs.iloc[:n_fit], y[:n_fit]
    if max_fit_rows is not None and n_fit > max_fit_rows:
        keep = np.sort(np.random.default_rng(seed).choice(n_fit, size=max_fit_rows, replace=False))
        X_fit, y_fit = X_fit.iloc[keep], y_fit[keep]
    X_cal, y_cal = Xs.iloc[n_fit:], y[n_fit:]
    if len(np.unique(y_cal)) < 2:
        raise ValueError("calibration slice has a single class; widen the training window")

    categorical = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
    # a numeric feature with values only in the newest rows (a statistic first learned inside the window)
    # has none in the fit rows: HGB's binning fails on it (`model_inputs` drops only a feature missing in
    # every row). It carries nothing the trees could learn, so they see it constant and never split on it
    unknown = [c for c in X_fit.columns if c not in categorical and X_fit[c].isna().all()]
    if unknown:
        X_fit = X_fit.assign(**{c: 0.0 for c in unknown})
    hgb = HistGradientBoostingClassifier(**{**DEFAULT_HGB_PARAMS, **(params or {}), "random_state": seed,
                                            "categorical_features": categorical or None})
    calibrated = CalibratedClassifierCV(FrozenEstimator(hgb), method=calibration)
    with limit_threads(n_threads):
        hgb.fit(X_fit, y_fit)
        calibrated.fit(X_cal, y_cal)
    log.info("fitted HGB: %d iterations on %d rows (of %d); %s calibration on %d rows",
             hgb.n_iter_, len(X_fit), n_fit, calibration, n_cal)
    return Pipeline([("prepare", prepare), ("model", calibrated)])


def category_codes(X: pd.DataFrame, categories: Mapping[str, Sequence[str]]) -> pd.DataFrame:
    """Replace each categorical column by its float code in the fixed `categories` (unknown/missing → NaN).

    Works on 'category' columns (a cheap recode) and on plain strings alike, so the model also scores
    frames whose dtypes were lost on the way (pyfunc, REST, CSV). Much faster than OrdinalEncoder, which
    maps object values one by one; it is the one non-sklearn callable inside the model pipeline.
    """
    coded = {}
    for name, cats in categories.items():
        codes = pd.Categorical(X[name], categories=list(cats)).codes.astype("float64")
        codes[codes < 0] = np.nan
        coded[name] = codes
    return X.assign(**coded)


def model_inputs(X: pd.DataFrame) -> list[str]:
    """The columns a model fitted on `X` reads: every feature but the text context (payer_id:
    `features.CONTEXT_COLUMNS`), which has too many values for a categorical and reaches the trees
    through the learned encodings (the fallback model and the worklist read it), and but a feature with
    no value at all in `X` (a charge ratio when no chargemaster nor history gives a typical charge: it
    carries nothing, and HistGradientBoosting cannot bin an all-missing column)."""
    return [c for c in X.columns if c not in CONTEXT_COLUMNS and X[c].notna().any()]


def _preprocessor(X: pd.DataFrame) -> Pipeline:
    """Pick the feature columns it was fitted on (keys and extras are dropped), categoricals as codes.

    Category lists come from the features' fixed categorical dtypes, so a code means the same value in
    every training run and at scoring time.
    """
    categorical = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
    select = ColumnTransformer([("features", "passthrough", model_inputs(X))], remainder="drop",
                               verbose_feature_names_out=False)
    encode = FunctionTransformer(category_codes, kw_args={"categories": {c: list(X[c].cat.categories)
                                                                          for c in categorical}},
                                 feature_names_out="one-to-one")
    return Pipeline([("select", select), ("encode", encode)]).set_output(transform="pandas")


def limit_threads(n_threads: int | None) -> contextlib.AbstractContextManager[Any]:
    """Cap OpenMP threads of the gradient boosting for a block (None: library default, all CPUs).

    On a host shared with other busy processes OpenMP's spinning threads can make a fit ~10x slower
    than one thread (measured on a loaded 2-CPU machine); dedicated workers leave this at None.
    """
    if n_threads is None:
        return contextlib.nullcontext()
    return threadpool_limits(limits=n_threads, user_api="openmp")


def predict_denial(model: DenialModel, frame: pd.DataFrame, n_threads: int | None = None) -> np.ndarray:
    """Denial probability per row; `frame` may carry keys and other columns besides the features."""
    with limit_threads(n_threads):
        return model.predict_proba(frame)[:, 1]


def input_example(X: pd.DataFrame, rows: int = 5) -> pd.DataFrame:
    """A few rows with categoricals as plain strings, for `mlflow.sklearn.log_model(input_example=...)`.

    MLflow cannot infer a signature from pandas 'category' columns; the model accepts either form.
    """
    categorical = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
    return X.head(rows).astype({c: object for c in categorical})


def model_summary(model: DenialModel) -> dict[str, Any]:
    """Facts about a fitted model worth logging (iterations, calibration, features)."""
    calibrated = model.named_steps["model"]
    hgb = calibrated.estimator.estimator
    return {
        "n_iter": int(hgb.n_iter_),
        "calibration": calibrated.method,
        "features": list(model.named_steps["prepare"].get_feature_names_out()),
        "params": {k: v for k, v in hgb.get_params().items() if k in DEFAULT_HGB_PARAMS or k == "random_state"},
    }


def decision(p: np.ndarray | pd.Series, threshold: float) -> np.ndarray:
    """Flag for review when the denial probability reaches the threshold."""
    return np.asarray(p, dtype="float64") >= threshold


# --------------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------------


def reliability_table(y_true: np.ndarray, p: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Equal-width probability bins: count, mean predicted, observed denial rate."""
    y_true, p = np.asarray(y_true, dtype="float64"), np.asarray(p, dtype="float64")
    idx = np.clip((p * bins).astype("int64"), 0, bins - 1)
    count = np.bincount(idx, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(idx, weights=p, minlength=bins) / count
        rate = np.bincount(idx, weights=y_true, minlength=bins) / count
    edges = np.round(np.linspace(0, 1, bins + 1), 6)
    return pd.DataFrame({"bin_lo": edges[:-1], "bin_hi": edges[1:], "count": count,
                         "mean_predicted": mean_p, "observed_rate": rate})


def expected_calibration_error(y_true: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Count-weighted mean |observed rate − mean prediction| over equal-width bins."""
    t = reliability_table(y_true, p, bins)
    t = t[t["count"] > 0]
    return float((t["count"] * (t["observed_rate"] - t["mean_predicted"]).abs()).sum() / t["count"].sum())


def evaluate(y_true: np.ndarray | pd.Series, p: np.ndarray | pd.Series, bins: int = 10) -> dict[str, Any]:
    """Discrimination and calibration of denial probabilities.

    Scalar metrics are floats (log them with `metric_values`); `reliability` is a list of per-bin dicts.
    """
    y_true = np.asarray(y_true).astype("int64")
    p = np.clip(np.asarray(p, dtype="float64"), 0.0, 1.0)
    both = len(np.unique(y_true)) == 2
    return {
        "n": float(len(y_true)),
        "positive_rate": float(y_true.mean()) if len(y_true) else math.nan,
        "mean_predicted": float(p.mean()) if len(p) else math.nan,
        "roc_auc": float(roc_auc_score(y_true, p)) if both else math.nan,
        "pr_auc": float(average_precision_score(y_true, p)) if both else math.nan,
        "brier": float(brier_score_loss(y_true, p)) if len(p) else math.nan,
        "log_loss": float(log_loss(y_true, p, labels=[0, 1])) if len(p) else math.nan,
        "ece": expected_calibration_error(y_true, p, bins) if len(p) else math.nan,
        "reliability": reliability_table(y_true, p, bins).to_dict(orient="records"),
    }


def metric_values(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The scalar entries of an `evaluate` result, finite only (for `mlflow.log_metrics`)."""
    return {f"{prefix}{k}": float(v) for k, v in metrics.items()
            if isinstance(v, int | float) and math.isfinite(v)}


def bayes_auc(true_prob: np.ndarray | pd.Series, y_true: np.ndarray | pd.Series) -> float:
    """AUC of the generator's true probabilities on the realized labels: the ceiling for any model."""
    return float(roc_auc_score(np.asarray(y_true).astype("int64"), np.asarray(true_prob, dtype="float64")))


PSI_EPSILON = 1e-4


def psi(expected: Sequence | pd.Series | np.ndarray, actual: Sequence | pd.Series | np.ndarray,
        bins: int = 10) -> float:
    """Population stability index of `actual` against the reference `expected`.

    Numeric: quantile bins of `expected` (ties merged), open-ended outer bins. Categorical / string:
    one bin per value seen in either. Missing values form their own bin. Empty bins get `PSI_EPSILON`
    so the index stays finite. Rule of thumb: < 0.1 stable, 0.1–0.25 moderate, > 0.25 shifted.
    """
    e, a = pd.Series(expected), pd.Series(actual)
    if len(e) == 0 or len(a) == 0:
        return math.nan
    if _is_categorical(e) or _is_categorical(a):
        e_counts = e.astype(object).fillna("<NA>").value_counts()
        a_counts = a.astype(object).fillna("<NA>").value_counts()
        labels = e_counts.index.union(a_counts.index)
        e_frac = e_counts.reindex(labels, fill_value=0).to_numpy() / len(e)
        a_frac = a_counts.reindex(labels, fill_value=0).to_numpy() / len(a)
    else:
        ev, av = e.to_numpy(dtype="float64"), a.to_numpy(dtype="float64")
        e_ok, a_ok = ev[~np.isnan(ev)], av[~np.isnan(av)]
        cuts = np.unique(np.quantile(e_ok, np.linspace(0, 1, bins + 1)[1:-1])) if len(e_ok) else np.array([])
        e_hist = np.bincount(np.searchsorted(cuts, e_ok, side="right"), minlength=len(cuts) + 1)
        a_hist = np.bincount(np.searchsorted(cuts, a_ok, side="right"), minlength=len(cuts) + 1)
        e_frac = np.append(e_hist, len(ev) - len(e_ok)) / len(ev)
        a_frac = np.append(a_hist, len(av) - len(a_ok)) / len(av)
    e_frac = np.maximum(e_frac, PSI_EPSILON)
    a_frac = np.maximum(a_frac, PSI_EPSILON)
    return float(np.sum((a_frac - e_frac) * np.log(a_frac / e_frac)))


def _is_categorical(s: pd.Series) -> bool:
    return isinstance(s.dtype, pd.CategoricalDtype) or s.dtype == object or pd.api.types.is_string_dtype(s)


def feature_psi(reference: pd.DataFrame, current: pd.DataFrame, bins: int = 10) -> dict[str, float]:
    """PSI per column present in both frames (feature drift monitoring)."""
    return {c: psi(reference[c], current[c], bins) for c in reference.columns if c in current.columns}


# --------------------------------------------------------------------------------------------------
# Plots (matplotlib Figure objects; no pyplot global state, so safe in any process and backend)
# --------------------------------------------------------------------------------------------------


def _axes(title: str) -> tuple[Figure, Any]:
    fig = Figure(figsize=(5.5, 4.5), layout="tight")
    ax = fig.add_subplot()
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return fig, ax


def roc_figure(y_true: np.ndarray, p: np.ndarray, bayes_prob: np.ndarray | None = None) -> Figure:
    """ROC curve, optionally with the curve of the true probabilities (synthetic data only)."""
    fig, ax = _axes("ROC — claim denial")
    curves = [("model", p)] + ([("true probability", bayes_prob)] if bayes_prob is not None else [])
    for name, prob in curves:
        fpr, tpr, _ = roc_curve(y_true, prob)
        ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(y_true, prob):.3f})")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.legend(loc="lower right")
    return fig


def pr_figure(y_true: np.ndarray, p: np.ndarray) -> Figure:
    """Precision–recall curve with the base rate as reference."""
    fig, ax = _axes("Precision–recall — claim denial")
    precision, recall, _ = precision_recall_curve(y_true, p)
    ax.plot(recall, precision, label=f"model (AP {average_precision_score(y_true, p):.3f})")
    ax.axhline(float(np.mean(y_true)), ls="--", color="grey", lw=1, label="denial rate")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.legend(loc="upper right")
    return fig


def calibration_figure(y_true: np.ndarray, p: np.ndarray, bins: int = 10) -> Figure:
    """Reliability diagram: observed denial rate against mean prediction per bin."""
    fig, ax = _axes("Calibration — claim denial")
    t = reliability_table(y_true, p, bins)
    t = t[t["count"] > 0]
    ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1)
    ax.plot(t["mean_predicted"], t["observed_rate"], marker="o",
            label=f"model (ECE {expected_calibration_error(y_true, p, bins):.3f})")
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed denial rate")
    ax.legend(loc="upper left")
    return fig


def permutation_importances(model: DenialModel, X: pd.DataFrame, y: np.ndarray | pd.Series,
                            sample: int = 5000, n_repeats: int = 3, seed: int = 0,
                            n_threads: int | None = None) -> pd.DataFrame:
    """Drop in ROC AUC when each feature is shuffled, on a sample of rows (mean, std), largest first."""
    y = pd.Series(np.asarray(y).astype("int64"), index=X.index)
    if len(X) > sample:
        X = X.sample(sample, random_state=seed)
        y = y.loc[X.index]
    with limit_threads(n_threads):
        result = permutation_importance(model, X, y, scoring="roc_auc", n_repeats=n_repeats,
                                        random_state=seed)
    return (pd.DataFrame({"feature": X.columns, "importance": result.importances_mean,
                          "std": result.importances_std})
            .sort_values("importance", ascending=False, kind="mergesort").reset_index(drop=True))


def importance_figure(importances: pd.DataFrame, top: int = 20) -> Figure:
    """Horizontal bars of `permutation_importances` output."""
    t = importances.head(top).iloc[::-1]
    fig = Figure(figsize=(6, 0.3 * len(t) + 1.5), layout="tight")
    ax = fig.add_subplot()
    ax.barh(t["feature"], t["importance"], xerr=t["std"], color="#4C72B0")
    ax.set_title("Permutation importance (drop in ROC AUC)")
    ax.set_xlabel("mean AUC decrease")
    ax.grid(axis="x", alpha=0.3)
    return fig
