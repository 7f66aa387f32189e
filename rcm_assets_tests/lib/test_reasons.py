"""The denial-reason model: first-adjudication labels, fit, metrics, and quality against the generator's causes
(top-1 accuracy and macro AUC beside the Bayes-optimal figures of its cause structure)."""

from __future__ import annotations

import functools
from datetime import date
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from rcm_assets.lib import claim_history, labels, settings
from rcm_assets.lib import modelling as M
from rcm_assets.lib import reasons as R
from rcm_assets.lib import transforms as T
from rcm_assets.lib.columns import CARC_CATEGORIES
from rcm_assets.synthetic import generate
from rcm_assets.synthetic import generator as G
from rcm_assets_tests.hospital import hospital_gold, supplied_tables

START = date(2025, 1, 1)


@functools.lru_cache(maxsize=1)
def generator_world() -> SimpleNamespace:
    """150 days x 250 claims through the real silver and gold code; a training set whose window matured
    before the cutoff; its denied claims labelled by category (shared with test_drivers)."""
    data = generate(start=START, days=150, claims_per_day=250, seed=5)

    def bronze(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(_ingested_at=frame["updated_at"], _source="test", _run_id="test",
                            dt=frame["updated_at"].dt.strftime("%Y-%m-%d"))

    silver = T.build_silver_claims(bronze(data.claims), T.DEV_PHI_KEY).good
    outcomes = T.build_silver_remittances(bronze(data.remittances)).good
    decisions, _ = claim_history.decision_rows(silver, None, settings.update_lookback_days())
    gold = hospital_gold(decisions, silver, outcomes, supplied_tables(data))  # as a hospital's pipeline has it
    cutoff = pd.Timestamp(data.end)
    ts = M.training_frame(gold, outcomes, cutoff, pd.Timestamp(START), pd.Timestamp("2025-04-15"))
    rs = R.reason_training_set(ts)
    return SimpleNamespace(data=data, outcomes=outcomes, gold=gold, cutoff=cutoff, ts=ts, rs=rs,
                           truth=data.ground_truth)


@pytest.fixture(scope="module")
def world() -> SimpleNamespace:
    return generator_world()


def truth_rows(keys: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    return keys[["claim_id", "claim_version"]].merge(truth, on=["claim_id", "claim_version"], how="left",
                                                     validate="one_to_one")


def bayes(rows: pd.DataFrame) -> pd.DataFrame:
    return R.bayes_reason_probabilities(rows["true_denial_probability"], rows, G.EFFECTS, G.CAUSE_CARC,
                                        G.BACKGROUND_CARCS)


# ----------------------------------------------------------------------------------------------- labels


def test_reason_labels_are_the_generators_denial_carcs(world):
    rs = world.rs
    assert rs.stats["denied"] == int(world.ts.y.sum()) == len(rs.y) > 500
    assert set(rs.y) <= set(R.REASON_CATEGORIES)
    keyed = truth_rows(rs.claim_keys, world.truth)
    expected = keyed["denial_carc"].map(lambda c: CARC_CATEGORIES.get(c, "other"))
    assert keyed["denied"].all()
    assert (rs.y.to_numpy() == expected.to_numpy()).all()
    assert rs.claim_keys["submitted_at"].is_monotonic_increasing


def test_the_training_sets_first_adjudication_is_the_row_the_label_rule_picks(world):
    """The category and allowed amount the training set carries come from the label's own remittance row:
    the row `labels.first_adjudications` (everyone's rule) picks for every training version."""
    first = world.ts.first_outcome
    assert list(first.columns) == ["adjudicated_at", "carc_category", "allowed_amount"]
    versions = world.gold.loc[world.gold["submitted_at"] < world.cutoff, ["claim_id", "claim_version", "submitted_at"]]
    expected = world.ts.claim_keys[["claim_id", "claim_version"]].merge(
        labels.first_adjudications(world.outcomes, versions, world.cutoff),
        on=["claim_id", "claim_version"], how="left", validate="one_to_one")
    assert (expected["denied"].astype(bool).to_numpy() == world.ts.y.astype(bool).to_numpy()).all()
    for column in first.columns:
        pd.testing.assert_series_equal(first[column], expected[column], check_names=False)


def test_a_training_set_without_carc_categories_is_refused(world):
    ts = M.training_frame(world.gold, world.outcomes.drop(columns=["carc_category"]), world.cutoff,
                          pd.Timestamp(START), pd.Timestamp("2025-04-15"))
    with pytest.raises(KeyError, match="carc_category"):
        R.reason_training_set(ts)


# ------------------------------------------------------------------------------------------------- fit


@pytest.fixture(scope="module")
def fitted(world):
    train, holdout = R.reason_holdout_split(world.rs)
    model = R.fit_reason_model(train.X, train.y, seed=0, n_threads=1)
    return train, holdout, model


def test_holdout_split_keeps_category_labels_and_time_order(world, fitted):
    train, holdout, _ = fitted
    assert len(train.y) + len(holdout.y) == len(world.rs.y)
    assert train.claim_keys["submitted_at"].max() <= holdout.claim_keys["submitted_at"].min()
    assert set(holdout.y) <= set(R.REASON_CATEGORIES)


def test_reason_model_is_near_the_bayes_optimal_figures(world, fitted):
    _, holdout, model = fitted
    proba = R.predict_reasons(model, holdout.X, n_threads=1)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    metrics = R.reason_metrics(holdout.y, proba)
    ceiling = R.reason_metrics(holdout.y, bayes(truth_rows(holdout.claim_keys, world.truth)))
    # the features know the hospital's files and what was learned before each day, not the generator's
    # grids (issue 24): within 0.08 of the Bayes top-1 accuracy
    assert metrics["top1_accuracy"] >= ceiling["top1_accuracy"] - 0.08, (metrics, ceiling)
    assert metrics["macro_auc"] >= ceiling["macro_auc"] - 0.03, (metrics["macro_auc"], ceiling["macro_auc"])
    # a majority-class guess is far below both
    majority = holdout.y.value_counts(normalize=True).iloc[0]
    assert metrics["top1_accuracy"] > majority + 0.2


def test_claims_with_one_named_cause_get_that_cause_as_reason(world, fitted):
    _, holdout, model = fitted
    rows = truth_rows(holdout.claim_keys, world.truth)
    top = R.top_reasons(R.predict_reasons(model, holdout.X))
    named = rows[[f"cause_{c}" for c in G.CAUSES]]
    for cause, category in (("timely_filing", "timely_filing"), ("missing_prior_auth", "authorization"),
                            ("dx_inconsistent", "coding"), ("eligibility_unverified", "eligibility")):
        only = (rows[f"cause_{cause}"] & (named.sum(axis=1) == 1)).to_numpy()
        assert only.sum() >= 10, cause
        assert (top["reason_category"].to_numpy()[only] == category).mean() >= 0.75, cause


def test_one_vs_rest_strategy_also_fits_and_probabilities_sum_to_one(fitted):
    train, holdout, _ = fitted
    model = R.fit_reason_model(train.X, train.y, strategy="one_vs_rest", n_threads=1,
                               params={"max_iter": 30, "early_stopping": False})
    proba = R.predict_reasons(model, holdout.X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    with pytest.raises(ValueError, match="strategy"):
        R.fit_reason_model(train.X, train.y, strategy="tree_per_payer")


def test_unseen_categories_get_zero_probability_and_single_class_is_refused(fitted):
    train, holdout, _ = fitted
    keep = train.y.isin(["timely_filing", "administrative", "authorization"]).to_numpy()
    model = R.fit_reason_model(train.X[keep], train.y[keep], params={"max_iter": 20, "early_stopping": False})
    proba = R.predict_reasons(model, holdout.X.head(50))
    assert list(proba.columns) == list(R.REASON_CATEGORIES)
    assert (proba["pricing"] == 0).all() and (proba["coding"] == 0).all()
    with pytest.raises(ValueError, match="single category"):
        R.fit_reason_model(train.X.head(200), pd.Series(["coding"] * 200))


def test_fitted_reason_model_needs_only_the_trusted_skops_types(fitted):
    import skops.io

    untrusted = skops.io.get_untrusted_types(data=skops.io.dumps(fitted[2]))
    assert set(untrusted) <= set(R.SKOPS_TRUSTED_TYPES), set(untrusted) - set(R.SKOPS_TRUSTED_TYPES)


# --------------------------------------------------------------------------------------- metrics, Bayes


def test_reason_metrics_on_a_known_case():
    proba = pd.DataFrame({"authorization": [0.9, 0.2, 0.1, 0.6], "coding": [0.1, 0.8, 0.9, 0.4]})
    m = R.reason_metrics(["authorization", "coding", "coding", "coding"], proba)
    assert m["top1_accuracy"] == 0.75
    assert m["category_auc"] == {"authorization": 1.0, "coding": 1.0}
    assert m["macro_auc"] == 1.0
    assert R.reason_metric_values(m, "holdout_")["holdout_auc_coding"] == 1.0


def test_bayes_probabilities_follow_the_cause_structure():
    causes = pd.DataFrame({f"cause_{c}": [False, False, False] for c in G.CAUSES})
    causes.loc[1, "cause_timely_filing"] = True
    causes.loc[2, ["cause_missing_prior_auth", "cause_eligibility_unverified"]] = True
    small = -3.0  # background logit
    logit = np.array([small, small + G.EFFECTS["timely_filing"],
                      small + G.EFFECTS["missing_prior_auth"] + G.EFFECTS["eligibility_unverified"]])
    p = 1 / (1 + np.exp(-logit))
    out = R.bayes_reason_probabilities(p, causes, G.EFFECTS, G.CAUSE_CARC, G.BACKGROUND_CARCS)
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    background = 1 / (1 + np.exp(-small))
    assert out.loc[0, "administrative"] == pytest.approx(0.65) and out.loc[0, "other"] == pytest.approx(0.35)
    assert out.loc[1, "timely_filing"] == pytest.approx(1 - background / p[1])
    # two causes: the first in the generator's order names the denial
    assert out.loc[2, "authorization"] == pytest.approx(1 - background / p[2])
    assert out.loc[2, "eligibility"] == 0.0
