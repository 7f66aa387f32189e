"""The weekly review on matured labels: keep the champion, promote a shadow challenger, roll back, or fall back.

The gate decides on a holdout when a model is trained; the review decides on what happened since. Week W
looks at the claims submitted on [W - horizon - review_days, W - horizon) whose first adjudication had
reached us before W, and compares every model on the *same* claims: the champion serving before W, the
earlier champions, the shadow challengers (candidates that cleared the floor but were not promoted), and
the fallback (`defs/lifecycle.py` re-scores the claims none of them trained on).

The stated tests, with known error rates (DeLong's variance of the ROC AUC, `delong`):
- **rollback**: the one-sided upper `rollback_confidence` bound of the champion's matured-label ROC AUC is
  below the floor, never its point estimate: a champion truly at the floor is retired in at most
  1 - rollback_confidence of reviews, a better one far less often. With 1,000 claims and 50 denials a
  review, a champion of true AUC 0.76 against the floor 0.70 is retired in 0.5% of weeks at the default 80%
  bound (4.6% on the point estimate), and a true drop to 0.65 is caught within two reviews 89% of the time
  (`simulate_reviews`; rcm_assets_tests/lib/test_lifecycle_statistics.py, benchmarks/bench_lifecycle.py). The best earlier version that
  clears the floor on the same claims serves from W; if none does, the fallback serves (if it does better
  than the champion), else the champion is kept and the review fails loudly.
- **promote**: a challenger beats the champion on the same claims by a one-sided paired DeLong test, its
  p-value Holm-corrected across the week's challengers at 1 - `confidence` (the family-wise chance of
  promoting a challenger no better than the champion), and by at least `margin` AUC.
- **too few labels**: a review with fewer claims than `min_labels` or fewer denials than the power
  minimum (`min_denials`) keeps the champion and says so.
- otherwise **keep**.
Pure: no MLflow and no Dagster; `defs/model.py` records the decision in the champion history.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from rcm_assets.lib.monitoring import label_scored_claims

CHAMPION, CHALLENGER, PREVIOUS_CHAMPION, FALLBACK = "champion", "challenger", "previous_champion", "fallback"
KEEP, PROMOTE, ROLLBACK, FALLBACK_ACTION = "keep", "promote", "rollback", "fallback"
_NORMAL = NormalDist()


@dataclass(frozen=True)
class ReviewPolicy:
    floor: float = 0.70
    margin: float = 0.01  # AUC a challenger must gain over the champion (besides the test)
    min_labels: int = 1_000
    min_denied: int | None = None  # None: set by power (`min_denials` with the fields below)
    confidence: float = 0.95  # promotion: 1 - the family-wise false promotion rate (Holm across challengers)
    rollback_confidence: float = 0.80  # rollback: the one-sided upper bound of the champion's AUC below the floor
    detect_drop: float = 0.05  # the power minimum: a champion at floor - detect_drop ...
    detect_power: float = 0.80  # ... is retired with this probability ...
    detect_reviews: int = 2  # ... within this many reviews

    def denials_needed(self, negatives_per_denial: float) -> int:
        """The fewest denials a review decides on: `min_denied`, else the power minimum (`min_denials`)."""
        if self.min_denied is not None:
            return self.min_denied
        return min_denials(self.floor, self.detect_drop, self.rollback_confidence, self.detect_power,
                           self.detect_reviews, negatives_per_denial)


@dataclass(frozen=True)
class ModelOnMaturedLabels:
    version: str  # a registered version of the denial model, or "fallback"
    role: str
    claims: int
    denied: int
    roc_auc: float
    auc_upper: float | None = None  # the champion's one-sided upper `rollback_confidence` bound
    p_value: float | None = None  # one-sided paired DeLong p-value of "beats the champion" (raw)
    p_holm: float | None = None  # the same, Holm-adjusted across the week's challengers


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


# --------------------------------------------------------------------------------------------------
# The statistics: DeLong's AUC variance, bounds, paired tests, Holm, the power minimum
# --------------------------------------------------------------------------------------------------


def delong(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ROC AUCs, their covariance matrix) of one or more score rows on the same claims (DeLong, DeLong and
    Clarke-Pearson 1988, in the midrank form of Sun and Xu 2014): ties count half, as in `roc_auc_score`.
    NaNs when `y` holds one class or fewer than two of either."""
    rows = np.atleast_2d(np.asarray(scores, dtype=float))
    positive = np.asarray(y).astype(bool)
    m, n = int(positive.sum()), int((~positive).sum())
    if m < 2 or n < 2:
        k = rows.shape[0]
        return np.full(k, np.nan), np.full((k, k), np.nan)
    pos, neg = rows[:, positive], rows[:, ~positive]
    within_pos, within_neg = rankdata(pos, axis=1), rankdata(neg, axis=1)
    overall = rankdata(np.concatenate([pos, neg], axis=1), axis=1)
    aucs = (overall[:, :m].sum(axis=1) - m * (m + 1) / 2) / (m * n)
    v_pos = (overall[:, :m] - within_pos) / n  # each denial's share of negatives ranked below it
    v_neg = 1.0 - (overall[:, m:] - within_neg) / m
    cov = np.atleast_2d(np.cov(v_pos)) / m + np.atleast_2d(np.cov(v_neg)) / n
    return aucs, cov


def upper_bound(auc: float, variance: float, confidence: float) -> float:
    """The one-sided upper `confidence` bound of an AUC (normal approximation)."""
    return auc + _NORMAL.inv_cdf(confidence) * math.sqrt(max(variance, 0.0))


def paired_p_value(cov: np.ndarray, aucs: np.ndarray) -> float:
    """One-sided p-value of "model 1 has a higher AUC than model 0" on the same claims (paired DeLong)."""
    variance = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    diff = aucs[1] - aucs[0]
    if not variance > 0:
        return 0.0 if diff > 0 else 1.0
    return 1.0 - _NORMAL.cdf(diff / math.sqrt(variance))


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error control, any dependence between the tests):
    the i-th smallest times (k - i), made monotone, capped at 1."""
    order = np.argsort(p_values, kind="stable")
    adjusted, running = [0.0] * len(p_values), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def auc_variance_per_denial(auc: float, negatives_per_denial: float) -> float:
    """n_denied x Var(AUC estimate) by Hanley and McNeil (1982): Q2 - A^2 + (Q1 - A^2) / r, with
    Q1 = A / (2 - A), Q2 = 2 A^2 / (1 + A) and r = negatives per denial (conservative for binormal scores)."""
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    return (q2 - auc**2) + (q1 - auc**2) / max(negatives_per_denial, 1e-9)


def min_denials(floor: float, drop: float, confidence: float, power: float, reviews: int,
                negatives_per_denial: float) -> int:
    """The fewest denials a review needs to retire a champion whose true AUC is `floor - drop` with
    probability `power` within `reviews` independent reviews, by the rollback test at `confidence`:

        n_denied >= (z_confidence + z_per_review)^2 * V(floor - drop) / drop^2,
        per-review power = 1 - (1 - power)^(1 / reviews),

    z the standard normal quantiles and V `auc_variance_per_denial` (Hanley-McNeil). Defaults (floor 0.70,
    drop 0.05, 80% bound, 80% within two reviews, 19 paid claims a denial): 36 denials."""
    per_review = 1 - (1 - power) ** (1 / max(reviews, 1))
    z = _NORMAL.inv_cdf(confidence) + _NORMAL.inv_cdf(per_review)
    return math.ceil(z**2 * auc_variance_per_denial(floor - drop, negatives_per_denial) / drop**2)


def simulate_reviews(true_auc: float, reviews: int, claims: int, denied: int, policy: ReviewPolicy,
                     seed: int = 0) -> np.ndarray:
    """Whether the rollback test retires a champion of `true_auc` at each of `reviews` independent reviews
    of `claims` matured claims with `denied` denials: binormal scores (paid N(0, 1), denied
    N(sqrt(2) * z(true_auc), 1)), judged by the review's own bound (`champion_bound`)."""
    rng = np.random.default_rng(seed)
    shift = math.sqrt(2) * _NORMAL.inv_cdf(true_auc)
    y = np.zeros(claims, dtype=int)
    y[:denied] = 1
    out = np.empty(reviews, dtype=bool)
    for i in range(reviews):
        p = rng.normal(0.0, 1.0, claims) + shift * y
        out[i] = champion_bound(y, p, policy.rollback_confidence)[1] < policy.floor
    return out


def champion_bound(y: np.ndarray, p: np.ndarray, confidence: float) -> tuple[float, float]:
    """(ROC AUC, its one-sided upper `confidence` bound) of the champion's scores on the matured claims."""
    aucs, cov = delong(y, p)
    return float(aucs[0]), upper_bound(float(aucs[0]), float(cov[0, 0]), confidence)


def compare_on_same_claims(matured: pd.DataFrame, champion: str, policy: ReviewPolicy) -> list[ModelOnMaturedLabels]:
    """Each model's matured AUC on the claims the champion also scored, champion first (with its upper
    bound); each challenger's one-sided paired p-value against it, Holm-adjusted across the challengers."""
    key = ["claim_id", "submitted_at"]
    base = matured[(matured["role"] == CHAMPION) & (matured["model_version"] == champion)]
    base = base.drop_duplicates(key).set_index(key)
    if base.empty:
        return []
    y = base["denied"].astype(int).to_numpy()
    champion_p = base["denial_probability"].to_numpy()
    auc, upper = champion_bound(y, champion_p, policy.rollback_confidence)
    out = [ModelOnMaturedLabels(champion, CHAMPION, len(y), int(y.sum()), auc, auc_upper=upper)]
    others = matured[~((matured["role"] == CHAMPION) & (matured["model_version"] == champion))]
    for (version, role), rows in others.groupby(["model_version", "role"], sort=True):
        p = rows.drop_duplicates(key).set_index(key)["denial_probability"].reindex(base.index)
        if p.isna().any():  # not scored on every claim the champion scored: no paired comparison
            continue
        aucs, cov = delong(y, np.vstack([champion_p, p.to_numpy()]))
        p_value = paired_p_value(cov, aucs) if not np.isnan(aucs).any() else None
        out.append(ModelOnMaturedLabels(str(version), str(role), len(y), int(y.sum()), float(aucs[1]),
                                        p_value=p_value))
    challengers = [i for i, r in enumerate(out) if r.role == CHALLENGER and r.p_value is not None]
    for i, adjusted in zip(challengers, holm([out[i].p_value for i in challengers]), strict=True):
        out[i] = ModelOnMaturedLabels(**{**out[i].__dict__, "p_holm": adjusted})
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
    needed = policy.denials_needed((champ.claims - champ.denied) / max(champ.denied, 1))
    facts = f"v{champion} scored {champ.claims:,} claims with matured labels ({champ.denied:,} denied)"
    if champ.claims < policy.min_labels or champ.denied < needed:
        return ReviewDecision(KEEP, champion, None, "pass",
                              f"Keep v{champion}: {facts}, fewer than the {policy.min_labels:,} labels / "
                              f"{needed} denials a decision needs (the denials by power: a champion at "
                              f"{policy.floor - policy.detect_drop:.2f} caught within {policy.detect_reviews} "
                              f"reviews {policy.detect_power:.0%} of the time); too few to decide.",
                              tuple(results))
    others = results[1:]
    bound = (f"matured-label ROC AUC {champ.roc_auc:.4f}, upper {policy.rollback_confidence:.0%} bound "
             f"{champ.auc_upper:.4f}")
    if not champ.auc_upper >= policy.floor:
        earlier = [r for r in others if r.role == PREVIOUS_CHAMPION and r.roc_auc >= policy.floor]
        if earlier:
            best = max(earlier, key=lambda r: r.roc_auc)
            return ReviewDecision(
                ROLLBACK, best.version, champion, "error",
                f"Rollback: v{champion}'s {bound}, is below the floor {policy.floor:.2f} ({facts}); "
                f"v{best.version}, the best earlier version on the same claims ({best.roc_auc:.4f}), serves "
                f"from {week}.", tuple(results))
        fallback = next((r for r in others if r.role == FALLBACK), None)
        if fallback is not None and fallback.roc_auc > champ.roc_auc:
            return ReviewDecision(
                FALLBACK_ACTION, None, champion, "error",
                f"Fallback: v{champion}'s {bound}, is below the floor {policy.floor:.2f} ({facts}) and no "
                f"earlier version clears it; the fallback model ({fallback.roc_auc:.4f} on the same claims) "
                f"serves from {week}.", tuple(results))
        return ReviewDecision(
            KEEP, champion, None, "error",
            f"Keep v{champion} although its {bound}, is below the floor {policy.floor:.2f} ({facts}): no "
            f"earlier version nor the fallback does better; retrain.", tuple(results))
    alpha = 1 - policy.confidence
    challengers = [r for r in others if r.role == CHALLENGER]
    tested = f"one-sided paired DeLong test, Holm-corrected over {len(challengers)} challenger(s) at {alpha:.2f}"
    winners = [r for r in challengers if r.p_holm is not None and r.p_holm <= alpha
               and r.roc_auc - champ.roc_auc >= policy.margin]
    if winners:
        best = max(winners, key=lambda r: r.roc_auc)
        return ReviewDecision(
            PROMOTE, best.version, champion, "pass",
            f"Promote challenger v{best.version}: its matured-label ROC AUC {best.roc_auc:.4f} beats champion "
            f"v{champion}'s {champ.roc_auc:.4f} by {best.roc_auc - champ.roc_auc:.4f} (margin "
            f"{policy.margin:.2f}) on the same {champ.claims:,} claims ({champ.denied:,} denied), adjusted "
            f"p = {best.p_holm:.4f} ({tested}); it serves from {week}.", tuple(results))
    below = (f" Its point estimate is below the floor {policy.floor:.2f}, its bound is not: not evidence "
             f"enough to retire it." if champ.roc_auc < policy.floor else "")
    if challengers:
        best = max(challengers, key=lambda r: r.roc_auc)
        p = "n/a" if best.p_holm is None else f"{best.p_holm:.4f}"
        return ReviewDecision(
            KEEP, champion, None, "warn" if below else "pass",
            f"Keep v{champion}: {bound} ({facts}); the best challenger v{best.version} scores "
            f"{best.roc_auc:.4f}, adjusted p = {p} ({tested}), short of a {policy.margin:.2f} margin at that "
            f"level.{below}", tuple(results))
    return ReviewDecision(KEEP, champion, None, "warn" if below else "pass",
                          f"Keep v{champion}: {bound}, clears the floor {policy.floor:.2f} ({facts}); no challenger "
                          f"to compare.{below}", tuple(results))
