"""The serving path: from claims as they are at submission to denial scores.

Scoring validates its input against the scoring contract (decision-time columns only), computes features
with the same code as gold, and refuses a model whose feature_version differs from the features'.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from rcm_assets.lib import features as feature_lib
from rcm_assets.lib.fallback import FallbackModel
from rcm_assets.lib.modelling import DenialModel, decision, predict_denial
from rcm_assets.lib.reference_tables import NO_TABLES, ReferenceTables


class FeatureVersionMismatch(ValueError):
    """A model may only score features built by the feature code it was trained on."""


def scoring_features(claims: pd.DataFrame, config: feature_lib.FeatureConfig,
                     learned_rules: pd.DataFrame | None = None, reference: ReferenceTables = NO_TABLES,
                     learned: Any = None, history: pd.DataFrame | None = None) -> pd.DataFrame:
    """Features for scoring: only decision-time columns get in (LeakageError names any other); the
    hospital's reference tables, the learned payer rules in force on each claim's day
    (`payer_rules.rules_in_force`), the learned statistics (`lib/learned.LearnedTables`) and the earlier
    claims of the members (`features.HISTORY_COLUMNS`) as gold has them."""
    feature_lib.check_decision_time(claims.columns)  # a post-outcome column is an error, not dropped
    view = feature_lib.decision_time_view(claims, config)
    return feature_lib.compute_features(view, config, learned_rules, reference, learned, history)


def score(
    model: DenialModel | FallbackModel,
    features: pd.DataFrame,
    *,
    model_feature_version: str | None,
    threshold: float,
    stamp: dict[str, object],
    scored_by: str = "champion",
) -> pd.DataFrame:
    """One row per claim: probability, decision at `threshold`, who scored it, and the lineage in `stamp`.

    A champion (or shadow) model refuses features of another feature_version. The fallback model reads
    only payer and CPT family, which every feature version has: `model_feature_version=None` skips the
    check, and the rows carry the features' own version.
    """
    versions = set(features["feature_version"].unique()) if not features.empty else set()
    foreign = sorted(v for v in versions if v != model_feature_version) if model_feature_version else []
    if foreign:
        raise FeatureVersionMismatch(
            f"model was trained on feature_version {model_feature_version}; "
            f"refusing to score features of version(s) {', '.join(foreign)} — rebuild gold or retrain"
        )
    if not len(features):
        probability = np.array([], dtype=float)
    elif isinstance(model, FallbackModel):
        probability = model.predict(features)
    else:
        probability = predict_denial(model, features, n_threads=1)
    keys = [c for c in ("claim_id", "claim_version", "submitted_at", "dt") if c in features.columns]
    out = features[keys].copy()
    out["denial_probability"] = probability.astype("float64")
    out["decision"] = np.where(decision(probability, threshold), "review", "submit") if len(out) else []
    out["threshold"] = float(threshold)
    out["feature_version"] = model_feature_version or features["feature_version"].to_numpy()
    out["scored_by"] = scored_by
    for name, value in stamp.items():
        out[name] = value
    out["scored_at"] = pd.Timestamp(datetime.now(UTC).replace(tzinfo=None)).as_unit("ns")
    return out


def rows_by_day(frame: pd.DataFrame, column: str = "dt") -> dict[object, pd.DataFrame]:
    """Each day's rows, as `frame[frame[column] == day]` gives them (same rows, order and index), split in
    one pass: filtering once per day compares every row of the run once per day, quadratic in its days."""
    if not len(frame) or column not in frame.columns:
        return {}
    return dict(tuple(frame.groupby(column, sort=False, observed=True)))
