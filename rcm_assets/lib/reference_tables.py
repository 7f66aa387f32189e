"""The reference tables a hospital can supply: payers, the payers' prior-authorization lists, the
chargemaster and a procedure code -> category map. Each is optional; each has a contract and a content
version that enters `feature_version`.

The pipeline must know only what a hospital can give it (docs/REFERENCE_DATA.md): these files are that
knowledge, read from the reference folder (RCM_REFERENCE_DIR). A missing file is never an error: the
features then learn the value from history or mark it unknown. A file that is present but wrong (a
missing required column, a filing limit of "ninety", a negative price) is an error naming the file, its
line and the column, because a silently dropped row would change what every claim of a payer means.

Pure (pandas and pandera, no Dagster): `defs/reference.py` materializes the tables as assets, the feature
resource reads them, `lib/features` calls the lookups of `ReferenceTables`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa

PLAN_TYPES = ("commercial", "medicare", "medicaid", "self_pay", "other")
# A category map is coarse (imaging, lab, surgery, …): its categories become a model categorical beside the
# public CPT/HCPCS sections, and HistGradientBoosting takes at most 255 categories.
MAX_CATEGORIES = 200
NOT_SUPPLIED = "not supplied"


@dataclass(frozen=True)
class TableSpec:
    """One reference file: its name, required and optional columns, and the key one row stands for."""

    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    key: tuple[str, ...]
    description: str

    @property
    def file(self) -> str:
        return f"{self.name}.csv"

    @property
    def columns(self) -> tuple[str, ...]:
        return (*self.required, *self.optional)


SPECS: dict[str, TableSpec] = {s.name: s for s in (
    TableSpec("payers", ("payer_id",), ("payer_name", "plan_type", "filing_limit_days"), ("payer_id",),
              "The payers the hospital bills: id as the claims carry it, name, plan type, contractual "
              "timely-filing limit (days from service)"),
    TableSpec("prior_auth_list", ("payer_id", "procedure_code"), ("effective_from", "effective_to"),
              ("payer_id", "procedure_code", "effective_from", "effective_to"),
              "The payers' published prior-authorization lists: (payer, CPT/HCPCS code), optionally dated"),
    TableSpec("chargemaster", ("procedure_code", "list_price"), ("description",), ("procedure_code",),
              "The hospital's chargemaster: list price per unit of each CPT/HCPCS code (USD)"),
    TableSpec("code_categories", ("procedure_code", "category"), (), ("procedure_code",),
              "The hospital's procedure code -> category map (free text, e.g. 'imaging')"),
)}
TABLE_NAMES: tuple[str, ...] = tuple(SPECS)


class ReferenceFileError(ValueError):
    """A supplied reference file cannot be used: names the file, the line (1 = header) and the column."""

    def __init__(self, file: str, line: int | None, column: str | None, problem: str) -> None:
        where = ", ".join(p for p in (f"line {line}" if line else "", f"column {column}" if column else "") if p)
        super().__init__(f"{file}{': ' + where if where else ''}: {problem}")
        self.file, self.line, self.column = file, line, column


# --------------------------------------------------------------------------------------------------
# Contracts
# --------------------------------------------------------------------------------------------------

_TEXT = pa.Check(lambda s: s.map(lambda v: isinstance(v, str) and v != ""), element_wise=False,
                 name="non_empty_text")


def _text(nullable: bool = False, **kwargs: object) -> pa.Column:
    checks = [] if nullable else [_TEXT]
    return pa.Column(object, nullable=nullable, checks=checks, **kwargs)


def schema(name: str) -> pa.DataFrameSchema:
    """The contract of a normalized reference table (what `read_table` returns)."""
    date = pa.Column("datetime64[ns]", nullable=True)
    cols: dict[str, dict[str, pa.Column]] = {
        "payers": {"payer_id": _text(unique=True), "payer_name": _text(nullable=True),
                   "plan_type": pa.Column(object, nullable=True, checks=pa.Check.isin(PLAN_TYPES)),
                   "filing_limit_days": pa.Column("float64", nullable=True,
                                                  checks=[pa.Check.ge(1), pa.Check.le(3650)])},
        "prior_auth_list": {"payer_id": _text(), "procedure_code": _text(), "effective_from": date,
                            "effective_to": date},
        "chargemaster": {"procedure_code": _text(unique=True), "description": _text(nullable=True),
                         "list_price": pa.Column("float64", checks=[pa.Check.gt(0)])},
        "code_categories": {"procedure_code": _text(unique=True), "category": _text()},
    }
    checks = ([pa.Check(lambda f: ~(f["effective_from"] > f["effective_to"]), name="effective_from_not_after_to")]
              if name == "prior_auth_list" else [])
    return pa.DataFrameSchema(cols[name], checks=checks, strict=True, coerce=False, name=f"reference_{name}",
                              description=SPECS[name].description)


# --------------------------------------------------------------------------------------------------
# Loading and normalizing
# --------------------------------------------------------------------------------------------------


def _line(position: int) -> int:
    return position + 2  # the header is line 1


def _clean_text(values: pd.Series) -> pd.Series:
    text = values.astype(object).where(values.notna(), None)
    return text.map(lambda v: v.strip() if isinstance(v, str) else v).map(lambda v: v if v != "" else None)


def _parse(values: pd.Series, file: str, column: str, kind: str) -> pd.Series:
    """Numbers or ISO dates from text; a non-empty value that does not parse names its line."""
    text = _clean_text(values)
    parsed = (pd.to_numeric(text, errors="coerce").astype("float64") if kind == "number"
              else pd.to_datetime(text, errors="coerce", format="ISO8601"))
    bad = np.flatnonzero(text.notna().to_numpy() & parsed.isna().to_numpy())
    if len(bad):
        expected = "a number" if kind == "number" else "an ISO date (YYYY-MM-DD)"
        raise ReferenceFileError(file, _line(int(bad[0])), column,
                                 f"{text.iloc[bad[0]]!r} is not {expected} ({len(bad)} such row(s))")
    return parsed


def normalize(name: str, raw: pd.DataFrame, file: str | None = None) -> pd.DataFrame:
    """The normalized table of a raw frame read from CSV (all columns text): required columns checked,
    extra columns dropped, text stripped, codes upper-cased, numbers and dates parsed, then the contract.

    Raises ReferenceFileError naming the file, line and column of the first problem."""
    spec = SPECS[name]
    file = file or spec.file
    raw = raw.rename(columns=lambda c: str(c).strip().lower())
    missing = [c for c in spec.required if c not in raw.columns]
    if missing:
        raise ReferenceFileError(file, 1, missing[0], f"required column missing (header has "
                                 f"{', '.join(map(str, raw.columns)) or 'no columns'}; needs {', '.join(spec.required)})")
    raw = raw.reset_index(drop=True)
    out = pd.DataFrame(index=raw.index)
    for column in spec.columns:
        values = raw[column] if column in raw.columns else pd.Series([None] * len(raw), dtype=object)
        if column in ("filing_limit_days", "list_price"):
            out[column] = _parse(values, file, column, "number")
        elif column.startswith("effective_"):
            out[column] = _parse(values, file, column, "date").astype("datetime64[ns]")
        else:
            text = _clean_text(values)
            if column == "procedure_code":
                text = text.map(lambda v: v.upper() if isinstance(v, str) else v)
            elif column == "plan_type":
                text = text.map(lambda v: v.lower() if isinstance(v, str) else v)
            out[column] = text.astype(object)
    if name == "payers":
        limit = out["filing_limit_days"]
        fractional = np.flatnonzero(limit.notna().to_numpy() & (limit.fillna(0) % 1 != 0).to_numpy())
        if len(fractional):
            raise ReferenceFileError(file, _line(int(fractional[0])), "filing_limit_days",
                                     f"{float(limit.iloc[fractional[0]]):g} is not a whole number of days")
    if name == "prior_auth_list":
        inverted = np.flatnonzero((out["effective_from"] > out["effective_to"]).to_numpy())
        if len(inverted):
            at = int(inverted[0])
            raise ReferenceFileError(file, _line(at), "effective_from", f"{out['effective_from'].iloc[at]:%Y-%m-%d} is "
                                     f"after effective_to {out['effective_to'].iloc[at]:%Y-%m-%d}")
    if name != "prior_auth_list":  # one row per payer / code: a second row for the same one is ambiguous
        key = spec.key[0]
        repeated = np.flatnonzero(out[key].duplicated(keep="first").to_numpy() & out[key].notna().to_numpy())
        if len(repeated):
            at = int(repeated[0])
            first = int(np.flatnonzero((out[key] == out[key].iloc[at]).to_numpy())[0])
            raise ReferenceFileError(file, _line(at), key, f"{out[key].iloc[at]!r} is listed again (first on line "
                                     f"{_line(first)}); one row per {key}")
    if name == "code_categories":
        distinct = out["category"].dropna().unique()
        if len(distinct) > MAX_CATEGORIES:
            raise ReferenceFileError(file, None, "category", f"{len(distinct)} distinct categories; at most "
                                     f"{MAX_CATEGORIES} (a coarse map such as imaging, lab, surgery)")
    _validate(name, out, file)
    # a pair listed twice is one rule (validated first, so an error names the line as written)
    return out.drop_duplicates().reset_index(drop=True) if name == "prior_auth_list" else out


def _validate(name: str, frame: pd.DataFrame, file: str) -> None:
    try:
        schema(name).validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases
        first = cases.iloc[0]
        index = first.get("index")
        line = _line(int(index)) if index is not None and not pd.isna(index) else None
        column = first.get("column") if isinstance(first.get("column"), str) and first.get("column") != name else None
        if column is None and str(first.get("check")) == "effective_from_not_after_to":
            column = "effective_from"
        value = first.get("failure_case")
        value = value.item() if isinstance(value, np.generic) else value
        detail = "missing" if value is None or (isinstance(value, float) and np.isnan(value)) else repr(value)
        raise ReferenceFileError(file, line, column, f"fails {first.get('check')} (value {detail}; "
                                 f"{len(cases)} failure(s) in the file)") from None


def read_table(folder: str | Path | None, name: str) -> pd.DataFrame | None:
    """The normalized table `name` from `<folder>/<name>.csv`, or None when the folder or file is absent."""
    if folder is None:
        return None
    path = Path(folder) / SPECS[name].file
    if not path.is_file():
        return None
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8",
                          skipinitialspace=True)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise ReferenceFileError(str(path), None, None, f"not a UTF-8 CSV with a header row ({err})") from None
    return normalize(name, raw, str(path))


# --------------------------------------------------------------------------------------------------
# Content versions
# --------------------------------------------------------------------------------------------------


def content_version(name: str, frame: pd.DataFrame | None) -> str:
    """16 hex of sha256 over the normalized rows in key order: the same content in any row or column
    order, with any extra columns, gives the same version; "not supplied" for an absent table."""
    if frame is None:
        return NOT_SUPPLIED
    spec = SPECS[name]
    rows = frame[list(spec.columns)].astype(object).where(frame[list(spec.columns)].notna(), None)
    records = [[_json_value(v) for v in row] for row in rows.itertuples(index=False, name=None)]
    records.sort(key=lambda r: json.dumps(r))
    h = hashlib.sha256(json.dumps([name, list(spec.columns), records]).encode())
    return h.hexdigest()[:16]


def _json_value(value: object) -> object:
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    if isinstance(value, float | np.floating):
        return float(value)
    return value


# --------------------------------------------------------------------------------------------------
# The tables and their lookups
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ReferenceTables:
    """The hospital's reference tables, each a normalized frame or None (not supplied)."""

    payers: pd.DataFrame | None = None
    prior_auth_list: pd.DataFrame | None = None
    chargemaster: pd.DataFrame | None = None
    code_categories: pd.DataFrame | None = None

    def table(self, name: str) -> pd.DataFrame | None:
        return getattr(self, name)

    def versions(self) -> dict[str, str]:
        """Content version per table ("not supplied" when absent)."""
        return {f.name: content_version(f.name, getattr(self, f.name)) for f in fields(self)}

    @property
    def version(self) -> str:
        """16 hex over the four tables' versions: what `feature_version` hashes."""
        return hashlib.sha256(json.dumps(self.versions(), sort_keys=True).encode()).hexdigest()[:16]

    def rows(self) -> dict[str, int | None]:
        return {f.name: (None if getattr(self, f.name) is None else len(getattr(self, f.name))) for f in fields(self)}

    # lookups over distinct values (callers pass each distinct value once and broadcast)

    def plan_type(self, payer_ids: Iterable[object]) -> list[str | None]:
        """The payer's plan type in payers.csv, None when the payer or its plan type is not listed."""
        return _lookup(self.payers, "payer_id", "plan_type", payer_ids)

    def filing_limit_days(self, payer_ids: Iterable[object]) -> np.ndarray:
        """The contractual timely-filing limit in days, NaN when not listed."""
        return np.array([np.nan if v is None else float(v)
                         for v in _lookup(self.payers, "payer_id", "filing_limit_days", payer_ids)], dtype="float64")

    def list_price(self, codes: Iterable[object]) -> np.ndarray:
        """The chargemaster list price per unit, NaN when the code is not listed."""
        return np.array([np.nan if v is None else float(v)
                         for v in _lookup(self.chargemaster, "procedure_code", "list_price", _upper(codes))],
                        dtype="float64")

    def categories(self) -> tuple[str, ...]:
        """The distinct categories of code_categories.csv, sorted (none when not supplied)."""
        if self.code_categories is None:
            return ()
        return tuple(sorted(self.code_categories["category"].dropna().unique()))

    def category(self, codes: Iterable[object]) -> list[str | None]:
        """The hospital's category of each code, None when not listed."""
        return _lookup(self.code_categories, "procedure_code", "category", _upper(codes))

    def prior_auth_listed(self, payer_ids: pd.Series, codes: pd.Series, service_dates: pd.Series) -> np.ndarray:
        """True where the payer's published list names the code, in effect on the service date."""
        n = len(payer_ids)
        table = self.prior_auth_list
        if table is None or not len(table) or not n:
            return np.zeros(n, dtype=bool)
        rows = pd.DataFrame({"payer_id": payer_ids.astype(object).to_numpy(),
                             "procedure_code": [c.strip().upper() if isinstance(c, str) else c for c in codes],
                             "service_date": pd.to_datetime(service_dates).to_numpy(dtype="datetime64[ns]"),
                             "_row": np.arange(n)})
        hits = rows.merge(table, on=["payer_id", "procedure_code"], how="inner")
        if not len(hits):
            return np.zeros(n, dtype=bool)
        date = hits["service_date"]
        ok = (hits["effective_from"].isna() | (hits["effective_from"] <= date)) & \
             (hits["effective_to"].isna() | (date <= hits["effective_to"]))
        out = np.zeros(n, dtype=bool)
        out[hits.loc[ok.to_numpy(), "_row"].to_numpy(dtype="int64")] = True
        return out


def _upper(values: Iterable[object]) -> list[object]:
    return [v.strip().upper() if isinstance(v, str) else v for v in values]


def _lookup(table: pd.DataFrame | None, key: str, column: str, values: Iterable[object]) -> list:
    values = list(values)
    if table is None:
        return [None] * len(values)
    found = table[table[column].notna()]
    mapping = dict(zip(found[key], found[column], strict=True))
    return [mapping.get(v) for v in values]


NO_TABLES = ReferenceTables()


def load_reference_tables(folder: str | Path | None) -> ReferenceTables:
    """Every reference table supplied in `folder` (an absent folder or file gives None for that table)."""
    return ReferenceTables(**{name: read_table(folder, name) for name in TABLE_NAMES})
