"""The weekly review on matured labels: keep, promote a shadow challenger, roll back, or fall back.

Week W re-scores the claims submitted on [W - horizon - review_days, W - horizon) whose first adjudication
reached us before W with every model in the review (the champion serving before W, the earlier champions,
the challengers that cleared the floor but were not promoted, the fallback) and compares them on the
*same* claims: those none of them trained on (submitted on or after the latest training-window end among
them). Scores are deterministic, so these are the numbers `predictions/shadow_scores` recorded for the
claims it covers; re-scoring lets a champion promoted last week be judged now, not nine weeks later when
the claims it served have matured. `lib.lifecycle` states the tests. The decision is one sentence, stored
in the week's row, in the check, as a tag on the champion's MLflow version and, when it changes who serves,
as an event of the champion history effective from W: days from W on are scored by the new choice at the
next scoring run; days already scored keep their scores.
"""

import json
import math
from collections.abc import Iterator
from datetime import date, timedelta

import dagster as dg
import pandas as pd

from rcm_assets.defs.model import CONFIGURED, MODEL_KEY, OUTCOME_COLUMNS
from rcm_assets.defs.partitions import LABEL_HORIZON_DAYS, weekly_partitions
from rcm_assets.defs.predictions import Registry
from rcm_assets.defs.training_set import WEEKLY_SET_POLICY, training_window
from rcm_assets.lib import champion as champion_lib
from rcm_assets.lib import lifecycle
from rcm_assets.lib.scoring import score
from rcm_assets.platform.resources import MlflowResource

REVIEW_KEY = dg.AssetKey(["model", "lifecycle_review"])
REVIEW_CHECK = "champion_holds_up_on_matured_labels"
REVIEW_DAYS = 28
# Offsets are in weeks of the review partition: from the start of the matured window to the week before W.
REVIEW_MAPPING = dg.TimeWindowPartitionMapping(
    start_offset=-math.ceil((LABEL_HORIZON_DAYS + REVIEW_DAYS) / 7) - 1, end_offset=-1)
ACTIONS = {lifecycle.PROMOTE: champion_lib.PROMOTE, lifecycle.ROLLBACK: champion_lib.ROLLBACK,
           lifecycle.FALLBACK_ACTION: champion_lib.FALLBACK}


class ReviewConfig(dg.Config):
    # the gate's floor (environment > configuration file > 0.70): a champion below it on matured labels is retired
    auc_floor: float = CONFIGURED.get("auc_floor", 0.70)
    promote_margin: float = 0.01  # AUC a challenger must gain over the champion on the same claims
    min_labels: int = 1_000
    min_denied: int | None = None  # None: set by power (lib.lifecycle.min_denials)
    confidence: float = 0.95  # promotion: 1 - the family-wise false promotion rate (Holm across challengers)
    # rollback: the champion's one-sided upper bound at this confidence is below the floor (lib.lifecycle)
    rollback_confidence: float = 0.80
    review_days: int = REVIEW_DAYS

    def policy(self) -> lifecycle.ReviewPolicy:
        return lifecycle.ReviewPolicy(floor=self.auc_floor, margin=self.promote_margin, min_labels=self.min_labels,
                                      min_denied=self.min_denied, confidence=self.confidence,
                                      rollback_confidence=self.rollback_confidence)


def review_window(week: date, review_days: int = REVIEW_DAYS,
                  horizon_days: int = LABEL_HORIZON_DAYS) -> tuple[pd.Timestamp, pd.Timestamp, pd.Timestamp]:
    """(start, end, cutoff): claims submitted in [start, end), labels known before the cutoff W."""
    cutoff = pd.Timestamp(week)
    end = cutoff - pd.Timedelta(days=horizon_days)
    return end - pd.Timedelta(days=review_days), end, cutoff


def unseen_from(model, fallback_week: str | None = None) -> pd.Timestamp:
    """The first submission time a model never trained on: its training window's end."""
    if fallback_week is not None:
        return training_window(date.fromisoformat(fallback_week))[1]
    return pd.Timestamp(model.tags["window_end"])


def backtest(gold: pd.DataFrame, outcomes: pd.DataFrame, registry: Registry, champion: str,
             roster: list[tuple[str, str]], week: date, review_days: int) -> tuple[pd.DataFrame, pd.Timestamp]:
    """Every model's score on the matured claims none of them trained on, with their labels."""
    start, end, cutoff = review_window(week, review_days)
    models = [(champion, lifecycle.CHAMPION, registry.model(champion))]
    models += [(v, role, registry.model(v)) for v, role in roster]
    fallback = registry.fallback_for((week - timedelta(days=1)).isoformat())
    first = max([start, *(unseen_from(m) for _, _, m in models)]
                + ([unseen_from(fallback, fallback.tags["dagster_partition"])] if fallback else []))
    claims = gold[(gold["submitted_at"] >= first) & (gold["submitted_at"] < end)] if len(gold) else gold
    claims = claims.sort_values(["claim_id", "claim_version", "dt"]).drop_duplicates(
        ["claim_id", "claim_version"], keep="first")  # each version as it was submitted
    frames = []
    for version, role, model in models:
        rows = claims[claims["feature_version"] == model.feature_version]
        frames.append(score(model.model, rows, model_feature_version=model.feature_version, threshold=0.5,
                            stamp={"model_version": version}).assign(role=role))
    if fallback is not None:
        frames.append(score(fallback.model, claims, model_feature_version=None, threshold=0.5,
                            stamp={"model_version": "fallback"}).assign(role=lifecycle.FALLBACK))
    scored = pd.concat(frames, ignore_index=True)
    return lifecycle.matured_scores(scored, outcomes, cutoff, first, end), first


@dg.asset(
    key=REVIEW_KEY,
    group_name="model",
    partitions_def=weekly_partitions,
    io_manager_key="lake",
    ins={
        "gold": dg.AssetIn(key=["gold", "claim_features"], partition_mapping=REVIEW_MAPPING,
                           metadata={"allow_missing_partitions": True}),
        "outcomes": dg.AssetIn(key=["silver", "remittances"], partition_mapping=REVIEW_MAPPING,
                               metadata={"allow_missing_partitions": True, "columns": OUTCOME_COLUMNS}),
    },
    # the champion serving before W was decided by model weeks up to W - 1: in a run that also trains
    # those weeks (a backfill, the demo), their promotions are made before the review reads the history
    deps=[dg.AssetDep(MODEL_KEY, partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=-1))],
    kinds={"mlflow"},
    backfill_policy=WEEKLY_SET_POLICY,  # weeks in order, as the model
    check_specs=[dg.AssetCheckSpec(
        REVIEW_CHECK, asset=REVIEW_KEY,
        description="The champion's ROC AUC on matured labels clears the floor; an ERROR names the rollback "
                    "or fallback the review made (or why it could not)",
    )],
)
def lifecycle_review(
    context: dg.AssetExecutionContext, config: ReviewConfig, gold: pd.DataFrame, outcomes: pd.DataFrame,
    mlflow_tracking: MlflowResource,
) -> Iterator:
    """Weekly matured-label review of the champion against its shadows: keep, promote, roll back, fall back."""
    client, name = mlflow_tracking.client(), mlflow_tracking.model_name
    registry = Registry(mlflow_tracking)
    events = registry.events
    rows, decisions, current = [], [], None
    for key in context.partition_keys:  # oldest first; a decision changes the champion of the next week
        week = date.fromisoformat(key)
        start, end, cutoff = review_window(week, config.review_days)
        champion, roster = champion_lib.review_roster(events, registry.versions, week)
        if current is not None:  # an earlier week of this run changed who serves
            champion, roster = (current or None), [(v, r) for v, r in roster if v != current]
        results, first = [], end
        if champion:
            matured, first = backtest(gold, outcomes, registry, champion, roster, week, config.review_days)
            results = lifecycle.compare_on_same_claims(matured, champion, config.policy())
        decision = lifecycle.decide(champion, results, config.policy(), key)
        context.log.info(decision.sentence)
        if decision.action in ACTIONS:
            current = decision.serving or ""  # "": the fallback serves from this week on
        rows.append({
            "week": key, "champion_version": champion, "action": decision.action, "serving_version": decision.serving,
            "replaces": decision.replaces, "severity": decision.severity, "sentence": decision.sentence,
            "window_start": max(start, first), "window_end": end, "claims": results[0].claims if results else 0,
            "denied": results[0].denied if results else 0,
            "champion_matured_auc": results[0].roc_auc if results else float("nan"),
            "results": json.dumps([r.__dict__ for r in results]),
        })
        decisions.append((key, decision))
    frame = pd.DataFrame(rows)
    yield dg.Output(frame, metadata={
        "decisions": " ".join(d.sentence for _, d in decisions),
        "actions": ", ".join(f"{k}: {d.action}" for k, d in decisions),
    })
    # the rows are written: now record each decision (once per week, also on a re-run)
    done = set(events["reason"]) if len(events) else set()
    for key, decision in decisions:
        reason = f"{champion_lib.REVIEW_REASON_PREFIX}{key}"
        if decision.replaces:
            client.set_model_version_tag(name, decision.replaces, f"review_{key}", decision.sentence)
        if decision.action in ACTIONS and reason not in done:
            version = decision.serving or decision.replaces
            champion_lib.promote(client, name, version, date.fromisoformat(key), reason, by=context.run.run_id,
                                 action=ACTIONS[decision.action], sentence=decision.sentence,
                                 replaces=decision.replaces)
        elif decision.serving:
            client.set_model_version_tag(name, decision.serving, f"review_{key}", decision.sentence)
    worst = max(decisions, key=lambda kd: ["pass", "warn", "error"].index(kd[1].severity))[1]
    last = decisions[-1][1]
    yield dg.AssetCheckResult(
        check_name=REVIEW_CHECK, passed=worst.severity != "error",
        severity=dg.AssetCheckSeverity.ERROR,
        description=" ".join(d.sentence for _, d in decisions),
        metadata={"decision": last.sentence, "action": last.action,
                  "models": dg.MetadataValue.md("\n".join(
                      ["| model | role | claims | denied | matured ROC AUC | upper bound | p vs champion "
                       "(Holm) |", "|---|---|---|---|---|---|---|"]
                      + [f"| {r.version} | {r.role} | {r.claims:,} | {r.denied:,} | {r.roc_auc:.4f} | "
                         f"{'' if r.auc_upper is None else f'{r.auc_upper:.4f}'} | "
                         f"{'' if r.p_holm is None else f'{r.p_holm:.4f}'} |"
                         for r in last.results])),
                  "floor": config.auc_floor, "promote_margin": config.promote_margin,
                  "rollback_confidence": config.rollback_confidence},
    )
