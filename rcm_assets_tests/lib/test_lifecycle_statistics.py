"""The review's stated tests and their error rates (issue 26.4): rollback on a confidence bound, never on a
point estimate; promotion by a one-sided paired test Holm-corrected across the week's challengers; the
minimum denials set by power; the rates measured by simulation at the issue's sizes (1,000 claims,
50 denials a review, floor 0.70), seeded so the figures are the same on every run."""

from __future__ import annotations

import numpy as np
import pytest

from rcm_assets.lib import lifecycle as L

POLICY = L.ReviewPolicy()
CLAIMS, DENIED = 1_000, 50


def champion_result(auc: float, upper: float, claims: int = CLAIMS, denied: int = DENIED) -> L.ModelOnMaturedLabels:
    return L.ModelOnMaturedLabels("5", L.CHAMPION, claims, denied, auc, auc_upper=upper)


def test_a_healthy_champion_is_falsely_retired_in_under_one_percent_of_weeks():
    """A champion of true AUC 0.76: the point estimate falls below 0.70 in about 4% of weeks (the rule this
    replaces; about 88% odds of a false rollback a year), its upper 80% bound in well under 1%."""
    bound = L.simulate_reviews(0.76, 3_000, CLAIMS, DENIED, POLICY, seed=1)
    point = L.simulate_reviews(0.76, 3_000, CLAIMS, DENIED, L.ReviewPolicy(rollback_confidence=0.5), seed=1)
    assert bound.mean() < 0.01
    assert point.mean() > 0.03  # the old rule, on the same simulated weeks
    assert bound.sum() <= point.sum()


def test_a_true_drop_to_065_is_caught_within_two_reviews():
    caught = L.simulate_reviews(0.65, 2_000, CLAIMS, DENIED, POLICY, seed=2).reshape(-1, 2)
    assert caught[:, 0].mean() > 0.6  # at the first review
    assert caught.any(axis=1).mean() >= 0.85  # within two


def test_the_power_minimum_follows_the_stated_formula():
    # z_0.80 = 0.8416, per-review power 1 - sqrt(0.2) = 0.5528 (z = 0.1332); V(0.65) with 19 paid a denial
    v = (2 * 0.65**2 / 1.65 - 0.65**2) + (0.65 / 1.35 - 0.65**2) / 19
    assert L.min_denials(0.70, 0.05, 0.80, 0.80, 2, 19) == int(np.ceil((0.8416 + 0.1332) ** 2 * v / 0.05**2)) == 36
    assert POLICY.denials_needed(19) == 36
    # a stricter bound or a smaller drop needs more denials; an explicit minimum overrides
    assert L.min_denials(0.70, 0.05, 0.95, 0.80, 2, 19) > 36 < L.min_denials(0.70, 0.03, 0.80, 0.80, 2, 19)
    assert L.ReviewPolicy(min_denied=7).denials_needed(19) == 7


def test_a_point_estimate_below_the_floor_with_a_bound_above_it_keeps_the_champion():
    results = [champion_result(0.68, 0.72), L.ModelOnMaturedLabels("3", L.PREVIOUS_CHAMPION, CLAIMS, DENIED, 0.74)]
    decision = L.decide("5", results, POLICY, "2025-06-02")
    assert decision.action == L.KEEP and decision.serving == "5" and decision.severity == "warn"
    assert "upper 80% bound 0.7200" in decision.sentence and "not evidence enough" in decision.sentence
    retired = L.decide("5", [champion_result(0.62, 0.66), *results[1:]], POLICY, "2025-06-02")
    assert retired.action == L.ROLLBACK and retired.serving == "3"
    assert "upper 80% bound 0.6600, is below the floor 0.70" in retired.sentence


def test_too_few_denials_by_power_keep_the_champion_and_say_so():
    decision = L.decide("5", [champion_result(0.55, 0.60, claims=2_000, denied=20)], POLICY, "2025-06-02")
    assert decision.action == L.KEEP and "20 denied" in decision.sentence
    needed = POLICY.denials_needed(1_980 / 20)  # 35: more paid claims a denial, a little less variance
    assert needed == 35 and f"fewer than the 1,000 labels / {needed} denials" in decision.sentence and "too few to decide" in decision.sentence


def test_holm_adjusts_across_the_challengers_of_a_week():
    assert L.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert L.holm([0.5]) == [0.5] and L.holm([]) == []
    # three challengers each at p = 0.03: alone each would be promoted at 0.05, together none is
    challengers = [L.ModelOnMaturedLabels(v, L.CHALLENGER, CLAIMS, DENIED, 0.80, p_value=0.03, p_holm=h)
                   for v, h in zip("678", L.holm([0.03, 0.03, 0.03]), strict=True)]
    decision = L.decide("5", [champion_result(0.76, 0.79), *challengers], POLICY, "2025-06-02")
    assert decision.action == L.KEEP and "Holm-corrected over 3 challenger(s)" in decision.sentence
    alone = L.decide("5", [champion_result(0.76, 0.79), L.ModelOnMaturedLabels(
        "6", L.CHALLENGER, CLAIMS, DENIED, 0.80, p_value=0.03, p_holm=0.03)], POLICY, "2025-06-02")
    assert alone.action == L.PROMOTE and alone.serving == "6"


def test_the_paired_test_controls_false_promotions_of_an_equal_challenger():
    """A challenger with the champion's true AUC (0.76), scores correlated as two weekly models are: the
    one-sided paired test at 0.05 promotes it in about 5% of weeks, not more."""
    rng = np.random.default_rng(4)
    shift = np.sqrt(2) * L._NORMAL.inv_cdf(0.76)
    y = np.zeros(CLAIMS, dtype=int)
    y[:DENIED] = 1
    rejections = []
    for _ in range(600):
        common = rng.normal(0, 1, CLAIMS)
        a = np.sqrt(0.8) * common + np.sqrt(0.2) * rng.normal(0, 1, CLAIMS) + shift * y
        b = np.sqrt(0.8) * common + np.sqrt(0.2) * rng.normal(0, 1, CLAIMS) + shift * y
        aucs, cov = L.delong(y, np.vstack([a, b]))
        rejections.append(L.paired_p_value(cov, aucs) <= 0.05)
    assert np.mean(rejections) < 0.08


def test_the_review_asset_runs_the_stated_tests_by_default():
    """`model/lifecycle_review`'s config gives the review these tests unless a run says otherwise."""
    from rcm_assets.defs.lifecycle import ReviewConfig

    policy = ReviewConfig().policy()
    assert policy.rollback_confidence == 0.80 and policy.min_denied is None and policy.confidence == 0.95
    assert policy.denials_needed(19) == 36
    assert ReviewConfig(rollback_confidence=0.5, min_denied=30).policy().denials_needed(19) == 30
