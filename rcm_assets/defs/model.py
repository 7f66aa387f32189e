"""Model: one denial model per week, trained point-in-time, tracked in MLflow, promoted through a gate.

Week W trains on its stored training set (`model/training_set`): gold claims submitted in
[W - horizon - window, W - horizon), labelled with the outcomes that had reached the source and been
adjudicated before W. The stored row per week records the candidate version, the gate decision and which
version serves from W.
"""


import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from importlib import metadata

import dagster as dg
import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from rcm_assets.defs import checks
from rcm_assets.defs.partitions import LABEL_HORIZON_DAYS, TRAIN_WINDOW_DAYS, weekly_partitions
from rcm_assets.defs.training_set import (
    TRAINING_SET_KEY,
    WEEKLY_SET_POLICY,
    stored_training_set,
    training_window,
)
from rcm_assets.lib import champion as champion_lib
from rcm_assets.lib import fallback as fallback_lib
from rcm_assets.lib import modelling, quality, settings
from rcm_assets.platform.resources import FeatureResource, MlflowResource

MODEL_KEY = dg.AssetKey(["model", "denial_model"])
GATE_CHECK = "holdout_auc_passes_gate"
OUTCOME_COLUMNS = ["claim_id", "adjudicated_at", "updated_at", "denied", "claim_status"]  # status: reversals
COMPARISON_COLUMNS = ("champion_auc_on_holdout", "candidate_auc_vs_champion")


# Model and gate parameters the environment or the configuration file (RCM_CONFIG) set, read when the code
# location loads: the defaults of the runs the daemon, the UI, schedules and sensors launch without run config.
CONFIGURED = settings.model_overrides()


class ModelConfig(dg.Config):
    """Defaults: environment > configuration file > the values below (`settings.model_overrides`)."""

    seed: int = CONFIGURED.get("seed", 0)
    holdout_fraction: float = CONFIGURED.get("holdout_fraction", 0.2)
    auc_floor: float = CONFIGURED.get("auc_floor", 0.70)  # below this a candidate is broken, not just worse
    # tolerated AUC loss against the champion on the same holdout
    max_auc_drop: float = CONFIGURED.get("max_auc_drop", 0.01)
    min_labelled_rows: int = CONFIGURED.get("min_labelled_rows", 2_000)
    # OpenMP's default thread count makes fits 10x slower on a shared 2-core machine; raise on big boxes.
    threads: int = CONFIGURED.get("threads", 1)
    # Trees learn from at most this many rows (a seeded sample of the window's earlier rows; calibration
    # always uses the latest slice whole): quality saturates far below a 180-day window of a large system.
    # 0 fits on every row.
    max_fit_rows: int = CONFIGURED.get("max_fit_rows", 1_000_000)
    # Re-train a week whose gate already promoted a model (`rcm train --force`). Its promotion, if any,
    # serves from today on: days already scored keep the model that scored them.
    force: bool = False


def model_requirements() -> list[str]:
    """The packages a loaded model needs, pinned to what trained it (rcm_assets for category_codes)."""
    names = ("scikit-learn", "skops", "pandas", "numpy", "rcm_assets")
    return [f"{name}=={metadata.version(name)}" for name in names]


def score_reference(p: np.ndarray) -> str:
    """Histogram of the holdout scores: the reference distribution for score drift (PSI)."""
    return json.dumps(quality.score_histogram(p))


@dataclass(frozen=True)
class Promotion:
    """A gate's promotion, made only once the run's model rows are written."""

    version: str
    effective: date
    reason: str
    sentence: str = ""
    replaces: str | None = None


def training_params(config: ModelConfig) -> dict:
    """What besides the data decides the fitted model (part of the data fingerprint)."""
    return {"seed": config.seed, "holdout_fraction": config.holdout_fraction,
            "hgb": modelling.DEFAULT_HGB_PARAMS, "fallback_strength": fallback_lib.DEFAULT_STRENGTH,
            "max_fit_rows": config.max_fit_rows}


def registered_for(client, name: str, week: date, fingerprint: str):
    """The version of `name` registered for `week` on the same data fingerprint, if a run already did it."""
    try:
        versions = client.search_model_versions(f"name = '{name}'")
    except MlflowException:
        return None
    same = [mv for mv in versions if (mv.tags or {}).get("dagster_partition") == week.isoformat()
            and (mv.tags or {}).get("data_fingerprint") == fingerprint]
    return max(same, key=lambda mv: int(mv.version)) if same else None


def register_fallback(client, model_name: str, run_id: str, week: date, fingerprint: str,
                      fallback: fallback_lib.FallbackModel, auc: float, feature_version: str) -> str:
    """Log the week's fallback rates in the week's MLflow run and register them (once per fingerprint)."""
    name = fallback_lib.registered_name(model_name)
    existing = registered_for(client, name, week, fingerprint)
    if existing is not None:
        return str(existing.version)
    client.log_dict(run_id, fallback.to_dict(), fallback_lib.ARTIFACT_PATH)
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, description=fallback_lib.__doc__.split("\n\n")[0])
    source = f"{client.get_run(run_id).info.artifact_uri}/{fallback_lib.ARTIFACT_PATH.rsplit('/', 1)[0]}"
    mv = client.create_model_version(name, source, run_id=run_id, tags={
        "dagster_partition": week.isoformat(), "data_fingerprint": fingerprint,
        "holdout_roc_auc": f"{auc:.6f}", "feature_version": feature_version, "kind": "fallback",
    })
    return str(mv.version)


def train_week(
    week: date, ts: modelling.TrainingSet, config: ModelConfig, features: FeatureResource,
    mlf: MlflowResource, run_id: str, log: dg.DagsterLogManager, pending: list[Promotion] | None = None,
) -> tuple[dict, champion_lib.GateDecision, Promotion | None]:
    """Train, log, register and gate one week's model and its fallback; returns its row, the gate decision
    and the promotion to make (not made here: nothing is promoted unless the week's row is written).
    `pending` holds the promotions of earlier weeks of the same run, which the gate treats as made.
    A re-run on the same data (same fingerprint) reuses the version registered before, never a duplicate."""
    start, end, cutoff = training_window(week)
    client = mlf.client()
    events = champion_lib.history(client, mlf.model_name)  # read once: the force rule and the comparison
    earlier = champion_lib.promoted_for_week(events, week)
    if earlier is not None and not config.force:
        raise dg.Failure(
            f"model week {week} already promoted v{earlier}; re-training it would change the champion of "
            f"days already scored. Re-run with --force (rcm train --date {week} --force) to train it again: "
            "its promotion, if any, then serves from today on.",
            allow_retries=False,
        )
    if ts.stats["labelled"] < config.min_labelled_rows:
        raise dg.Failure(
            f"model week {week}: only {ts.stats['labelled']} labelled claims in [{start.date()}, {end.date()}) "
            f"(need {config.min_labelled_rows}); materialize gold and silver/remittances for the window first",
            metadata={"labelled": ts.stats["labelled"], "unlabelled": ts.stats["unlabelled"]},
        )
    train, holdout = modelling.time_holdout_split(ts, config.holdout_fraction)
    fingerprint = modelling.data_fingerprint(ts, training_params(config))
    registered = registered_for(client, mlf.model_name, week, fingerprint)
    if registered is None:
        model = modelling.fit_model(train.X, train.y, seed=config.seed, n_threads=config.threads,
                                    max_fit_rows=config.max_fit_rows or None)
    else:  # an earlier run trained on exactly this data and failed after registering: reuse it
        log.info(f"model week {week}: v{registered.version} was registered on the same data "
                 f"(fingerprint {fingerprint}); reusing it instead of registering a duplicate")
        model = mlflow.sklearn.load_model(f"models:/{mlf.model_name}/{registered.version}")
    p = modelling.predict_denial(model, holdout.X, n_threads=config.threads)
    metrics = modelling.evaluate(holdout.y, p)
    fallback = fallback_lib.fit_fallback(train.X, train.y)
    fallback_auc = float(modelling.evaluate(holdout.y, fallback.predict(holdout.X))["roc_auc"])

    # the champion the week replaces: as of the day before it (not a version this week itself promoted)
    the_day_before = week - timedelta(days=1)
    earlier_in_run = [p for p in pending or [] if p.effective <= the_day_before]
    champion_version = (earlier_in_run[-1].version if earlier_in_run
                        else champion_lib.serving_version(events, the_day_before))
    champion_auc, candidate_auc_unseen, no_comparison = _champion_comparison(
        mlf, champion_version, holdout, p, features.version, log, config.threads, config.auc_floor)
    if registered is None:
        version, mlflow_run_id = _log_and_register(week, model, train, holdout, ts, p, metrics, fallback_auc,
                                                   fingerprint, config, features, mlf, run_id)
    else:
        version, mlflow_run_id = str(registered.version), registered.run_id
    fallback_version = register_fallback(client, mlf.model_name, mlflow_run_id, week, fingerprint, fallback,
                                         fallback_auc, features.version)

    decision = champion_lib.gate(metrics["roc_auc"], config.auc_floor, champion_auc, config.max_auc_drop,
                                 champion_version, candidate_auc_vs_champion=candidate_auc_unseen,
                                 no_comparison=no_comparison)
    client.set_model_version_tag(mlf.model_name, version, "gate_decision", decision.sentence)
    client.set_model_version_tag(mlf.model_name, version, "gate_severity", decision.severity)
    promotion = None
    if decision.promote:
        # a forced re-run never changes who served the days already scored: it serves from today on
        effective = max(week, datetime.now(UTC).date()) if earlier is not None else week
        promotion = Promotion(version, effective, champion_lib.gate_reason(week),
                              f"Week {week}: {decision.sentence} v{version} serves from {effective}.",
                              champion_version)
    log.info(f"model week {week}: v{version} — {decision.sentence} "
             f"(fallback v{fallback_version}: holdout ROC AUC {fallback_auc:.4f})")
    row = {
        "week": week.isoformat(), "model_name": mlf.model_name, "model_version": version,
        "mlflow_run_id": mlflow_run_id, "feature_version": features.version,
        "window_start": start, "window_end": end, "cutoff": cutoff,
        "train_rows": len(train.X), "holdout_rows": len(holdout.X), "labelled": ts.stats["labelled"],
        "unlabelled": ts.stats["unlabelled"], "holdout_roc_auc": float(metrics["roc_auc"]),
        "holdout_pr_auc": float(metrics["pr_auc"]), "holdout_brier": float(metrics["brier"]),
        "champion_version_before": champion_version, "champion_auc_on_holdout": champion_auc,
        "candidate_auc_vs_champion": candidate_auc_unseen,
        "promoted": decision.promote, "gate": decision.severity, "gate_sentence": decision.sentence,
        "serving_version": version if decision.promote else champion_version,
        "data_fingerprint": fingerprint, "reused_registered_version": registered is not None,
        "fallback_version": fallback_version, "fallback_holdout_roc_auc": fallback_auc,
    }
    return row, decision, promotion


def _log_and_register(
    week: date, model, train: modelling.TrainingSet, holdout: modelling.TrainingSet, ts: modelling.TrainingSet,
    p: np.ndarray, metrics: dict, fallback_auc: float, fingerprint: str, config: ModelConfig,
    features: FeatureResource, mlf: MlflowResource, run_id: str,
) -> tuple[str, str]:
    """One MLflow run for the week: params, metrics, plots, the model; registered and tagged."""
    start, end, cutoff = training_window(week)
    client = mlf.client()
    with mlflow.start_run(
        experiment_id=mlf.experiment_id(), run_name=f"denial_model-{week}",
        tags={"dagster_run_id": run_id, "dagster_partition": week.isoformat(),
              "feature_version": features.version},
    ) as run:
        mlflow.log_params({
            "week": week.isoformat(), "cutoff": cutoff.isoformat(), "window_start": start.isoformat(),
            "window_end": end.isoformat(), "window_days": TRAIN_WINDOW_DAYS, "horizon_days": LABEL_HORIZON_DAYS,
            "feature_version": features.version, "seed": config.seed,
            "holdout_fraction": config.holdout_fraction, "data_fingerprint": fingerprint,
            "max_fit_rows": config.max_fit_rows,
            **modelling.model_summary(model)["params"],
        })
        mlflow.log_metrics({
            **modelling.metric_values(metrics, prefix="holdout_"),
            "train_rows": len(train.X), "holdout_rows": len(holdout.X), "labelled": ts.stats["labelled"],
            "unlabelled": ts.stats["unlabelled"], "denial_rate": ts.stats["denial_rate"],
            "fallback_holdout_roc_auc": fallback_auc,
        })
        mlflow.log_figure(modelling.roc_figure(holdout.y.to_numpy(), p), "plots/roc.png")
        mlflow.log_figure(modelling.pr_figure(holdout.y.to_numpy(), p), "plots/precision_recall.png")
        mlflow.log_figure(modelling.calibration_figure(holdout.y.to_numpy(), p), "plots/calibration.png")
        importances = modelling.permutation_importances(model, holdout.X, holdout.y, sample=2000, n_repeats=2,
                                                       seed=config.seed, n_threads=config.threads)
        mlflow.log_figure(modelling.importance_figure(importances), "plots/feature_importance.png")
        mlflow.log_dict(modelling.reliability_table(holdout.y.to_numpy(), p).to_dict("list"),
                        "calibration/reliability.json")
        from rcm_assets.lib.model_card import holdout_card  # the version's model card (issue 15.6)

        mlflow.log_text(holdout_card(
            model_name=mlf.model_name, week=week, window=(start, end, cutoff), feature_version=features.version,
            y=holdout.y, p=p, X=holdout.X, metrics=metrics, run_id=run.info.run_id, fallback_auc=fallback_auc,
            reliability=modelling.reliability_table(holdout.y.to_numpy(), p),
            counts={"train_rows": len(train.X), "holdout_rows": len(holdout.X), "labelled": ts.stats["labelled"]},
        ), "model_card.md")
        info = mlflow.sklearn.log_model(
            model, name="model", signature=infer_signature(holdout.X.head(0), p[:0]),
            registered_model_name=mlf.model_name,
            skops_trusted_types=list(modelling.SKOPS_TRUSTED_TYPES),
            # Stated, not inferred: inference loads the model in a subprocess (~7 s per training).
            pip_requirements=model_requirements(),
        )
    version = str(info.registered_model_version)
    for tag, value in {
        "dagster_run_id": run_id, "dagster_partition": week.isoformat(), "feature_version": features.version,
        "window_start": start.date().isoformat(), "window_end": end.date().isoformat(),
        "cutoff": cutoff.date().isoformat(), "holdout_roc_auc": f"{metrics['roc_auc']:.6f}",
        "score_reference": score_reference(p), "data_fingerprint": fingerprint,
        "fallback_holdout_roc_auc": f"{fallback_auc:.6f}",
    }.items():
        client.set_model_version_tag(mlf.model_name, version, tag, value)
    return version, run.info.run_id


def _champion_comparison(
    mlf: MlflowResource, version: str | None, holdout: modelling.TrainingSet, candidate_p: np.ndarray,
    feature_version: str, log: dg.DagsterLogManager, threads: int | None = None, floor: float = 0.70,
) -> tuple[float | None, float | None, str | None]:
    """(champion AUC, candidate AUC, why not) on the holdout claims the champion did not train on.

    Holdout claims submitted before the champion's window end may be in its training set, which would
    flatter it; both models are compared on the rest, when they hold the power minimum of denials
    (`champion.min_comparable_denials`). Otherwise the AUCs are None and the third item says why, in words
    the gate's sentence carries.
    """
    if version is None:
        return None, None, None
    mv = mlf.client().get_model_version(mlf.model_name, version)
    if mv.tags.get("feature_version") != feature_version:
        log.warning(f"champion v{version} was trained on other features; comparing against the floor only")
        return None, None, "it was trained on other features"
    unseen = (holdout.claim_keys["submitted_at"] >= pd.Timestamp(mv.tags["window_end"])).to_numpy()
    y = holdout.y.to_numpy()[unseen]
    denied = int(y.sum())
    needed = champion_lib.min_comparable_denials(floor, (len(y) - denied) / max(denied, 1))
    if denied < needed or len(np.unique(y)) < 2:
        why = (f"only {len(y):,} holdout claims ({denied:,} denied) are unseen by it, fewer than the {needed} "
               f"denials a comparison needs (power)")
        log.warning(f"champion v{version}: {why}; comparing against the floor only")
        return None, None, why
    champion = mlflow.sklearn.load_model(f"models:/{mlf.model_name}/{version}")
    champion_p = modelling.predict_denial(champion, holdout.X[unseen], n_threads=threads)
    return (float(modelling.evaluate(y, champion_p)["roc_auc"]),
            float(modelling.evaluate(y, candidate_p[unseen])["roc_auc"]), None)


@dg.asset(
    key=MODEL_KEY,
    group_name="model",
    partitions_def=weekly_partitions,
    io_manager_key="lake",
    deps=[TRAINING_SET_KEY],  # read a week at a time from the lake (defs/training_set.py)
    required_resource_keys={"lake", "features", "mlflow_tracking"},
    backfill_policy=WEEKLY_SET_POLICY,
    kinds={"scikitlearn", "mlflow"},
    check_specs=[dg.AssetCheckSpec(
        GATE_CHECK, asset=MODEL_KEY, blocking=True, partitions_def=weekly_partitions,
        description="Holdout AUC above the floor and not worse than the champion's by more than the margin",
    )],
)
def denial_model(context: dg.AssetExecutionContext, config: ModelConfig) -> Iterator:
    """Weekly calibrated gradient-boosting denial model, registered in MLflow, promoted through a gate."""
    features: FeatureResource = context.resources.features
    mlflow_tracking: MlflowResource = context.resources.mlflow_tracking
    rows, decisions, promotions = [], [], []
    for key in context.partition_keys:  # one run may train several weeks, oldest first
        ts = stored_training_set(context.resources.lake, key)
        row, decision, promotion = train_week(date.fromisoformat(key), ts, config, features,
                                              mlflow_tracking, context.run.run_id, context.log, promotions)
        del ts
        rows.append(row)
        decisions.append((key, decision))
        promotions += [promotion] if promotion else []
    # no comparable champion (None) keeps these float: a one-week run would otherwise store them as text,
    # and the weeks' files would no longer read as one table
    frame = pd.DataFrame(rows).astype({c: "float64" for c in COMPARISON_COLUMNS})
    # the MLflow run, registered version and plots on the asset page (issue 15.3)
    from rcm_assets.platform.catalog import model_run_metadata
    yield dg.Output(frame, metadata={
        "registered_versions": ", ".join(frame["model_version"]),  # every version this run registered
        **model_run_metadata(mlflow_tracking.tracking_uri, mlflow_tracking.experiment_id(), frame,
                             client=mlflow_tracking.client()),  # and its model card (issue 15.6)
        "promoted": int(frame["promoted"].sum()),
        "training_window": f"{frame['window_start'].iloc[-1].date()}..{frame['window_end'].iloc[-1].date()}",
    })
    # the rows are written (the IO manager stored the output above): now, and only now, promote
    client = mlflow_tracking.client()
    for promotion in promotions:
        champion_lib.promote(client, mlflow_tracking.model_name, promotion.version, promotion.effective,
                             reason=promotion.reason, by=context.run.run_id, sentence=promotion.sentence,
                             replaces=promotion.replaces)
    # one evaluation per model week (a multi-week run records each week's own decision)
    yield from checks.record({key: [dg.AssetCheckResult(
        check_name=GATE_CHECK, passed=decision.severity == "pass",
        severity=dg.AssetCheckSeverity.ERROR if decision.severity == "error" else dg.AssetCheckSeverity.WARN,
        description=f"Week {key}: {decision.sentence}",
        metadata={"metric": "holdout ROC AUC", "floor": config.auc_floor, "max_auc_drop": config.max_auc_drop,
                  "decision": f"Week {key}: {decision.sentence}",
                  "champion_holdout_roc_auc": round(float(row["holdout_roc_auc"]), 4),
                  "fallback_holdout_roc_auc": round(float(row["fallback_holdout_roc_auc"]), 4)},
    )] for (key, decision), row in zip(decisions, rows, strict=True)}, context)
    refused = [(key, decision) for key, decision in decisions if decision.severity == "error"]
    if refused:  # the rows document the refusal; the run still fails, as a blocking check does
        raise dg.Failure(
            description=" ".join(f"Week {key}: {decision.sentence}" for key, decision in refused),
            metadata={"failed_checks": GATE_CHECK, "failed_partitions": ", ".join(k for k, _ in refused)},
            allow_retries=False,
        )
