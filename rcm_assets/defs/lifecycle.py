"""The weekly review on matured labels: keep, promote a shadow challenger, roll back, or fall back.

Week W compares the champion serving before W with the previous champion, the challengers and the
fallback on the same claims, those scored on [W - horizon - review_days, W - horizon) whose first
adjudication reached us before W (`lib.lifecycle` states the tests). The decision is one sentence, stored in
the week's row, in the check, as a tag on the champion's MLflow version and, when it changes who serves,
as an event of the champion history effective from W: days from W on are scored by the new choice at the
next scoring run; days already scored keep their scores.
"""

import json
import math
from collections.abc import Iterator
from datetime import date, timedelta

import dagster as dg
import pandas as pd

from rcm_assets.defs.model import OUTCOME_COLUMNS
from rcm_assets.defs.partitions import LABEL_HORIZON_DAYS, weekly_partitions
from rcm_assets.defs.predictions import SCORES_KEY, SHADOW_KEY
from rcm_assets.lib import champion as champion_lib
from rcm_assets.lib import lifecycle
from rcm_assets.platform.resources import MlflowResource

REVIEW_KEY = dg.AssetKey(["model", "lifecycle_review"])
REVIEW_CHECK = "champion_holds_up_on_matured_labels"
REVIEW_DAYS = 28
SCORE_COLUMNS = ["claim_id", "submitted_at", "model_version", "scored_by", "denial_probability"]
# Offsets are in weeks of the review partition: from the start of the matured window to the week before W.
REVIEW_MAPPING = dg.TimeWindowPartitionMapping(
    start_offset=-math.ceil((LABEL_HORIZON_DAYS + REVIEW_DAYS) / 7) - 1, end_offset=-1)
ACTIONS = {lifecycle.PROMOTE: champion_lib.PROMOTE, lifecycle.ROLLBACK: champion_lib.ROLLBACK,
           lifecycle.FALLBACK_ACTION: champion_lib.FALLBACK}


class ReviewConfig(dg.Config):
    auc_floor: float = 0.70  # the gate's floor: a champion below it on matured labels is retired
    promote_margin: float = 0.01  # AUC a challenger must gain over the champion on the same claims
    min_labels: int = 1_000
    min_denied: int = 50
    confidence: float = 0.95  # share of paired bootstrap resamples the challenger must win
    review_days: int = REVIEW_DAYS

    def policy(self) -> lifecycle.ReviewPolicy:
        return lifecycle.ReviewPolicy(self.auc_floor, self.promote_margin, self.min_labels, self.min_denied,
                                      self.confidence)


def review_window(week: date, review_days: int = REVIEW_DAYS,
                  horizon_days: int = LABEL_HORIZON_DAYS) -> tuple[pd.Timestamp, pd.Timestamp, pd.Timestamp]:
    """(start, end, cutoff): claims submitted in [start, end), labels known before the cutoff W."""
    cutoff = pd.Timestamp(week)
    end = cutoff - pd.Timedelta(days=horizon_days)
    return end - pd.Timedelta(days=review_days), end, cutoff


def scores_by_role(scores: pd.DataFrame, shadows: pd.DataFrame, champion: str | None) -> pd.DataFrame:
    """Every model's score per claim, with its role relative to the champion under review: the champion
    itself (whether it served those days or shadowed them), earlier champions, challengers, the fallback."""
    served = scores.assign(role=lifecycle.PREVIOUS_CHAMPION) if len(scores) else scores.assign(role=[])
    if len(served):
        served.loc[served["scored_by"] == "fallback", "role"] = lifecycle.FALLBACK
    shadow = shadows if "role" in shadows.columns else shadows.iloc[0:0].assign(role=[])
    frame = pd.concat([served, shadow[[c for c in (*SCORE_COLUMNS, "role") if c in shadow.columns]]],
                      ignore_index=True)
    if frame.empty:
        return frame
    frame["model_version"] = frame["model_version"].astype(str)
    frame.loc[frame["role"] == lifecycle.FALLBACK, "model_version"] = "fallback"
    frame.loc[frame["model_version"] == str(champion), "role"] = lifecycle.CHAMPION
    return frame


@dg.asset(
    key=REVIEW_KEY,
    group_name="model",
    partitions_def=weekly_partitions,
    io_manager_key="lake",
    ins={
        "scores": dg.AssetIn(key=SCORES_KEY, partition_mapping=REVIEW_MAPPING,
                             metadata={"allow_missing_partitions": True, "columns": SCORE_COLUMNS}),
        "shadows": dg.AssetIn(key=SHADOW_KEY, partition_mapping=REVIEW_MAPPING,
                              metadata={"allow_missing_partitions": True}),
        "outcomes": dg.AssetIn(key=["silver", "remittances"], partition_mapping=REVIEW_MAPPING,
                               metadata={"allow_missing_partitions": True, "columns": OUTCOME_COLUMNS}),
    },
    kinds={"mlflow"},
    check_specs=[dg.AssetCheckSpec(
        REVIEW_CHECK, asset=REVIEW_KEY,
        description="The champion's ROC AUC on matured labels clears the floor; an ERROR names the rollback "
                    "or fallback the review made (or why it could not)",
    )],
)
def lifecycle_review(
    context: dg.AssetExecutionContext, config: ReviewConfig, scores: pd.DataFrame, shadows: pd.DataFrame,
    outcomes: pd.DataFrame, mlflow_tracking: MlflowResource,
) -> Iterator:
    """Weekly matured-label review of the champion against its shadows: keep, promote, roll back, fall back."""
    client, name = mlflow_tracking.client(), mlflow_tracking.model_name
    events = champion_lib.history(client, name)
    rows, decisions, current = [], [], None
    for key in context.partition_keys:  # oldest first; a decision changes the champion of the next week
        week = date.fromisoformat(key)
        start, end, cutoff = review_window(week, config.review_days)
        champion = current if current is not None else champion_lib.serving_version(events, week - timedelta(days=1))
        frame = scores_by_role(scores, shadows, champion)
        matured = (lifecycle.matured_scores(frame, outcomes, cutoff, start, end) if len(frame) and len(outcomes)
                   else frame.iloc[0:0])
        results = lifecycle.compare_on_same_claims(matured, champion, config.policy()) if champion else []
        decision = lifecycle.decide(champion, results, config.policy(), key)
        context.log.info(decision.sentence)
        if decision.action in ACTIONS:
            current = decision.serving or ""  # "" : the fallback serves from this week on
        rows.append({
            "week": key, "champion_version": champion, "action": decision.action, "serving_version": decision.serving,
            "replaces": decision.replaces, "severity": decision.severity, "sentence": decision.sentence,
            "window_start": start, "window_end": end, "claims": results[0].claims if results else 0,
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
        reason = f"review week {key}"
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
                      ["| model | role | claims | denied | matured ROC AUC | wins vs champion |",
                       "|---|---|---|---|---|---|"]
                      + [f"| {r.version} | {r.role} | {r.claims:,} | {r.denied:,} | {r.roc_auc:.4f} | "
                         f"{'' if r.p_beats_champion is None else f'{r.p_beats_champion:.0%}'} |"
                         for r in last.results])),
                  "floor": config.auc_floor, "promote_margin": config.promote_margin},
    )
