"""Predictions: day D's gold features scored by the champion serving on D, every row stamped with lineage.

The champion as of D comes from the promotion history in the MLflow registry (data time, not wall time),
so a backfill of an old day never uses a model trained on later data. The model week that contains D is
a declared dependency for lineage, but scoring never waits for it: when that week's training failed (too
few labels, MLflow down) the champion history still names who serves D, and the `model_week_trained`
check says which week is missing. A retrained week does not re-score days already scored either.
"""


import json
from collections.abc import Iterator
from datetime import date, timedelta

import dagster as dg
import mlflow
import numpy as np
import pandas as pd

from rcm_assets.defs import checks
from rcm_assets.defs.automation import follow_upstream
from rcm_assets.defs.model import MODEL_KEY
from rcm_assets.defs.partitions import SCORING_MODEL_MAPPING, scoring_partitions
from rcm_assets.lib import champion as champion_lib
from rcm_assets.lib import quality
from rcm_assets.lib.scoring import score
from rcm_assets.platform.resources import MlflowResource

SCORES_KEY = dg.AssetKey(["predictions", "claim_denial_scores"])
PSI_WARN = 0.2


class ScoringConfig(dg.Config):
    decision_threshold: float = 0.35  # at or above: send the claim to a biller for review
    psi_warn_threshold: float = PSI_WARN


class ServingModel:
    """A registered version loaded once per run, with the lineage every score is stamped with."""

    def __init__(self, mlf: MlflowResource, version: str):
        client = mlf.client()
        mv = client.get_model_version(mlf.model_name, version)
        self.version = version
        self.tags = dict(mv.tags or {})
        self.feature_version = self.tags.get("feature_version", "")
        self.model = mlflow.sklearn.load_model(f"models:/{mlf.model_name}/{version}")
        self.stamp = {
            "model_name": mlf.model_name, "model_version": version, "mlflow_run_id": mv.run_id,
            "training_window_start": self.tags.get("window_start"),
            "training_window_end": self.tags.get("window_end"),
        }
        self.reference = np.array(json.loads(self.tags.get("score_reference", "[]")), dtype=float)


def score_days(gold: pd.DataFrame, mlf: MlflowResource, threshold: float, run_id: str,
               log: dg.DagsterLogManager) -> tuple[pd.DataFrame, dict[str, ServingModel]]:
    """Score each day of `gold` with the champion serving on that day."""
    client, loaded, frames = mlf.client(), {}, []
    for day, rows in gold.groupby("dt", sort=True):
        version = champion_lib.champion_as_of(client, mlf.model_name, date.fromisoformat(day))
        if version is None:
            raise dg.Failure(f"no champion model serves {day}: train and promote a model for a week "
                             f"starting on or before {day} (rcm train --date {day})")
        if version not in loaded:
            loaded[version] = ServingModel(mlf, version)
        serving = loaded[version]
        frames.append(score(serving.model, rows, model_feature_version=serving.feature_version,
                            threshold=threshold, stamp={**serving.stamp, "dagster_run_id": run_id}))
        log.info(f"{day}: {len(rows)} claims scored by v{version}")
    if not frames:
        return pd.DataFrame(), loaded
    return pd.concat(frames, ignore_index=True), loaded


def prediction_checks(scores: pd.DataFrame, gold: pd.DataFrame, loaded: dict[str, ServingModel],
                      psi_warn: float) -> list[dg.AssetCheckResult]:
    in_range = scores["denial_probability"].between(0, 1).all() if len(scores) else True
    scored = scores.groupby(["dt", "claim_id"]).size() if len(scores) else pd.Series(dtype=int)
    expected = gold.groupby(["dt", "claim_id"]).size() if len(gold) else pd.Series(dtype=int)
    missing = int((~expected.index.isin(scored.index)).sum())
    repeated = int((scored > 1).sum())
    extra = int((~scored.index.isin(expected.index)).sum())
    mismatched = sorted({v for v in gold.get("feature_version", pd.Series(dtype=str)).unique()}
                        - {m.feature_version for m in loaded.values()})
    psis = {v: quality.score_psi(m.reference, scores.loc[scores["model_version"] == v, "denial_probability"])
            for v, m in loaded.items() if len(m.reference)}
    worst_psi = max(psis.values(), default=0.0)
    return [
        checks.result("probabilities_in_unit_interval", in_range, asset_key=SCORES_KEY,
                      min_probability=float(scores["denial_probability"].min()) if len(scores) else 0.0,
                      max_probability=float(scores["denial_probability"].max()) if len(scores) else 0.0),
        checks.result("every_gold_claim_scored_once", not (missing or repeated or extra), asset_key=SCORES_KEY,
                      description=f"{missing} unscored, {repeated} scored twice, {extra} unknown claims"
                      if (missing or repeated or extra) else None,
                      gold_claims=len(expected), scored_claims=len(scored)),
        checks.result("feature_version_matches_model", not mismatched, asset_key=SCORES_KEY,
                      description=f"gold feature_version(s) {', '.join(mismatched)} differ from the model's"
                      if mismatched else None,
                      model_feature_versions=", ".join(sorted({m.feature_version for m in loaded.values()}))),
        checks.result("score_drift_psi_below_threshold", worst_psi < psi_warn, asset_key=SCORES_KEY,
                      warn_only=True,
                      description=f"score PSI {worst_psi:.3f} against the training holdout "
                      f"({'above' if worst_psi >= psi_warn else 'below'} the warning threshold {psi_warn})",
                      psi=float(worst_psi), threshold=psi_warn),
    ]


def week_of(day: str) -> str:
    """The model week (Monday) a day belongs to."""
    d = date.fromisoformat(day)
    return (d - timedelta(days=d.weekday())).isoformat()


def missing_model_weeks(days: list[str], trained_weeks: set[str]) -> list[str]:
    """The weeks of `days` without a model row: their training failed or has not run yet."""
    return sorted({week_of(d) for d in days} - trained_weeks)


def model_week_check(missing: list[str], loaded: dict[str, ServingModel]) -> dg.AssetCheckResult:
    serving = ", ".join(f"v{v}" for v in sorted(loaded)) or "none"
    return checks.result(
        "model_week_trained", not missing, asset_key=SCORES_KEY, warn_only=True,
        description=(f"model week(s) {', '.join(missing)} have no trained model; the champion history "
                     f"served instead ({serving})" if missing else None),
        missing_weeks=", ".join(missing) or "none", serving_versions=serving,
    )


@dg.asset(
    key=SCORES_KEY,
    group_name="predictions",
    partitions_def=scoring_partitions,
    io_manager_key="lake",
    ins={"gold": dg.AssetIn(key=["gold", "claim_features"]),
         "model_weeks": dg.AssetIn(key=MODEL_KEY, partition_mapping=SCORING_MODEL_MAPPING,
                                   metadata={"allow_missing_partitions": True, "columns": ["model_version", "week"]})},
    backfill_policy=dg.BackfillPolicy.single_run(),
    # gold decides when a day is scored; the model week neither holds scoring back nor re-scores
    automation_condition=follow_upstream().ignore(dg.AssetSelection.assets(MODEL_KEY)),
    kinds={"scikitlearn", "parquet"},
    check_specs=[
        dg.AssetCheckSpec("probabilities_in_unit_interval", asset=SCORES_KEY, blocking=True),
        dg.AssetCheckSpec("every_gold_claim_scored_once", asset=SCORES_KEY, blocking=True),
        dg.AssetCheckSpec("feature_version_matches_model", asset=SCORES_KEY, blocking=True),
        dg.AssetCheckSpec("score_drift_psi_below_threshold", asset=SCORES_KEY,
                          description="PSI of the day's scores against the training holdout scores"),
        dg.AssetCheckSpec("model_week_trained", asset=SCORES_KEY,
                          description="The model week containing each scored day has its row (training ran); "
                                      "warns naming the missing weeks, while an earlier champion serves"),
    ],
)
def claim_denial_scores(
    context: dg.AssetExecutionContext, config: ScoringConfig, gold: pd.DataFrame, model_weeks: pd.DataFrame,
    mlflow_tracking: MlflowResource,
) -> Iterator:
    """Denial probability and review decision for every claim of day D, with model lineage."""
    scores, loaded = score_days(gold, mlflow_tracking, config.decision_threshold, context.run.run_id, context.log)
    if scores.empty:
        scores = pd.DataFrame({"dt": pd.Series(dtype=object), "claim_id": pd.Series(dtype=object)})
    missing = missing_model_weeks(context.partition_keys, set(model_weeks.get("week", pd.Series(dtype=str))))
    results = [*prediction_checks(scores, gold, loaded, config.psi_warn_threshold),
               model_week_check(missing, loaded)]
    yield from checks.publish(
        [dg.Output(scores, metadata={
            "model_versions": ", ".join(sorted(loaded)) or "none",
            "flagged_for_review": int((scores.get("decision") == "review").sum()) if len(scores) else 0,
            "decision_threshold": config.decision_threshold,
        })],
        results, what="predictions/claim_denial_scores",
    )
