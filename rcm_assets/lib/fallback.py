"""The fallback model: the denial rate of the claim's payer × CPT family, shrunk toward the payer's rate.

Seed requirement: "if a step fails, retry or fall back to a simple model". When no champion serves a day
(no promotion yet, the champion was retired below the floor, or its features differ from the gold being
scored) or the champion cannot be loaded, claims are still scored, by this model, and every score row says
so (`scored_by = fallback`).

It is fitted on the same point-in-time training rows as the week's champion candidate and needs only two
columns that every feature version has (`payer_id`, `cpt_family`), so it survives a feature change. The
rates are empirical-Bayes estimates: a cell with few claims is pulled toward its payer's rate, a payer
with few claims toward the overall rate, by `strength` pseudo-claims. It is stored as plain JSON (no
pickle), so loading it cannot fail the way a model binary can.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

KEYS = ("payer_id", "cpt_family")
DEFAULT_STRENGTH = 50.0
ARTIFACT_PATH = "fallback/rates.json"


@dataclass(frozen=True)
class FallbackModel:
    """Shrunk denial rates: overall, per payer, per (payer, CPT family)."""

    overall: float
    payer: Mapping[str, float] = field(default_factory=dict)
    cell: Mapping[str, float] = field(default_factory=dict)  # "payer|family" -> rate
    strength: float = DEFAULT_STRENGTH
    rows: int = 0

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Denial probability per row: the cell's rate, else the payer's, else the overall rate."""
        payer = frame["payer_id"].astype("string").fillna("")
        cell = payer + "|" + frame["cpt_family"].astype("string").fillna("")
        by_payer = payer.map(dict(self.payer)).astype("float64")
        by_cell = cell.map(dict(self.cell)).astype("float64")
        return by_cell.fillna(by_payer).fillna(self.overall).to_numpy(dtype="float64")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "payer_x_cpt_family_rate", "overall": self.overall, "payer": dict(self.payer),
                "cell": dict(self.cell), "strength": self.strength, "rows": self.rows}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FallbackModel:
        return cls(float(data["overall"]), dict(data["payer"]), dict(data["cell"]),
                   float(data["strength"]), int(data.get("rows", 0)))


def fit_fallback(X: pd.DataFrame, y: pd.Series | np.ndarray, strength: float = DEFAULT_STRENGTH) -> FallbackModel:
    """Shrunk rates from labelled rows (the same point-in-time rows the champion trains on)."""
    missing = [k for k in KEYS if k not in X.columns]
    if missing:
        raise KeyError(f"the fallback model needs columns {missing}")
    y = np.asarray(y, dtype="float64")
    if len(y) == 0:
        raise ValueError("the fallback model needs labelled rows")
    overall = float(y.mean())
    frame = pd.DataFrame({"payer": X["payer_id"].astype("string").fillna("").to_numpy(),
                          "family": X["cpt_family"].astype("string").fillna("").to_numpy(), "y": y})
    per_payer = frame.groupby("payer", observed=True)["y"].agg(["sum", "count"])
    payer_rate = (per_payer["sum"] + strength * overall) / (per_payer["count"] + strength)
    per_cell = frame.groupby(["payer", "family"], observed=True)["y"].agg(["sum", "count"]).reset_index()
    prior = per_cell["payer"].map(payer_rate)
    cell_rate = (per_cell["sum"] + strength * prior) / (per_cell["count"] + strength)
    cells = dict(zip(per_cell["payer"] + "|" + per_cell["family"], cell_rate.astype(float), strict=True))
    return FallbackModel(overall, {str(k): float(v) for k, v in payer_rate.items()}, cells, strength, len(y))


def registered_name(model_name: str) -> str:
    """The fallback's registered model name beside the denial model's."""
    return f"{model_name}-fallback"
