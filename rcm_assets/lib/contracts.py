"""Pandera contracts derived from the column registry (`columns.py`), never written twice.

Layers:

- ``bronze``: the *structural* contract of the raw copy: every source and ingest column present with its
  dtype (strings as plain ``object``), everything nullable, no value checks. Value checks are deferred to
  silver on purpose: a bad row must become a silver reject with its reason, not fail the raw copy.
- ``silver``: the full contract: dtypes (string elements must be ``str``), nullability, allowed values,
  ranges, formats, dates without a time part, cross-field checks, one row per (claim_id, dt), strict
  (no PHI or unknown column can pass).

Usability and defect rules (`columns.py`): the bronze row contract checks every rule of every column;
`transforms` rejects a row only for failures of usability rules and turns defect-rule failures into the
`defect_*` flags. The silver contracts therefore check a defect column kept as sent (NPIs, codes, place
of service) for its dtype and grammar only, nullable; a filled one (patient_sex "U") keeps its checks.

``row_schema`` gives the row-level contracts `transforms` validates with (no uniqueness, not strict), and
``gold_schema`` / ``scoring_input_schema`` admit decision-time columns only.

Code columns are judged by the named rules of `code_sets` (one pandera check per rule, named like it), so
a reject reason reads `cpt_code:cpt_hcpcs_code` or `billing_npi:npi_check_digit`. Ranges and allowed sets
keep pandera's names, which carry the bound (`units:less_than_or_equal_to(9999)`).

Time zones: `service_date` is a local calendar date, timestamps are naive UTC. The cross-check
`submitted_at >= service_date` compares the *local date* of `submitted_at` in the facility's zone
(`facility_tz`, e.g. America/New_York) with the service date: a claim submitted at 08:00 in Tokyo on its
service date is 23:00 UTC the day before and is valid. `row_schema` (what rejects rows) takes the
facility's zone; the stored-table contract `schema_for` is zone-independent (it accepts the latest local
date anywhere, UTC+14), so it never refuses a row `row_schema` accepted in any zone.

Pandera's failure reports carry the failing *values* (PHI in bronze): `failure_records` and
`summarize_failures` reduce them to check, column and counts, which is all that may reach logs, event
metadata or Dagster type checks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.dtypes import immutable
from pandera.engines import pandas_engine

from rcm_assets.lib import code_sets, settings
from rcm_assets.lib.columns import (
    INGEST_COLUMNS,
    Availability,
    Column,
    availability_of,
    columns,
    phi_column_names,
    source_columns,
)

LAYERS = ("bronze", "silver")
TABLES = ("claims", "remittances")
PARTITION_COLUMN = "dt"
KEY_COLUMNS = ("claim_id", PARTITION_COLUMN)  # one row per claim and day in gold
# Silver keeps history: one row per state (a claim version from its updated_at on; an adjudication row).
SILVER_KEY_COLUMNS: dict[str, tuple[str, ...]] = {
    "claims": ("claim_id", "claim_version", "updated_at", PARTITION_COLUMN),
    "remittances": ("claim_id", "adjudicated_at", "updated_at", PARTITION_COLUMN),
}
GOLD_KEY_COLUMNS = ("claim_id", "claim_version", "submitted_at")
FEATURE_VERSION_COLUMN = "feature_version"

# pandas dtype of each registry dtype (frame conventions of docs/INTERFACES.md)
PANDAS_DTYPES: dict[str, str] = {
    "string": "object",
    "int64": "int64",
    "float64": "float64",
    "bool": "bool",
    "date": "datetime64[ns]",
    "timestamp": "datetime64[ns]",
}


@immutable
class TextDtype(pandas_engine.NpString):
    """Pandera's `str` dtype (named `str` in reports) with a vectorised fast path.

    Pandera judges `str` by calling `isinstance` on every element of the column (seconds per column at a
    year of claims). When pandas' C-level type inference already sees only strings among the non-null
    values, every element passes; otherwise the element-wise check runs as before, so the failing rows
    and their check name (`dtype('str')`) are the same.
    """

    def check(self, pandera_dtype: Any, data_container: Any = None) -> Any:
        if (data_container is not None and len(data_container)
                and pd.api.types.infer_dtype(data_container, skipna=True) == "string"):
            return True
        return super().check(pandera_dtype, data_container)


STR = TextDtype()
# pandera dtype: `str` also checks that every element of an object column is a str
_PANDERA_DTYPES: dict[str, Any] = {**PANDAS_DTYPES, "string": STR}

# Columns of the rejects tables (never a PHI value: member_id only as its token).
REJECT_COLUMNS: dict[str, tuple[str, ...]] = {
    "claims": ("claim_id", "claim_version", "member_token", "updated_at", PARTITION_COLUMN,
               "reasons", "failed_checks", "failed_columns"),
    "remittances": ("claim_id", "updated_at", PARTITION_COLUMN, "reasons", "failed_checks", "failed_columns"),
}
REJECT_DTYPES: dict[str, str] = {
    "claim_id": "object", "claim_version": "int64", "member_token": "object", "updated_at": "datetime64[ns]",
    PARTITION_COLUMN: "object", "reasons": "object", "failed_checks": "object", "failed_columns": "object",
}
REASON_SEPARATOR = "; "

# Checks whose failures are not tied to one row (the column itself is missing, unknown or retyped).
COLUMN_LEVEL_CHECKS = ("column_in_schema", "column_in_dataframe")


class ContractError(ValueError):
    """An upstream schema change (missing, renamed or retyped columns) or a forbidden column.

    The message names columns and dtypes only, never values.
    """

    def __init__(self, message: str, columns: Iterable[str] = ()):
        super().__init__(message)
        self.columns = list(columns)


@dataclass(frozen=True)
class CrossCheck:
    """`column >= other` on every row where both are present; failures are attributed to `column`.

    With `local_date`, `column` is a naive-UTC timestamp and `other` a local calendar date: the local date
    of `column` in the facility's time zone is compared (see the module docstring).
    """

    table: str
    column: str
    other: str
    layers: tuple[str, ...] = LAYERS
    local_date: bool = False

    @property
    def name(self) -> str:
        return f"greater_than_or_equal_to_column({self.other})"

    def check(self, facility_tz: str | None = None) -> pa.Check:
        column, other, local = self.column, self.other, self.local_date

        def _ge(frame: pd.DataFrame) -> pd.Series:
            a, b = frame[column], frame[other]
            if local:
                a = settings.local_dates(a, facility_tz)
            return (a >= b) | a.isna() | b.isna()

        where = "any time zone" if facility_tz is None else facility_tz
        what = f"local date of {column} ({where}) >= {other}" if local else f"{column} >= {other}"
        # `_ge` passes nulls itself: pandera's ignore_na would only add a whole-frame isna per check
        return pa.Check(_ge, name=self.name, description=what, ignore_na=False)


CROSS_CHECKS: tuple[CrossCheck, ...] = (
    CrossCheck("claims", "submitted_at", "service_date", local_date=True),
    CrossCheck("claims", "updated_at", "submitted_at"),
    CrossCheck("remittances", "allowed_amount", "paid_amount"),
    CrossCheck("remittances", "updated_at", "adjudicated_at"),
)

def unique_key_check_name(key_columns: tuple[str, ...]) -> str:
    return f"unique_key({', '.join(key_columns)})"


# Dataframe-level (wide) check name -> the column its row failures are attributed to.
_WIDE_CHECK_COLUMN: dict[str, str] = {c.name: c.column for c in CROSS_CHECKS}
UNIQUE_KEY_CHECK = unique_key_check_name(KEY_COLUMNS)
for _keys in (KEY_COLUMNS, *SILVER_KEY_COLUMNS.values()):
    _WIDE_CHECK_COLUMN[unique_key_check_name(_keys)] = _keys[0]
DENIED_CHECK = "denied_equals_claim_status_denied"
_WIDE_CHECK_COLUMN[DENIED_CHECK] = "denied"
CARC_CATEGORY_CHECK = "carc_category_only_when_denied"
_WIDE_CHECK_COLUMN[CARC_CATEGORY_CHECK] = "carc_category"


# --------------------------------------------------------------------------------------------------
# registry -> pandera
# --------------------------------------------------------------------------------------------------


def _check_layer(table: str, layer: str) -> None:
    if table not in TABLES:
        raise KeyError(f"unknown table {table!r}; known: {TABLES}")
    if layer not in LAYERS:
        raise KeyError(f"unknown layer {layer!r}; known: {LAYERS}")


def layer_columns(table: str, layer: str) -> tuple[Column, ...]:
    """Registry columns of a table at a layer: bronze = source + ingest; silver = registry silver layer."""
    _check_layer(table, layer)
    if layer == "bronze":
        return source_columns(table) + tuple(c for c in INGEST_COLUMNS if c.table == table)
    return columns(table, "silver")


def frame_columns(table: str, layer: str) -> list[str]:
    """Column names of a layer's frames in order, with the partition column `dt` last."""
    return [c.name for c in layer_columns(table, layer)] + [PARTITION_COLUMN]


def empty_frame(table: str, layer: str) -> pd.DataFrame:
    """Zero rows with the layer's columns and dtypes (so an empty partition still passes its contract)."""
    cols = {c.name: pd.Series([], dtype=PANDAS_DTYPES[c.dtype]) for c in layer_columns(table, layer)}
    cols[PARTITION_COLUMN] = pd.Series([], dtype="object")
    return pd.DataFrame(cols)


def empty_rejects(table: str) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=REJECT_DTYPES[c]) for c in REJECT_COLUMNS[table]})


def rule_checks(rules: Iterable[str]) -> list[pa.Check]:
    """One named check per `code_sets` rule; a value is reported under the first rule it breaks only."""
    checks: list[pa.Check] = []
    earlier: list[code_sets.CodeRule] = []
    for name in rules:
        rule = code_sets.rule(name)

        def _valid(s: pd.Series, rule: code_sets.CodeRule = rule,
                   before: tuple[code_sets.CodeRule, ...] = tuple(earlier)) -> pd.Series:
            # judged once per distinct value (codes repeat: payers, CPTs, NPIs), then spread to the rows
            codes, uniques = pd.factorize(s.astype("object"), use_na_sentinel=True)
            distinct = pd.Series(uniques, dtype="object")
            ok = rule.valid(distinct).to_numpy(dtype=bool)
            for prior in before:  # already reported under an earlier rule
                ok |= ~prior.valid(distinct).to_numpy(dtype=bool)
            rows = np.ones(len(s), dtype=bool)  # nulls pass: `not_nullable` judges them
            present = codes >= 0
            rows[present] = ok[codes[present]]
            return pd.Series(rows, index=s.index)

        checks.append(pa.Check(_valid, name=rule.name, description=f"{rule.description} ({rule.source})",
                               ignore_na=False))  # `_valid` passes nulls itself (no isna + copy per column)
        earlier.append(rule)
    return checks


def per_distinct_value(check: pa.Check, element_wise: Callable[[pd.Series], pd.Series]) -> pa.Check:
    """`check` (a verdict per value, computed by `element_wise`) judged once per distinct value and spread
    to the rows: the same name, error and verdicts, without a regex call per row (codes and days repeat)."""

    def _spread(s: pd.Series) -> pd.Series:
        codes, uniques = pd.factorize(s.astype("object"), use_na_sentinel=True)
        verdicts = element_wise(pd.Series(uniques, dtype="object")).to_numpy(dtype=bool)
        rows = np.ones(len(s), dtype=bool)  # nulls pass: `not_nullable` judges them
        present = codes >= 0
        rows[present] = verdicts[codes[present]]
        return pd.Series(rows, index=s.index)

    # `_spread` passes nulls itself: pandera's ignore_na would only add an isna and a copy per column
    return pa.Check(_spread, name=check.name, error=check.error, statistics=check.statistics,
                    description=check.description, ignore_na=False)


def str_matches(pattern: str) -> pa.Check:
    """`pa.Check.str_matches(pattern)` (a non-text value fails) judged once per distinct value."""
    return per_distinct_value(pa.Check.str_matches(pattern), lambda s: s.str.match(pattern, na=False))


def value_checks(col: Column) -> list[pa.Check]:
    """The registry's value constraints of one column as pandera checks (nulls are judged separately)."""
    checks: list[pa.Check] = []
    if col.isin is not None:
        checks.append(pa.Check.isin(list(col.isin)))
    if col.ge is not None:
        checks.append(pa.Check.ge(col.ge))
    if col.le is not None:
        checks.append(pa.Check.le(col.le))
    if col.rules:
        checks += rule_checks(col.rules)  # each rule includes the grammar (col.regex)
    elif col.regex is not None:
        checks.append(str_matches(col.regex))
    if col.dtype == "date":
        checks.append(pa.Check(lambda s: s == s.dt.normalize(), name="date_without_time",
                               description="a date: midnight, no time of day"))
    return checks


def pandera_column(
    col: Column, *, values: bool = True, nullable: bool | None = None, layer: str = "bronze"
) -> pa.Column:
    """One registry column as a pandera Column; `values=False` keeps only name and (lenient) dtype.

    At `layer="silver"` a defect column kept as sent is checked for its dtype and grammar only, may be null
    (its failures are flags, not rejects: see the module docstring)."""
    checks = value_checks(col) if values else None
    if layer == "silver":
        nullable = col.silver_nullable if nullable is None else nullable
        if not col.silver_checked:  # a defect kept as sent: its grammar only (code lists are flags)
            checks = [str_matches(col.regex)] if values and col.regex is not None else None
    flags = []
    if col.phi:
        flags.append("PHI")
    flags.append(col.availability.value)
    if col.defect is not None:
        flags.append(f"defect_{col.defect}")
    description = f"{col.description} [{', '.join(flags)}]".strip()
    return pa.Column(
        _PANDERA_DTYPES[col.dtype] if values else PANDAS_DTYPES[col.dtype],
        checks=checks,
        nullable=col.nullable if nullable is None else nullable,
        required=True,
        description=description,
        title=col.name,
    )


def _partition_column() -> pa.Column:
    return pa.Column(STR, nullable=False, required=False, checks=str_matches(r"^\d{4}-\d{2}-\d{2}$"),
                     description="Partition key (YYYY-MM-DD, UTC day the row reached the source)")


def _unique_key_check(key_columns: tuple[str, ...] = KEY_COLUMNS) -> pa.Check:
    def _unique(frame: pd.DataFrame) -> pd.Series:
        keys = [k for k in key_columns if k in frame.columns]
        return ~frame.duplicated(subset=keys, keep=False)

    return pa.Check(_unique, name=unique_key_check_name(key_columns),
                    description=f"one row per {', '.join(key_columns)}")


def _label_checks() -> list[pa.Check]:
    def _denied(frame: pd.DataFrame) -> pd.Series:
        return frame["denied"] == frame["claim_status"].eq("denied")

    def _category(frame: pd.DataFrame) -> pd.Series:
        return frame["denied"] | frame["carc_category"].isna()

    return [
        pa.Check(_denied, name=DENIED_CHECK, description="denied == (claim_status == 'denied')"),
        pa.Check(_category, name=CARC_CATEGORY_CHECK, description="carc_category is null unless denied"),
    ]


def _cross_checks(table: str, layer: str, facility_tz: str | None = None) -> list[pa.Check]:
    return [c.check(facility_tz) for c in CROSS_CHECKS if c.table == table and layer in c.layers]


def _schema_kwargs(table: str, layer: str, what: str) -> dict[str, Any]:
    return {"name": f"{layer}_{table}{what}", "title": f"{layer.capitalize()} {table}{what.replace('_', ' ')}"}


def schema_for(table: str, layer: str) -> pa.DataFrameSchema:
    """The contract of an asset: `bronze` structural, `silver` complete (see the module docstring).

    Zone-independent: the stored table is checked without the facility's time zone (any zone's local date
    of `submitted_at` may be the service date); rows were judged in their zone by `row_schema`.
    """
    _check_layer(table, layer)
    if layer == "bronze":
        cols = {c.name: pandera_column(c, values=False, nullable=True) for c in layer_columns(table, layer)}
        cols[PARTITION_COLUMN] = _partition_column()
        return pa.DataFrameSchema(
            cols, strict=False, coerce=False, **_schema_kwargs(table, layer, ""),
            description=(f"Raw {table} as extracted: registry source + ingest columns and dtypes; values are "
                         "judged in silver. Contains PHI."),
        )
    cols = {c.name: pandera_column(c, layer=layer) for c in layer_columns(table, layer)}
    cols[PARTITION_COLUMN] = _partition_column()
    checks = _cross_checks(table, layer) + [_unique_key_check(SILVER_KEY_COLUMNS[table])]
    if table == "remittances":
        checks += _label_checks()
    return pa.DataFrameSchema(
        cols, checks=checks, strict=True, coerce=False, **_schema_kwargs(table, layer, ""),
        description=(f"Validated, pseudonymized {table}: one row per state "
                     f"({', '.join(SILVER_KEY_COLUMNS[table])}); no PHI column."),
    )


def row_schema(
    table: str, layer: str, *, as_of: datetime | None = None, facility_tz: str | None = None
) -> pa.DataFrameSchema:
    """Row-level contract used while building silver: every value check, no uniqueness, not strict.

    `bronze` checks the source values *including PHI columns* (so a bad zip is rejected naming
    `patient_zip`, before the column is dropped); `silver` checks the derived columns. With `as_of` (naive
    UTC), the decision timestamps (`submitted_at`, `adjudicated_at`) may not lie after it, nor
    `service_date` after its local date. `facility_tz` (IANA name) is the zone in which `service_date` is a
    local date; None checks zone-independently (as `schema_for`).
    """
    _check_layer(table, layer)
    if facility_tz is not None:
        settings.check_time_zone(facility_tz, setting="facility_tz")
    cols = {c.name: pandera_column(c, layer=layer) for c in layer_columns(table, layer)}
    if as_of is not None:
        limit = pd.Timestamp(as_of)
        local_limit = settings.local_dates(pd.Series([limit]), facility_tz).iloc[0]
        for name in ("service_date", "submitted_at", "adjudicated_at"):
            if name in cols:
                bound = local_limit if name == "service_date" else limit
                cols[name] = cols[name].set_checks([*cols[name].checks, pa.Check.le(bound)])
    cols[PARTITION_COLUMN] = _partition_column()
    checks = _cross_checks(table, layer, facility_tz)
    if layer == "silver" and table == "remittances":
        checks += _label_checks()
    return pa.DataFrameSchema(cols, checks=checks, strict=False, coerce=False,
                              **_schema_kwargs(table, layer, "_rows"))


def rejects_schema(table: str) -> pa.DataFrameSchema:
    """Contract of `silver/<table>_rejects`: keys, pseudonym and reasons only (strict: no PHI column)."""
    if table not in TABLES:
        raise KeyError(f"unknown table {table!r}; known: {TABLES}")
    cols: dict[str, pa.Column] = {
        "claim_id": pa.Column(STR, nullable=True, description="as received (may itself be the bad value)"),
        "updated_at": pa.Column("datetime64[ns]", nullable=True),
        PARTITION_COLUMN: _partition_column(),
        "reasons": pa.Column(STR, nullable=False, description="column:check of every failure, '; '-joined"),
        "failed_checks": pa.Column(STR, nullable=False),
        "failed_columns": pa.Column(STR, nullable=False),
    }
    if table == "claims":
        cols["claim_version"] = pa.Column("int64", description="0 when missing in the source")
        cols["member_token"] = pa.Column(STR, nullable=True, checks=str_matches(r"^[0-9a-f]{32}$"),
                                         description="HMAC pseudonym of member_id (never the raw id)")
    return pa.DataFrameSchema(
        {c: cols[c] for c in REJECT_COLUMNS[table]}, strict=True, coerce=False,
        **_schema_kwargs(table, "silver", "_rejects"),
        description=(f"Bronze {table} rows that cannot be used (a usability rule failed: no claim id, payer, "
                     "version, parsable dates or amounts): keys, failing checks and columns; no PHI. Rows "
                     "with claim defects land in silver flagged instead."),
    )


# --------------------------------------------------------------------------------------------------
# decision-time contracts: scoring input and gold
# --------------------------------------------------------------------------------------------------


def forbidden_columns(names: Iterable[str], allowed: Iterable[str] = ()) -> dict[str, str]:
    """Columns that may not reach a feature or the scoring input, each with the reason (registry based)."""
    phi = phi_column_names()
    allowed = set(allowed)
    bad: dict[str, str] = {}
    for name in names:
        if name in allowed:
            continue
        if name in phi:
            bad[name] = "PHI"
            continue
        availability = availability_of(name)
        if availability is not None and availability is not Availability.DECISION_TIME:
            bad[name] = availability.value
    return bad


def scoring_input_columns() -> list[str]:
    """Decision-time claims columns at the silver layer: all the scoring path may receive."""
    return [c.name for c in columns("claims", "silver") if c.availability is Availability.DECISION_TIME]


def _forbidden_columns_check(allowed: Iterable[str]) -> pa.Check:
    allowed = tuple(allowed)

    def _only_decision_time(frame: pd.DataFrame) -> bool:
        return not forbidden_columns(frame.columns, allowed)

    return pa.Check(_only_decision_time, name="no_post_outcome_bookkeeping_or_phi_columns",
                    description="only decision-time columns (post_outcome, bookkeeping and PHI are refused)")


def scoring_input_schema() -> pa.DataFrameSchema:
    """Claims as the scoring path receives them: decision-time silver columns only (+ optional dt).

    Strict: any other column fails as `column_in_schema` naming it, and a post-outcome, bookkeeping or
    PHI column also fails the named dataframe check.
    """
    cols = {c.name: pandera_column(c, layer="silver") for c in columns("claims", "silver")
            if c.availability is Availability.DECISION_TIME}
    cols[PARTITION_COLUMN] = _partition_column()
    return pa.DataFrameSchema(
        cols, checks=[_forbidden_columns_check(())], strict=True, coerce=False,
        name="scoring_input", title="Scoring input (decision-time claims)",
        description="Claims ready to submit: decision-time columns only; no outcome, bookkeeping or PHI.",
    )


def _feature_dtype(dtype: Any) -> Any:
    if isinstance(dtype, str) and dtype in ("string", "str", "object"):
        return STR
    return dtype


def gold_schema(
    feature_columns: Mapping[str, Any] | Iterable[str],
    *,
    name: str = "gold_claim_features",
    nullable_features: bool = True,
) -> pa.DataFrameSchema:
    """Contract of the gold feature table: keys, `dt`, the features and `feature_version`; strict.

    `feature_columns` maps a feature name to a dtype ("float64", "int64", "bool", "string", "category",
    a numpy/pandas dtype or a ready `pa.Column`), or is a list of names (dtype not checked). Raises
    ContractError when a feature is a post-outcome, bookkeeping or PHI column of the registry.
    """
    specs: Mapping[str, Any] = (
        feature_columns if isinstance(feature_columns, Mapping) else dict.fromkeys(feature_columns)
    )
    bad = forbidden_columns(specs)
    if bad:
        listed = ", ".join(f"{k} ({v})" for k, v in sorted(bad.items()))
        raise ContractError(f"gold features may only use decision-time columns; refused: {listed}", bad)
    registry = {c.name: c for c in columns("claims", "silver")}
    cols: dict[str, pa.Column] = {k: pandera_column(registry[k], layer="silver") for k in GOLD_KEY_COLUMNS}
    cols[PARTITION_COLUMN] = _partition_column()
    for feature, dtype in specs.items():
        if isinstance(dtype, pa.Column):
            cols[feature] = dtype
        else:
            cols[feature] = pa.Column(_feature_dtype(dtype), nullable=nullable_features,
                                      description="feature (decision-time)")
    cols[FEATURE_VERSION_COLUMN] = pa.Column(STR, nullable=False, checks=pa.Check.str_length(min_value=1),
                                             description="version of the features: logic version, reference data, config and their values on a probe set")
    return pa.DataFrameSchema(
        cols, checks=[_unique_key_check(), _forbidden_columns_check(GOLD_KEY_COLUMNS)], strict=True,
        coerce=False, name=name, title="Gold claim features",
        description="Decision-time features of the claim versions of silver D; one row per claim_id and dt.",
    )


# --------------------------------------------------------------------------------------------------
# failure reports without values
# --------------------------------------------------------------------------------------------------


FAILURE_RECORD_COLUMNS = ("row", "column", "check")


def failure_records(errors: pa.errors.SchemaErrors | pd.DataFrame) -> pd.DataFrame:
    """Pandera's failure cases reduced to (row, column, check): the failing *values* are dropped.

    `row` is the index label of the failing row, or None for column-level failures (missing, unknown or
    retyped column). Wide checks are attributed to the column they guard; their stacked per-column
    failure cases collapse to one record per row.
    """
    cases = errors.failure_cases if isinstance(errors, pa.errors.SchemaErrors) else errors
    if cases is None or len(cases) == 0:
        return pd.DataFrame({c: pd.Series([], dtype="object") for c in FAILURE_RECORD_COLUMNS})
    check = cases["check"].astype(str)
    context = cases["schema_context"].astype(str)
    column = cases["column"].astype("object")
    column_level = check.isin(COLUMN_LEVEL_CHECKS)
    # missing/unknown columns: pandera puts the column *name* in failure_case (a name, never a value)
    column = column.where(~column_level, cases["failure_case"].astype(str))
    wide = context.eq("DataFrameSchema") & ~column_level
    attributed = check.map(_WIDE_CHECK_COLUMN)
    column = column.where(~wide, attributed.where(attributed.notna(), "*"))
    index = cases["index"].astype("object")
    row = index.where(index.notna() & ~column_level, None)
    out = pd.DataFrame({"row": row.to_numpy(), "column": column.astype(str).to_numpy(), "check": check.to_numpy()})
    return out.drop_duplicates(ignore_index=True)


def summarize_failures(errors: pa.errors.SchemaErrors | pd.DataFrame) -> list[dict[str, Any]]:
    """[{check, column, count}] sorted by count: rows failing each check, never the failing values."""
    records = failure_records(errors)
    if records.empty:
        return []
    # column-level failures (row None) count once each
    keyed = records.assign(row=records["row"].astype(str))
    counts = keyed.groupby(["check", "column"], sort=False)["row"].nunique()
    out = [{"check": str(chk), "column": str(col), "count": int(n)} for (chk, col), n in counts.items()]
    return sorted(out, key=lambda d: (-d["count"], d["column"], d["check"]))


def describe_failures(summary: list[dict[str, Any]], *, what: str, limit: int = 20) -> str:
    """One readable line from `summarize_failures` output: checks, columns and counts only."""
    if not summary:
        return f"{what}: contract satisfied"
    parts = [f"{d['column']}:{d['check']} ({d['count']})" for d in summary[:limit]]
    more = f"; … {len(summary) - limit} more" if len(summary) > limit else ""
    total = sum(d["count"] for d in summary)
    return (f"{what}: {total} failure(s) in {len(summary)} check(s): {REASON_SEPARATOR.join(parts)}{more} "
            "(failing values withheld: they may be PHI)")


__all__ = [
    "CROSS_CHECKS",
    "PANDAS_DTYPES",
    "REJECT_COLUMNS",
    "ContractError",
    "CrossCheck",
    "describe_failures",
    "empty_frame",
    "empty_rejects",
    "failure_records",
    "forbidden_columns",
    "frame_columns",
    "gold_schema",
    "layer_columns",
    "rejects_schema",
    "row_schema",
    "schema_for",
    "scoring_input_columns",
    "scoring_input_schema",
    "summarize_failures",
]
