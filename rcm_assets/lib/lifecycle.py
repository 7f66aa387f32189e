"""The weekly review on matured labels: keep the champion, promote a shadow challenger, roll back, or fall back.

The gate decides on a holdout when a model is trained; the review decides on what happened since. Week W
looks at the claims submitted on [W - horizon - review_days, W - horizon) whose first adjudication had
reached us before W, and compares every model on the *same* claims: the champion serving before W, the
earlier champions, the shadow challengers (candidates that cleared the floor but were not promoted), and
the fallback (`defs/lifecycle.py` re-scores the claims none of them trained on).

The stated tests:
- **rollback**: the champion's matured-label ROC AUC is below the floor (with enough labels): the best
  earlier version that clears the floor on the same claims serves from W; if none does, the fallback
  serves (if it does better than the champion), else the champion is kept and the review fails loudly.
- **promote**: a challenger beats the champion by at least `margin` AUC on the same claims, with at least
  `min_labels` labelled claims and `min_denied` denials, and wins in at least `confidence` of paired
  bootstrap resamples (claims resampled with replacement, both models scored on each resample).
- otherwise **keep**.
Pure: no MLflow and no Dagster; `defs/model.py` records the decision in the champion history.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from rcm_assets.lib.monitoring import label_scored_claims

CHAMPION, CHALLENGER, PREVIOUS_CHAMPION, FALLBACK = "champion", "challenger", "previous_champion", "fallback"
KEEP, PROMOTE, ROLLBACK, FALLBACK_ACTION = "keep", "promote", "rollback", "fallback"


@dataclass(frozen=True)
class ReviewPolicy:
    floor: float = 0.70
    margin: float = 0.01
    min_labels: int = 1_000
    min_denied: int = 50
    confidence: float = 0.95
    resamples: int = 200
    seed: int = 0


@dataclass(frozen=True)
class ModelOnMaturedLabels:
    version: str  # a registered version of the denial model, or "fallback"
    role: str
    claims: int
    denied: int
    roc_auc: float
    p_beats_champion: float | None = None  # paired bootstrap share of resamples it wins


@dataclass(frozen=True)
class ReviewDecision:
    action: str  # keep | promote | rollback | fallback | none (nothing to review)
    serving: str | None  # the version that serves from the review week on (None: the fallback)
    replaces: str | None
    severity: str  # pass | warn | error
    sentence: str
    results: tuple[ModelOnMaturedLabels, ...] = ()


def matured_scores(scores: pd.DataFrame, outcomes: pd.DataFrame, cutoff: pd.Timestamp,
                   start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Score rows of claims submitted in [start, end) with their first adjudication known at `cutoff`.

    `scores` holds one row per (model, claim version): claim_id, claim_version, submitted_at,
    model_version, role, denial_probability. The labels are monitoring's (`label_scored_claims`): the
    first adjudication, as training defines it, that belongs to the version (not to a later one).
    """
    window = scores[(scores["submitted_at"] >= start) & (scores["submitted_at"] < end)]
    labelled = label_scored_claims(window, outcomes, cutoff)
    return labelled[labelled["denied"].notna()].drop(columns=["adjudicated_at", "outcome_updated_at"])


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    return float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan")


def resampled_aucs(y: np.ndarray, p: np.ndarray, draws: list[np.ndarray]) -> np.ndarray:
    """ROC AUC of (y, p) on each bootstrap resample, a resample given as how many times each claim was
    drawn: the Mann-Whitney statistic with tied scores counted half (what `roc_auc_score` gives on the
    resampled rows), from weighted counts per distinct score, without building the resampled rows (the
    review's 200 resamples per model cost 25 s through `roc_auc_score`, a few ms this way). NaN where a
    resample holds one class only."""
    groups = np.unique(p, return_inverse=True)[1].ravel()
    size = int(groups.max()) + 1 if len(groups) else 0
    positive = np.asarray(y).astype(bool)
    pos_groups, neg_groups = groups[positive], groups[~positive]
    out = np.full(len(draws), np.nan)
    for i, weights in enumerate(draws):
        pos = np.bincount(pos_groups, weights=weights[positive], minlength=size)
        neg = np.bincount(neg_groups, weights=weights[~positive], minlength=size)
        n_pos, n_neg = pos.sum(), neg.sum()
        if n_pos > 0 and n_neg > 0:
            out[i] = float(pos @ (np.cumsum(neg) - 0.5 * neg)) / (n_pos * n_neg)
    return out


def compare_on_same_claims(matured: pd.DataFrame, champion: str, policy: ReviewPolicy) -> list[ModelOnMaturedLabels]:
    """Each model's matured AUC on the claims the champion also scored, champion first."""
    key = ["claim_id", "submitted_at"]
    base = matured[(matured["role"] == CHAMPION) & (matured["model_version"] == champion)]
    base = base.drop_duplicates(key).set_index(key)
    if base.empty:
        return []
    y = base["denied"].astype(int).to_numpy()
    rng = np.random.default_rng(policy.seed)
    draws = [np.bincount(rng.integers(0, len(y), len(y)), minlength=len(y)) for _ in range(policy.resamples)]
    champion_p = base["denial_probability"].to_numpy()
    champion_boot = resampled_aucs(y, champion_p, draws)
    out = [ModelOnMaturedLabels(champion, CHAMPION, len(y), int(y.sum()), _auc(y, champion_p))]
    others = matured[~((matured["role"] == CHAMPION) & (matured["model_version"] == champion))]
    for (version, role), rows in others.groupby(["model_version", "role"], sort=True):
        p = rows.drop_duplicates(key).set_index(key)["denial_probability"].reindex(base.index)
        if p.isna().any():  # not scored on every claim the champion scored: no paired comparison
            continue
        p = p.to_numpy()
        boot = resampled_aucs(y, p, draws)
        wins = float(np.nanmean(boot > champion_boot)) if len(boot) else None
        out.append(ModelOnMaturedLabels(str(version), str(role), len(y), int(y.sum()), _auc(y, p), wins))
    return out


def decide(champion: str | None, results: list[ModelOnMaturedLabels], policy: ReviewPolicy,
           week: str) -> ReviewDecision:
    """Keep, promote, roll back or fall back (see the module docstring); one sentence says why."""
    if champion is None or not results:
        return ReviewDecision("none", champion, None, "pass",
                              f"Review {week}: no champion served before this week, or none of its claims has a matured "
                              f"label yet; nothing to decide.",
                              tuple(results))
    champ = results[0]
    enough = champ.claims >= policy.min_labels and champ.denied >= policy.min_denied
    facts = f"v{champion} scored {champ.claims:,} claims with matured labels ({champ.denied:,} denied)"
    if not enough:
        return ReviewDecision(KEEP, champion, None, "pass",
                              f"Keep v{champion}: {facts}, fewer than the {policy.min_labels:,} labels / "
                              f"{policy.min_denied} denials a decision needs.", tuple(results))
    others = results[1:]
    if not champ.roc_auc >= policy.floor:
        earlier = [r for r in others if r.role == PREVIOUS_CHAMPION and r.roc_auc >= policy.floor]
        if earlier:
            best = max(earlier, key=lambda r: r.roc_auc)
            return ReviewDecision(
                ROLLBACK, best.version, champion, "error",
                f"Rollback: v{champion}'s matured-label ROC AUC {champ.roc_auc:.4f} is below the floor "
                f"{policy.floor:.2f} ({facts}); v{best.version}, the best earlier version on the same claims "
                f"({best.roc_auc:.4f}), serves from {week}.", tuple(results))
        fallback = next((r for r in others if r.role == FALLBACK), None)
        if fallback is not None and fallback.roc_auc > champ.roc_auc:
            return ReviewDecision(
                FALLBACK_ACTION, None, champion, "error",
                f"Fallback: v{champion}'s matured-label ROC AUC {champ.roc_auc:.4f} is below the floor "
                f"{policy.floor:.2f} ({facts}) and no earlier version clears it; the fallback model "
                f"({fallback.roc_auc:.4f} on the same claims) serves from {week}.", tuple(results))
        return ReviewDecision(
            KEEP, champion, None, "error",
            f"Keep v{champion} although its matured-label ROC AUC {champ.roc_auc:.4f} is below the floor "
            f"{policy.floor:.2f} ({facts}): no earlier version nor the fallback does better; retrain.",
            tuple(results))
    challengers = [r for r in others if r.role == CHALLENGER]
    winners = [r for r in challengers
               if r.roc_auc - champ.roc_auc >= policy.margin and (r.p_beats_champion or 0) >= policy.confidence]
    if winners:
        best = max(winners, key=lambda r: r.roc_auc)
        return ReviewDecision(
            PROMOTE, best.version, champion, "pass",
            f"Promote challenger v{best.version}: its matured-label ROC AUC {best.roc_auc:.4f} beats champion "
            f"v{champion}'s {champ.roc_auc:.4f} by {best.roc_auc - champ.roc_auc:.4f} (margin "
            f"{policy.margin:.2f}) on the same {champ.claims:,} claims and wins "
            f"{best.p_beats_champion:.0%} of paired bootstrap resamples; it serves from {week}.", tuple(results))
    if challengers:
        best = max(challengers, key=lambda r: r.roc_auc)
        return ReviewDecision(
            KEEP, champion, None, "pass",
            f"Keep v{champion}: matured-label ROC AUC {champ.roc_auc:.4f} ({facts}); the best challenger "
            f"v{best.version} scores {best.roc_auc:.4f} and wins {best.p_beats_champion or 0:.0%} of "
            f"resamples, short of a {policy.margin:.2f} margin at {policy.confidence:.0%}.", tuple(results))
    return ReviewDecision(KEEP, champion, None, "pass",
                          f"Keep v{champion}: matured-label ROC AUC {champ.roc_auc:.4f} clears the floor "
                          f"{policy.floor:.2f} ({facts}); no challenger to compare.", tuple(results))
