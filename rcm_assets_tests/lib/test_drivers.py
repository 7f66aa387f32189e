"""Drivers: grouped occlusion gives exact effects on a known model, names the generator's true cause on a
trained denial model (fed the reference tables a hospital would supply), and speaks a biller's words from
decision-time, non-PHI columns only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rcm_assets.lib import claim_history, settings
from rcm_assets.lib import drivers as D
from rcm_assets.lib import features as F
from rcm_assets.lib import modelling as M
from rcm_assets.lib import transforms as T
from rcm_assets.lib.columns import Availability, availability_of, phi_column_names
from rcm_assets.synthetic import generate
from rcm_assets_tests.conftest import silver_claims
from rcm_assets_tests.hospital import hospital_gold, supplied_tables
from rcm_assets_tests.lib.test_reasons import START, truth_rows

CAUSE_GROUP = {"missing_prior_auth": "prior_auth", "eligibility_unverified": "eligibility",
               "timely_filing": "timely_filing", "dx_inconsistent": "coding", "high_charge": "charge"}
# a diagnosis the payer finds inconsistent is learned from CARC 11 denials of the code x diagnosis pair; the
# trees also see it through chapter x section splits, which no fixable group cleans: a lower share names it
MIN_SHARE = {"dx_inconsistent": 0.4}
SUPPLIED = supplied_tables(generate(start=START, days=1, claims_per_day=1, seed=5))


@pytest.fixture(scope="module")
def gold() -> pd.DataFrame:
    return F.compute_features(F.decision_time_view(silver_claims(400, seed=3)), reference=SUPPLIED)


def additive(frame: pd.DataFrame) -> np.ndarray:
    """A known model: base 0.05, +0.5 prior auth missing, +0.2 eligibility not verified, +0.1 for Medicaid."""
    return (0.05 + 0.5 * frame["prior_auth_missing"].to_numpy() + 0.2 * (1 - frame["eligibility_verified"].to_numpy())
            + 0.1 * (frame["plan_type"].astype(str) == "medicaid").to_numpy())


def test_effects_are_exact_on_an_additive_model(gold):
    effects = D.driver_effects(additive, gold)
    assert list(effects.columns) == list(D.GROUP_NAMES) and effects.index.equals(gold.index)
    np.testing.assert_allclose(effects["prior_auth"], 0.5 * gold["prior_auth_missing"])
    np.testing.assert_allclose(effects["eligibility"], 0.2 * (1 - gold["eligibility_verified"]))
    for group in ("timely_filing", "coding", "charge", "modifiers", "place_of_service", *D.DEFECT_GROUPS):
        np.testing.assert_allclose(effects[group], 0.0, atol=1e-12)
    # context: the claim against the day's payer mix (plan types, weighted by their share)
    medicaid = (gold["plan_type"].astype(str) == "medicaid").to_numpy()
    np.testing.assert_allclose(effects["payer"], 0.1 * (medicaid - medicaid.mean()), atol=1e-12)


def test_a_defect_is_a_fixable_driver_with_its_instruction(gold):
    flagged = gold.assign(defect_npi=(np.arange(len(gold)) % 5 == 0).astype("int64"))
    explained = D.explain(lambda f: 0.05 + 0.6 * f["defect_npi"].to_numpy(), flagged)
    npi = flagged["defect_npi"].to_numpy() == 1
    assert (explained["driver_1"].to_numpy()[npi] == "npi").all()
    assert (explained["driver_1_text"].to_numpy()[npi] ==
            "billing or rendering NPI is missing, malformed or fails its check digit: correct the NPI").all()
    assert pd.Series(explained["driver_1"].to_numpy()[~npi]).isna().all()


def test_top_drivers_keep_the_largest_positive_effects_in_order(gold):
    top = D.top_drivers(D.driver_effects(additive, gold))
    both = (gold["prior_auth_missing"] == 1) & (gold["eligibility_verified"] == 0)
    assert both.any()
    assert (top.loc[both, "driver_1"] == "prior_auth").all() and (top.loc[both, "driver_2"] == "eligibility").all()
    clean = (gold["prior_auth_missing"] == 0) & (gold["eligibility_verified"] == 1) & (gold["plan_type"] != "medicaid")
    assert top.loc[clean, "driver_1"].isna().all()  # nothing raised these claims: no driver
    assert (top.loc[clean, "driver_1_effect"] == 0).all()


def test_clean_values_keep_each_group_consistent(gold):
    assert gold["filing_limit_days"].notna().all()  # payers.csv gives every payer's contract here
    late = gold.assign(days_to_submit=200, filing_margin_days=gold["filing_limit_days"] - 200,
                       past_filing_limit=(gold["filing_limit_days"] < 200).astype("int64"))
    fixed = D._clean(late, next(g for g in D.GROUPS if g.name == "timely_filing"))
    assert (fixed["days_to_submit"] == D.PROMPT_SUBMISSION_DAYS).all()
    assert (fixed["filing_margin_days"] == fixed["filing_limit_days"] - D.PROMPT_SUBMISSION_DAYS).all()
    assert (fixed["past_filing_limit"] == 0).all()
    charge = D._clean(gold, next(g for g in D.GROUPS if g.name == "charge"))
    high = gold["charge_ratio"] > 1
    np.testing.assert_allclose(np.expm1(charge.loc[high, "log_billed_amount"]),
                               np.expm1(gold.loc[high, "log_billed_amount"]) / gold.loc[high, "charge_ratio"])


def test_groups_come_from_decision_time_non_phi_registry_columns():
    for group in D.GROUPS:
        assert set(group.features) <= set(F.FEATURE_COLUMNS), group.name
        for column in group.source_columns:
            assert availability_of(column) is Availability.DECISION_TIME, (group.name, column)
            assert column not in phi_column_names(), (group.name, column)
    assert set(D.GROUP_CATEGORY) == set(D.GROUP_NAMES)


def test_sentences_read_like_a_billers_note():
    claim = {"payer_id": "UHC", "cpt_family": "imaging", "cpt_code": "70551", "prior_auth_missing": 1,
             "days_to_submit": 120, "filing_limit_days": 90.0, "past_filing_limit": 1, "charge_ratio": 2.4,
             "icd_chapter": "pregnancy", "has_modifier_25": 1, "has_modifier_59": 0, "n_modifiers": 1,
             "plan_type": "commercial", "place_of_service": "23", "procedure_diagnosis_inconsistency_rate": 0.3}
    assert D.sentence("prior_auth", claim, SUPPLIED) == ("prior authorisation missing; UnitedHealthcare requires "
                                                        "it for CPT 70551 (imaging)")
    assert D.sentence("prior_auth", claim) == "prior authorisation missing; UHC requires it for CPT 70551 (imaging)"
    assert D.sentence("timely_filing", claim, SUPPLIED) == ("submitted 120 days after service, past "
                                                           "UnitedHealthcare's 90-day timely filing limit")
    unknown_limit = {**claim, "filing_limit_days": float("nan"), "past_filing_limit": 0}
    assert D.sentence("timely_filing", unknown_limit) == ("submitted 120 days after service; UHC's timely filing "
                                                         "limit is unknown (add it to payers.csv)")
    assert D.sentence("charge", claim) == "billed 2.4x the typical charge for CPT 70551 (imaging)"
    assert D.sentence("coding", claim) == ("payers have denied CPT 70551 (imaging) with a pregnancy diagnosis as "
                                           "inconsistent (30% of such claims): check medical necessity / coding")
    assert D.sentence("modifiers", claim) == "modifier 25 on the claim: payers audit it"
    assert "Emergency room" in D.sentence("place_of_service", claim)
    assert D.sentence("npi", claim).endswith("correct the NPI")
    assert D.sentence("diagnosis_code", claim).endswith("correct the diagnosis code")
    with pytest.raises(KeyError):
        D.sentence("weather", claim)


def hospital_world() -> tuple:
    """150 days x 250 claims of the generator through the real silver and gold code, with the reference
    tables a hospital supplies and the statistics learned before each day; a training set whose window
    matured before the cutoff."""
    data = generate(start=START, days=150, claims_per_day=250, seed=5)

    def bronze(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(_ingested_at=frame["updated_at"], _source="test", _run_id="test",
                            dt=frame["updated_at"].dt.strftime("%Y-%m-%d"))

    silver = T.build_silver_claims(bronze(data.claims), T.DEV_PHI_KEY).good
    outcomes = T.build_silver_remittances(bronze(data.remittances)).good
    decisions, _ = claim_history.decision_rows(silver, None, settings.update_lookback_days())
    gold = hospital_gold(decisions, silver, outcomes, supplied_tables(data))
    ts = M.training_frame(gold, outcomes, pd.Timestamp(data.end), pd.Timestamp(START), pd.Timestamp("2025-04-15"))
    return ts, data.ground_truth


@pytest.fixture(scope="module")
def trained() -> tuple:
    """A denial model trained on the generator's world, its holdout and the true causes."""
    ts, truth = hospital_world()
    train, holdout = M.time_holdout_split(ts)
    return M.fit_model(train.X, train.y, seed=0, n_threads=1), holdout, truth


def test_the_top_driver_is_the_generators_true_cause(trained):
    """On a denial model trained on the generator's world: a claim with exactly one named cause has that
    cause's group as its top driver, and its sentence names it."""
    model, holdout, truth = trained
    explained = D.explain(D.smooth_predict(model), holdout.X, reference=SUPPLIED)
    causes = truth_rows(holdout.claim_keys, truth)
    named = causes[[f"cause_{c}" for c in CAUSE_GROUP]]
    for cause, group in CAUSE_GROUP.items():
        only = (causes[f"cause_{cause}"] & (named.sum(axis=1) == 1)).to_numpy()
        assert only.sum() >= 20, cause
        assert (explained["driver_1"].to_numpy()[only] == group).mean() >= MIN_SHARE.get(cause, 0.85), cause
    auth = (causes["cause_missing_prior_auth"] & (named.sum(axis=1) == 1)).to_numpy()
    assert pd.Series(explained["driver_1_text"].to_numpy()[auth]).str.startswith("prior authorisation missing;").all()
    # every claim the model finds risky for a cause the tables reveal says what to check (isotonic steps
    # do not hide the drivers)
    risky = (M.predict_denial(model, holdout.X, n_threads=1) >= 0.3) & (named.sum(axis=1) > 0).to_numpy()
    assert risky.sum() > 100 and pd.Series(explained["driver_1"].to_numpy()[risky]).notna().all()
    # without any named cause, the actionable groups rarely lead
    clean = (named.sum(axis=1) == 0).to_numpy()
    actionable = {g.name for g in D.GROUPS if g.actionable}
    assert pd.Series(explained["driver_1"].to_numpy()[clean]).isin(actionable).mean() < 0.2


def test_empty_day_gives_empty_drivers(gold):
    out = D.explain(additive, gold.head(0))
    assert len(out) == 0 and "driver_3_text" in out.columns


def full_occlusion(predict, features: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The method by its definition: every variant of every claim predicted (probability and log-odds drops)."""
    features = features[[c for c in F.FEATURE_COLUMNS if c in features.columns]]
    n, base = len(features), np.asarray(predict(features), dtype="float64")
    prob, logit = {}, {}
    for group in D.GROUPS:
        if group.actionable:
            variants = [(D._clean(features, group), 1.0)]
        else:
            variants = []
            for values, share in D._context_values(features, group):
                v = features.copy(deep=False)
                for name, value in values.items():
                    v[name] = (pd.Categorical(np.full(n, value, dtype=object), dtype=features[name].dtype)
                               if isinstance(features[name].dtype, pd.CategoricalDtype)
                               else np.full(n, value, dtype=features[name].dtype))
                variants.append((v, share))
        ref_p, ref_l = np.zeros(n), np.zeros(n)
        for variant, weight in variants:
            p = np.asarray(predict(variant), dtype="float64")
            ref_p += weight * p
            ref_l += weight * D._logit(p)
        prob[group.name], logit[group.name] = base - ref_p, D._logit(base) - ref_l
    return pd.DataFrame(prob, index=features.index), pd.DataFrame(logit, index=features.index)


def test_occlusion_predicts_only_the_claims_a_variant_changes_with_the_same_effects(trained):
    """Issue 16: a claim already clean on a group (or holding the context value) is not predicted again;
    the effects are exactly those of predicting every variant of every claim."""
    model, holdout, _ = trained
    predict = D.smooth_predict(model)
    predicted: list[int] = []

    def counting(frame: pd.DataFrame) -> np.ndarray:
        predicted.append(len(frame))
        return predict(frame)

    prob = D.driver_effects(counting, holdout.X)
    logit = D.driver_effects(predict, holdout.X, scale="logit")
    expected_prob, expected_logit = full_occlusion(predict, holdout.X)
    pd.testing.assert_frame_equal(prob, expected_prob, check_exact=True)
    pd.testing.assert_frame_equal(logit, expected_logit, check_exact=True)
    variants = 1 + sum(1 if g.actionable else len(D._context_values(holdout.X, g)) for g in D.GROUPS)
    assert len(predicted) == 1  # still one batched prediction
    assert predicted[0] < 0.8 * variants * len(holdout.X), (predicted, variants * len(holdout.X))


def test_sentences_are_those_of_every_claims_own_record(trained):
    """The sentences built from the claims with a driver only are, claim by claim, `sentence` of its record."""
    model, holdout, _ = trained
    features = holdout.X.assign(cpt_code="99213")
    top = D.top_drivers(D.driver_effects(D.smooth_predict(model), features))
    texts = D.driver_sentences(top, features)
    records = features.astype(object).to_dict("records")
    for k in range(1, D.TOP_N + 1):
        expected = [D.sentence(g, rec) if g is not None else None
                    for g, rec in zip(top[f"driver_{k}"], records, strict=True)]
        assert texts[f"driver_{k}_text"].tolist() == expected
    assert top["driver_1"].isna().any() and top["driver_1"].notna().any()
