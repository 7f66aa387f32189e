"""Model: the weekly denial-reason model and the payers' allowed ratios, point in time like the denial model.

`model/denial_reason_model` trains week W on the denied claims of the denial model's own training set
(`model/training_set`: same claims, same outcomes known before W, same holdout split), labelled with the
first adjudication's CARC category; it is registered in MLflow as "<model name>-reason" and promoted through the same gate
(macro AUC instead of AUC), with its own champion history. `model/payer_allowed_ratios` learns, from the
same rows, what each payer allows of a billed dollar: the worklist's expected payment.
"""

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature

from rcm_assets.defs.model import COMPARISON_COLUMNS, CONFIGURED, Promotion, model_requirements
from rcm_assets.defs.partitions import weekly_partitions
from rcm_assets.defs.training_set import (
    TRAINING_SET_KEY,
    WEEKLY_SET_POLICY,
    stored_training_set,
    training_window,
)
from rcm_assets.lib import champion as champion_lib
from rcm_assets.lib import modelling, reasons
from rcm_assets.lib import worklist as worklist_lib
from rcm_assets.platform.resources import FeatureResource, MlflowResource

REASON_MODEL_KEY = dg.AssetKey(["model", "denial_reason_model"])
RATIOS_KEY = dg.AssetKey(["model", "payer_allowed_ratios"])
REASON_GATE_CHECK = "holdout_macro_auc_passes_gate"
MIN_COMPARISON_ROWS = 200  # denied holdout claims unseen by the champion needed for a fair comparison


def reason_model_name(mlf: MlflowResource) -> str:
    """The registered name of the reason model: the denial model's name + "-reason"."""
    return f"{mlf.model_name}-reason"


class ReasonModelConfig(dg.Config):
    """Seed, holdout, AUC drop and threads default to the denial model's settings (`model.CONFIGURED`)."""

    seed: int = CONFIGURED.get("seed", 0)
    holdout_fraction: float = CONFIGURED.get("holdout_fraction", 0.2)
    macro_auc_floor: float = 0.70  # the background categories (billing error, other) are near chance
    max_auc_drop: float = CONFIGURED.get("max_auc_drop", 0.01)
    min_denied_rows: int = 300
    threads: int = CONFIGURED.get("threads", 1)
    force: bool = False  # re-train a week whose gate already promoted a reason model (rcm train --force)


# the week's stored training set, read a week at a time from the lake (defs/training_set.py)
TRAINING_SET_DEPENDENCY = {"deps": [TRAINING_SET_KEY], "backfill_policy": WEEKLY_SET_POLICY}


def train_reason_week(
    week: date, ts: modelling.TrainingSet, config: ReasonModelConfig, features: FeatureResource,
    mlf: MlflowResource, run_id: str, log: dg.DagsterLogManager, pending: list[Promotion],
) -> tuple[dict, champion_lib.GateDecision, Promotion | None]:
    """Train, log, register and gate one week's reason model (promotion returned, made after the write)."""
    name = reason_model_name(mlf)
    client = mlf.client()
    start, end, cutoff = training_window(week)
    earlier = champion_lib.promoted_for_week(champion_lib.history(client, name), week)
    if earlier is not None and not config.force:
        raise dg.Failure(f"reason model week {week} already promoted v{earlier}; re-run with --force "
                         f"(rcm train --date {week} --force) to train it again", allow_retries=False)
    rs = reasons.reason_training_set(ts)
    if rs.stats["denied"] < config.min_denied_rows:
        raise dg.Failure(
            f"reason model week {week}: only {rs.stats['denied']} denied claims in [{start.date()}, {end.date()}) "
            f"(need {config.min_denied_rows})", metadata={"denied": rs.stats["denied"]})
    train, holdout = reasons.reason_holdout_split(rs, config.holdout_fraction)
    model = reasons.fit_reason_model(train.X, train.y, seed=config.seed, n_threads=config.threads)
    proba = reasons.predict_reasons(model, holdout.X, n_threads=config.threads)
    metrics = reasons.reason_metrics(holdout.y, proba)

    the_day_before = week - timedelta(days=1)
    earlier_in_run = [p for p in pending if p.effective <= the_day_before]
    champion_version = (earlier_in_run[-1].version if earlier_in_run
                        else champion_lib.champion_as_of(client, name, the_day_before))
    champion_auc, candidate_auc_unseen, no_comparison = _champion_comparison(
        mlf, champion_version, holdout, proba, features.version, log, config.threads)
    with mlflow.start_run(experiment_id=mlf.experiment_id(), run_name=f"denial_reason_model-{week}",
                          tags={"dagster_run_id": run_id, "dagster_partition": week.isoformat(),
                                "feature_version": features.version}) as run:
        mlflow.log_params({"week": week.isoformat(), "cutoff": cutoff.isoformat(),
                           "window_start": start.isoformat(), "window_end": end.isoformat(),
                           "feature_version": features.version, "seed": config.seed, "strategy": "multiclass",
                           "holdout_fraction": config.holdout_fraction})
        mlflow.log_metrics({**reasons.reason_metric_values(metrics, prefix="holdout_"),
                            "train_rows": len(train.X), "holdout_rows": len(holdout.X),
                            "denied": rs.stats["denied"]})
        mlflow.log_dict(rs.stats["categories"], "reasons/category_counts.json")
        info = mlflow.sklearn.log_model(
            model, name="model", signature=infer_signature(holdout.X.head(0), proba.to_numpy()[:0]),
            registered_model_name=name, skops_trusted_types=list(reasons.SKOPS_TRUSTED_TYPES),
            pip_requirements=model_requirements())
    version = str(info.registered_model_version)
    for tag, value in {"dagster_run_id": run_id, "dagster_partition": week.isoformat(),
                       "feature_version": features.version, "window_start": start.date().isoformat(),
                       "window_end": end.date().isoformat(), "cutoff": cutoff.date().isoformat(),
                       "holdout_macro_auc": f"{metrics['macro_auc']:.6f}"}.items():
        client.set_model_version_tag(name, version, tag, value)
    decision = champion_lib.gate(metrics["macro_auc"], config.macro_auc_floor, champion_auc, config.max_auc_drop,
                                 champion_version, candidate_auc_vs_champion=candidate_auc_unseen,
                                 no_comparison=no_comparison)
    # the same gate, on the reason model's metric: say which one
    decision = replace(decision, sentence=decision.sentence.replace("ROC AUC", "macro AUC"))
    client.set_model_version_tag(name, version, "gate_decision", decision.sentence)
    promotion = None
    if decision.promote:
        effective = max(week, datetime.now(UTC).date()) if earlier is not None else week
        promotion = Promotion(version, effective, champion_lib.gate_reason(week))
    log.info(f"reason model week {week}: v{version} — {decision.sentence}")
    row = {
        "week": week.isoformat(), "model_name": name, "model_version": version, "mlflow_run_id": run.info.run_id,
        "feature_version": features.version, "window_start": start, "window_end": end, "cutoff": cutoff,
        "train_rows": len(train.X), "holdout_rows": len(holdout.X), "denied": rs.stats["denied"],
        "holdout_top1_accuracy": float(metrics["top1_accuracy"]), "holdout_macro_auc": float(metrics["macro_auc"]),
        "champion_version_before": champion_version, "champion_auc_on_holdout": champion_auc,
        "candidate_auc_vs_champion": candidate_auc_unseen, "promoted": decision.promote, "gate": decision.severity,
        "gate_sentence": decision.sentence, "serving_version": version if decision.promote else champion_version,
    }
    return row, decision, promotion


def _champion_comparison(mlf: MlflowResource, version: str | None, holdout, proba: pd.DataFrame,
                         feature_version: str, log: dg.DagsterLogManager, threads: int | None = None,
                         ) -> tuple[float | None, float | None, str | None]:
    """(champion macro AUC, candidate macro AUC, why not) on the denied holdout claims the champion never
    trained on; the AUCs are None and the third item says why (for the gate's sentence) when none is fair."""
    if version is None:
        return None, None, None
    name = reason_model_name(mlf)
    mv = mlf.client().get_model_version(name, version)
    if mv.tags.get("feature_version") != feature_version:
        log.warning(f"reason champion v{version} was trained on other features; comparing against the floor only")
        return None, None, "it was trained on other features"
    unseen = (holdout.claim_keys["submitted_at"] >= pd.Timestamp(mv.tags["window_end"])).to_numpy()
    if unseen.sum() < MIN_COMPARISON_ROWS or holdout.y[unseen].nunique() < 2:
        why = (f"only {int(unseen.sum()):,} denied holdout claims are unseen by it, fewer than the "
               f"{MIN_COMPARISON_ROWS} a comparison of reason categories needs")
        log.warning(f"reason champion v{version}: {why}; comparing against the floor only")
        return None, None, why
    champion = mlflow.sklearn.load_model(f"models:/{name}/{version}")
    y = holdout.y[unseen].to_numpy()
    champion_proba = reasons.predict_reasons(champion, holdout.X[unseen], n_threads=threads)
    return (float(reasons.reason_metrics(y, champion_proba)["macro_auc"]),
            float(reasons.reason_metrics(y, proba[unseen])["macro_auc"]), None)


@dg.asset(
    key=REASON_MODEL_KEY,
    group_name="model",
    partitions_def=weekly_partitions,
    io_manager_key="lake",
    **TRAINING_SET_DEPENDENCY,
    required_resource_keys={"lake", "features", "mlflow_tracking"},
    kinds={"scikitlearn", "mlflow"},
    check_specs=[dg.AssetCheckSpec(
        REASON_GATE_CHECK, asset=REASON_MODEL_KEY, blocking=True,
        description="Holdout macro AUC of the reason categories above the floor and not worse than the "
                    "reason champion's by more than the margin")],
)
def denial_reason_model(context: dg.AssetExecutionContext, config: ReasonModelConfig) -> Iterator:
    """Weekly likely-denial-reason model (CARC category of the first adjudication), gated and registered."""
    features: FeatureResource = context.resources.features
    mlflow_tracking: MlflowResource = context.resources.mlflow_tracking
    rows, decisions, promotions = [], [], []
    for key in context.partition_keys:
        ts = stored_training_set(context.resources.lake, key)
        row, decision, promotion = train_reason_week(date.fromisoformat(key), ts, config, features,
                                                     mlflow_tracking, context.run.run_id, context.log, promotions)
        del ts
        rows.append(row)
        decisions.append((key, decision))
        promotions += [promotion] if promotion else []
    # no comparable champion (None) keeps these float: a one-week run would otherwise store them as text,
    # and the weeks' files would no longer read as one table
    frame = pd.DataFrame(rows).astype({c: "float64" for c in COMPARISON_COLUMNS})
    yield dg.Output(frame, metadata={
        "model_versions": ", ".join(frame["model_version"]),
        "holdout_macro_auc": float(frame["holdout_macro_auc"].iloc[-1]),
        "holdout_top1_accuracy": float(frame["holdout_top1_accuracy"].iloc[-1]),
        "promoted": int(frame["promoted"].sum()),
    })
    client, name = mlflow_tracking.client(), reason_model_name(mlflow_tracking)
    for promotion in promotions:
        champion_lib.promote(client, name, promotion.version, promotion.effective, reason=promotion.reason,
                             by=context.run.run_id)
    worst = max(decisions, key=lambda kd: ["pass", "warn", "error"].index(kd[1].severity))
    yield dg.AssetCheckResult(
        check_name=REASON_GATE_CHECK, passed=worst[1].severity == "pass",
        severity=dg.AssetCheckSeverity.ERROR if worst[1].severity == "error" else dg.AssetCheckSeverity.WARN,
        description=" ".join(f"Week {k}: {d.sentence}" for k, d in decisions),
        metadata={"metric": "holdout macro ROC AUC (one vs rest)", "floor": config.macro_auc_floor,
                  "max_auc_drop": config.max_auc_drop, "weeks": len(decisions),
                  "promoted": sum(d.promote for _, d in decisions)},
    )


def week_allowed_ratios(week: date, ts: modelling.TrainingSet) -> pd.DataFrame:
    """Week W's payer ratios from the first adjudications of W's training claims that the payer paid."""
    _, _, cutoff = training_window(week)
    if ts.first_outcome is None or "allowed_amount" not in ts.first_outcome.columns:
        raise KeyError("the training set carries no first-adjudication 'allowed_amount'")
    paid = pd.DataFrame({"payer_id": ts.X["payer_id"].astype(str).to_numpy(),
                         "billed_amount": np.expm1(ts.X["log_billed_amount"].to_numpy(dtype="float64")),
                         "allowed_amount": ts.first_outcome["allowed_amount"].to_numpy(dtype="float64")}
                        )[ts.y.to_numpy() == 0]
    return worklist_lib.payer_allowed_ratios(paid).assign(week=week.isoformat(), cutoff=cutoff)


@dg.asset(
    key=RATIOS_KEY,
    group_name="model",
    partitions_def=weekly_partitions,
    io_manager_key="lake",
    **TRAINING_SET_DEPENDENCY,
    required_resource_keys={"lake"},
    kinds={"pandas"},
)
def payer_allowed_ratios(context: dg.AssetExecutionContext) -> dg.Output:
    """Allowed ÷ billed per payer, from first adjudications paid and known before the week (expected payment)."""
    frame = pd.concat([week_allowed_ratios(date.fromisoformat(k), stored_training_set(context.resources.lake, k))
                       for k in context.partition_keys], ignore_index=True)
    overall = frame[frame["payer_id"] == worklist_lib.OVERALL]
    return dg.Output(frame, metadata={
        "payers": int((frame["payer_id"] != worklist_lib.OVERALL).sum()),
        "overall_allowed_ratio": float(overall["allowed_ratio"].iloc[-1]) if len(overall) else float("nan"),
        "paid_claims": int(overall["paid_claims"].sum()),
    })
