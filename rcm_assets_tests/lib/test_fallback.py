"""The fallback model: payer × CPT-family denial rates with shrinkage, on the generator's claims."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from rcm_assets.lib.fallback import FallbackModel, fit_fallback, registered_name
from rcm_assets.synthetic import generate


@pytest.fixture(scope="module")
def claims() -> pd.DataFrame:
    """Version-1 ground truth of 60 days × 300 claims: payer, CPT family, the denial draw, the true p."""
    data = generate("2025-01-01", 60, 300, seed=11)
    truth = data.ground_truth
    truth = truth[truth["claim_version"] == 1].reset_index(drop=True)
    return truth


def frame(claims: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"payer_id": claims["payer_id"], "cpt_family": claims["cpt_family"]})


def test_the_fallback_ranks_denials_better_than_chance_but_below_the_bayes_ceiling(claims):
    half = len(claims) // 2
    train, test = claims.iloc[:half], claims.iloc[half:]
    model = fit_fallback(frame(train), train["denied"])
    auc = roc_auc_score(test["denied"], model.predict(frame(test)))
    bayes = roc_auc_score(test["denied"], test["true_denial_probability"])
    assert 0.55 < auc < bayes, (auc, bayes)


def test_small_cells_are_pulled_toward_their_payers_rate(claims):
    model = fit_fallback(frame(claims), claims["denied"], strength=50)
    cells = frame(claims).assign(y=claims["denied"].astype(float))
    counts = cells.groupby(["payer_id", "cpt_family"]).size()
    small = counts.idxmin()
    raw = cells.groupby(["payer_id", "cpt_family"])["y"].mean()[small]
    shrunk = model.cell[f"{small[0]}|{small[1]}"]
    payer = model.payer[small[0]]
    assert abs(shrunk - payer) <= abs(raw - payer) + 1e-12
    big = counts.idxmax()
    assert model.cell[f"{big[0]}|{big[1]}"] == pytest.approx(
        cells.groupby(["payer_id", "cpt_family"])["y"].mean()[big], abs=0.05)


def test_unknown_payers_and_families_get_the_payer_or_overall_rate(claims):
    model = fit_fallback(frame(claims), claims["denied"])
    known_payer = claims["payer_id"].iloc[0]
    p = model.predict(pd.DataFrame({"payer_id": ["NEW_PAYER", known_payer, None],
                                    "cpt_family": ["1xxxx", "no-such-family", "1xxxx"]}))
    assert p[0] == pytest.approx(model.overall)
    assert p[1] == pytest.approx(model.payer[known_payer])
    assert p[2] == pytest.approx(model.overall)
    assert np.all((p > 0) & (p < 1))


def test_the_rates_round_trip_through_json(claims):
    import json

    model = fit_fallback(frame(claims), claims["denied"])
    again = FallbackModel.from_dict(json.loads(json.dumps(model.to_dict())))
    np.testing.assert_allclose(again.predict(frame(claims)), model.predict(frame(claims)))
    assert again.rows == len(claims) and registered_name("rcm_denial") == "rcm_denial-fallback"


def test_missing_columns_and_no_rows_are_named():
    with pytest.raises(KeyError, match="cpt_family"):
        fit_fallback(pd.DataFrame({"payer_id": ["A"]}), [1])
    with pytest.raises(ValueError, match="labelled rows"):
        fit_fallback(pd.DataFrame({"payer_id": [], "cpt_family": []}), [])
