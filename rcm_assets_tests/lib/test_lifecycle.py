"""The weekly review on matured labels (keep / promote / rollback / fallback) and the shadow roster, on the
generator's drift scenario: a payer starts requiring prior auth for a CPT family, which only a model that
knows the new regime can rank."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from rcm_assets.lib import champion as C
from rcm_assets.lib import lifecycle as L
from rcm_assets.synthetic import generate
from rcm_assets.synthetic.generator import Drift

DRIFT = Drift(date(2025, 2, 1), "BCBS", "imaging")
POLICY = L.ReviewPolicy(floor=0.70, margin=0.01, min_labels=1_000, confidence=0.95)


@pytest.fixture(scope="module")
def world():
    data = generate("2025-01-01", 45, 300, seed=5, drift=DRIFT)
    truth = data.ground_truth
    first = truth[truth["claim_version"] == 1].reset_index(drop=True)
    outcomes = data.remittances.rename(columns={})
    return first, outcomes, data


def scores_of(first: pd.DataFrame, version: str, role: str, p: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"claim_id": first["claim_id"], "claim_version": first["claim_version"],
                         "submitted_at": first["submitted_at"],
                         "model_version": version, "role": role, "denial_probability": p})


def remittance_outcomes(data) -> pd.DataFrame:
    rem = data.remittances
    return pd.DataFrame({"claim_id": rem["claim_id"], "adjudicated_at": rem["adjudicated_at"],
                         "updated_at": rem["updated_at"], "denied": rem["claim_status"].eq("denied")})


def blind_to_drift(first: pd.DataFrame) -> np.ndarray:
    """What a pre-drift model knows: the true probability, except the drifted cell looks as it did."""
    p = first["true_denial_probability"].to_numpy().copy()
    p[first["drift_active"].to_numpy()] = np.median(p)
    return p


def review(first, data, champion_p, others: dict[tuple[str, str], np.ndarray], policy=POLICY):
    frames = [scores_of(first, "5", L.CHAMPION, champion_p)]
    frames += [scores_of(first, v, role, p) for (v, role), p in others.items()]
    matured = L.matured_scores(pd.concat(frames, ignore_index=True), remittance_outcomes(data),
                               cutoff=pd.Timestamp("2025-04-30"), start=pd.Timestamp("2025-02-01"),
                               end=pd.Timestamp("2025-02-15"))
    results = L.compare_on_same_claims(matured, "5", policy)
    return L.decide("5", results, policy, "2025-04-28"), results


def test_matured_labels_are_first_adjudications_known_before_the_cutoff(world):
    first, _, data = world
    out = remittance_outcomes(data)
    matured = L.matured_scores(scores_of(first, "5", L.CHAMPION, first["true_denial_probability"].to_numpy()),
                               out, pd.Timestamp("2025-02-20"), pd.Timestamp("2025-02-01"),
                               pd.Timestamp("2025-02-15"))
    assert len(matured) > 0
    assert matured["submitted_at"].between(pd.Timestamp("2025-02-01"), pd.Timestamp("2025-02-15")).all()
    known = out[(out["adjudicated_at"] < "2025-02-20") & (out["updated_at"] < "2025-02-20")]
    assert set(matured["claim_id"]) <= set(known["claim_id"])
    # a later cutoff matures more labels of the same claims
    later = L.matured_scores(scores_of(first, "5", L.CHAMPION, first["true_denial_probability"].to_numpy()),
                             out, pd.Timestamp("2025-04-30"), pd.Timestamp("2025-02-01"), pd.Timestamp("2025-02-15"))
    assert len(later) > len(matured)


def test_a_challenger_that_knows_the_drift_is_promoted_by_the_stated_test(world):
    first, _, data = world
    decision, results = review(first, data, blind_to_drift(first),
                               {("7", L.CHALLENGER): first["true_denial_probability"].to_numpy()})
    champion, challenger = results
    assert challenger.roc_auc - champion.roc_auc >= POLICY.margin
    assert challenger.p_holm <= 1 - POLICY.confidence  # one challenger: Holm's p is the raw p
    assert challenger.p_holm == challenger.p_value
    assert decision.action == L.PROMOTE and decision.serving == "7" and decision.replaces == "5"
    assert "Promote challenger v7" in decision.sentence and "2025-04-28" in decision.sentence


def test_delong_aucs_are_roc_auc_score_and_its_variance_matches_resampling(world):
    """The review's AUCs are `roc_auc_score`'s, tied scores included (a model rounded to two decimals ties
    most claims), and DeLong's standard error agrees with the bootstrap's on the same claims."""
    from sklearn.metrics import roc_auc_score

    first, _, _ = world
    y = (first["true_denial_probability"].to_numpy() > 0.2).astype(int)
    rows = [first["true_denial_probability"].to_numpy(), blind_to_drift(first),
            np.round(first["true_denial_probability"].to_numpy(), 2)]
    aucs, cov = L.delong(y, np.vstack(rows))
    np.testing.assert_allclose(aucs, [roc_auc_score(y, p) for p in rows], rtol=0, atol=1e-12)
    rng = np.random.default_rng(3)
    boot = []
    for _ in range(300):
        s = rng.integers(0, len(y), len(y))
        boot.append(roc_auc_score(y[s], rows[1][s]))
    assert abs(np.sqrt(cov[1, 1]) / np.std(boot) - 1) < 0.15
    assert np.isnan(L.delong(np.zeros(len(y)), rows[0])[0]).all()  # one class: no AUC


def test_an_equal_challenger_is_not_promoted(world):
    first, _, data = world
    p = first["true_denial_probability"].to_numpy()
    noise = np.random.default_rng(1).normal(0, 1e-6, len(p))
    decision, _ = review(first, data, p, {("7", L.CHALLENGER): p + noise})
    assert decision.action == L.KEEP and decision.serving == "5" and "short of" in decision.sentence
    assert "Holm-corrected over 1 challenger(s)" in decision.sentence


def test_a_champion_below_the_floor_is_rolled_back_to_the_best_earlier_version(world):
    first, _, data = world
    rng = np.random.default_rng(2)
    broken = rng.random(len(first))  # a champion that lost its signal
    decision, results = review(first, data, broken, {
        ("3", L.PREVIOUS_CHAMPION): first["true_denial_probability"].to_numpy(),
        ("2", L.PREVIOUS_CHAMPION): blind_to_drift(first),
    })
    assert results[0].auc_upper < POLICY.floor
    assert decision.action == L.ROLLBACK and decision.serving == "3" and decision.replaces == "5"
    assert decision.severity == "error" and "below the floor" in decision.sentence


def test_with_no_earlier_version_above_the_floor_the_fallback_serves(world):
    first, _, data = world
    rng = np.random.default_rng(3)
    fallback_p = first.groupby(["payer_id", "cpt_family"])["true_denial_probability"].transform("mean").to_numpy()
    decision, _ = review(first, data, rng.random(len(first)), {
        ("2", L.PREVIOUS_CHAMPION): rng.random(len(first)), ("fallback", L.FALLBACK): fallback_p})
    assert decision.action == L.FALLBACK_ACTION and decision.serving is None
    assert "fallback model" in decision.sentence


def test_too_few_labels_keep_the_champion(world):
    first, _, data = world
    decision, _ = review(first, data, np.random.default_rng(4).random(len(first)), {},
                         policy=L.ReviewPolicy(min_labels=10**7))
    assert decision.action == L.KEEP and "fewer than" in decision.sentence


def events(*rows) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["version", "effective", "action", "replaces"])
    frame["at"] = [f"2026-01-01T00:00:{i:02d}" for i in range(len(frame))]
    frame["reason"] = frame["sentence"] = "x"
    frame["by"] = "test"
    return frame[C.EVENT_COLUMNS]


def test_serving_version_follows_rollbacks_fallbacks_and_feature_versions():
    ev = events(("1", "2025-01-06", C.PROMOTE, None), ("2", "2025-01-13", C.PROMOTE, "1"),
                ("2", "2025-01-20", C.FALLBACK, "2"), ("3", "2025-01-27", C.PROMOTE, None))
    assert C.serving_version(ev, date(2025, 1, 5)) is None
    assert C.serving_version(ev, date(2025, 1, 14)) == "2"
    assert C.serving_version(ev, date(2025, 1, 21)) is None  # the fallback serves
    assert C.serving_version(ev, date(2025, 1, 28)) == "3"
    fvs = {"1": "old", "2": "new", "3": "newer"}
    # gold of feature_version "new": the newest champion trained on it, never one retired by the fallback
    assert C.serving_version(ev, date(2025, 1, 14), fvs, "old") == "1"
    assert C.serving_version(ev, date(2025, 1, 28), fvs, "new") is None
    assert C.serving_version(ev, date(2025, 1, 28), fvs, "newer") == "3"


def test_the_shadow_roster_is_the_previous_champion_and_recent_challengers():
    ev = events(("1", "2025-01-06", C.PROMOTE, None), ("2", "2025-01-13", C.PROMOTE, "1"))
    versions = {"1": {"feature_version": "f", "gate_severity": "pass", "dagster_partition": "2025-01-06"},
                "2": {"feature_version": "f", "gate_severity": "pass", "dagster_partition": "2025-01-13"},
                "3": {"feature_version": "f", "gate_severity": "warn", "dagster_partition": "2025-01-20"},
                "4": {"feature_version": "f", "gate_severity": "error", "dagster_partition": "2025-01-27"},
                "5": {"feature_version": "g", "gate_severity": "warn", "dagster_partition": "2025-01-27"}}
    assert C.shadow_roster(ev, versions, date(2025, 1, 10), "f") == []
    assert C.shadow_roster(ev, versions, date(2025, 1, 15), "f") == [("1", "previous_champion")]
    assert C.shadow_roster(ev, versions, date(2025, 1, 28), "f") == [("1", "previous_champion"),
                                                                     ("3", "challenger")]


def test_the_review_roster_is_the_champion_before_the_week_its_predecessors_and_its_challengers():
    ev = events(("1", "2025-01-06", C.PROMOTE, None), ("2", "2025-01-13", C.PROMOTE, "1"),
                ("3", "2025-01-20", C.PROMOTE, "2"), ("2", "2025-01-27", C.ROLLBACK, "3"))
    versions = {"4": {"gate_severity": "warn", "dagster_partition": "2025-01-27"},
                "5": {"gate_severity": "warn", "dagster_partition": "2025-02-03"},
                "6": {"gate_severity": "error", "dagster_partition": "2025-01-27"}}
    assert C.review_roster(ev, versions, date(2025, 1, 6)) == (None, [])
    assert C.review_roster(ev, versions, date(2025, 1, 21)) == ("3", [("2", "previous_champion"),
                                                                      ("1", "previous_champion")])
    # after the rollback to v2: v3 is retired; v4 cleared the floor since v2 serves again; v5 is too new
    assert C.review_roster(ev, versions, date(2025, 2, 3)) == ("2", [("1", "previous_champion"),
                                                                     ("4", "challenger")])


def test_on_the_same_day_the_weeks_own_gate_promotion_wins_over_a_review_of_the_champion_before_it():
    """The review retires the champion that served before W; if the gate of week W promoted a new model,
    that model serves from W whichever of the two ran first."""
    gate = ("5", "2025-03-17", C.PROMOTE, "4", "gate week 2025-03-17")
    review = ("2", "2025-03-17", C.ROLLBACK, "4", f"{C.REVIEW_REASON_PREFIX}2025-03-17")
    for order in ((gate, review), (review, gate)):
        ev = pd.DataFrame([r[:4] for r in order], columns=["version", "effective", "action", "replaces"])
        ev["reason"] = [r[4] for r in order]
        ev["at"] = ["2026-01-01T00:00:01", "2026-01-01T00:00:02"]
        ev["sentence"], ev["by"] = "x", "test"
        ev = pd.concat([events(("4", "2025-03-10", C.PROMOTE, None)), ev[C.EVENT_COLUMNS]], ignore_index=True)
        assert C.serving_version(ev, date(2025, 3, 17)) == "5"
        assert C.serving_version(ev, date(2025, 3, 16)) == "4"
