"""The worklist assets on the session pipeline's world: reason model weeks, payer ratios and the daily list,
checked against the generator's ground truth (why each claim was denied) and for PHI in the export.

The pipeline's lake and registry are copied into this module's own folder (the pipeline stays read-only);
new MLflow runs go to an experiment whose artifacts live there too.
"""

import shutil
from datetime import date

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from rcm_assets.defs import partitions, reason_model, worklist
from rcm_assets.defs.training_set import week_gold_days, week_training_set
from rcm_assets.lib import reasons
from rcm_assets.lib import worklist as worklist_lib
from rcm_assets.lib.columns import CARC_CATEGORIES
from rcm_assets.lib.settings import sqlite_url
from rcm_assets.synthetic import generator as G
from rcm_assets_tests.conftest import ENV_VARS, materialize_range

pytestmark = pytest.mark.slow  # trains three reason-model weeks and builds 18 days of lists on the pipeline

CAUSE_GROUP = {"missing_prior_auth": "prior_auth", "eligibility_unverified": "eligibility",
               "timely_filing": "timely_filing", "dx_inconsistent": "coding", "high_charge": "charge"}


def read_days(root, days: list[str], column: str = "dt") -> pd.DataFrame:
    frames = [pd.read_parquet(root / f"{column}={d}" / "part-0.parquet").assign(**{column: d}) for d in days
              if (root / f"{column}={d}" / "part-0.parquet").exists()]
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def run(pipeline, tmp_path_factory):
    from rcm_assets.platform.resources import MlflowResource, build_resources

    data_dir = tmp_path_factory.mktemp("worklist") / "data"
    shutil.copytree(pipeline.data_dir / "lake", data_dir / "lake")
    shutil.copytree(pipeline.data_dir / "reference", data_dir / "reference")  # part of feature_version
    (data_dir / "mlflow").mkdir(parents=True)
    shutil.copyfile(pipeline.data_dir / "mlflow" / "mlflow.db", data_dir / "mlflow" / "mlflow.db")
    export_dir = data_dir / "landing_out" / "worklist"
    with pytest.MonkeyPatch.context() as mp:
        for name in ENV_VARS:
            mp.delenv(name, raising=False)
        mp.setenv("RCM_DATA_DIR", str(data_dir))
        mp.setenv("RCM_PHI_KEY", pipeline.env["RCM_PHI_KEY"])
        resources = build_resources("dev")
        resources["mlflow_tracking"] = MlflowResource(
            tracking_uri=sqlite_url(data_dir / "mlflow" / "mlflow.db"),
            artifact_location=(data_dir / "mlflow" / "worklist-artifacts").as_uri(), experiment="rcm-worklist-test")
        instance = dg.DagsterInstance.ephemeral()
        weeks = pipeline.weeks
        models = materialize_range([reason_model.denial_reason_model, reason_model.payer_allowed_ratios],
                                   weeks[0], weeks[-1], instance, resources)
        first, last = partitions.MODEL_START.isoformat(), pipeline.source.end.isoformat()
        lists = materialize_range([worklist.worklist], first, last, instance, resources,
                                  run_config={"ops": {"predictions__worklist": {"config": {
                                      "export_dir": str(export_dir)}}}})
    days = [d for d in partitions.scoring_partitions.get_partition_keys() if d <= last]
    lake = data_dir / "lake"
    return {
        "models": models, "lists": lists, "weeks": weeks, "days": days, "export_dir": export_dir,
        "resources": resources, "truth": pd.read_parquet(pipeline.source.truth),
        "reason_rows": read_days(lake / "model" / "denial_reason_model", weeks, "week"),
        "ratios": read_days(lake / "model" / "payer_allowed_ratios", weeks, "week"),
        "worklist": read_days(lake / "predictions" / "worklist", days),
        "scores": read_days(lake / "predictions" / "claim_denial_scores", days),
        "gold": read_days(lake / "gold" / "claim_features", days),
        "lake": lake,
    }


def test_runs_succeed_with_their_checks(run):
    assert run["models"].success and run["lists"].success
    evaluations = {e.check_name: e.passed for r in (run["models"], run["lists"])
                   for e in r.get_asset_check_evaluations()}
    assert evaluations == {"holdout_macro_auc_passes_gate": True, "every_scored_claim_listed_once": True,
                           "expected_loss_within_billed": True, "allowed_ratios_learned": True,
                           "reason_model_serving": True}


def test_reason_model_weeks_registered_and_promoted_under_their_own_name(run):
    from rcm_assets.lib import champion as champion_lib

    rows = run["reason_rows"]
    mlf = run["resources"]["mlflow_tracking"]
    name = reason_model.reason_model_name(mlf)
    assert name == f"{mlf.model_name}-reason"
    assert list(rows["week"]) == run["weeks"] and (rows["model_name"] == name).all()
    assert (rows["holdout_macro_auc"] > 0.8).all(), rows[["week", "holdout_macro_auc"]]
    history = champion_lib.history(mlf.client(), name)
    assert set(history["version"]) <= set(rows["model_version"]) and len(history) >= 1
    # the denial model's history is untouched by the reason model's promotions
    assert not set(champion_lib.history(mlf.client(), mlf.model_name)["reason"]).isdisjoint(
        {champion_lib.gate_reason(date.fromisoformat(w)) for w in run["weeks"]})


def test_worklist_lists_every_scored_claim_once_ranked_by_expected_loss(run):
    wl, scores = run["worklist"], run["scores"]
    assert len(wl) == len(scores)
    assert wl.set_index(["dt", "claim_id", "claim_version"]).index.is_unique
    for _, day in wl.groupby("dt"):
        day = day.sort_values("rank")
        assert list(day["rank"]) == list(range(1, len(day) + 1))
        assert day["expected_loss"].is_monotonic_decreasing
    np.testing.assert_allclose(wl["expected_loss"], wl["denial_probability"] * wl["billed_amount"] * wl["allowed_ratio"])
    assert wl["billed_amount"].notna().all() and wl["cpt_code"].notna().all()
    assert wl["likely_reason"].isin(list(reasons.CATEGORY_LABELS.values())).all()
    # a claim likely to be denied always says what to check; a clean claim may say nothing
    risky = wl["denial_probability"] >= 0.3
    assert risky.sum() > 50 and wl.loc[risky, "driver_1_text"].notna().all()


def test_reason_categories_against_the_generators_causes(run):
    """Out of time (the days scored after training): top-1 accuracy and macro AUC on the claims the
    generator denied, beside the Bayes-optimal figures from its cause structure."""
    truth = run["truth"]
    denied = truth[truth["denied"]].copy()
    denied["category"] = denied["denial_carc"].map(lambda c: CARC_CATEGORIES.get(c, "other"))
    rows = run["worklist"].merge(denied, on=["claim_id", "claim_version"], how="inner")
    assert len(rows) > 200
    bayes = reasons.bayes_reason_probabilities(rows["true_denial_probability"], rows, G.EFFECTS, G.CAUSE_CARC,
                                               G.BACKGROUND_CARCS)
    bayes_metrics = reasons.reason_metrics(rows["category"], bayes)
    # A diagnosis inconsistent with the procedure is known to the pipeline only from earlier CARC 11 denials of
    # the same code x diagnosis pair (lib/learned), which this 150-claims-a-day world rarely repeats; the
    # generator's grid was the model's before issue 24. Measured (seed 11): coding top-1 0.29 on 42 claims
    # against Bayes 1.00, the other categories 0.658 against Bayes 0.697 (all: 0.621 against 0.727).
    correct = rows["reason_category"] == rows["category"]
    bayes_correct = bayes.idxmax(axis=1).to_numpy() == rows["category"].to_numpy()
    coding = (rows["category"] == "coding").to_numpy()
    accuracy, bayes_accuracy = float(correct[~coding].mean()), float(bayes_correct[~coding].mean())
    assert accuracy >= bayes_accuracy - 0.08, (accuracy, bayes_accuracy)
    if coding.sum() >= 20:
        assert correct[coding].mean() >= 0.15, correct[coding].mean()
    # a claim whose only named cause is timely filing / missing auth is named so
    for cause, category in (("timely_filing", "timely_filing"), ("missing_prior_auth", "authorization")):
        only = rows[rows[f"cause_{cause}"] & (rows[[f"cause_{c}" for c in G.CAUSES]].sum(axis=1) == 1)]
        if len(only) >= 10:
            assert (only["reason_category"] == category).mean() >= 0.8, cause
    # macro AUC of the serving reason model's probabilities on the same claims
    import mlflow

    version = rows["reason_model_version"].iloc[0]
    model = mlflow.sklearn.load_model(f"models:/{reason_model.reason_model_name(run['resources']['mlflow_tracking'])}/{version}")
    feats = rows[["claim_id", "claim_version"]].merge(run["gold"], on=["claim_id", "claim_version"], how="left")
    metrics = reasons.reason_metrics(rows["category"], reasons.predict_reasons(model, feats))
    assert metrics["macro_auc"] >= bayes_metrics["macro_auc"] - 0.05, (metrics["macro_auc"], bayes_metrics["macro_auc"])


def test_top_driver_is_the_claims_true_cause(run):
    truth = run["truth"]
    rows = run["worklist"].merge(truth, on=["claim_id", "claim_version"], how="inner")
    named = rows[[f"cause_{c}" for c in CAUSE_GROUP]]
    single = rows[named.sum(axis=1) == 1]
    assert len(single) > 100
    expected = single[[f"cause_{c}" for c in CAUSE_GROUP]].idxmax(axis=1).str.removeprefix("cause_").map(CAUSE_GROUP)
    # The causes the claim and the hospital's files reveal. Not an inconsistent diagnosis: the pipeline learns
    # it only from CARC 11 denials of the same code x diagnosis pair, and in this small world the denial model
    # never splits on that rate (measured, seed 11: coding named first for 0 of 98 such claims, 42 of them with
    # a positive learned rate; the other causes 0.988 of 333). lib/test_drivers checks it on a larger world.
    revealed = (expected != "coding").to_numpy()
    agreement = (single["driver_1"] == expected)[revealed].mean()
    assert agreement >= 0.9, agreement
    auth = single[expected == "prior_auth"]
    assert auth["driver_1_text"].str.startswith("prior authorisation missing;").mean() >= 0.9


def test_sentences_name_the_payer_as_the_hospitals_payers_file_does(run, pipeline):
    """The worklist passes the hospital's reference tables to the drivers: a sentence says "Blue Cross Blue
    Shield", not the claim's payer id "BCBS"."""
    names = pd.read_csv(pipeline.data_dir / "reference" / "payers.csv", dtype=str).set_index("payer_id")["payer_name"]
    wl = run["worklist"]
    auth = wl[(wl["driver_1"] == "prior_auth") & (wl["prior_auth_missing"] == 1)]
    assert len(auth) > 20 and (names.reindex(auth["payer_id"]).to_numpy() != auth["payer_id"].to_numpy()).any()
    payer = names.reindex(auth["payer_id"]).fillna(pd.Series(auth["payer_id"].to_numpy(), index=auth["payer_id"]))
    prefixes = [f"prior authorisation missing; {name} requires it" for name in payer]
    assert all(text.startswith(p) for text, p in zip(auth["driver_1_text"], prefixes, strict=True))


def test_export_is_the_billers_file_without_phi(run):
    for day in run["days"]:
        csv_path, parquet_path = worklist_lib.export_paths(run["export_dir"], day)
        csv, parquet = pd.read_csv(csv_path, dtype={"claim_id": str, "cpt_code": str}), pd.read_parquet(parquet_path)
        assert list(csv.columns) == list(worklist_lib.EXPORT_COLUMNS) == list(parquet.columns)
        assert not set(csv.columns) & {"member_token", "member_id", "patient_name", "patient_dob", "patient_address",
                                       "patient_zip", "patient_zip3", "patient_age", "patient_sex"}
        day_list = run["worklist"][run["worklist"]["dt"] == day]
        assert list(parquet["claim_id"]) == list(day_list.sort_values("rank")["claim_id"])
        text = csv.astype(str).to_numpy().ravel()
        assert not any(len(v) == 32 and all(ch in "0123456789abcdef" for ch in v) for v in text)  # no member token
    assert not list(run["export_dir"].glob(".*.tmp"))


def test_payer_ratios_use_only_outcomes_known_before_the_week(run, pipeline):
    week = date.fromisoformat(run["weeks"][0])
    lake = run["lake"]
    gold = read_days(lake / "gold" / "claim_features", [d for d in sorted(week_gold_days(week))])
    outcomes = read_days(lake / "silver" / "remittances",
                         [d.date().isoformat() for d in pd.date_range(pipeline.source.start, pipeline.source.end)])
    features = run["resources"]["features"]
    def ratios(outcomes):
        return reason_model.week_allowed_ratios(week, week_training_set(week, gold, outcomes, features.version))

    before = ratios(outcomes)
    later = outcomes["updated_at"] >= pd.Timestamp(week)
    assert later.any()
    changed = outcomes.assign(allowed_amount=np.where(later, outcomes["allowed_amount"] * 3 + 1, outcomes["allowed_amount"]))
    after = ratios(changed)
    pd.testing.assert_frame_equal(before, after)
    stored = run["ratios"][run["ratios"]["week"] == week.isoformat()].reset_index(drop=True)
    np.testing.assert_allclose(stored["allowed_ratio"], before["allowed_ratio"])
    assert stored["allowed_ratio"].between(0.05, 1.0).all()


def test_top_k_beats_random_on_the_realized_denials(run):
    truth = run["truth"][["claim_id", "claim_version", "denied", "adjudicated"]]
    labels = truth[truth["adjudicated"]]
    per_day = worklist_lib.top_k_evaluation(run["worklist"], labels, k=20)
    summary = worklist_lib.evaluation_summary(per_day)
    # the same ranking by the generator's true probability: what the list could do at best in this world
    truth_p = run["truth"][["claim_id", "claim_version", "true_denial_probability"]]
    oracle = run["worklist"].merge(truth_p, on=["claim_id", "claim_version"], how="left")
    oracle["expected_loss"] = oracle["true_denial_probability"] * oracle["expected_payment"]
    best = worklist_lib.evaluation_summary(worklist_lib.top_k_evaluation(oracle, labels, k=20))
    # The list ranks by dollars at risk, not probability: even the true probabilities put only 2.2x the random
    # share of denials in the top 20 (measured, seed 11: 0.308 against 0.143); the model, without the
    # generator's code x diagnosis grid since issue 24, 0.267 (0.87 of it), and 7.3x random's denied dollars.
    assert summary["model_share_denied"] > 1.5 * summary["random_share_denied"], summary
    assert summary["model_share_denied"] >= 0.75 * best["model_share_denied"], (summary, best)
    assert summary["model_denied_dollars"] > 2 * summary["random_denied_dollars"], summary


def test_cli_evaluate_writes_the_table_and_plot(run, monkeypatch, capsys):
    from rcm_assets.cli.main import main

    monkeypatch.setenv("RCM_DATA_DIR", str(run["lake"].parent))
    out = run["lake"].parent / "evaluation"
    first, last = run["days"][0], run["days"][-1]
    # the synthetic world ends with these days: few outcomes have arrived, so the default refuses them
    assert main(["worklist", "evaluate", "--start", first, "--end", last, "--k", "20", "--out", str(out)]) == 2
    assert "--min-labelled-share" in capsys.readouterr().err
    assert main(["worklist", "evaluate", "--start", first, "--end", last, "--k", "20", "--out", str(out),
                 "--min-labelled-share", "0"]) == 0
    printed = capsys.readouterr().out
    assert "worklist (expected loss)" in printed and "naive: prior auth missing" in printed
    table = pd.read_csv(out / f"worklist_evaluation_{first}_{last}_k20.csv")
    assert {"model_share_denied", "random_share_denied", "rule_share_denied", "model_denied_dollars"} <= set(table)
    assert (out / f"worklist_evaluation_{first}_{last}_k20.png").read_bytes()[:4] == b"\x89PNG"
    # days without a worklist: a usage error naming what to do
    assert main(["worklist", "evaluate", "--start", "2025-01-02", "--end", "2025-01-03"]) == 2
    assert "materialize them first" in capsys.readouterr().err



def test_each_day_is_priced_with_its_own_model_weeks_ratios(run):
    """The run covers several model weeks and loads all their ratios: each day uses its own week's."""
    wl, ratios = run["worklist"], run["ratios"]
    assert ratios["week"].nunique() > 1 and wl["dt"].map(worklist_lib.model_week).nunique() > 1
    for day, rows in wl.groupby("dt"):
        own = worklist_lib.ratios_of_day(ratios, day)
        assert len(own) and (own["week"] == worklist_lib.model_week(day)).all()
        np.testing.assert_allclose(rows["allowed_ratio"], worklist_lib.allowed_ratio_for(rows["payer_id"], own))
