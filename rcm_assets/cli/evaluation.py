"""Evaluation against the synthetic ground truth: how close a model comes to the Bayes-optimal AUC.

Only the demo summary, the benchmarks and the tests use this; the pipeline never reads ground truth.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import mlflow
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from upath import UPath

from rcm_assets.defs.model import OUTCOME_COLUMNS
from rcm_assets.defs.training_set import training_window, week_gold_days, week_training_set
from rcm_assets.lib import modelling
from rcm_assets.platform.io_manager import partition_path


def read_lake(lake_url: str, key: Sequence[str], keys: Sequence[str], column: str = "dt",
              columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Partitions of a lake table (missing ones skipped), with the partition column added."""
    tables, names = [], []
    for k in keys:
        path = partition_path(UPath(lake_url), list(key), k, column)
        if path.exists():
            with path.open("rb") as f:
                tables.append(pq.read_table(f, columns=list(columns) if columns else None))
            names.append(k)
    if not tables:
        return pd.DataFrame()
    frame = pa.concat_tables(tables, promote_options="permissive").to_pandas()
    frame[column] = [n for n, t in zip(names, tables, strict=True) for _ in range(t.num_rows)]
    return frame


def days(first: date, last: date) -> list[str]:
    return [d.date().isoformat() for d in pd.date_range(first, last, freq="D")]


def model_vs_bayes(lake_url: str, week: date, model_uri: str, feature_version: str, truth: pd.DataFrame,
                   holdout_fraction: float = 0.2) -> dict[str, float]:
    """Holdout AUC of the model of `week` and the Bayes-optimal AUC of the same holdout claims."""
    start, _, cutoff = training_window(week)
    gold = read_lake(lake_url, ["gold", "claim_features"], sorted(week_gold_days(week)))
    outcomes = read_lake(lake_url, ["silver", "remittances"], days(start.date(), (cutoff - pd.Timedelta(days=1)).date()),
                         columns=OUTCOME_COLUMNS)
    ts = week_training_set(week, gold, outcomes, feature_version)  # the rows the model trained on
    _, holdout = modelling.time_holdout_split(ts, holdout_fraction)
    model = mlflow.sklearn.load_model(model_uri)
    p = modelling.predict_denial(model, holdout.X)
    keyed = holdout.claim_keys[["claim_id", "claim_version"]].merge(
        truth[["claim_id", "claim_version", "true_denial_probability"]], how="left",
        on=["claim_id", "claim_version"], validate="one_to_one")
    return {
        "holdout_rows": float(len(holdout.y)),
        "model_auc": float(modelling.evaluate(holdout.y, p)["roc_auc"]),
        "bayes_auc": float(modelling.bayes_auc(keyed["true_denial_probability"].to_numpy(), holdout.y.to_numpy())),
    }


def scored_vs_bayes(lake_url: str, first: date, last: date, truth: pd.DataFrame) -> dict[str, float]:
    """Out of time: the scores served on days first..last against the claims' realized first adjudication,
    beside the Bayes-optimal AUC of the same claims (only adjudicated versions have a label)."""
    scores = read_lake(lake_url, ["predictions", "claim_denial_scores"], days(first, last),
                       columns=["claim_id", "claim_version", "denial_probability"])
    if scores.empty:
        return {"scored_rows": 0.0, "model_auc": float("nan"), "bayes_auc": float("nan")}
    labelled = scores.merge(truth.loc[truth["adjudicated"], ["claim_id", "claim_version", "denied",
                                                              "true_denial_probability"]],
                            on=["claim_id", "claim_version"], how="inner", validate="many_to_one")
    y = labelled["denied"].astype("int64").to_numpy()
    return {
        "scored_rows": float(len(labelled)),
        "model_auc": float(modelling.evaluate(y, labelled["denial_probability"].to_numpy())["roc_auc"]),
        "bayes_auc": modelling.bayes_auc(labelled["true_denial_probability"].to_numpy(), y),
    }
