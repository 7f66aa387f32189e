"""Monitoring: drift of features and scores per day, realized performance on matured labels each week,
label arrival per submission cohort. Thin wiring around `lib.monitoring`.

Every asset stores its rows for every day (or week), whether or not a threshold fired, so the history is
queryable and plotted; WARN/ERROR checks are evaluated per day (per partition), never averaged over a
range. Thresholds come from run config, else from `RCM_MONITOR_<FIELD>` environment variables (read at
run time), else the defaults below.

The realized-performance ERROR check (champion AUC below the floor) is the monitor; the model-lifecycle
review (`lib/lifecycle.py`) acts on it (rollback), this module does not.
"""


import base64
import json
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, timedelta

import dagster as dg
import numpy as np
import pandas as pd

from rcm_assets.defs import predictions as predictions_defs
from rcm_assets.defs.automation import follow_upstream
from rcm_assets.defs.partitions import (
    DAILY_BACKFILL_POLICY,
    LABEL_HORIZON_DAYS,
    TRAIN_WINDOW_DAYS,
    scoring_partitions,
    weekly_partitions,
)
from rcm_assets.lib import monitoring as mon
from rcm_assets.lib.features import FEATURE_COLUMNS
from rcm_assets.platform import catalog
from rcm_assets.platform.resources import MlflowResource

GOLD_KEY = dg.AssetKey(["gold", "claim_features"])
SCORES_KEY = predictions_defs.SCORES_KEY
SHADOW_KEY = dg.AssetKey(["predictions", "shadow_scores"])
REMITTANCES_KEY = dg.AssetKey(["silver", "remittances"])
FEATURE_DRIFT_KEY = dg.AssetKey(["monitoring", "feature_drift"])
SCORE_DRIFT_KEY = dg.AssetKey(["monitoring", "score_drift"])
PERFORMANCE_KEY = dg.AssetKey(["monitoring", "realized_performance"])
FRESHNESS_KEY = dg.AssetKey(["monitoring", "label_freshness"])

# Days loaded at definition time (partition mappings are fixed when the code location loads).
HISTORY_DAYS = 28  # drift-over-time plots and the per-payer score baseline
# label freshness follows cohorts for 60 days (remittances arrive 14–60 days after submission), or the
# label horizon when that is longer
COHORT_DAYS = max(LABEL_HORIZON_DAYS, 60)
PERFORMANCE_WEEKS = math.ceil((LABEL_HORIZON_DAYS + 7) / 7) + 1
SCORE_COLUMNS = ["dt", "claim_id", "claim_version", "denial_probability", "decision", "threshold", "model_name",
                 "model_version", "training_window_start", "training_window_end", "feature_version"]
OUTCOME_COLUMNS = ["dt", "claim_id", "adjudicated_at", "updated_at", "denied", "claim_status"]
GOLD_KEYS = ["dt", "claim_id", "claim_version", "submitted_at", "payer_id", "cpt_family"]


class MonitoringConfig(dg.Config):
    """Thresholds; None means RCM_MONITOR_<FIELD> from the environment, else the default in DEFAULTS."""

    psi_warn: float | None = None
    psi_error: float | None = None
    ks_warn: float | None = None
    ks_error: float | None = None
    flagged_change_warn: float | None = None
    flagged_change_error: float | None = None
    auc_warn: float | None = None
    auc_floor: float | None = None
    maturity_days: int | None = None
    sla_days: int | None = None
    sla_share_warn: float | None = None
    sla_share_error: float | None = None
    early_z_warn: float | None = None
    early_z_error: float | None = None
    early_window_days: int | None = None
    min_claims: int | None = None
    min_payer_claims: int | None = None


DEFAULTS: dict[str, float] = {
    "psi_warn": 0.10, "psi_error": 0.25,  # the usual PSI rule of thumb
    "ks_warn": 0.10, "ks_error": 0.20,
    "flagged_change_warn": 0.05, "flagged_change_error": 0.10,  # share points of claims sent to review
    "auc_warn": 0.72, "auc_floor": 0.70,  # the floor is the model gate's (ModelConfig.auc_floor)
    "maturity_days": LABEL_HORIZON_DAYS,
    "sla_days": 45, "sla_share_warn": 0.75, "sla_share_error": 0.50,
    "early_z_warn": 5.0, "early_z_error": 7.0, "early_window_days": 42,
    "min_claims": 50, "min_payer_claims": 200,
}


def setting(config: MonitoringConfig, name: str) -> float:
    """Run config, else RCM_MONITOR_<NAME>, else the default; a bad environment value names the variable."""
    value = getattr(config, name)
    if value is not None:
        return value
    env = f"RCM_MONITOR_{name.upper()}"
    raw = os.environ.get(env)
    if raw is None:
        return DEFAULTS[name]
    try:
        return int(raw) if isinstance(DEFAULTS[name], int) else float(raw)
    except ValueError:
        raise dg.Failure(f"{env}={raw!r} is not a number", allow_retries=False) from None


def band(config: MonitoringConfig, name: str, low_is_bad: bool = False) -> mon.Band:
    """The warn/error pair of a statistic (the AUC's error level is the floor)."""
    error = "auc_floor" if name == "auc" else f"{name}_error"
    return mon.Band(setting(config, f"{name}_warn"), setting(config, error), low_is_bad=low_is_bad)


# --------------------------------------------------------------------------------------------------
# Shared wiring
# --------------------------------------------------------------------------------------------------


def frames(value: object) -> pd.DataFrame:
    """An input loaded over several partitions (dict), one (frame) or none (None) as one frame."""
    if value is None:
        return pd.DataFrame()
    if isinstance(value, dict):
        parts = [f for f in value.values() if f is not None and len(f)]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return value


def roles(scores: pd.DataFrame, shadow: pd.DataFrame | None = None) -> pd.DataFrame:
    """Billers' scores with role = scored_by (champion or fallback), plus shadow rows with their role."""
    out = scores.assign(role=scores["scored_by"] if "scored_by" in scores.columns else "champion")
    if shadow is not None and len(shadow) and "role" in shadow.columns:
        out = pd.concat([out, shadow], ignore_index=True)
    return out


def with_claim_keys(scores: pd.DataFrame, gold: pd.DataFrame) -> pd.DataFrame:
    """Scores joined to their gold row: submitted_at, payer_id, cpt_family (codes, no PHI)."""
    join = ["dt", "claim_id", "claim_version"]
    keys = gold[[c for c in GOLD_KEYS if c in gold.columns and (c in join or c not in scores.columns)]]
    keys = keys.drop_duplicates(join)
    keys = keys.astype({c: object for c in ("payer_id", "cpt_family") if c in keys.columns})
    return scores.merge(keys, on=["dt", "claim_id", "claim_version"], how="left", validate="many_to_one")


def check_events(context: dg.AssetExecutionContext, key: dg.AssetKey,
                 by_day: Mapping[str, Sequence[dg.AssetCheckResult]]) -> Iterator:
    """One evaluation per check and partition (never diluted over a range run); non-blocking: the rows
    are stored whatever the result, and an ERROR reaches the alert sensor, not the run status."""
    announced = set()
    for day, results in by_day.items():
        for r in results:
            check_key = dg.AssetCheckKey(key, r.check_name)
            if check_key not in context.selected_asset_check_keys:
                continue
            if check_key not in announced:
                announced.add(check_key)
                yield dg.Output(None, output_name=context.assets_def.get_output_name_for_asset_check_key(check_key))
            yield dg.AssetCheckEvaluation(asset_key=key, check_name=r.check_name, passed=r.passed,
                                          metadata=r.metadata, severity=r.severity, description=r.description,
                                          blocking=False, partition=day, target_materialization_data=None)


def status_check(name: str, rows: pd.DataFrame, what: str, label: str, value: str,
                 extra: Mapping[str, object] | None = None) -> dg.AssetCheckResult:
    """WARN/ERROR from the rows' worst status; the description names the offending `label`s (codes only)."""
    if not len(rows) or value not in rows.columns:  # a day without rows (nothing scored yet)
        rows = pd.DataFrame({"status": pd.Series([], dtype=object), label: [], value: pd.Series([], dtype=float)})
    status = mon.worst(rows["status"]) if len(rows) else "insufficient"
    bad = rows[rows["status"].isin(["warn", "error"])].sort_values(value, ascending=False, key=lambda s: s.abs())
    listed = ", ".join(f"{r[label]} {r[value]:.3f}" for _, r in bad.head(8).iterrows())
    description = (f"{len(bad)} {what} past the threshold ({status.upper()}): {listed}" if len(bad)
                   else f"no {what} past the threshold" + (" (too few claims to judge)" if status == "insufficient" else ""))
    return dg.AssetCheckResult(
        check_name=name, passed=status not in ("warn", "error"),
        severity=dg.AssetCheckSeverity.ERROR if status == "error" else dg.AssetCheckSeverity.WARN,
        description=description,
        metadata={"status": status, "flagged": int(len(bad)), **(extra or {})},
    )


def png_markdown(png: bytes, title: str) -> dg.MetadataValue:
    """Markdown with the PNG embedded (the asset page renders it)."""
    return dg.MetadataValue.md(f"**{title}**\n\n![{title}](data:image/png;base64,{base64.b64encode(png).decode()})")


def log_plots(mlf: MlflowResource, run_name: str, plots: Mapping[str, bytes], metrics: Mapping[str, float],
              tags: Mapping[str, str]) -> str:
    """Log PNGs and metrics to the monitoring experiment; returns the MLflow run id."""
    client = mlf.client()
    name = f"{mlf.experiment}-monitoring"
    found = client.get_experiment_by_name(name)
    experiment_id = found.experiment_id if found else client.create_experiment(name, artifact_location=(
        f"{mlf.artifact_location.rstrip('/')}/monitoring" if mlf.artifact_location else None))
    run = client.create_run(experiment_id, run_name=run_name, tags=dict(tags))
    for key, value in metrics.items():
        if value is not None and math.isfinite(value):
            client.log_metric(run.info.run_id, key, float(value))
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as tmp:
        for file_name, png in plots.items():
            path = Path(tmp) / file_name
            path.write_bytes(png)
            client.log_artifact(run.info.run_id, str(path), artifact_path="plots")
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def plot_metadata(mlf: MlflowResource, asset: str, partition: str, plots: Mapping[str, bytes],
                  metrics: Mapping[str, float]) -> dict[str, dg.MetadataValue]:
    run_id = log_plots(mlf, f"{asset}-{partition}", plots, metrics,
                       {"monitoring_asset": asset, "dagster_partition": partition})
    out = {f"plot_{name.removesuffix('.png')}": png_markdown(png, name.removesuffix(".png").replace("_", " "))
           for name, png in plots.items()}
    out["mlflow_run_id"] = dg.MetadataValue.text(run_id)
    return out


HISTORY_IN = {"metadata": {"allow_missing_partitions": True}, "partition_mapping": dg.TimeWindowPartitionMapping(
    start_offset=-HISTORY_DAYS, end_offset=-1, allow_nonexistent_upstream_partitions=True)}


WITH_HISTORY = dg.TimeWindowPartitionMapping(start_offset=-HISTORY_DAYS, end_offset=0,
                                             allow_nonexistent_upstream_partitions=True)


def day_automation(key: dg.AssetKey) -> dg.AutomationCondition:
    """Follow the day's scores; the asset's own earlier days (plot history) never trigger it."""
    return follow_upstream().ignore(dg.AssetSelection.assets(key))


# --------------------------------------------------------------------------------------------------
# monitoring/feature_drift
# --------------------------------------------------------------------------------------------------


def reference_for(gold_window: pd.DataFrame, start: str, end: str, feature_version: str) -> pd.DataFrame:
    """The serving model's training reference: gold features submitted in its window, same feature_version."""
    if gold_window.empty:
        return gold_window
    submitted = pd.to_datetime(gold_window["submitted_at"])
    rows = gold_window[(submitted >= pd.Timestamp(start)) & (submitted < pd.Timestamp(end))
                       & (gold_window["feature_version"] == feature_version)]
    return mon.reference_sample(rows.drop_duplicates(["claim_id", "claim_version"]))


@dg.asset(
    key=FEATURE_DRIFT_KEY,
    group_name="monitoring",
    partitions_def=scoring_partitions,
    io_manager_key="lake",
    ins={
        # a day nothing scored (no model week trained yet, a failed scoring run) is recorded as not measured
        "scores": dg.AssetIn(key=SCORES_KEY, metadata={"columns": SCORE_COLUMNS, "allow_missing_partitions": True}),
        # the day's features and the champion's training window before it (window + horizon before the
        # day, with four weeks of slack for a champion trained a few weeks earlier); one input per asset key
        "gold": dg.AssetIn(key=GOLD_KEY, partition_mapping=dg.TimeWindowPartitionMapping(
            start_offset=-(TRAIN_WINDOW_DAYS + LABEL_HORIZON_DAYS + 28), end_offset=0,
            allow_nonexistent_upstream_partitions=True),
            metadata={"allow_missing_partitions": True,
                      "columns": ["dt", "claim_id", "claim_version", "submitted_at", "feature_version",
                                  *FEATURE_COLUMNS]}),
        "history": dg.AssetIn(key=FEATURE_DRIFT_KEY, **HISTORY_IN),
    },
    backfill_policy=DAILY_BACKFILL_POLICY,
    automation_condition=day_automation(FEATURE_DRIFT_KEY).ignore(dg.AssetSelection.assets(GOLD_KEY)),
    kinds={"pandas", "parquet"},
    owners=catalog.OWNERS,
    check_specs=[dg.AssetCheckSpec(
        "feature_drift_within_thresholds", asset=FEATURE_DRIFT_KEY, partitions_def=scoring_partitions,
        description="Per day: every feature's PSI (and KS for numerics) against the serving model's training "
                    "reference below the warn/error thresholds")],
)
def feature_drift(context: dg.AssetExecutionContext, config: MonitoringConfig, gold: object,
                  scores: pd.DataFrame, history: object, mlflow_tracking: MlflowResource) -> Iterator:
    """Per day and feature: PSI (and KS for numerics) of the day's gold features against the serving
    model's training window; one row per feature every day."""
    window, scores = frames(gold), frames(scores)
    gold = window[window["dt"].isin(context.partition_keys)] if len(window) else window
    psi_band, ks_band = band(config, "psi"), band(config, "ks")
    min_rows = int(setting(config, "min_claims"))
    served = roles(scores) if len(scores) else scores
    unscored = sorted(set(context.partition_keys) - set(scores["dt"] if len(scores) else []))
    if unscored:
        context.log.warning(f"no scores for {len(unscored)} day(s) ({unscored[0]}..{unscored[-1]}): their feature "
                            "drift is not measured (predictions/claim_denial_scores has no partition for them)")
    references: dict[tuple, pd.DataFrame] = {}
    out, by_day = [], {}
    for day in context.partition_keys:
        day_gold = gold[gold["dt"] == day] if len(gold) else gold
        day_scores = served[(served["dt"] == day) & (served["role"] == "champion")] if len(served) else served
        rows = pd.DataFrame()
        if len(day_scores) and len(day_gold):
            lineage = day_scores.iloc[0]
            ref_key = (lineage["model_version"], lineage["training_window_start"], lineage["training_window_end"],
                       lineage["feature_version"])
            if ref_key not in references:
                references[ref_key] = reference_for(window, str(ref_key[1]), str(ref_key[2]), str(ref_key[3]))
            rows = mon.feature_drift(references[ref_key], day_gold, psi_band, ks_band, min_rows=min_rows)
            rows = rows.assign(model_version=str(lineage["model_version"]))
        rows = rows.assign(dt=day) if len(rows) else pd.DataFrame({"dt": pd.Series([], dtype=object)})
        out.append(rows)
        by_day[day] = [status_check("feature_drift_within_thresholds", rows if len(rows) else
                                    pd.DataFrame({"status": []}), "features", "feature", "psi",
                                    {"psi_warn": psi_band.warn, "psi_error": psi_band.error,
                                     "ks_warn": ks_band.warn, "ks_error": ks_band.error})]
    table = pd.concat(out, ignore_index=True)
    past = frames(history)
    plot_rows = pd.concat([past, table], ignore_index=True) if len(past) else table
    metadata = {"days": len(context.partition_keys), "days_without_scores": len(unscored), "features": int(table["feature"].nunique()) if "feature" in table else 0,
                "max_psi": float(table["psi"].max()) if "psi" in table and table["psi"].notna().any() else 0.0,
                "worst_status": mon.worst(table["status"]) if "status" in table else "insufficient"}
    if "psi" in plot_rows and plot_rows["psi"].notna().any():
        png = mon.figure_png(mon.drift_over_time_figure(plot_rows, "psi", "Feature PSI by day", "feature",
                                                        psi_band.warn, psi_band.error))
        metadata |= plot_metadata(mlflow_tracking, "feature_drift", context.partition_keys[-1],
                                  {"feature_drift_over_time.png": png}, {"max_psi": metadata["max_psi"]})
    yield dg.Output(table, metadata=metadata)
    yield from check_events(context, FEATURE_DRIFT_KEY, by_day)


# --------------------------------------------------------------------------------------------------
# monitoring/score_drift
# --------------------------------------------------------------------------------------------------


def score_reference(mlf: MlflowResource, model_name: str, version: str) -> list[float]:
    """The holdout score histogram the model version was registered with (empty when it has none)."""
    tags = mlf.client().get_model_version(model_name, version).tags or {}
    return json.loads(tags.get("score_reference", "[]"))


@dg.asset(
    key=SCORE_DRIFT_KEY,
    group_name="monitoring",
    partitions_def=scoring_partitions,
    io_manager_key="lake",
    ins={
        # the day and the four weeks before it (the per-payer baseline); one input per asset key
        "scores": dg.AssetIn(key=SCORES_KEY, partition_mapping=WITH_HISTORY,
                             metadata={"allow_missing_partitions": True}),
        "gold": dg.AssetIn(key=GOLD_KEY, partition_mapping=WITH_HISTORY,
                           metadata={"allow_missing_partitions": True, "columns": GOLD_KEYS}),
        "history": dg.AssetIn(key=SCORE_DRIFT_KEY, **HISTORY_IN),
    },
    backfill_policy=DAILY_BACKFILL_POLICY,
    automation_condition=day_automation(SCORE_DRIFT_KEY).ignore(dg.AssetSelection.assets(GOLD_KEY)),
    kinds={"pandas", "parquet"},
    owners=catalog.OWNERS,
    check_specs=[dg.AssetCheckSpec(
        "score_drift_within_thresholds", asset=SCORE_DRIFT_KEY, partitions_def=scoring_partitions,
        description="Per day, overall and per payer: score PSI and the change in the share flagged for review "
                    "below the warn/error thresholds")],
)
def score_drift(context: dg.AssetExecutionContext, config: MonitoringConfig, scores: object,
                gold: object, history: object, mlflow_tracking: MlflowResource) -> Iterator:
    """Per day, overall and per payer: score PSI and share flagged for review (overall against the
    serving model's holdout scores, per payer against the payer's previous four weeks)."""
    scores = frames(scores)
    scores = base = with_claim_keys(scores, frames(gold)) if len(scores) else scores
    psi_band, flagged_band = band(config, "psi"), band(config, "flagged_change")
    min_claims = int(setting(config, "min_claims"))
    refs: dict[tuple, list[float]] = {}
    out, by_day = [], {}
    for day in context.partition_keys:
        parts = []
        day_scores = roles(scores[scores["dt"] == day]) if len(scores) else scores
        for (role, name, version), part in (day_scores.groupby(["role", "model_name", "model_version"])
                                            if len(day_scores) else []):
            if (name, version) not in refs:
                refs[(name, version)] = score_reference(mlflow_tracking, name, str(version))
            prior = base[(base["dt"] < day) & (base["dt"] >= str(date.fromisoformat(day) - timedelta(days=HISTORY_DAYS)))] \
                if len(base) else None
            rows = mon.score_drift(part, part["payer_id"], refs[(name, version)], prior, psi_band, flagged_band,
                                   min_claims=min_claims, min_payer_claims=int(setting(config, "min_payer_claims")))
            parts.append(rows.assign(role=role, model_name=name, model_version=str(version)))
        rows = pd.concat(parts, ignore_index=True).assign(dt=day) if parts else pd.DataFrame({"dt": pd.Series([], dtype=object)})
        out.append(rows)
        by_day[day] = [status_check("score_drift_within_thresholds", rows if len(rows) else pd.DataFrame({"status": []}),
                                    "segments", "segment", "psi",
                                    {"psi_warn": psi_band.warn, "psi_error": psi_band.error,
                                     "flagged_change_warn": flagged_band.warn, "flagged_change_error": flagged_band.error})]
    table = pd.concat(out, ignore_index=True)
    past = frames(history)
    plot_rows = pd.concat([past, table], ignore_index=True) if len(past) else table
    overall = table[table["segment"] == "all"] if "segment" in table else table
    metadata = {"days": len(context.partition_keys),
                "overall_psi": float(overall["psi"].iloc[-1]) if len(overall) else 0.0,
                "flagged_share": float(overall["flagged_share"].iloc[-1]) if len(overall) else 0.0,
                "worst_status": mon.worst(table["status"]) if "status" in table else "insufficient"}
    if "psi" in plot_rows and plot_rows["psi"].notna().any():
        png = mon.figure_png(mon.drift_over_time_figure(plot_rows, "psi", "Score PSI by day and payer", "segment",
                                                        psi_band.warn, psi_band.error))
        metadata |= plot_metadata(mlflow_tracking, "score_drift", context.partition_keys[-1],
                                  {"score_drift_over_time.png": png},
                                  {"overall_psi": metadata["overall_psi"], "flagged_share": metadata["flagged_share"]})
    yield dg.Output(table, metadata=metadata)
    yield from check_events(context, SCORE_DRIFT_KEY, by_day)


# --------------------------------------------------------------------------------------------------
# monitoring/realized_performance
# --------------------------------------------------------------------------------------------------

WEEKS_BACK = dg.TimeWindowPartitionMapping(start_offset=-PERFORMANCE_WEEKS, end_offset=-1,
                                           allow_nonexistent_upstream_partitions=True)
SHADOW_EXISTS = hasattr(predictions_defs, "shadow_scores")
PERFORMANCE_INS = {
    "scores": dg.AssetIn(key=SCORES_KEY, partition_mapping=WEEKS_BACK, metadata={"allow_missing_partitions": True}),
    "gold": dg.AssetIn(key=GOLD_KEY, partition_mapping=WEEKS_BACK,
                       metadata={"allow_missing_partitions": True, "columns": GOLD_KEYS}),
    "outcomes": dg.AssetIn(key=REMITTANCES_KEY, partition_mapping=WEEKS_BACK,
                           metadata={"allow_missing_partitions": True,
                                     "columns": OUTCOME_COLUMNS}),
} | ({"shadow": dg.AssetIn(key=SHADOW_KEY, partition_mapping=WEEKS_BACK,
                           metadata={"allow_missing_partitions": True})} if SHADOW_EXISTS else {})


def matured_cohort(week: str, maturity_days: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Claims scored in the seven days that ended `maturity_days` before week W: [W-m-7, W-m)."""
    end = pd.Timestamp(week) - pd.Timedelta(days=maturity_days)
    return end - pd.Timedelta(days=7), end


@dg.asset(
    key=PERFORMANCE_KEY,
    group_name="monitoring",
    partitions_def=weekly_partitions,
    io_manager_key="lake",
    ins=PERFORMANCE_INS,
    backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=8),  # weeks, as the model
    # weekly by `weekly_performance_schedule` (Monday 06:00 UTC); the shadow input exists only once predictions/shadow_scores does: inputs arrive as **inputs, so the
    # resource is named here rather than by a typed parameter
    required_resource_keys={"mlflow_tracking"},
    kinds={"scikitlearn", "parquet"},
    owners=catalog.OWNERS,
    check_specs=[
        dg.AssetCheckSpec("champion_auc_above_floor", asset=PERFORMANCE_KEY, partitions_def=weekly_partitions,
                          description="Champion AUC on matured labels above the floor (ERROR) and the warn level; "
                                      "the model-lifecycle review acts on an ERROR (rollback)"),
        dg.AssetCheckSpec("auc_per_payer_above_floor", asset=PERFORMANCE_KEY, partitions_def=weekly_partitions,
                          description="Per payer, the champion's realized AUC above the warn level and the floor"),
    ],
)
def realized_performance(context: dg.AssetExecutionContext, config: MonitoringConfig, **inputs) -> Iterator:
    """Weekly: AUC, PR AUC, Brier, precision/recall at the threshold and calibration by score decile on
    claims whose outcomes have matured, overall and per payer, for the champion, fallback and shadows."""
    mlf: MlflowResource = context.resources.mlflow_tracking
    maturity = int(setting(config, "maturity_days"))
    if maturity + 7 > PERFORMANCE_WEEKS * 7:
        raise dg.Failure(f"maturity_days={maturity} reaches before the {PERFORMANCE_WEEKS} weeks this asset loads "
                         f"(set RCM_LABEL_HORIZON_DAYS ≥ {maturity} so the mapping covers it)", allow_retries=False)
    auc_band = band(config, "auc", low_is_bad=True)
    scored_all = roles(frames(inputs["scores"]), frames(inputs.get("shadow")))
    gold, outcomes = frames(inputs["gold"]), frames(inputs["outcomes"])
    tables, by_week, metadata = [], {}, {}
    for week in context.partition_keys:  # a backfill runs several weeks at once
        table, calibration, cohort = week_performance(week, maturity, scored_all, gold, outcomes, auc_band)
        champion = table[table["role"] == "champion"]
        overall = champion[champion["segment"] == "all"]
        auc = float(overall["roc_auc"].iloc[0]) if len(overall) else float("nan")
        metadata = {"cohort": cohort, "champion_auc": auc,
                    "labelled": int(overall["labelled"].iloc[0]) if len(overall) else 0,
                    "roles": ", ".join(sorted(table["role"].unique())) or "none"}
        if len(calibration):
            metadata["calibration_by_decile"] = dg.MetadataValue.md(markdown_table(calibration))
            plots = {"calibration_by_decile.png": mon.figure_png(mon.calibration_deciles_figure(calibration)),
                     "auc_by_payer.png": mon.figure_png(mon.performance_by_payer_figure(table, auc_band.error))}
            metrics = {f"{r.role}_auc": r.roc_auc for r in table[table["segment"] == "all"].itertuples()}
            metadata |= plot_metadata(mlf, "realized_performance", week, plots, metrics)
        tables.append(table)
        by_week[week] = [
            status_check("champion_auc_above_floor", overall, "champion AUC", "model_version", "roc_auc",
                         {"auc": auc if math.isfinite(auc) else -1.0, "floor": auc_band.error,
                          "warn": auc_band.warn, "week": week}),
            status_check("auc_per_payer_above_floor", champion[champion["segment"] != "all"], "payers", "segment",
                         "roc_auc", {"floor": auc_band.error, "warn": auc_band.warn}),
        ]
    yield dg.Output(pd.concat(tables, ignore_index=True), metadata=metadata)  # the last week's headline
    yield from check_events(context, PERFORMANCE_KEY, by_week)


def week_performance(week: str, maturity: int, scored: pd.DataFrame, gold: pd.DataFrame, outcomes: pd.DataFrame,
                     auc_band: mon.Band) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """One week's rows: the cohort scored [W - maturity - 7, W - maturity), labels known before W."""
    start, end = matured_cohort(week, maturity)
    cohort = f"{start.date()}..{(end - pd.Timedelta(days=1)).date()} (scored; labels known before {week})"
    part = scored[(scored["dt"] >= start.date().isoformat()) & (scored["dt"] < end.date().isoformat())] \
        if len(scored) else scored
    if len(part):
        # every version gold holds bounds the scored versions' answers (a correction scored later, or not at all)
        labelled = mon.label_scored_claims(with_claim_keys(part, gold), outcomes, pd.Timestamp(week), versions=gold)
        table, calibration = mon.realized_performance(labelled, auc_band), mon.calibration_by_decile(labelled)
    else:
        table = pd.DataFrame({"role": pd.Series([], dtype=object), "segment": pd.Series([], dtype=object),
                              "status": pd.Series([], dtype=object), "roc_auc": pd.Series([], dtype=float),
                              "labelled": pd.Series([], dtype="int64")})
        calibration = pd.DataFrame()
    table = table.assign(week=week, cohort_start=start.date().isoformat(), cohort_end=end.date().isoformat())
    return table, calibration, cohort


def markdown_table(frame: pd.DataFrame, digits: int = 4) -> str:
    """A small frame as a markdown table (the asset page renders it)."""
    cells = frame.round(digits).astype(str)
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(row) + " |" for row in cells.itertuples(index=False)]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# monitoring/label_freshness
# --------------------------------------------------------------------------------------------------

COHORTS = dg.TimeWindowPartitionMapping(start_offset=-COHORT_DAYS, end_offset=0,
                                        allow_nonexistent_upstream_partitions=True)


def claims_with_scores(gold: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """One row per claim version in gold (codes only) with its champion score when it was scored."""
    if gold.empty:
        return gold
    claims = gold.drop_duplicates(["claim_id", "claim_version"]).astype(
        {c: object for c in ("payer_id", "cpt_family") if c in gold.columns})
    if scores.empty:
        return claims.assign(denial_probability=np.nan, decision=None)
    champion = roles(scores)
    champion = champion[champion["role"] == "champion"].drop_duplicates(["claim_id", "claim_version"])
    return claims.merge(champion[["claim_id", "claim_version", "denial_probability", "decision"]],
                        on=["claim_id", "claim_version"], how="left", validate="one_to_one")


def early_outcome_check(rows: pd.DataFrame, window: int, z_band: mon.Band, min_claims: int) -> dg.AssetCheckResult:
    """Observed vs expected denials of the claims adjudicated so far, per payer and payer/CPT family."""
    drift = mon.early_outcome_drift(rows, window, z_band, min_adjudicated=min_claims // 2) if len(rows) else \
        pd.DataFrame({"status": [], "segment": [], "z": []})
    result = status_check("early_outcomes_match_scores", drift, "segments with more (or fewer) denials than scored",
                          "segment", "z", {"z_warn": z_band.warn, "z_error": z_band.error, "window_days": window})
    if len(drift):
        top = drift[drift["status"] != "insufficient"].sort_values("z", key=lambda s: s.abs(), ascending=False).head(10)
        result = result._replace(metadata={**result.metadata, "segments": dg.MetadataValue.md(
            markdown_table(top, 3))})
    return result


@dg.asset(
    key=FRESHNESS_KEY,
    group_name="monitoring",
    partitions_def=scoring_partitions,
    io_manager_key="lake",
    ins={
        "scores": dg.AssetIn(key=SCORES_KEY, partition_mapping=COHORTS,
                             metadata={"allow_missing_partitions": True}),
        "gold": dg.AssetIn(key=GOLD_KEY, partition_mapping=COHORTS,
                           metadata={"allow_missing_partitions": True, "columns": GOLD_KEYS}),
        "outcomes": dg.AssetIn(key=REMITTANCES_KEY, partition_mapping=COHORTS,
                               metadata={"allow_missing_partitions": True,
                                         "columns": OUTCOME_COLUMNS}),
    },
    backfill_policy=DAILY_BACKFILL_POLICY,
    # runs on its schedule too: a remittance feed that stops produces no upstream update to follow
    automation_condition=follow_upstream().ignore(dg.AssetSelection.assets(GOLD_KEY)),
    kinds={"pandas", "parquet"},
    owners=catalog.OWNERS,
    check_specs=[
        dg.AssetCheckSpec("labels_arrive_within_sla", asset=FRESHNESS_KEY, partitions_def=scoring_partitions,
                          description="The cohort submitted sla_days ago has its first adjudication for at least "
                                      "the SLA share (a stopped remittance feed fails here)"),
        dg.AssetCheckSpec("early_outcomes_match_scores", asset=FRESHNESS_KEY, partitions_def=scoring_partitions,
                          description="Denials among the claims adjudicated so far (recent cohorts) match what the "
                                      "scores expected, per payer and payer/CPT family (z-score)"),
    ],
)
def label_freshness(context: dg.AssetExecutionContext, config: MonitoringConfig, scores: object, gold: object,
                    outcomes: object) -> Iterator:
    """Per day, per submission cohort of the last COHORT_DAYS and segment: share whose first adjudication
    has arrived, and denials observed vs expected among them (early outcomes)."""
    scores, gold, outcomes = frames(scores), frames(gold), frames(outcomes)
    sla_days = int(setting(config, "sla_days"))
    if sla_days > COHORT_DAYS:
        raise dg.Failure(f"sla_days={sla_days} is beyond the {COHORT_DAYS} cohort days this asset loads",
                         allow_retries=False)
    sla_band = mon.Band(setting(config, "sla_share_warn"), setting(config, "sla_share_error"), low_is_bad=True)
    z_band = band(config, "early_z")
    window, min_claims = int(setting(config, "early_window_days")), int(setting(config, "min_claims"))
    # cohorts are every submission in gold (labels are due whether or not a model scored the claim);
    # the day's scores join for the early-outcome comparison
    keyed = claims_with_scores(gold, scores)
    out, by_day = [], {}
    for day in context.partition_keys:
        rows = pd.DataFrame({"status": pd.Series([], dtype=object), "age_days": pd.Series([], dtype="int64")})
        first = str(date.fromisoformat(day) - timedelta(days=COHORT_DAYS))
        cohort = keyed[(keyed["dt"] >= first) & (keyed["dt"] <= day)] if len(keyed) else keyed
        if len(cohort):
            known = outcomes[outcomes["dt"] <= day] if len(outcomes) else outcomes
            labelled = mon.label_scored_claims(cohort, known, pd.Timestamp(day) + pd.Timedelta(days=1),
                                               versions=keyed[keyed["dt"] <= day]) \
                if len(known) else cohort.assign(denied=np.nan, outcome_updated_at=pd.NaT)
            labelled = labelled.assign(submitted_day=pd.to_datetime(labelled["submitted_at"]).dt.strftime("%Y-%m-%d"))
            rows = mon.label_freshness(labelled, pd.Timestamp(day), sla_days, sla_band, min_claims=min_claims // 2)
        out.append(rows.assign(dt=day))
        sla_rows = rows[(rows["age_days"] == sla_days)] if len(rows) else rows
        by_day[day] = [
            status_check("labels_arrive_within_sla", sla_rows, "segments below the label SLA", "segment",
                         "adjudicated_share", {"sla_days": sla_days, "sla_share_warn": sla_band.warn,
                                               "sla_share_error": sla_band.error}),
            early_outcome_check(rows, window, z_band, min_claims),
        ]
    table = pd.concat(out, ignore_index=True)
    overall = table[table.get("segment", pd.Series(dtype=object)) == "all"] if "segment" in table else table
    yield dg.Output(table, metadata={
        "days": len(context.partition_keys), "cohorts": int(overall["cohort_day"].nunique()) if len(overall) else 0,
        "worst_status": mon.worst(table["status"]) if len(table) else "insufficient",
    })
    yield from check_events(context, FRESHNESS_KEY, by_day)


monitoring_assets = [feature_drift, score_drift, realized_performance, label_freshness]
