"""Dagster types built from the pandera contracts, with failure reports that never carry values.

dagster-pandera's own type check puts pandera's JSON report, failing values included, into the
TypeCheck description, which would leak PHI into the event log. These types reuse its schema ->
TableSchema conversion (so the UI shows each asset's columns, dtypes and checks) but run their own
type check: lazy validation, then only check names, columns and counts in the description and metadata.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from typing import Any

import dagster as dg
import pandas as pd
import pandera.pandas as pa
from dagster_pandera import pandera_schema_to_dagster_type

from rcm_assets.lib import contracts


def table_schema(schema: pa.DataFrameSchema) -> dg.TableSchema:
    """The UI schema (columns, dtypes, constraints, descriptions) of a pandera schema, via dagster-pandera."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # BetaWarning of pandera_schema_to_dagster_type
        converted = pandera_schema_to_dagster_type(schema)
    return converted.metadata["schema"].value


def redacted_type_check(schema: pa.DataFrameSchema, what: str) -> Callable[[Any, object], dg.TypeCheck]:
    """A type check function validating lazily and reporting checks, columns and counts, never values."""

    def type_check_fn(_context: Any, value: object) -> dg.TypeCheck:
        if not isinstance(value, pd.DataFrame):
            return dg.TypeCheck(success=False, description=f"{what}: expected a pandas DataFrame, "
                                                           f"got {type(value).__name__}")
        try:
            schema.validate(value, lazy=True)
        except pa.errors.SchemaErrors as err:
            summary = contracts.summarize_failures(err)
            return dg.TypeCheck(
                success=False,
                description=contracts.describe_failures(summary, what=what),
                metadata={
                    "num_failures": sum(d["count"] for d in summary),
                    "failed_checks": len(summary),
                    "failed_columns": ", ".join(sorted({d["column"] for d in summary})),
                    "failures": dg.MetadataValue.json({"failures": summary}),
                    "rows": len(value),
                },
            )
        except Exception as err:  # noqa: BLE001 - the message may quote values, so only the type is shown
            return dg.TypeCheck(success=False, description=f"{what}: {type(err).__name__} during validation "
                                                           "(message withheld: it may quote values)")
        return dg.TypeCheck(success=True, description=f"{what}: contract satisfied",
                            metadata={"rows": len(value)})

    return type_check_fn


def dagster_type_for(schema: pa.DataFrameSchema, name: str, description: str | None = None) -> dg.DagsterType:
    """A DagsterType from a contract: its TableSchema for the UI and a redacted lazy type check."""
    return dg.DagsterType(
        type_check_fn=redacted_type_check(schema, schema.name or name),
        name=name,
        description=description or schema.description,
        metadata={"schema": dg.MetadataValue.table_schema(table_schema(schema))},
        typing_type=pd.DataFrame,
    )


def _camel(*parts: str) -> str:
    return "".join(p.capitalize() for part in parts for p in part.split("_"))


# Cached: one DagsterType object per name, so the code location never sees two types with one name.
@cache
def bronze_dagster_type(table: str) -> dg.DagsterType:
    return dagster_type_for(contracts.schema_for(table, "bronze"), _camel("bronze", table))


@cache
def silver_dagster_type(table: str) -> dg.DagsterType:
    return dagster_type_for(contracts.schema_for(table, "silver"), _camel("silver", table))


@cache
def rejects_dagster_type(table: str) -> dg.DagsterType:
    return dagster_type_for(contracts.rejects_schema(table), _camel("silver", table, "rejects"))


@cache
def scoring_input_dagster_type() -> dg.DagsterType:
    return dagster_type_for(contracts.scoring_input_schema(), "ScoringInput")


_GOLD_TYPES: dict[tuple, dg.DagsterType] = {}


def gold_dagster_type(feature_columns: Mapping[str, Any] | Iterable[str], name: str = "GoldClaimFeatures"
                      ) -> dg.DagsterType:
    """Gold feature table type for the given features (see `contracts.gold_schema`); one object per spec."""
    spec = feature_columns if isinstance(feature_columns, Mapping) else dict.fromkeys(feature_columns)
    key = (name, tuple((k, str(v)) for k, v in spec.items()))
    if key not in _GOLD_TYPES:
        _GOLD_TYPES[key] = dagster_type_for(contracts.gold_schema(spec), name)
    return _GOLD_TYPES[key]


__all__ = [
    "bronze_dagster_type",
    "dagster_type_for",
    "gold_dagster_type",
    "redacted_type_check",
    "rejects_dagster_type",
    "scoring_input_dagster_type",
    "silver_dagster_type",
    "table_schema",
]
