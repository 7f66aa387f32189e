"""The model card builder, on claims from the synthetic generator scored by their true denial probability."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from rcm_assets.lib import model_card, modelling


@pytest.fixture(scope="module")
def scored() -> pd.DataFrame:
    """One row per generated claim version: payer, realized denial, true probability (a strong 'model')."""
    from rcm_assets.synthetic import generate

    data = generate(start=date(2025, 1, 1), days=20, claims_per_day=120, seed=5)
    firsts = data.claims.sort_values("updated_at").drop_duplicates(["claim_id", "claim_version"])
    truth = data.ground_truth[data.ground_truth["adjudicated"]]
    frame = firsts[["claim_id", "claim_version", "payer_id"]].merge(
        truth[["claim_id", "claim_version", "denied", "true_denial_probability"]],
        on=["claim_id", "claim_version"], validate="one_to_one")
    assert frame["denied"].nunique() == 2 and frame["payer_id"].nunique() > 3
    return frame


def test_metrics_by_payer_match_sklearn_on_each_payer_and_hide_small_ones(scored):
    y, p = scored["denied"].astype(int), scored["true_denial_probability"]
    by_payer = model_card.metrics_by_group(y, p, scored["payer_id"], min_rows=150)
    assert by_payer["claims"].sum() == len(scored)
    assert list(by_payer["claims"]) == sorted(by_payer["claims"], reverse=True)
    for row in by_payer.itertuples():
        part = scored[scored["payer_id"] == row.group]
        assert row.denial_rate == pytest.approx(part["denied"].mean())
        if len(part) >= 150 and part["denied"].nunique() == 2:
            assert row.roc_auc == pytest.approx(roc_auc_score(part["denied"], part["true_denial_probability"]))
        else:
            assert math.isnan(row.roc_auc)
    small = by_payer.loc[by_payer["claims"] < 150, "group"].tolist()
    notes = model_card.data_limitations(by_payer, min_rows=150)
    assert (notes != []) == bool(small)
    assert all(name in notes[0] for name in small[:20])


def test_card_has_every_section_rounded_metrics_and_no_claim_ids(scored):
    y, p = scored["denied"].astype(int).to_numpy(), scored["true_denial_probability"].to_numpy()
    metrics = modelling.evaluate(y, p)
    card = model_card.build_model_card(
        model_name="rcm_denial_model", week=date(2025, 6, 2), window_start=pd.Timestamp("2024-12-04"),
        window_end=pd.Timestamp("2025-04-03"), cutoff=pd.Timestamp("2025-06-02"), feature_version="abc123",
        metrics=metrics, by_payer=model_card.metrics_by_group(y, p, scored["payer_id"]),
        reliability=modelling.reliability_table(y, p), counts={"holdout_rows": len(y)}, run_id="r123",
    )
    for heading in ("## Intended use", "## Label", "## Metrics on the time-ordered holdout", "## Metrics by payer",
                    "## Calibration", "## Known limitations", "## Fallback"):
        assert heading in card
    assert "[2024-12-04, 2025-04-03)" in card and "2025-06-02" in card and "`abc123`" in card
    assert f"| roc_auc | {metrics['roc_auc']:.4f} |" in card
    assert str(metrics["roc_auc"]) not in card  # unrounded figures are not shown
    for payer in scored["payer_id"].unique():
        assert f"| {payer} |" in card
    assert not any(claim_id in card for claim_id in scored["claim_id"].head(200))
    assert "first adjudication" in card and "rcm model rollback" in card


def test_card_without_a_payer_column_says_so():
    y, p = np.array([0, 1, 0, 1]), np.array([0.1, 0.8, 0.3, 0.6])
    card = model_card.build_model_card(
        model_name="m", week="2025-06-02", window_start=date(2025, 1, 1), window_end=date(2025, 4, 1),
        cutoff=date(2025, 6, 2), feature_version="v", metrics=modelling.evaluate(y, p),
        by_payer=model_card.metrics_by_group([], [], []), reliability=modelling.reliability_table(y, p),
        limitations=["only four claims"])
    assert "No payer column in the holdout." in card and "- only four claims" in card


def test_holdout_card_takes_payers_from_the_holdout_features(scored):
    X = pd.DataFrame({"payer_id": scored["payer_id"].astype("category"), "units": 1})
    y, p = scored["denied"].astype(int), scored["true_denial_probability"]
    card = model_card.holdout_card(
        model_name="m", week="2025-06-02", window=(date(2025, 1, 1), date(2025, 4, 1), date(2025, 6, 2)),
        feature_version="v", y=y, p=p, X=X, metrics=modelling.evaluate(y, p),
        reliability=modelling.reliability_table(y.to_numpy(), p.to_numpy()), fallback_auc=0.61234)
    assert "No payer column" not in card and all(f"| {payer} |" in card for payer in scored["payer_id"].unique())
    assert "fallback model's ROC AUC is 0.6123" in card
    assert all(item in card for item in model_card.STANDARD_LIMITATIONS)


def test_every_registered_version_has_its_model_card(pipeline):
    """The model asset logs the card beside the reliability table of each week's MLflow run."""
    from mlflow import MlflowClient

    from rcm_assets.lib import settings

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RCM_DATA_DIR", str(pipeline.data_dir))
        uri = settings.mlflow_tracking_uri()
    client = MlflowClient(tracking_uri=uri)
    versions = client.search_model_versions("name='rcm_denial_model'")
    assert versions
    for mv in versions:
        card = client.download_artifacts(mv.run_id, "model_card.md")
        text = open(card).read()
        assert f"model week {mv.tags['dagster_partition']}" in text and "## Metrics by payer" in text
