"""What the Dagster UI tells about each table before and after its first run.

Owners and tags (layer, PHI yes/no) for every asset, and the column schema (`dagster/column_schema`:
names, types, descriptions, constraints) declared on the definition, built from the column registry
(`lib/columns.py`) through the pandera contracts for bronze and silver, and from the registry's
descriptions of computed columns for gold, the model rows and the scores. The IO manager keeps these
descriptions and constraints in the schema it records at run time (`io_manager.merge_schemas`).

Summary statistics: `summary_metadata` describes a PHI-free table (gold features, scores) in a markdown
table. dagster-pandas is not used for it: its DataFrame types put statistics on the type-check event of
the run log rather than on the asset, and its constraint errors quote offending values, which would put
PHI in event metadata; the contracts are pandera's (dagster-pandera) so that one contract serves both
validation and the UI schema.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import dagster as dg
import pandas as pd

from rcm_assets.lib import contracts
from rcm_assets.lib import features as feature_lib
from rcm_assets.lib.columns import COMPUTED_COLUMN_DESCRIPTIONS, columns, phi_tag_column_names
from rcm_assets.platform.types import table_schema

COLUMN_SCHEMA = "dagster/column_schema"
TEAM_OWNER = "team:revenue-cycle-data"
ROLE_OWNER = "rcm-data-steward@revenue-cycle.example"  # the named role accountable for the tables
OWNERS = [TEAM_OWNER, ROLE_OWNER]


def tags(layer: str, *, phi: bool) -> dict[str, str]:
    """Asset tags an operator filters by: the layer, and whether the table holds PHI (claim and account
    numbers included: `lib.columns.phi_tag_column_names`)."""
    return {"layer": layer, "phi": "yes" if phi else "no"}


def registry_tags(table: str, layer: str) -> dict[str, str]:
    """Tags of a stored source table: PHI when the registry names a PHI column or an identifier kept as a
    key (the claim id) in that layer."""
    return tags(layer, phi=any(c.phi or c.identifier for c in columns(table, layer)))


def holds_phi(schema: Any) -> bool:
    """Whether a declared column schema names a PHI column or a claim/account number."""
    names = {c.name for c in getattr(schema, "value", schema).columns} if schema is not None else set()
    return bool(names & phi_tag_column_names())


def definition_metadata(schema: dg.TableSchema, **extra: Any) -> dict[str, Any]:
    return {COLUMN_SCHEMA: schema, **extra}


def described(schema: dg.TableSchema) -> dg.TableSchema:
    """A contract's schema with every column described (the registry's text for any the contract leaves bare)."""
    return dg.TableSchema(constraints=schema.constraints, columns=[
        column if column.description else dg.TableColumn(
            column.name, column.type, description=COMPUTED_COLUMN_DESCRIPTIONS.get(column.name),
            constraints=column.constraints, tags=column.tags)
        for column in schema.columns])


def bronze_schema(table: str) -> dg.TableSchema:
    return described(table_schema(contracts.schema_for(table, "bronze")))


def silver_schema(table: str) -> dg.TableSchema:
    return described(table_schema(contracts.schema_for(table, "silver")))


def rejects_schema(table: str) -> dg.TableSchema:
    return described(table_schema(contracts.rejects_schema(table)))


def computed_schema(dtypes: Mapping[str, Any], constraints: Mapping[str, list[str]] | None = None
                    ) -> dg.TableSchema:
    """A computed table's schema; every column must be described in COMPUTED_COLUMN_DESCRIPTIONS."""
    missing = [name for name in dtypes if name not in COMPUTED_COLUMN_DESCRIPTIONS]
    if missing:
        raise KeyError(f"column(s) {', '.join(missing)} have no description in "
                       "lib/columns.COMPUTED_COLUMN_DESCRIPTIONS")
    constraints = constraints or {}
    return dg.TableSchema(columns=[
        dg.TableColumn(name, str(dtype), description=COMPUTED_COLUMN_DESCRIPTIONS[name],
                       constraints=dg.TableColumnConstraints(other=constraints.get(name, [])))
        for name, dtype in dtypes.items()
    ])


def gold_schema() -> dg.TableSchema:
    ranges = {name: [f">= {low:g}", f"<= {high:g}"] for name, (low, high) in feature_lib.FEATURE_RANGES.items()}
    nulls = {name: [f"null share <= {rate:.0%}"] for name, rate in feature_lib.MAX_NULL_RATE.items()}
    notes = {name: ranges.get(name, []) + nulls.get(name, []) for name in feature_lib.OUTPUT_COLUMNS}
    dtypes = {name: ("category" if isinstance(dtype, pd.CategoricalDtype) else dtype)
              for name, dtype in feature_lib.output_dtypes().items()}
    return computed_schema(dtypes, notes)


CLAIM_VERSIONS_DTYPES = {"claim_id": "object", "claim_version": "int64", "first_updated_at": "datetime64[ns]",
                         "dt": "object"}
AUTHORIZATION_DENIALS_DTYPES = {
    "claim_id": "object", "claim_version": "int64", "adjudicated_at": "datetime64[ns]",
    "arrived_at": "datetime64[ns]", "payer_id": "object", "cpt_family": "object", "prior_auth_present": "int64",
    "reference_requires": "int64", "dt": "object"}
MODEL_DTYPES = {
    "week": "object", "model_name": "object", "model_version": "object", "mlflow_run_id": "object",
    "feature_version": "object", "window_start": "datetime64[ns]", "window_end": "datetime64[ns]",
    "cutoff": "datetime64[ns]", "train_rows": "int64", "holdout_rows": "int64", "labelled": "int64",
    "unlabelled": "int64", "holdout_roc_auc": "float64", "holdout_pr_auc": "float64", "holdout_brier": "float64",
    "champion_version_before": "object", "champion_auc_on_holdout": "float64",
    "candidate_auc_vs_champion": "float64", "promoted": "bool", "gate": "object", "gate_sentence": "object",
    "serving_version": "object", "data_fingerprint": "object", "reused_registered_version": "bool",
    "fallback_version": "object", "fallback_holdout_roc_auc": "float64",
}
SCORES_DTYPES = {
    "claim_id": "object", "claim_version": "int64", "submitted_at": "datetime64[ns]", "dt": "object",
    "denial_probability": "float64", "decision": "object", "threshold": "float64", "feature_version": "object",
    "scored_by": "object", "model_name": "object", "model_version": "object", "mlflow_run_id": "object",
    "training_window_start": "object", "training_window_end": "object", "dagster_run_id": "object",
    "scored_at": "datetime64[ns]",
}


def claim_versions_schema() -> dg.TableSchema:
    return computed_schema(CLAIM_VERSIONS_DTYPES)


def authorization_denials_schema() -> dg.TableSchema:
    return computed_schema(AUTHORIZATION_DENIALS_DTYPES)


def model_schema() -> dg.TableSchema:
    return computed_schema(MODEL_DTYPES)


def training_set_schema() -> dg.TableSchema:
    """Keys, the gold features as stored, the label and its remittance row's details, the model week."""
    gold = {name: ("category" if isinstance(dtype, pd.CategoricalDtype) else dtype)
            for name, dtype in feature_lib.output_dtypes().items()}
    return computed_schema({**gold, "denied": "int64", "first_adjudicated_at": "datetime64[ns]",
                            "first_carc_category": "object", "first_allowed_amount": "float64",
                            "week": "object"}, {"denied": ["isin([0, 1])"]})


def scores_schema() -> dg.TableSchema:
    return computed_schema(SCORES_DTYPES, {"denial_probability": [">= 0", "<= 1"],
                                           "decision": ["isin(['review', 'submit'])"]})


def summary_metadata(frame: pd.DataFrame, limit: int = 40) -> dict[str, dg.MetadataValue]:
    """Per-column statistics of a PHI-free table as one markdown table (nulls; numeric min/mean/max;
    the most frequent category). Never call it on bronze, silver or rejects: they hold (pseudonymized) PHI."""
    rows = ["| column | non-null | nulls | min | mean | max | most frequent |", "|---|---|---|---|---|---|---|"]
    for name in list(frame.columns)[:limit]:
        values = frame[name]
        nulls = int(values.isna().sum())
        low = mean = high = top = ""
        if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
            numbers = pd.to_numeric(values, errors="coerce").astype("float64")
            if numbers.notna().any():
                low, mean, high = (f"{numbers.min():.4g}", f"{numbers.mean():.4g}", f"{numbers.max():.4g}")
        elif isinstance(values.dtype, pd.CategoricalDtype) and values.notna().any():
            counts = values.value_counts()
            top = f"{counts.index[0]} ({counts.iloc[0] / len(values):.0%})"
        rows.append(f"| {name} | {len(values) - nulls} | {nulls} | {low} | {mean} | {high} | {top} |")
    return {"summary_statistics": dg.MetadataValue.md("\n".join(rows))}


# Schemas of the tables whose definitions live where the column registry cannot reach them by contract.
COMPUTED_SCHEMAS = {
    ("model", "denial_model"): model_schema,
    ("model", "training_set"): training_set_schema,
    ("predictions", "claim_denial_scores"): scores_schema,
}


def operator_view(spec: dg.AssetSpec) -> dg.AssetSpec:
    """Applied to every asset by the code location: owners, the layer and PHI tags, and the declared
    column schema where the asset does not state them itself (its own values win, except that a schema
    holding claim ids or other PHI always makes the table phi=yes)."""
    layer = spec.group_name or spec.key.path[0]
    tags = {"layer": layer, "phi": "no", **(spec.tags or {})}
    metadata = dict(spec.metadata or {})
    schema = COMPUTED_SCHEMAS.get(tuple(spec.key.path))
    if COLUMN_SCHEMA not in metadata and schema is not None:
        metadata[COLUMN_SCHEMA] = schema()
    if holds_phi(metadata.get(COLUMN_SCHEMA)):  # a table keyed by claim id is PHI, whatever it says
        tags["phi"] = "yes"
    return spec.replace_attributes(owners=list(spec.owners or OWNERS), tags=tags, metadata=metadata)


# ---------------------------------------------------------------------------------------------------
# the model's MLflow run, registered version and plots, reachable from the asset page

MLFLOW_UI_DEFAULT = "http://127.0.0.1:5000"  # where `mlflow ui --backend-store-uri <tracking URI>` serves
PLOTS = {"ROC curve": "plots/roc.png", "Precision-recall": "plots/precision_recall.png",
         "Calibration": "plots/calibration.png", "Feature importance": "plots/feature_importance.png"}


def mlflow_ui_url(tracking_uri: str) -> str:
    """The MLflow web UI: RCM_MLFLOW_UI_URL, else a remote tracking server's own address, else the local
    `mlflow ui` default (a SQLite tracking store has no web address of its own)."""
    configured = os.environ.get("RCM_MLFLOW_UI_URL", "").strip()
    if configured:
        return configured.rstrip("/")
    if tracking_uri.startswith(("http://", "https://")):
        return tracking_uri.rstrip("/")
    return MLFLOW_UI_DEFAULT


MODEL_CARD = "model_card.md"  # the card `defs/model.py` logs in each week's MLflow run (lib/model_card.py)


def model_card_text(client: Any, run_id: str) -> str | None:
    """The model card logged in MLflow run `run_id`, or None when the run has none (a run logged before
    cards existed) or the artifact store cannot be read."""
    import tempfile

    from mlflow.exceptions import MlflowException

    with tempfile.TemporaryDirectory(prefix="rcm-model-card-") as folder:
        try:
            path = client.download_artifacts(run_id, MODEL_CARD, folder)
            with open(path, encoding="utf-8") as f:
                return f.read()
        except (MlflowException, OSError):
            return None


def model_run_metadata(tracking_uri: str, experiment_id: str, frame: pd.DataFrame,
                       client: Any = None) -> dict[str, Any]:
    """Links of the newest week's model: its MLflow run page, registered version, model card and plots
    (markdown with the images, served by the MLflow UI), with the holdout metrics rounded to 4 places.
    Given an MLflow `client`, the card's own text is shown too (`model_card_text`)."""
    last = frame.iloc[-1]
    ui = mlflow_ui_url(tracking_uri)
    run_id = str(last["mlflow_run_id"])
    run_page = f"{ui}/#/experiments/{experiment_id}/runs/{run_id}"
    version_page = f"{ui}/#/models/{last['model_name']}/versions/{last['model_version']}"
    images = {title: f"{ui}/get-artifact?path={path}&run_uuid={run_id}" for title, path in PLOTS.items()}
    plots = "\n\n".join(f"**{title}** ([open]({url}))\n\n![{title}]({url})" for title, url in images.items())
    metrics = {name: round(float(last[name]), 4) for name in ("holdout_roc_auc", "holdout_pr_auc", "holdout_brier")
               if name in frame.columns and pd.notna(last[name])}
    card = model_card_text(client, run_id) if client is not None else None
    return {
        "mlflow_run": dg.MetadataValue.url(run_page),
        "registered_version": dg.MetadataValue.text(f"{last['model_name']} v{last['model_version']}"),
        "registered_version_page": dg.MetadataValue.url(version_page),
        **metrics,
        "model_card": dg.MetadataValue.url(f"{ui}/get-artifact?path={MODEL_CARD}&run_uuid={run_id}"),
        **({"model_card_text": dg.MetadataValue.md(card)} if card else {}),
        "plots": dg.MetadataValue.md(plots),
        "roc_plot": dg.MetadataValue.url(images["ROC curve"]),
    }
