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
from datetime import UTC, date, datetime, timedelta

import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from rcm_assets.lib import lifecycle

ALIAS = "champion"
EVENT_PREFIX = "rcm.champion."
PROMOTE, ROLLBACK, FALLBACK = "promote", "rollback", "fallback"
EVENT_COLUMNS = ["version", "effective", "reason", "by", "at", "action", "sentence", "replaces"]


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    severity: str  # "pass" (promoted), "warn" (kept the champion), "error" (below the floor)
    sentence: str


def min_comparable_denials(floor: float, negatives_per_denial: float) -> int:
    """The fewest denials among the holdout claims both the candidate and the champion can be judged on
    (those the champion never trained on) for the gate to compare them: the review's power minimum
    (`lifecycle.min_denials` at the review's defaults: a model 0.05 below the floor told from the floor by
    an 80% bound, 80% of the time within two looks). With fewer, an AUC there cannot even tell a model at
    the floor from a broken one, so a difference between two models is noise: the gate compares with the
    floor only, and its sentence says so."""
    return lifecycle.ReviewPolicy(floor=floor).denials_needed(negatives_per_denial)


def gate(candidate_auc: float, floor: float, champion_auc: float | None, margin: float,
         champion_version: str | None = None, candidate_auc_vs_champion: float | None = None,
         no_comparison: str | None = None) -> GateDecision:
    """Promote when the candidate's holdout AUC clears the floor and is within `margin` of the champion's
    AUC on the same holdout claims. Below the floor is an error (a broken model); merely worse than the
    champion is a warning (the champion keeps serving).

    `candidate_auc_vs_champion` is the candidate's AUC on the holdout claims the champion never trained on
    (where the champion is scored too); it defaults to `candidate_auc`. `no_comparison` says why a champion
    that exists could not be compared (too few comparable claims, other features): the sentence says so.
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
        why = (f"compared with the floor only, not with champion v{champion_version}: {no_comparison}"
               if champion_version and no_comparison else "there is no comparable champion")
        return GateDecision(True, "pass",
                            f"Promoted: holdout ROC AUC {candidate_auc:.4f} clears the floor {floor:.4f} "
                            f"and {why}.")
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


def promote(client: MlflowClient, name: str, version: str, effective: date, reason: str, by: str,
            action: str = "promote", sentence: str | None = None, replaces: str | None = None) -> None:
    """Record that `version` serves from day `effective`, and point the alias at the newest champion.

    `action` is what the event decides: promote (the gate or a shadow comparison), rollback, or fallback
    (no version clears the floor: the fallback model serves from `effective`; `version` is then the
    champion it replaces). `sentence` is the decision in one readable sentence (`rcm model history`).
    Backfilling an old week records its event without moving the alias off a newer week's champion.
    """
    now = datetime.now(UTC)
    event = {"effective": effective.isoformat(), "reason": reason, "by": by, "at": now.isoformat(),
             "action": action, "sentence": sentence or reason, "replaces": replaces}
    client.set_model_version_tag(name, version, f"{EVENT_PREFIX}{now.strftime('%Y%m%dT%H%M%S%fZ')}",
                                 json.dumps(event))
    newest = champion_as_of(client, name, date.max)
    if newest is not None:
        client.set_registered_model_alias(name, ALIAS, newest)
    elif action == FALLBACK:
        try:
            client.delete_registered_model_alias(name, ALIAS)
        except MlflowException:
            pass


def history(client: MlflowClient, name: str) -> pd.DataFrame:
    """Every promotion, rollback and fallback, oldest first: version, effective day, when, why, by whom,
    the action, its sentence and the version it replaced."""
    rows = []
    try:
        versions = client.search_model_versions(f"name = '{name}'")
    except MlflowException:
        versions = []
    for mv in versions:
        for key, value in (mv.tags or {}).items():
            if key.startswith(EVENT_PREFIX):
                event = json.loads(value)
                event.setdefault("action", ROLLBACK if event.get("reason") == "rollback" else PROMOTE)
                event.setdefault("sentence", event.get("reason"))
                event.setdefault("replaces", None)
                rows.append({"version": str(mv.version), **event})
    frame = pd.DataFrame(rows, columns=EVENT_COLUMNS)
    return frame.sort_values(["at"], kind="stable", ignore_index=True)


REVIEW_REASON_PREFIX = "review week "


def in_force_order(events: pd.DataFrame) -> pd.DataFrame:
    """Events in the order they take effect: by effective day; on the same day a review's decision about
    the champion *before* that day comes first, so the gate's promotion of that day's own model week
    wins whichever ran first (the reviewed champion is replaced either way); then by when they happened."""
    review = events["reason"].astype(str).str.startswith(REVIEW_REASON_PREFIX)
    return (events.assign(_rank=(~review).astype(int))
            .sort_values(["effective", "_rank", "at"], kind="stable").drop(columns="_rank"))


def serving_version(events: pd.DataFrame, day: date, feature_versions: dict[str, str] | None = None,
                    feature_version: str | None = None) -> str | None:
    """The version serving on `day` (pure; `events` from `history`). None: the fallback serves.

    The last event in force (`in_force_order`) among those effective on or before `day` decides, so a
    rollback made today does not rewrite which model scored a past day. A fallback event means no version serves. With `feature_version`, a champion trained
    on other features cannot score this gold: the newest earlier champion trained on it serves instead
    (never one a rollback or fallback retired), so a feature change rolls out without a dead period.
    """
    if events.empty:
        return None
    eligible = in_force_order(events[events["effective"] <= day.isoformat()])
    if eligible.empty:
        return None
    last = eligible.iloc[-1]
    if last["action"] == FALLBACK:
        return None
    if feature_version is None or (feature_versions or {}).get(str(last["version"])) == feature_version:
        return str(last["version"])
    retired = set(eligible.loc[eligible["action"].isin([ROLLBACK, FALLBACK]), "replaces"].dropna().astype(str))
    for _, event in eligible.iloc[::-1].iterrows():
        version = str(event["version"])
        if event["action"] == FALLBACK:
            return None
        if version not in retired and (feature_versions or {}).get(version) == feature_version:
            return version
    return None


def champion_as_of(client: MlflowClient, name: str, day: date) -> str | None:
    """The version serving on `day` (see `serving_version`); None when none does."""
    return serving_version(history(client, name), day)


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
    day = today or datetime.now(UTC).date()
    before = champion_as_of(client, name, day)
    promote(client, name, version, day, "rollback", by, action=ROLLBACK, replaces=before,
            sentence=f"Rollback by {by}: v{version} serves from {day.isoformat()}"
                     + (f" in place of v{before}." if before else "."))


def shadow_roster(events: pd.DataFrame, versions: dict[str, dict[str, str]], day: date, feature_version: str,
                  max_challengers: int = 3) -> list[tuple[str, str]]:
    """The versions that score `day` in shadow, as (version, role), beside the champion serving it.

    - `previous_champion`: the version the serving champion's promotion replaced;
    - `challenger`: candidates of weeks since that promotion (up to `day`) that cleared the floor but were
      not promoted by the gate (`gate_severity` tag "warn"), newest first, at most `max_challengers`.
    `versions` maps each registered version to its tags (feature_version, gate_severity,
    dagster_partition). Only versions trained on `feature_version` can score the day's gold.
    """
    fvs = {v: t.get("feature_version", "") for v, t in versions.items()}
    champion = serving_version(events, day, fvs, feature_version)
    roster: list[tuple[str, str]] = []
    since = ""
    if champion is not None:
        eligible = events[(events["effective"] <= day.isoformat()) & (events["version"] == champion)]
        last = in_force_order(eligible).iloc[-1] if len(eligible) else None
        if last is not None:
            since = str(last["effective"])
            previous = last["replaces"]
            if (last["action"] == PROMOTE and isinstance(previous, str) and previous != champion
                    and fvs.get(previous) == feature_version):
                roster.append((previous, "previous_champion"))
    challengers = sorted(
        (v for v, t in versions.items()
         if t.get("gate_severity") == "warn" and t.get("feature_version") == feature_version
         and since <= t.get("dagster_partition", "") <= day.isoformat() and v != champion),
        key=lambda v: (versions[v].get("dagster_partition", ""), int(v)), reverse=True)
    roster += [(v, "challenger") for v in challengers[:max_challengers]]
    return roster


def review_roster(events: pd.DataFrame, versions: dict[str, dict[str, str]], week: date,
                  max_each: int = 3) -> tuple[str | None, list[tuple[str, str]]]:
    """(champion, [(version, role)]) for the weekly review of `week`: the champion serving the day before,
    the earlier champions it follows (newest first, never one a rollback or fallback retired), and the
    challengers registered since it started serving that cleared the floor but were not promoted."""
    day_before = week - timedelta(days=1)
    champion = serving_version(events, day_before)
    if champion is None:
        return None, []
    eligible = in_force_order(events[events["effective"] <= day_before.isoformat()])
    retired = set(eligible.loc[eligible["action"].isin([ROLLBACK, FALLBACK]), "replaces"].dropna().astype(str))
    earlier: list[str] = []
    for version in eligible["version"].astype(str).iloc[::-1]:
        if version != champion and version not in retired and version not in earlier:
            earlier.append(version)
    since = str(eligible[eligible["version"].astype(str) == champion]["effective"].iloc[-1])
    challengers = sorted(
        (v for v, t in versions.items() if t.get("gate_severity") == "warn" and v != champion
         and since <= t.get("dagster_partition", "") <= day_before.isoformat()),
        key=lambda v: (versions[v].get("dagster_partition", ""), int(v)), reverse=True)
    return champion, ([(v, "previous_champion") for v in earlier[:max_each]]
                      + [(v, "challenger") for v in challengers[:max_each]])
