"""Modelling: point-in-time training frame, calibrated fit near the Bayes ceiling, metrics, PSI, plots."""

from __future__ import annotations

import io
from datetime import date

import numpy as np
import pandas as pd
import pytest

from rcm_assets.lib import claim_history, settings
from rcm_assets.lib import features as F
from rcm_assets.lib import modelling as M
from rcm_assets.lib import transforms as T
from rcm_assets.synthetic import generate
from rcm_assets_tests.conftest import silver_claims, to_bronze
from rcm_assets_tests.hospital import hospital_gold, supplied_tables

CUTOFF = pd.Timestamp("2025-04-15")
# One OpenMP thread keeps the suite fast on shared CI hosts, where spinning threads of two concurrent
# processes can slow a fit tenfold (see modelling.limit_threads).
THREADS = 1
SUPPLIED = supplied_tables(generate(start=date(2025, 1, 1), days=1, claims_per_day=1, seed=11))
WINDOW = (pd.Timestamp("2025-03-01"), pd.Timestamp("2025-03-11"))


def gold_days(days: int = 10, per_day: int = 200, start: str = "2025-03-01", seed: int = 0) -> pd.DataFrame:
    """Gold features of `days` days of claims with unique ids (version 1 only)."""
    frames = [silver_claims(per_day, seed=seed + i, day=str((pd.Timestamp(start) + pd.Timedelta(days=i)).date()))
              for i in range(days)]
    silver = pd.concat(frames, ignore_index=True)
    silver["claim_id"] = [f"C{i:010d}" for i in range(len(silver))]
    return F.compute_features(F.decision_time_view(silver), reference=SUPPLIED)  # the hospital's files


def true_probability(gold: pd.DataFrame) -> np.ndarray:
    """A known denial process on the features (stand-in for the generator's ground truth)."""
    logit = (-2.6 + 2.4 * gold["prior_auth_missing"] + 1.8 * (1 - gold["eligibility_verified"])
             + 2.0 * gold["past_filing_limit"] + 0.9 * gold["icd_chapter"].isin(["musculoskeletal", "injury", "symptoms", "factors", "digestive"])
             + 0.8 * (gold["charge_ratio"] > 3) + 0.4 * gold["has_modifier_59"]
             + 0.5 * gold["plan_type"].isin(["medicaid"]))
    return 1.0 / (1.0 + np.exp(-logit.to_numpy(dtype="float64")))


def outcomes_for(gold: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """One remittance per claim (latest version), adjudicated 14–60 days after submission."""
    rng = np.random.default_rng(seed)
    latest = gold.sort_values(["claim_id", "claim_version"]).drop_duplicates("claim_id", keep="last")
    adjudicated = latest["submitted_at"] + pd.to_timedelta(rng.integers(14 * 24, 60 * 24, len(latest)), unit="h")
    denied = rng.random(len(latest)) < true_probability(latest)
    return pd.DataFrame({
        "claim_id": latest["claim_id"].to_numpy(),
        "adjudicated_at": adjudicated.to_numpy(),
        "claim_status": np.where(denied, "denied", "paid"),
        "paid_amount": np.where(denied, 0.0, 100.0),
        "updated_at": (adjudicated + pd.Timedelta(hours=2)).to_numpy(),
        "denied": denied,
        "dt": adjudicated.dt.strftime("%Y-%m-%d").to_numpy(),
    })


@pytest.fixture(scope="module")
def gold() -> pd.DataFrame:
    return gold_days()


@pytest.fixture(scope="module")
def outcomes(gold: pd.DataFrame) -> pd.DataFrame:
    return outcomes_for(gold)


def training(gold: pd.DataFrame, outcomes: pd.DataFrame) -> M.TrainingSet:
    return M.training_frame(gold, outcomes, CUTOFF, *WINDOW)


# ------------------------------------------------------------------------------------ point in time


def test_training_frame_labels_only_matured_outcomes(gold: pd.DataFrame, outcomes: pd.DataFrame) -> None:
    ts = training(gold, outcomes)
    matured = outcomes[(outcomes["updated_at"] < CUTOFF) & (outcomes["adjudicated_at"] < CUTOFF)]
    in_window = gold[(gold["submitted_at"] >= WINDOW[0]) & (gold["submitted_at"] < WINDOW[1])]
    expected = sorted(set(in_window["claim_id"]) & set(matured["claim_id"]))
    assert sorted(ts.claim_keys["claim_id"]) == expected
    assert 0 < len(expected) < len(in_window)  # some claims have not matured: left out, not labelled 0
    assert ts.stats["unlabelled"] == len(in_window) - len(expected)
    assert ts.stats["labelled"] == len(ts.y) == len(ts.X)
    truth = matured.set_index("claim_id")["denied"].astype("int64")
    assert ts.y.tolist() == truth.loc[ts.claim_keys["claim_id"]].tolist()
    assert list(ts.X.columns) == list(F.FEATURE_COLUMNS)
    assert ts.claim_keys["submitted_at"].is_monotonic_increasing
    assert ts.stats["feature_versions"] == [F.feature_version(F.DEFAULT_CONFIG, SUPPLIED)]


def test_a_window_with_no_gold_selects_nothing(gold: pd.DataFrame, outcomes: pd.DataFrame) -> None:
    """A week whose window has no gold yet (gold not materialized) selects no rows, so the model's
    minimum-rows check names the week; the selection used to fail with an IndexError of its own."""
    selection = M.training_rows(gold.iloc[0:0], outcomes, CUTOFF, *WINDOW)
    assert len(selection.rows) == 0 and len(selection.labels) == 0
    assert selection.stats["labelled"] == 0 and selection.stats["gold_rows"] == 0


def test_outcomes_at_or_after_cutoff_cannot_change_the_training_set(
    gold: pd.DataFrame, outcomes: pd.DataFrame
) -> None:
    base = training(gold, outcomes)
    rng = np.random.default_rng(1)
    labelled = base.claim_keys["claim_id"].to_numpy()
    unlabelled = np.setdiff1d(gold["claim_id"].to_numpy(), labelled)
    picks = rng.choice(labelled, 40, replace=False)
    flipped = outcomes.set_index("claim_id").loc[picks].reset_index()
    future = pd.concat([
        # a correction/appeal of a labelled claim that reaches the source at or after the cutoff
        flipped.assign(denied=~flipped["denied"], updated_at=CUTOFF + pd.Timedelta(days=3)),
        flipped.assign(denied=~flipped["denied"], updated_at=CUTOFF),
        # adjudicated before the cutoff but arriving at or after it
        pd.DataFrame({"claim_id": unlabelled[:30], "adjudicated_at": CUTOFF - pd.Timedelta(days=1),
                      "updated_at": CUTOFF + pd.Timedelta(hours=1), "denied": True}),
        # adjudicated at the cutoff, row timestamp back-dated (a source clock problem)
        pd.DataFrame({"claim_id": unlabelled[30:60], "adjudicated_at": CUTOFF,
                      "updated_at": CUTOFF - pd.Timedelta(days=1), "denied": True}),
    ], ignore_index=True)
    after = training(gold, pd.concat([outcomes, future], ignore_index=True))
    pd.testing.assert_frame_equal(after.X, base.X)
    pd.testing.assert_series_equal(after.y, base.y)
    pd.testing.assert_frame_equal(after.claim_keys, base.claim_keys)

    # control: the same late first adjudications arriving before the cutoff do label their claims (the
    # test has teeth); a restatement arriving later never relabels (the label is the first to arrive)
    early = future.iloc[2 * len(flipped):2 * len(flipped) + 30].assign(updated_at=CUTOFF - pd.Timedelta(minutes=1))
    changed = training(gold, pd.concat([outcomes, early], ignore_index=True))
    assert changed.stats["labelled"] == base.stats["labelled"] + 30


def test_an_appeal_never_relabels_the_first_adjudication(gold: pd.DataFrame, outcomes: pd.DataFrame) -> None:
    """A later adjudication (appeal overturning a denial) known before the cutoff keeps the first label;
    the old rule (latest row wins) flipped it."""
    base = training(gold, outcomes)
    early = outcomes[outcomes["adjudicated_at"] < CUTOFF - pd.Timedelta(days=25)]
    denied = base.claim_keys.loc[(base.y.to_numpy() == 1) & base.claim_keys["claim_id"].isin(early["claim_id"]).to_numpy(),
                                 "claim_id"].to_numpy()[:25]
    assert len(denied) == 25
    first = outcomes.set_index("claim_id").loc[denied].reset_index()
    appeals = first.assign(denied=False, adjudicated_at=first["adjudicated_at"] + pd.Timedelta(days=20),
                           updated_at=first["adjudicated_at"] + pd.Timedelta(days=20, hours=1))
    assert (appeals["updated_at"] < CUTOFF).all()  # known at the cutoff
    after = training(gold, pd.concat([outcomes, appeals], ignore_index=True))
    pd.testing.assert_series_equal(after.y, base.y)
    assert after.stats["labels_overturned_later"] == len(denied)


def test_a_version_is_represented_by_its_first_gold_row(gold: pd.DataFrame, outcomes: pd.DataFrame) -> None:
    """An in-place update of a version that reached gold again in a later partition (eligibility fixed
    after the denial) does not reach training; the old rule kept the last copy."""
    base = training(gold, outcomes)
    picks = base.claim_keys["claim_id"].to_numpy()[:30]
    rows = gold[gold["claim_id"].isin(picks)]
    later = rows.assign(dt=(pd.to_datetime(rows["dt"]) + pd.Timedelta(days=20)).dt.strftime("%Y-%m-%d"),
                        eligibility_verified=1 - rows["eligibility_verified"])
    after = training(pd.concat([gold, later], ignore_index=True), outcomes)
    pd.testing.assert_frame_equal(after.X, base.X)
    assert after.stats["repeated_version_rows"] == len(later)


def test_a_correction_owns_the_remittance_adjudicated_after_it_and_window_is_half_open(gold: pd.DataFrame) -> None:
    first = gold.iloc[:5]
    corrected = first.assign(claim_version=2, submitted_at=first["submitted_at"] + pd.Timedelta(days=2))
    boundary = gold.iloc[[5]].assign(submitted_at=WINDOW[1])  # at window_end: excluded
    g = pd.concat([gold.iloc[5:], corrected, boundary.assign(claim_id="C9999999999")], ignore_index=True)
    outcomes = outcomes_for(pd.concat([g, first], ignore_index=True)).assign(
        adjudicated_at=WINDOW[1] + pd.Timedelta(days=3), updated_at=WINDOW[1] + pd.Timedelta(days=3, hours=1))
    ts = M.training_frame(pd.concat([first, g], ignore_index=True), outcomes, CUTOFF, *WINDOW)
    keys = ts.claim_keys.set_index("claim_id")
    # adjudicated after the correction was submitted: the correction's answer, the original has none
    assert (keys.loc[first["claim_id"], "claim_version"] == 2).all()
    assert not ts.claim_keys.duplicated("claim_id").any()
    assert "C9999999999" not in keys.index
    assert ts.stats["corrected_versions"] == 5 and ts.stats["outcome_before_version"] == 5


def test_denied_originals_of_corrected_claims_stay_in_training(gold: pd.DataFrame) -> None:
    """Three originals denied, then corrected and paid: six training rows, the three denials among them.
    Training used to keep only the latest version before the cutoff (three paid rows, no denial)."""
    originals = gold.iloc[:3]
    corrections = originals.assign(claim_version=2, submitted_at=originals["submitted_at"] + pd.Timedelta(days=25))
    frame = pd.concat([originals, corrections], ignore_index=True)
    remittances = pd.concat([
        pd.DataFrame({"claim_id": originals["claim_id"], "denied": True, "claim_status": "denied",
                      "adjudicated_at": originals["submitted_at"] + pd.Timedelta(days=15),
                      "updated_at": originals["submitted_at"] + pd.Timedelta(days=16)}),
        pd.DataFrame({"claim_id": originals["claim_id"], "denied": False, "claim_status": "paid",
                      "adjudicated_at": corrections["submitted_at"] + pd.Timedelta(days=10),
                      "updated_at": corrections["submitted_at"] + pd.Timedelta(days=11)}),
    ], ignore_index=True)
    assert (remittances["updated_at"] < CUTOFF).all()
    ts = M.training_frame(frame, remittances, CUTOFF, WINDOW[0], CUTOFF - pd.Timedelta(days=10))
    got = sorted(zip(ts.claim_keys["claim_id"], ts.claim_keys["claim_version"], ts.y, strict=True))
    assert got == sorted([(c, 1, 1) for c in originals["claim_id"]] + [(c, 2, 0) for c in originals["claim_id"]])
    assert ts.stats["denial_rate"] == 0.5 and ts.stats["corrected_versions"] == 3


def test_a_reversal_is_never_the_training_label(gold: pd.DataFrame) -> None:
    """A reversal (CLP02 22) and the denial that corrects it reach the source together, before the payment
    they pair with: the denial is the label. The reversal (not denied) used to win the tie and label it paid."""
    row = gold.iloc[[0]]
    at = row["submitted_at"].iloc[0] + pd.Timedelta(days=20)
    remittances = pd.DataFrame({"claim_id": [row["claim_id"].iloc[0]] * 2, "claim_status": ["reversed", "denied"],
                                "denied": [False, True], "adjudicated_at": [at, at],
                                "updated_at": [at + pd.Timedelta(hours=1)] * 2})
    ts = M.training_frame(row, remittances, CUTOFF, *WINDOW)
    assert ts.y.tolist() == [1] and ts.stats["labels_with_later_outcome_rows"] == 0
    assert M.training_frame(row, remittances.iloc[[0]], CUTOFF, *WINDOW).stats["labelled"] == 0


def test_outcome_adjudicated_before_the_version_was_submitted_is_not_its_label(gold: pd.DataFrame) -> None:
    row = gold.iloc[[0]]
    stale = pd.DataFrame({"claim_id": row["claim_id"], "denied": [True],
                          "adjudicated_at": row["submitted_at"] - pd.Timedelta(days=1),
                          "updated_at": row["submitted_at"] - pd.Timedelta(hours=20)})
    ts = M.training_frame(row, stale, CUTOFF, *WINDOW)
    assert len(ts.y) == 0 and ts.stats["outcome_before_version"] == 1


def test_time_holdout_split_puts_latest_submissions_in_holdout(gold: pd.DataFrame, outcomes: pd.DataFrame) -> None:
    train, holdout = M.time_holdout_split(training(gold, outcomes), 0.25)
    assert len(holdout.y) == round((len(train.y) + len(holdout.y)) * 0.25)
    assert train.claim_keys["submitted_at"].max() <= holdout.claim_keys["submitted_at"].min()
    assert len(train.X) == len(train.y) == len(train.claim_keys)


# ------------------------------------------------------------------------------------------------- fit


def test_a_feature_known_only_in_the_calibration_rows_is_ignored_by_the_trees(
        gold: pd.DataFrame, outcomes: pd.DataFrame) -> None:
    """A statistic first learned inside the window has values only in the newest (calibration) rows; the
    fit must not fail on it (seen in `rcm demo --drift`: HGB's binning raised "window shape cannot be
    larger than input array shape")."""
    ts = training(gold, outcomes)
    learned_late = np.where(np.arange(len(ts.X)) >= int(len(ts.X) * 0.9), 90.0, np.nan)
    X = ts.X.assign(learned_filing_limit_days=learned_late)
    model = M.fit_model(X, ts.y, seed=0, n_threads=THREADS)
    assert np.isfinite(M.predict_denial(model, X)).all()
    assert np.isfinite(M.predict_denial(model, X.assign(learned_filing_limit_days=60.0))).all()


@pytest.fixture(scope="module")
def split() -> tuple[M.TrainingSet, M.TrainingSet, np.ndarray]:
    """The real path on generator data: silver transforms → features → point-in-time set → time split;
    with the holdout's true denial probabilities."""
    # two months of history before the window: the learned statistics of a window's days need outcomes
    # that arrived before them, as a hospital's pipeline has once it has run a while
    data = generate(start=date(2024, 11, 1), days=136, claims_per_day=500, seed=11)
    silver = T.build_silver_claims(to_bronze(data.claims), T.DEV_PHI_KEY).good
    outcomes = T.build_silver_remittances(to_bronze(data.remittances)).good
    decisions, _ = claim_history.decision_rows(silver, None, settings.update_lookback_days())
    gold = hospital_gold(decisions, silver, outcomes, supplied_tables(data))
    ts = M.training_frame(gold, outcomes, pd.Timestamp(data.end), pd.Timestamp("2025-01-01"),
                          pd.Timestamp("2025-02-15"))
    train, holdout = M.time_holdout_split(ts)
    truth = data.ground_truth.set_index(["claim_id", "claim_version"])["true_denial_probability"]
    keys = pd.MultiIndex.from_frame(holdout.claim_keys[["claim_id", "claim_version"]])
    return train, holdout, truth.loc[keys].to_numpy()


@pytest.fixture(scope="module")
def fitted(split) -> tuple[M.DenialModel, M.TrainingSet, np.ndarray]:
    train, holdout, truth = split
    return M.fit_model(train.X, train.y, seed=0, n_threads=THREADS), holdout, truth


def test_fit_reaches_the_bayes_ceiling(fitted: tuple[M.DenialModel, M.TrainingSet, np.ndarray]) -> None:
    model, holdout, truth = fitted
    p = M.predict_denial(model, holdout.X)
    metrics = M.evaluate(holdout.y, p)
    ceiling = M.bayes_auc(truth, holdout.y)
    assert metrics["roc_auc"] > 0.65
    # without the generator's truth the model learns payers, codes and pairs from outcomes known before each
    # day (issue 24): on this 45-day window of a young pipeline it stays within 0.05 of the ceiling (the
    # issue's 0.02 / 0.03 are measured on 240 days by the benchmark)
    assert ceiling - metrics["roc_auc"] < 0.05, (metrics["roc_auc"], ceiling)
    assert metrics["ece"] < 0.03
    assert abs(metrics["mean_predicted"] - metrics["positive_rate"]) < 0.02


def test_model_scores_gold_frames_and_string_columns_alike(
    fitted: tuple[M.DenialModel, M.TrainingSet, np.ndarray],
) -> None:
    model, holdout, _ = fitted
    p = M.predict_denial(model, holdout.X)
    with_keys = pd.concat([holdout.claim_keys, holdout.X.iloc[:, ::-1]], axis=1)
    np.testing.assert_array_equal(M.predict_denial(model, with_keys), p)
    as_strings = holdout.X.astype({c: object for c in F.CATEGORICAL_FEATURES})
    np.testing.assert_array_equal(M.predict_denial(model, as_strings), p)
    assert ((p >= 0) & (p <= 1)).all()


def test_a_fit_row_cap_samples_the_earlier_rows_and_keeps_the_quality(
    split: tuple[M.TrainingSet, M.TrainingSet, np.ndarray], fitted: tuple[M.DenialModel, M.TrainingSet, np.ndarray],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """max_fit_rows: the trees learn from a seeded sample of the earlier rows (the log says how many),
    the same sample every time; a cap above the row count changes nothing; on generator data half the
    rows lose little AUC against the Bayes ceiling."""
    train, holdout, truth = split
    full = M.predict_denial(fitted[0], holdout.X)
    n_fit = len(train.X) - int(round(len(train.X) * 0.2))
    uncapped = M.fit_model(train.X, train.y, seed=0, n_threads=THREADS, max_fit_rows=n_fit)
    np.testing.assert_array_equal(M.predict_denial(uncapped, holdout.X), full)
    with caplog.at_level("INFO", logger="rcm.modelling"):
        capped = M.fit_model(train.X, train.y, seed=0, n_threads=THREADS, max_fit_rows=n_fit // 2)
    assert f"on {n_fit // 2} rows (of {n_fit})" in caplog.text
    again = M.fit_model(train.X, train.y, seed=0, n_threads=THREADS, max_fit_rows=n_fit // 2)
    half = M.predict_denial(capped, holdout.X)
    np.testing.assert_array_equal(M.predict_denial(again, holdout.X), half)
    assert not np.array_equal(half, full)
    auc_full, auc_half = M.evaluate(holdout.y, full)["roc_auc"], M.evaluate(holdout.y, half)["roc_auc"]
    assert auc_half > auc_full - 0.02, (auc_half, auc_full, M.bayes_auc(truth, holdout.y))


def test_fit_is_deterministic_for_a_seed(gold: pd.DataFrame, outcomes: pd.DataFrame) -> None:
    ts = training(gold, outcomes)
    a = M.predict_denial(M.fit_model(ts.X, ts.y, seed=7, n_threads=THREADS), ts.X)
    b = M.predict_denial(M.fit_model(ts.X, ts.y, seed=7, n_threads=THREADS), ts.X)
    np.testing.assert_array_equal(a, b)


def test_fit_refuses_single_class() -> None:
    X = gold_days(days=1, per_day=600)[list(F.FEATURE_COLUMNS)]
    with pytest.raises(ValueError, match="single class"):
        M.fit_model(X, np.zeros(len(X)))


def test_model_saves_with_skops_trusting_only_the_documented_types(
    fitted: tuple[M.DenialModel, M.TrainingSet, np.ndarray],
) -> None:
    sio = pytest.importorskip("skops.io")
    model, holdout, _ = fitted
    blob = sio.dumps(model)
    assert set(sio.get_untrusted_types(data=blob)) <= set(M.SKOPS_TRUSTED_TYPES)
    loaded = sio.loads(blob, trusted=list(M.SKOPS_TRUSTED_TYPES))
    np.testing.assert_array_equal(M.predict_denial(loaded, holdout.X), M.predict_denial(model, holdout.X))


def test_importances_and_plots(fitted: tuple[M.DenialModel, M.TrainingSet, np.ndarray]) -> None:
    model, holdout, truth = fitted
    imp = M.permutation_importances(model, holdout.X, holdout.y, sample=2000, n_repeats=2,
                                     n_threads=THREADS)
    assert set(imp["feature"]) == set(F.FEATURE_COLUMNS)
    assert "prior_auth_missing" in imp["feature"].head(5).tolist()
    p = M.predict_denial(model, holdout.X)
    for fig in (M.roc_figure(holdout.y, p, truth), M.pr_figure(holdout.y, p),
                M.calibration_figure(holdout.y, p), M.importance_figure(imp)):
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        assert buf.getvalue()[:4] == b"\x89PNG"


# --------------------------------------------------------------------------------------------- metrics


def test_evaluate_on_calibrated_probabilities() -> None:
    rng = np.random.default_rng(0)
    p = rng.beta(1, 6, 50_000)
    y = rng.random(len(p)) < p
    m = M.evaluate(y, p)
    assert m["ece"] < 0.01
    assert m["roc_auc"] == pytest.approx(M.bayes_auc(p, y))
    assert len(m["reliability"]) == 10 and sum(r["count"] for r in m["reliability"]) == len(p)
    logged = M.metric_values(m, prefix="holdout_")
    assert "holdout_roc_auc" in logged and "holdout_reliability" not in logged
    assert all(isinstance(v, float) for v in logged.values())
    assert M.evaluate(y, np.clip(p * 2, 0, 1))["ece"] > 0.05


def test_decision_threshold() -> None:
    assert M.decision(np.array([0.1, 0.3, 0.31]), 0.3).tolist() == [False, True, True]


def test_psi_is_near_zero_for_the_same_distribution_and_grows_with_shift() -> None:
    rng = np.random.default_rng(0)
    ref = rng.normal(size=20_000)
    assert M.psi(ref, rng.normal(size=20_000)) < 0.01
    moderate, large = M.psi(ref, rng.normal(0.3, 1, 20_000)), M.psi(ref, rng.normal(1.0, 1, 20_000))
    assert 0.05 < moderate < large and large > 0.25
    # integer features with few values (ties merge quantile bins) and values outside the reference range
    assert M.psi(rng.integers(0, 2, 5000), rng.integers(0, 2, 5000)) < 0.01
    assert np.isfinite(M.psi(np.zeros(100), np.ones(100)))


def test_psi_for_categorical_features_and_missing_values() -> None:
    cats = pd.CategoricalDtype(["a", "b", "c"])
    base = pd.Series(["a"] * 500 + ["b"] * 500, dtype=cats)
    assert M.psi(base, base.sample(frac=1.0, random_state=0)) == pytest.approx(0.0, abs=1e-12)
    assert M.psi(base, pd.Series(["a"] * 300 + ["b"] * 300 + ["c"] * 400, dtype=cats)) > 0.25
    with_nan = np.r_[np.arange(900.0), [np.nan] * 100]
    assert M.psi(with_nan, np.r_[np.arange(500.0), [np.nan] * 500]) > 0.25


def test_feature_psi_covers_shared_columns(gold: pd.DataFrame) -> None:
    early, late = gold.iloc[: len(gold) // 2], gold.iloc[len(gold) // 2:]
    drift = M.feature_psi(early[list(F.FEATURE_COLUMNS)], late[list(F.FEATURE_COLUMNS)])
    assert set(drift) == set(F.FEATURE_COLUMNS)
    assert max(drift.values()) < 0.1


@pytest.mark.parametrize("values", [["C3", "C1", "C2", "C1", "C10", "c1"], []])
def test_sorted_codes_equal_pandas_sorted_factorize(values: list[str]) -> None:
    series = pd.Series(values, dtype=object)
    expected_codes, _ = pd.factorize(series, sort=True)
    assert list(M.sorted_codes(series)) == list(expected_codes)
    assert list(M.sorted_codes(series.astype(pd.StringDtype("pyarrow")))) == list(expected_codes)


def test_training_frame_picks_the_same_rows_whatever_the_input_order(synthetic_source) -> None:
    """The selection runs on integer codes of the claim ids: shuffling gold and outcomes changes nothing."""
    from rcm_assets_tests.conftest import to_bronze

    data = synthetic_source.data
    silver = T.build_silver_claims(to_bronze(data.claims), T.DEV_PHI_KEY).good
    outcomes = T.build_silver_remittances(to_bronze(data.remittances)).good
    gold = F.compute_features(F.decision_time_view(silver))
    args = (pd.Timestamp("2025-05-01"), pd.Timestamp("2025-01-15"), pd.Timestamp("2025-03-15"))
    ordered = M.training_frame(gold, outcomes, *args)
    shuffled = M.training_frame(gold.sample(frac=1.0, random_state=1), outcomes.sample(frac=1.0, random_state=2), *args)
    assert ordered.stats["labelled"] > 5_000
    pd.testing.assert_frame_equal(ordered.X, shuffled.X)
    pd.testing.assert_frame_equal(ordered.claim_keys, shuffled.claim_keys)
    assert (ordered.y.to_numpy() == shuffled.y.to_numpy()).all()


def test_training_frame_is_the_same_on_arrow_backed_strings(synthetic_source) -> None:
    """The training set asset loads ids and categories as Arrow-backed strings (io_manager
    rcm/arrow_strings): the selection, labels and first-adjudication details are the same as on objects."""
    from rcm_assets_tests.conftest import to_bronze

    data = synthetic_source.data
    silver = T.build_silver_claims(to_bronze(data.claims), T.DEV_PHI_KEY).good
    outcomes = T.build_silver_remittances(to_bronze(data.remittances)).good
    gold = F.compute_features(F.decision_time_view(silver))
    args = (pd.Timestamp("2025-05-01"), pd.Timestamp("2025-01-15"), pd.Timestamp("2025-03-15"))

    def arrow(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.astype({c: pd.StringDtype("pyarrow") for c in frame.columns if frame[c].dtype == object})

    plain = M.training_frame(gold, outcomes, *args)
    fast = M.training_frame(arrow(gold), arrow(outcomes), *args)
    assert plain.stats == fast.stats and plain.stats["labelled"] > 5_000
    pd.testing.assert_frame_equal(plain.X, fast.X.astype(plain.X.dtypes.to_dict()))  # text context as loaded
    pd.testing.assert_frame_equal(plain.claim_keys, fast.claim_keys.astype(plain.claim_keys.dtypes.to_dict()))
    def as_objects(frame: pd.DataFrame) -> pd.DataFrame:  # <NA> and None are both "no CARC"
        return frame.astype(object).where(frame.notna(), None)

    pd.testing.assert_frame_equal(as_objects(plain.first_outcome), as_objects(fast.first_outcome))
    assert (plain.y.to_numpy() == fast.y.to_numpy()).all()
