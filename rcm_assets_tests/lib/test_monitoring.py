"""lib/monitoring: drift, labels of scored claims, realized performance, label arrival — and the generator's
drift scenario caught by the monitors, then repaired by a retrain (issue 14.6), on pure functions."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ks_2samp
from sklearn.metrics import roc_auc_score

from rcm_assets.lib import features as F
from rcm_assets.lib import modelling as M
from rcm_assets.lib import monitoring as mon
from rcm_assets.lib import payer_rules
from rcm_assets.lib import transforms as T
from rcm_assets.synthetic import generate, world
from rcm_assets.synthetic.generator import Drift
from rcm_assets_tests import hospital
from rcm_assets_tests.conftest import silver_claims

PSI = mon.Band(0.1, 0.25)
KS = mon.Band(0.1, 0.2)


def gold(n: int, seed: int) -> pd.DataFrame:
    return F.compute_features(F.decision_time_view(silver_claims(n, seed=seed)))


# ------------------------------------------------------------------------------------------- bands


def test_band_statuses_high_and_low_is_bad() -> None:
    assert [PSI.status(v) for v in (0.05, 0.1, 0.3, float("nan"))] == ["ok", "warn", "error", "insufficient"]
    floor = mon.Band(0.72, 0.70, low_is_bad=True)
    assert [floor.status(v) for v in (0.8, 0.71, 0.65)] == ["ok", "warn", "error"]
    assert mon.worst(["ok", "error", "warn"]) == "error" and mon.worst([]) == "insufficient"


# ----------------------------------------------------------------------------------- feature drift


def test_feature_drift_is_quiet_on_the_same_process_and_names_a_shifted_feature() -> None:
    reference, same = gold(4000, 1), gold(1500, 2)
    quiet = mon.feature_drift(reference, same, PSI, KS)
    assert set(quiet["feature"]) == set(F.FEATURE_COLUMNS)
    assert (quiet["status"] == "ok").all(), quiet[quiet["status"] != "ok"]

    shifted = same.assign(log_billed_amount=same["log_billed_amount"] + 1.0,
                          eligibility_verified=np.zeros(len(same), dtype=same["eligibility_verified"].dtype))
    rows = mon.feature_drift(reference, shifted, PSI, KS).set_index("feature")
    assert rows.loc["log_billed_amount", "status"] == "error"
    assert rows.loc["log_billed_amount", "ks_statistic"] > 0.2
    assert rows.loc["eligibility_verified", "psi"] > 0.25
    assert rows.drop(["log_billed_amount", "eligibility_verified"])["status"].eq("ok").all()
    assert np.isnan(rows.loc["payer_id", "ks_statistic"])  # KS only for numerics


def test_feature_drift_measures_ks_on_present_values_and_reports_the_null_share() -> None:
    """Unknown (NaN) numeric features: KS on the values that exist, not measurable (NaN) with fewer than
    min_rows of them, and the null share on each side; a jump of the null share is drift (PSI's NaN bin)."""
    reference, same = gold(4000, 1), gold(1500, 2)
    rng = np.random.default_rng(3)
    ref_charge = pd.Series(rng.lognormal(5, 1, len(reference))).where(rng.uniform(size=len(reference)) > 0.3)
    reference = reference.assign(learned_typical_charge=ref_charge.to_numpy(),
                                 learned_filing_limit_days=np.nan)  # never learned: no history
    cur_charge = pd.Series(rng.lognormal(5, 1, len(same))).where(rng.uniform(size=len(same)) > 0.3)
    filing = np.full(len(same), np.nan)
    filing[:5] = 90.0  # five learned values: no distribution to compare
    quiet = mon.feature_drift(reference, same.assign(learned_typical_charge=cur_charge.to_numpy(),
                                                     learned_filing_limit_days=filing), PSI, KS).set_index("feature")
    expected = ks_2samp(ref_charge.dropna(), cur_charge.dropna()).statistic
    assert quiet.loc["learned_typical_charge", "ks_statistic"] == pytest.approx(expected)
    assert quiet.loc["learned_typical_charge", "reference_null_share"] == pytest.approx(ref_charge.isna().mean())
    assert quiet.loc["learned_typical_charge", "status"] == "ok"
    assert np.isnan(quiet.loc["learned_filing_limit_days", "ks_statistic"])  # 5 values: not measurable
    assert quiet.loc["learned_filing_limit_days", "reference_null_share"] == 1.0
    assert quiet.loc["learned_filing_limit_days", "current_null_share"] == pytest.approx(1 - 5 / len(same))
    assert quiet.loc["learned_filing_limit_days", "status"] == "ok"
    # the charge becomes unknown for every claim of the day: no KS, but PSI's missing bin raises it
    gone = mon.feature_drift(reference, same.assign(learned_typical_charge=np.nan), PSI, KS).set_index("feature")
    assert np.isnan(gone.loc["learned_typical_charge", "ks_statistic"])
    assert gone.loc["learned_typical_charge", "current_null_share"] == 1.0
    assert gone.loc["learned_typical_charge", "status"] == "error"


def test_categorical_psi_bins_unseen_values_as_other() -> None:
    ref = pd.Series(["A"] * 50 + ["B"] * 50)
    assert mon.categorical_psi(ref, pd.Series(["A"] * 50 + ["B"] * 50)) == pytest.approx(0.0, abs=1e-9)
    # two new values are one "other" bin: the same as one new value of the same share
    two = mon.categorical_psi(ref, pd.Series(["A"] * 50 + ["C"] * 25 + ["D"] * 25))
    one = mon.categorical_psi(ref, pd.Series(["A"] * 50 + ["E"] * 50))
    assert two == pytest.approx(one) and two > 1


def test_too_few_rows_is_insufficient_never_an_alert() -> None:
    rows = mon.feature_drift(gold(2000, 1), gold(20, 3), PSI, KS, min_rows=50)
    assert (rows["status"] == "insufficient").all()


# ------------------------------------------------------------------------------------- score drift


def test_score_drift_per_payer_against_its_own_baseline() -> None:
    rng = np.random.default_rng(0)
    payers = np.array(["A", "B"] * 500)
    base = pd.DataFrame({"denial_probability": rng.beta(2, 8, 4000), "payer_id": np.array(["A", "B"] * 2000)})
    base["decision"] = np.where(base["denial_probability"] >= 0.35, "review", "submit")
    p = rng.beta(2, 8, 1000)
    p[payers == "B"] = np.clip(p[payers == "B"] + 0.3, 0, 1)  # payer B's scores jump
    day = pd.DataFrame({"denial_probability": p, "decision": np.where(p >= 0.35, "review", "submit")})
    from rcm_assets.lib import quality
    rows = mon.score_drift(day, payers, quality.score_histogram(base["denial_probability"]), base, PSI,
                           mon.Band(0.05, 0.10)).set_index("segment")
    few = mon.score_drift(day, payers, quality.score_histogram(base["denial_probability"]), base, PSI,
                          mon.Band(0.05, 0.10), min_payer_claims=600).set_index("segment")
    assert few.loc["B", "status"] == "insufficient"  # 500 claims of a payer: below the bar, never an alert
    assert rows.loc["A", "status"] == "ok"
    assert rows.loc["B", "status"] == "error" and rows.loc["B", "flagged_share_change"] > 0.3
    assert rows.loc["all", "claims"] == 1000 and rows.loc["B", "claims"] == 500


# ---------------------------------------------------------------------------- labels of scored claims


def test_label_is_the_first_adjudication_of_the_version_known_at_the_cutoff() -> None:
    t = pd.Timestamp
    scored = pd.DataFrame({"claim_id": ["c1", "c2", "c3", "c3"], "claim_version": [1, 1, 1, 2],
                           "submitted_at": [t("2025-03-01"), t("2025-03-01"), t("2025-03-01"), t("2025-04-10")]})
    outcomes = pd.DataFrame({
        "claim_id": ["c1", "c1", "c2", "c3"],
        "adjudicated_at": [t("2025-03-20"), t("2025-04-20"), t("2025-05-20"), t("2025-04-25")],
        "updated_at": [t("2025-03-21"), t("2025-04-21"), t("2025-05-21"), t("2025-04-26")],
        "denied": [True, False, True, False],
    })
    out = mon.label_scored_claims(scored, outcomes, t("2025-05-01")).set_index(["claim_id", "claim_version"])
    assert out.loc[("c1", 1), "denied"] == 1.0  # the appeal (paid) never relabels the first denial
    assert np.isnan(out.loc[("c2", 1), "denied"])  # adjudicated after the cutoff: not known yet
    assert np.isnan(out.loc[("c3", 1), "denied"])  # the adjudication belongs to the corrected version 2
    assert out.loc[("c3", 2), "denied"] == 0.0


# ------------------------------------------------------------------------------ realized performance


def test_realized_performance_matches_sklearn_and_counts_coverage() -> None:
    rng = np.random.default_rng(1)
    n = 2000
    p = rng.uniform(0, 1, n)
    y = (rng.uniform(0, 1, n) < p).astype(float)
    y[:100] = np.nan  # not adjudicated yet
    frame = pd.DataFrame({"role": "champion", "model_version": "3", "payer_id": np.where(np.arange(n) % 2, "A", "B"),
                          "denial_probability": p, "decision": np.where(p >= 0.35, "review", "submit"), "denied": y})
    rows = mon.realized_performance(frame, mon.Band(0.72, 0.70, low_is_bad=True)).set_index("segment")
    known = ~np.isnan(y)
    assert rows.loc["all", "roc_auc"] == pytest.approx(roc_auc_score(y[known], p[known]))
    flagged = p[known] >= 0.35
    assert rows.loc["all", "precision_at_threshold"] == pytest.approx(y[known][flagged].mean())
    assert rows.loc["all", "recall_at_threshold"] == pytest.approx(flagged[y[known] == 1].mean())
    assert rows.loc["all", "label_coverage"] == pytest.approx(0.95)
    assert set(rows.index) == {"all", "A", "B"} and rows.loc["all", "status"] == "ok"
    cal = mon.calibration_by_decile(frame)
    assert list(cal["decile"]) == list(range(1, 11))
    assert (cal["expected_rate"] - cal["observed_rate"]).abs().max() < 0.1  # calibrated by construction


def test_a_random_model_is_below_the_floor() -> None:
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"role": "champion", "model_version": "1", "payer_id": "A",
                          "denial_probability": rng.uniform(0, 1, 3000), "decision": "submit",
                          "denied": (rng.uniform(0, 1, 3000) < 0.2).astype(float)})
    rows = mon.realized_performance(frame, mon.Band(0.72, 0.70, low_is_bad=True))
    assert rows.loc[rows["segment"] == "all", "status"].item() == "error"


# ------------------------------------------------------------------ the drift scenario (issue 14.6)

START = date(2025, 1, 1)
ONSET = pd.Timestamp("2025-04-01")
DRIFT = Drift(ONSET.date(), "AETNA", "lab")
HORIZON, WINDOW = 30, 120
Z = mon.Band(5, 7)  # |z| of observed vs expected denials (the asset's defaults)


@pytest.fixture(scope="module")
def drift_world() -> dict:
    """Generator world with the drift scenario, run through silver transforms and gold as the pipeline
    computes it (`rcm_assets_tests.hospital`): the hospital's reference files (its code categories name the
    drifted segment AETNA/lab; only the commercial payers publish prior-auth lists), the statistics learned
    point in time and the payer rules learned from the authorization denials that arrived before each day.
    `gold_reference_only` is the same without the learned payer rules (the pipeline before them)."""
    data = generate(start=START, days=200, claims_per_day=400, seed=5, drift=DRIFT)

    def bronze(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(_ingested_at=frame["updated_at"], _source="test", _run_id="test",
                            dt=frame["updated_at"].dt.strftime("%Y-%m-%d"))

    silver = T.build_silver_claims(bronze(data.claims), T.DEV_PHI_KEY).good
    outcomes = T.build_silver_remittances(bronze(data.remittances)).good
    tables = hospital.supplied_tables(data)
    decisions = F.decision_time_view(silver)
    days = sorted(decisions["dt"].astype(str).unique())
    denials = payer_rules.authorization_denials(outcomes, silver, F.DEFAULT_CONFIG, tables)
    rules = payer_rules.rules_in_force(denials, days)
    stats = hospital.learned_tables(silver, outcomes, days)
    truth = data.ground_truth.set_index(["claim_id", "claim_version"])["true_denial_probability"]
    return {"gold": F.compute_features(decisions, learned_rules=rules, reference=tables, learned=stats),
            "outcomes": outcomes, "truth": truth, "rules": rules, "tables": tables,
            "gold_reference_only": F.compute_features(decisions, reference=tables, learned=stats)}


def drift_rule(world: dict) -> pd.DataFrame:
    """The days the drifted segment's learned rule is in force."""
    rules = world["rules"]
    return rules[(rules["payer_id"] == DRIFT.payer_id) & (rules["cpt_family"] == DRIFT.cpt_family)]


def fit_at(world: dict, cutoff: str) -> M.DenialModel:
    """The weekly model of `cutoff`: trained on the window ending HORIZON days before it."""
    c = pd.Timestamp(cutoff)
    end = c - pd.Timedelta(days=HORIZON)
    ts = M.training_frame(world["gold"], world["outcomes"], c, end - pd.Timedelta(days=WINDOW), end)
    return M.fit_model(ts.X, ts.y, seed=0, n_threads=1)


def auc_vs_bayes(world: dict, model: M.DenialModel, first: str, last: str) -> tuple[float, float]:
    """Realized AUC of `model` and the Bayes AUC (generator's true probability) on claims submitted in
    [first, last), labels fully matured."""
    ts = M.training_frame(world["gold"], world["outcomes"], pd.Timestamp("2025-07-19"), pd.Timestamp(first),
                          pd.Timestamp(last))
    keys = pd.MultiIndex.from_frame(ts.claim_keys[["claim_id", "claim_version"]])
    return (M.evaluate(ts.y, M.predict_denial(model, ts.X))["roc_auc"],
            M.bayes_auc(world["truth"].loc[keys].to_numpy(), ts.y))


def scored_by(world: dict, model: M.DenialModel) -> pd.DataFrame:
    g = world["gold"].drop_duplicates(["claim_id", "claim_version"])
    p = M.predict_denial(model, g)
    out = g[["claim_id", "claim_version", "submitted_at", "payer_id", "cpt_family"]].astype(
        {"payer_id": object, "cpt_family": object})
    return out.assign(denial_probability=p, decision=np.where(p >= 0.35, "review", "submit"),
                      submitted_day=out["submitted_at"].dt.strftime("%Y-%m-%d"), role="champion", model_version="A")


def early_status(labelled: pd.DataFrame, day: pd.Timestamp) -> pd.DataFrame:
    """The label_freshness rows as of `day` (labels that had arrived by then), then the early-outcome z."""
    cohort = labelled[(labelled["submitted_at"] >= day - pd.Timedelta(days=60))
                      & (labelled["submitted_at"] < day + pd.Timedelta(days=1))]
    rows = mon.label_freshness(cohort, day, 45, mon.Band(0.75, 0.5, low_is_bad=True))
    return mon.early_outcome_drift(rows, 42, Z, min_adjudicated=20)


def test_drift_scenario_is_detected_and_a_retrain_recovers(drift_world: dict, record_property) -> None:
    champion = fit_at(drift_world, "2025-03-31")  # the last weekly model before the onset
    scored = scored_by(drift_world, champion)
    # labels as known at the end of the world; each day below counts only those that had arrived by then
    labelled = mon.label_scored_claims(scored, drift_world["outcomes"], pd.Timestamp("2025-07-19"))

    # early outcomes: no ERROR in the four weeks before the onset, then only the drifted segment's
    statuses, z_by_day = {}, {}
    for day in pd.date_range(ONSET - pd.Timedelta(days=28), ONSET + pd.Timedelta(days=35)):
        drift = early_status(labelled, day)
        # ERROR is the alarm; a WARN can be a small segment the model was never well calibrated on
        alarms = drift[drift["status"] == "error"]
        statuses[day.date().isoformat()] = "error" if len(alarms) else "ok"
        z_by_day[day.date().isoformat()] = drift.set_index("segment")["z"].get("AETNA/lab", float("nan"))
        if day < ONSET:
            assert alarms.empty, (day, alarms)
        elif len(alarms):
            assert set(alarms["segment"]) <= {"AETNA/lab", "AETNA", "all"}, alarms
    detected = mon.days_to_detection(statuses, ONSET.date().isoformat())
    # no outcome of a claim submitted after the onset exists before onset + 14 days (the payer's
    # adjudication lag), and ~9 AETNA/lab claims a day: the first weeks of drifted adjudications decide
    assert detected is not None and 14 <= detected <= 35, detected

    # realized performance, one matured week, AETNA/lab segment: the champion's calibration broke
    first_week = scored[(scored["submitted_at"] >= ONSET) & (scored["submitted_at"] < ONSET + pd.Timedelta(days=7))]
    labelled = mon.label_scored_claims(first_week, drift_world["outcomes"], ONSET + pd.Timedelta(days=7 + 60))
    lab = labelled[(labelled["payer_id"] == "AETNA") & (labelled["cpt_family"] == "lab") & labelled["denied"].notna()]
    assert lab["denied"].mean() - lab["denial_probability"].mean() > 0.25

    record_property("days_to_detection", detected)  # in the JUnit XML report (figures for the issue)
    record_property("aetna_lab_z_by_day", {d: round(float(z), 1) for d, z in z_by_day.items() if d >= "2025-04-21"})


def first_weekly_cutoff_after(day: str) -> pd.Timestamp:
    """The Monday of the first weekly retrain on or after `day`."""
    d = pd.Timestamp(day)
    return d + pd.Timedelta(days=(7 - d.weekday()) % 7)


def test_the_payer_rule_is_learned_from_the_first_authorization_denials(drift_world: dict, record_property) -> None:
    rules = drift_world["rules"]
    segments = set(zip(rules["payer_id"], rules["cpt_family"], strict=True))
    drifted = (DRIFT.payer_id, DRIFT.cpt_family)
    assert drifted in segments
    # the other learned segments are the prior-auth policies of payers that publish no list (only the
    # commercial payers do, reference_files.py): their claims go out without authorization and are denied
    # for it, so each is learned once three such denials arrived (from mid-February; rare categories such as
    # biologics later). Each is a real policy of the world; none belongs to a payer that publishes its list.
    published = set(drift_world["tables"].prior_auth_list["payer_id"])
    for payer, family in segments - {drifted}:
        assert world.requires_prior_auth(payer, family), (payer, family)
        assert payer not in published, (payer, family)
    drift = drift_rule(drift_world)
    learned_on = drift["dt"].min()
    # no denial of a claim submitted after the onset arrives before onset + 14 days (the payer's
    # adjudication lag): the rule comes from the first three of them, a week or so later
    days = (pd.Timestamp(learned_on) - ONSET).days
    assert 14 < days <= 28, learned_on
    assert (drift["first_arrival"] >= ONSET + pd.Timedelta(days=14)).all()
    gold = drift_world["gold"]
    segment = (gold["payer_id"] == DRIFT.payer_id) & (gold["cpt_family"] == DRIFT.cpt_family)
    # point in time: AETNA/lab needs prior auth in the features from the rule's day on, never before
    assert gold.loc[segment & (gold["dt"] < learned_on), "prior_auth_required"].eq(0).all()
    assert gold.loc[segment & (gold["dt"] >= learned_on), "prior_auth_required"].eq(1).all()
    # nothing else changes: rows no rule was in force for on their day equal the features without rules
    in_force = pd.MultiIndex.from_frame(gold[["dt", "payer_id", "cpt_family"]].astype(str)).isin(
        pd.MultiIndex.from_frame(rules[["dt", "payer_id", "cpt_family"]].astype(str)))
    assert gold.loc[in_force, "prior_auth_required"].eq(1).all()
    pd.testing.assert_frame_equal(gold[~in_force], drift_world["gold_reference_only"][~in_force])
    record_property("payer_rule_learned_days_after_onset", days)


def test_a_retrain_after_the_drift_recovers_to_within_004_of_bayes(drift_world: dict, record_property) -> None:
    """Issue 14.6: the first weekly retrain after the rule is learned scores the new regime close to the
    Bayes AUC, and the learned rule is what closes the gap. Bounds from a measurement (seed 5, model seed 0):
    the model sees the hospital's files and learned statistics, not the generator's grids, so even before
    the onset the champion is 0.045 below Bayes (0.731 vs 0.776); the retrain after the rule is 0.029 below
    (0.764 vs 0.792), the same retrain without learned rules 0.078 below (0.714). With the generator's
    grids as features (before issue 24) the retrain was 0.012 below."""
    champion = fit_at(drift_world, "2025-03-31")
    before, bayes_before = auc_vs_bayes(drift_world, champion, "2025-03-03", "2025-04-01")
    cutoff = first_weekly_cutoff_after(drift_rule(drift_world)["dt"].min())
    window = (cutoff.date().isoformat(), (cutoff + pd.Timedelta(days=14)).date().isoformat())
    retrained = fit_at(drift_world, cutoff.date().isoformat())
    after, bayes_after = auc_vs_bayes(drift_world, retrained, *window)
    old_world = {**drift_world, "gold": drift_world["gold_reference_only"]}
    without_rules, _ = auc_vs_bayes(old_world, fit_at(old_world, cutoff.date().isoformat()), *window)
    record_property("auc_before_onset", {"model": round(before, 4), "bayes": round(bayes_before, 4)})
    record_property("auc_after_retrain", {"cutoff": window[0], "model": round(after, 4), "bayes": round(bayes_after, 4),
                                          "model_without_learned_rules": round(without_rules, 4)})
    assert bayes_after - after <= 0.04, (after, bayes_after)
    assert bayes_after - without_rules > 0.06, without_rules  # the defect the learned rule fixes
    assert after - without_rules > 0.03, (after, without_rules)
