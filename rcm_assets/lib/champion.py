"""The promotion gate and the champion history kept in the MLflow model registry.

The registry alias `champion` says which version serves *now*. Scoring a past day needs the champion *as
of that day* (a backfill must never use a model trained on later data), so every promotion also writes
an event tag on the promoted version: `rcm.champion.<UTC timestamp>` = {"effective": day, "reason", "by"}.
Tags are never overwritten (each event has its own key), so the history is complete and queryable, and a
rollback is just one more event.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

ALIAS = "champion"
EVENT_PREFIX = "rcm.champion."


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    severity: str  # "pass" (promoted), "warn" (kept the champion), "error" (below the floor)
    sentence: str


def gate(candidate_auc: float, floor: float, champion_auc: float | None, margin: float,
         champion_version: str | None = None, candidate_auc_vs_champion: float | None = None) -> GateDecision:
    """Promote when the candidate's holdout AUC clears the floor and is within `margin` of the champion's
    AUC on the same holdout claims. Below the floor is an error (a broken model); merely worse than the
    champion is a warning (the champion keeps serving).

    `candidate_auc_vs_champion` is the candidate's AUC on the holdout claims the champion never trained on
    (where the champion is scored too); it defaults to `candidate_auc`.
    """
    keeps = f"v{champion_version} stays champion" if champion_version else "no version is champion yet"
    if math.isnan(candidate_auc):  # a single-class holdout: fail closed (NaN compares False)
        return GateDecision(False, "error",
                            f"Not promoted: holdout ROC AUC is undefined (the holdout has a single class), "
                            f"so it cannot clear the floor {floor:.4f}; {keeps}.")
    if candidate_auc < floor:
        return GateDecision(False, "error",
                            f"Not promoted: holdout ROC AUC {candidate_auc:.4f} is below the floor {floor:.4f}; "
                            f"{keeps}.")
    if champion_auc is None:
        return GateDecision(True, "pass",
                            f"Promoted: holdout ROC AUC {candidate_auc:.4f} clears the floor {floor:.4f} "
                            f"and there is no comparable champion.")
    needed = champion_auc - margin
    compared = candidate_auc if candidate_auc_vs_champion is None else candidate_auc_vs_champion
    where = ("on the same holdout" if candidate_auc_vs_champion is None
             else f"on the holdout claims v{champion_version} never trained on (there it scores {compared:.4f})")
    if compared < needed:
        return GateDecision(False, "warn",
                            f"Not promoted: holdout ROC AUC {candidate_auc:.4f} clears the floor {floor:.4f} but "
                            f"is worse than champion v{champion_version}'s {champion_auc:.4f} {where} by more "
                            f"than the margin {margin:.4f}; v{champion_version} stays champion.")
    return GateDecision(True, "pass",
                        f"Promoted: holdout ROC AUC {candidate_auc:.4f} clears the floor {floor:.4f} and is "
                        f"within {margin:.4f} of champion v{champion_version}'s {champion_auc:.4f} {where} "
                        f"(needed at least {needed:.4f}).")


def promote(client: MlflowClient, name: str, version: str, effective: date, reason: str, by: str) -> None:
    """Record that `version` serves from day `effective`, and point the alias at the newest champion.

    Backfilling an old week records its event without moving the alias off a newer week's champion.
    """
    now = datetime.now(UTC)
    event = {"effective": effective.isoformat(), "reason": reason, "by": by, "at": now.isoformat()}
    client.set_model_version_tag(name, version, f"{EVENT_PREFIX}{now.strftime('%Y%m%dT%H%M%S%fZ')}",
                                 json.dumps(event))
    newest = champion_as_of(client, name, date.max)
    client.set_registered_model_alias(name, ALIAS, newest or version)


def history(client: MlflowClient, name: str) -> pd.DataFrame:
    """Every promotion and rollback, oldest first: version, effective day, when, why, by whom."""
    rows = []
    try:
        versions = client.search_model_versions(f"name = '{name}'")
    except MlflowException:
        versions = []
    for mv in versions:
        for key, value in (mv.tags or {}).items():
            if key.startswith(EVENT_PREFIX):
                event = json.loads(value)
                rows.append({"version": str(mv.version), **event})
    frame = pd.DataFrame(rows, columns=["version", "effective", "reason", "by", "at"])
    return frame.sort_values(["at"], kind="stable", ignore_index=True)


def champion_as_of(client: MlflowClient, name: str, day: date) -> str | None:
    """The version serving on `day`: the latest event (by time) among those effective on or before it.

    Events are ordered by their effective day, then by when they happened, so a rollback made today
    does not rewrite which model scored a past day.
    """
    events = history(client, name)
    if events.empty:
        return None
    eligible = events[events["effective"] <= day.isoformat()]
    if eligible.empty:
        return None
    return str(eligible.sort_values(["effective", "at"], kind="stable").iloc[-1]["version"])


def gate_reason(week: date) -> str:
    """The reason recorded when the gate of model week `week` promotes its version."""
    return f"gate week {week.isoformat()}"


def promoted_for_week(events: pd.DataFrame, week: date) -> str | None:
    """The version the gate of `week` promoted, if any (from `history`)."""
    hits = events[events["reason"] == gate_reason(week)] if not events.empty else events
    return None if hits.empty else str(hits.iloc[-1]["version"])


def current_champion(client: MlflowClient, name: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(name, ALIAS).version)
    except MlflowException:
        return None


def rollback(client: MlflowClient, name: str, version: str, by: str, today: date | None = None) -> None:
    """Make `version` the champion again from today on, recording who did it."""
    client.get_model_version(name, version)  # raises a clear MlflowException for an unknown version
    promote(client, name, version, today or datetime.now(UTC).date(), "rollback", by)
