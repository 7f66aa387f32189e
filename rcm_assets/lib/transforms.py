"""Silver logic: bronze rows typed, validated, pseudonymized, deduplicated, labelled.

Why it is built this way:

- Validation is pandera, lazy, against contracts derived from the registry, so every failing row and
  column is reported at once. Only a row that breaks a *usability* rule (no claim id, payer, version,
  parsable dates, amounts or units) is unusable: it goes to the rejects table with `column:check`
  reasons, keys and the member *token* only, never a raw value. A *defect* rule's failure (an NPI
  failing its check digit, an unknown code, missing demographics) is what payers deny, so the row lands
  with its `defect_*` flag set and `claim_defects` naming them (see `columns.py`); a tolerated column's
  failure (an unknown plan type) only blanks the value. A flagged value is kept as sent only when it has
  its code's shape (grammar); otherwise it becomes null, as it may be any text, PHI included.
- PHI columns are validated *before* they are dropped (a bad zip is rejected naming `patient_zip`),
  then replaced by pseudonyms: member_id -> keyed HMAC-SHA256 token, date of birth -> age at service
  capped at 90, zip -> 3 digits (HIPAA safe harbor: the sparsely populated 3-digit areas become "000");
  name and street address are dropped.
- Upstream schema changes are told apart from bad rows: a missing, renamed or retyped column raises
  `ContractError` naming the columns (nothing is written); an unknown extra column is dropped and
  listed in `stats["unknown_columns"]` (tolerated); an empty partition gives empty frames with the
  right columns (tolerated, `stats["empty"]`). Lossless representation differences (an int column
  stored as float because of a null, tz-aware or non-ns timestamps) are normalized; the nulls they
  hid become `not_nullable` rejects.
- Only counts, rates, check and column names are logged or returned in stats.
- Service dates are local calendar dates of the facility (`facility_tz`, from RCM_FACILITY_TZ); timestamps
  are naive UTC. The contract compares the local date of `submitted_at` with `service_date`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from rcm_assets.lib import code_sets
from rcm_assets.lib.columns import (
    CARC_CATEGORIES,
    CLAIM_DEFECTS_COLUMN,
    DEFECT_FLAGS,
    ICD_CODE_SET_COLUMN,
    KEEP,
    Column,
    availability_of,
    phi_column_names,
    registry_regex,
)
from rcm_assets.lib.contracts import (
    PARTITION_COLUMN,
    REASON_SEPARATOR,
    REJECT_COLUMNS,
    ContractError,
    empty_frame,
    empty_rejects,
    failure_records,
    frame_columns,
    layer_columns,
    row_schema,
)

log = logging.getLogger("rcm.transforms")

PHI_KEY_ENV = "RCM_PHI_KEY"
DEMO_ENV = "demo"
# The demo environment only (RCM_ENV=demo, which `rcm demo` sets): pseudonyms made with a published key are
# reversible by anyone holding the raw ids (short member ids by brute force), so no other environment uses it.
DEMO_PHI_KEY = b"rcm-assets-development-phi-key--never-use-in-production"
DEV_PHI_KEY = DEMO_PHI_KEY  # the name pure-function tests and benchmarks pass explicitly
MIN_PROD_KEY_BYTES = 16
TOKEN_LENGTH = 32
AGE_CAP = 90
# HIPAA safe harbor (45 CFR 164.514(b)(2)(i)(B)): 3-digit zip areas with <= 20,000 people (2000 census)
# must be reported as "000".
RESTRICTED_ZIP3 = frozenset({"036", "059", "063", "102", "203", "556", "692", "790", "821", "823", "830",
                             "831", "878", "879", "884", "890", "893"})
_CARC_GROUP_PREFIX = re.compile(r"^(?:CO|PR|OA|PI|CR)[-\s]?", re.IGNORECASE)
_NULL_PLACEHOLDER = {"int64": 0, "bool": False}  # stands in for a null already recorded as a reject


@dataclass(frozen=True)
class SilverResult:
    good: pd.DataFrame  # silver rows: contract-valid, deduplicated, pseudonymized
    rejects: pd.DataFrame  # one row per failing bronze row: keys, token, reasons (no PHI)
    stats: dict[str, Any] = field(default_factory=dict)  # counts, rates, column and check names only


# --------------------------------------------------------------------------------------------------
# PHI key and pseudonyms
# --------------------------------------------------------------------------------------------------


def load_phi_key(env: str) -> bytes:
    """The pseudonymization key from RCM_PHI_KEY. Fails closed: unset, every environment but the explicit
    demo one stops with one sentence naming the setting; only `demo` falls back to the published key."""
    env = (env or "").strip().lower()
    if env not in ("dev", DEMO_ENV, "prod"):
        raise ValueError(f"unknown environment {env!r}: expected 'dev', 'demo' or 'prod'")
    value = os.environ.get(PHI_KEY_ENV, "")
    if value.strip():
        key = value.encode("utf-8")
        if env == "prod" and len(key) < MIN_PROD_KEY_BYTES:
            raise ValueError(f"{PHI_KEY_ENV} is too short for prod: at least {MIN_PROD_KEY_BYTES} bytes required")
        return key
    if env != DEMO_ENV:
        raise ValueError(
            f"{PHI_KEY_ENV} is not set: the {env} environment needs the PHI pseudonymization key (a secret of at "
            f"least {MIN_PROD_KEY_BYTES} bytes) from the environment; only the demo environment (RCM_ENV=demo, "
            "as `rcm demo` sets) uses the published demo key"
        )
    log.warning("using the published demo PHI key (%s is not set, RCM_ENV=demo): pseudonyms are not secret; "
                "never run the demo environment on real patient data", PHI_KEY_ENV)
    return DEMO_PHI_KEY


def pseudonymize_member(member_id: pd.Series, key: bytes) -> pd.Series:
    """member_id -> HMAC-SHA256(key, id) hex truncated to 32 chars; nulls stay None. Same key, same token."""
    if not key:
        raise ValueError("empty PHI key")
    if member_id.empty:
        return pd.Series([], index=member_id.index, dtype="object", name="member_token")
    ids = member_id.astype("object")
    present = ids.notna()
    uniques = pd.unique(ids[present])
    keyed = hmac.new(key, digestmod=hashlib.sha256)  # the key's pads computed once, copied per id

    def token(value: Any) -> str:
        mac = keyed.copy()
        mac.update(str(value).encode("utf-8"))
        return mac.hexdigest()[:TOKEN_LENGTH]

    tokens = {v: token(v) for v in uniques}
    out = ids.map(tokens).astype("object")
    return out.where(present, None).rename("member_token")


def age_at(dob: pd.Series, on: pd.Series, cap: int = AGE_CAP) -> pd.Series:
    """Whole years from `dob` to `on` (birthday not yet reached -> one less), capped at `cap`.

    float64: NaN when the date of birth is missing or after `on` (an unknown age, a demographics defect)."""
    years = on.dt.year - dob.dt.year
    before_birthday = (on.dt.month < dob.dt.month) | ((on.dt.month == dob.dt.month) & (on.dt.day < dob.dt.day))
    age = (years - before_birthday.astype("float64")).clip(upper=cap).astype("float64")
    return age.where(age >= 0)


def zip3(patient_zip: pd.Series) -> pd.Series:
    """First 3 digits of a ZIP or ZIP+4 ('02134', '02134-1705', '021341705' -> '021'); sparsely populated
    areas become '000' (safe harbor); anything else (the contract rejected it) becomes None."""
    # judged once per distinct value (zips repeat), then spread to the rows
    codes, uniques = pd.factorize(patient_zip.astype("object"), use_na_sentinel=True)
    distinct = pd.Series(uniques, dtype="object")
    text = distinct.where(distinct.map(lambda v: isinstance(v, str)), "")
    area = text.str.extract(r"^(\d{3})\d{2}(?:-?\d{4})?$", expand=False).astype("object")
    area = area.where(area.notna(), None)
    area = area.where(~area.isin(RESTRICTED_ZIP3), "000").to_numpy(dtype="object")
    out = np.full(len(patient_zip), None, dtype="object")
    present = codes >= 0
    out[present] = area[codes[present]]
    return pd.Series(out, index=patient_zip.index, dtype="object", name=patient_zip.name)


def carc_category(carc_code: pd.Series, denied: pd.Series) -> pd.Series:
    """Reason group of a denial from its CARC code ('CO-197' and '197' alike); None unless denied."""
    code = carc_code.astype("object").where(carc_code.notna(), None)
    code = code.map(lambda c: _CARC_GROUP_PREFIX.sub("", str(c).strip()).lstrip("0") or "0", na_action="ignore")
    category = code.map(lambda c: CARC_CATEGORIES.get(c, "other"), na_action="ignore")
    return category.where(denied.astype(bool) & category.notna(), None).astype("object")


# --------------------------------------------------------------------------------------------------
# conforming a bronze frame to the registry dtypes (schema-change detection)
# --------------------------------------------------------------------------------------------------


def _is_all_null(s: pd.Series) -> bool:
    return bool(s.isna().all())


def _elements_are(s: pd.Series, kinds: tuple[type, ...], exclude: tuple[type, ...] = ()) -> bool:
    values = s.dropna()
    return bool(values.map(lambda v: isinstance(v, kinds) and not isinstance(v, exclude)).all())


def _conform_series(s: pd.Series, col: Column) -> tuple[pd.Series, pd.Series] | None:
    """(series in the registry dtype, mask of nulls replaced by a placeholder) or None when retyped."""
    no_nulls = pd.Series(False, index=s.index)
    dtype = s.dtype
    if col.dtype == "string":
        if pd.api.types.is_object_dtype(dtype):
            return s, no_nulls
        if pd.api.types.is_string_dtype(dtype) or isinstance(dtype, pd.CategoricalDtype) or _is_all_null(s):
            return s.astype("object").where(s.notna(), None), no_nulls
        return None
    if col.dtype in ("date", "timestamp"):
        if pd.api.types.is_datetime64_any_dtype(dtype):
            if getattr(dtype, "tz", None) is not None:
                s = s.dt.tz_convert("UTC").dt.tz_localize(None)
            return s.astype("datetime64[ns]"), no_nulls
        if _is_all_null(s) or (pd.api.types.is_object_dtype(dtype) and _elements_are(s, (datetime, pd.Timestamp, np.datetime64))):
            return pd.to_datetime(s, utc=True).dt.tz_localize(None).astype("datetime64[ns]"), no_nulls
        return None
    if col.dtype == "float64":
        if pd.api.types.is_bool_dtype(dtype):
            return None
        if pd.api.types.is_numeric_dtype(dtype):
            return s.astype("float64"), no_nulls
        if _is_all_null(s) or (pd.api.types.is_object_dtype(dtype) and _elements_are(s, (int, float, np.number), (bool, np.bool_))):
            return pd.to_numeric(s).astype("float64"), no_nulls
        return None
    nulls = s.isna()
    if col.dtype == "int64":
        if pd.api.types.is_integer_dtype(dtype) and not isinstance(dtype, pd.api.extensions.ExtensionDtype):
            return s.astype("int64"), no_nulls
        if pd.api.types.is_bool_dtype(dtype):
            return None
        if pd.api.types.is_numeric_dtype(dtype) or _is_all_null(s) or (
            pd.api.types.is_object_dtype(dtype) and _elements_are(s, (int, float, np.number), (bool, np.bool_))
        ):
            values = pd.to_numeric(s.astype("object").where(~nulls, None), errors="coerce")
            if not bool((values.dropna() % 1 == 0).all()):
                return None
            return values.fillna(_NULL_PLACEHOLDER["int64"]).astype("int64"), nulls
        return None
    if col.dtype == "bool":
        if pd.api.types.is_bool_dtype(dtype) and not nulls.any():
            return s.astype("bool"), no_nulls
        values = s.astype("object").where(~nulls, None).dropna()
        if bool(values.map(lambda v: isinstance(v, bool | np.bool_) or (
                isinstance(v, int | float | np.number) and v in (0, 1))).all()):
            return s.astype("object").where(~nulls, False).astype("bool"), nulls
        return None
    raise KeyError(f"registry dtype {col.dtype!r} of {col.name} is not handled")


def _partition_keys(dt: pd.Series) -> pd.Series:
    """`dt` as 'YYYY-MM-DD' strings (dates and timestamps are formatted; anything else is left to the contract)."""
    if pd.api.types.is_datetime64_any_dtype(dt.dtype):
        return dt.dt.strftime("%Y-%m-%d").astype("object").where(dt.notna(), None)
    if len(dt) and pd.api.types.infer_dtype(dt, skipna=True) == "string":  # the usual case: already text
        return dt.astype("object")
    return dt.astype("object").map(
        lambda v: v.isoformat()[:10] if isinstance(v, date | datetime) else v, na_action="ignore")


def conform(bronze: pd.DataFrame, table: str) -> tuple[pd.DataFrame, list[str], pd.DataFrame]:
    """Bronze rows in the registry columns and dtypes, RangeIndex.

    Returns (frame, unknown_columns, placeholder_records). Raises ContractError naming missing (or
    renamed) and retyped columns. `placeholder_records` are (row, column, 'not_nullable') records for
    nulls that int/bool columns cannot hold (they stand in as placeholders and the row is rejected).
    """
    expected = layer_columns(table, "bronze")
    names = [c.name for c in expected]
    unknown = [str(c) for c in bronze.columns if c not in names and c != PARTITION_COLUMN]
    missing = [n for n in names if n not in bronze.columns]
    if missing:
        hint = f"; unknown column(s) present, renamed?: {', '.join(unknown)}" if unknown else ""
        raise ContractError(f"bronze {table}: missing column(s) {', '.join(missing)}{hint}", missing)
    # only read here (the conformed columns are copied into a new frame): no copy of bronze for the index
    frame = bronze if bronze.index.equals(pd.RangeIndex(len(bronze))) else bronze.reset_index(drop=True)
    out: dict[str, pd.Series] = {}
    retyped: list[str] = []
    placeholders: list[tuple[int, str, str]] = []
    for col in expected:
        conformed = _conform_series(frame[col.name], col)
        if conformed is None:
            retyped.append(f"{col.name} (expected {col.dtype}, got {frame[col.name].dtype})")
            continue
        series, replaced = conformed
        out[col.name] = series
        placeholders += [(int(i), col.name, "not_nullable") for i in np.flatnonzero(replaced.to_numpy())]
    if retyped:
        raise ContractError(f"bronze {table}: retyped column(s) {', '.join(retyped)}",
                            [r.split(" ", 1)[0] for r in retyped])
    if PARTITION_COLUMN in frame.columns:
        out[PARTITION_COLUMN] = _partition_keys(frame[PARTITION_COLUMN])
    else:  # documented fallback: the partition of a row is the UTC day it reached the source
        out[PARTITION_COLUMN] = out["updated_at"].dt.strftime("%Y-%m-%d").astype("object").where(
            out["updated_at"].notna(), None)
    records = pd.DataFrame(placeholders, columns=["row", "column", "check"], dtype="object")
    return pd.DataFrame(out), unknown, records


# --------------------------------------------------------------------------------------------------
# validation, rejects, dedupe
# --------------------------------------------------------------------------------------------------


def _validate(frame: pd.DataFrame, schema: pa.DataFrameSchema, table: str) -> pd.DataFrame:
    """(row, column, check) records of every failure; column-level failures raise ContractError."""
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as err:
        records = failure_records(err)
        column_level = records[records["row"].isna()]
        if not column_level.empty:
            named = sorted({f"{r.column} ({r.check})" for r in column_level.itertuples()})
            raise ContractError(f"{table}: column-level contract failure(s): {', '.join(named)}",
                                sorted(set(column_level["column"]))) from None
        return records.assign(row=records["row"].astype("int64"))
    return pd.DataFrame({"row": pd.Series([], dtype="int64"), "column": pd.Series([], dtype="object"),
                         "check": pd.Series([], dtype="object")})


def _without(records: pd.DataFrame, masked: pd.DataFrame) -> pd.DataFrame:
    """`records` minus failures on (row, column) pairs that hold a placeholder."""
    if masked.empty or records.empty:
        return records
    pairs = set(zip(masked["row"].astype(int), masked["column"], strict=True))
    keep = [(int(r), c) not in pairs for r, c in zip(records["row"], records["column"], strict=True)]
    return records[keep]


def _reasons(records: pd.DataFrame, column_order: list[str]) -> pd.DataFrame:
    """Per failing row: reasons 'column:check', failed_checks and failed_columns ('; '-joined)."""
    order = {c: i for i, c in enumerate(column_order)}
    recs = records.assign(
        _pos=records["column"].map(lambda c: order.get(c, len(order))),
        reason=records["column"].astype(str) + ":" + records["check"].astype(str),
    ).sort_values(["row", "_pos", "check"], kind="stable")

    def _join(values: pd.Series) -> str:
        return REASON_SEPARATOR.join(dict.fromkeys(values))

    grouped = recs.groupby("row", sort=True)
    return pd.DataFrame({
        "reasons": grouped["reason"].agg(_join),
        "failed_checks": grouped["check"].agg(_join),
        "failed_columns": grouped["column"].agg(_join),
    })


def _as_str(value: Any) -> Any:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return value if isinstance(value, str) else str(value)


def _rejects_frame(table: str, frame: pd.DataFrame, reasons: pd.DataFrame) -> pd.DataFrame:
    if reasons.empty:
        return empty_rejects(table)
    rows = frame.loc[reasons.index]
    out = pd.DataFrame(index=reasons.index)
    for name in REJECT_COLUMNS[table]:
        if name in reasons.columns:
            out[name] = reasons[name].astype("object")
        elif name in ("claim_id", PARTITION_COLUMN, "member_token"):
            out[name] = rows[name].map(_as_str).astype("object")
        else:
            out[name] = rows[name]
    return out.reset_index(drop=True)


def _dedupe(good: pd.DataFrame, state_key: list[str]) -> tuple[pd.DataFrame, int]:
    """One row per state: the same (dt, *state_key) delivered twice is kept once (the last ingested).

    Distinct states are all kept — silver is the history (see `build_silver_claims`)."""
    if good.empty:
        return good.reset_index(drop=True), 0
    key = [PARTITION_COLUMN, *state_key]
    repeated = good.duplicated(key, keep=False)
    if not repeated.any():  # the usual day: no state delivered twice, nothing to rank
        return good.reset_index(drop=True), 0
    # The last ingested copy of each state (ties: the later row). Only `_ingested_at` needs sorting: a
    # stable sort keeps the rows of one state in their order, as ranking by (key, _ingested_at) did.
    ranked = good.sort_values("_ingested_at", kind="stable")
    kept = ranked.drop_duplicates(key, keep="last").sort_index()
    return kept.reset_index(drop=True), len(good) - len(kept)


def _counts(records: pd.DataFrame, by: str | list[str]) -> dict[str, int]:
    if records.empty:
        return {}
    if isinstance(by, list):
        keys = records[by[0]].astype(str) + ":" + records[by[1]].astype(str)
    else:
        keys = records[by].astype(str)
    counts = records.assign(_k=keys).groupby("_k")["row"].nunique().sort_values(ascending=False)
    return {str(k): int(v) for k, v in counts.items()}


def _day_counts(dt: pd.Series) -> pd.Series:
    """Rows per day as text ('unknown' for a missing day), counted on the distinct values."""
    counts = dt.astype("object").value_counts(dropna=False)
    days = pd.Index([_as_str(v) for v in counts.index], dtype="object").fillna("unknown")
    return counts.groupby(days).sum()


def _stats(table: str, frame: pd.DataFrame, records: pd.DataFrame, rows_valid: int, good: pd.DataFrame,
           rejects: pd.DataFrame, duplicates: int, unknown: list[str], empty: bool) -> dict[str, Any]:
    rows_in = len(frame)
    rejected = len(rejects)
    by_day: dict[str, float] = {}
    rows_by_day: dict[str, int] = {}
    if rows_in:
        days_in, days_rej = _day_counts(frame[PARTITION_COLUMN]), _day_counts(rejects[PARTITION_COLUMN])
        rows_by_day = {str(d): int(n) for d, n in days_in.sort_index().items()}
        by_day = {d: float(days_rej.get(d, 0)) / n for d, n in rows_by_day.items()}
    return {
        "table": table,
        "empty": empty,
        "rows_in": rows_in,
        "rows_valid": rows_valid,
        "rows_good": len(good),
        "rows_rejected": rejected,
        "reject_rate": float(rejected / rows_in) if rows_in else 0.0,
        "duplicates_removed": int(duplicates),
        "rejects_by_column": _counts(records, "column"),
        "rejects_by_check": _counts(records, "check"),
        "rejects_by_reason": _counts(records, ["column", "check"]),
        "rows_in_by_day": rows_by_day,
        "reject_rate_by_day": by_day,
        "unknown_columns": list(unknown),
    }


def _split_defects(records: pd.DataFrame, table: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(usability failures: the row is rejected, defect and tolerated failures: the row lands)."""
    if records.empty:
        return records, records
    registry = {c.name: c for c in layer_columns(table, "bronze")}
    soft = records["column"].map(lambda n: n in registry and not registry[n].usability).astype(bool)
    return records[~soft], records[soft]


def _fill_failed(frame: pd.DataFrame, soft: pd.DataFrame, table: str) -> pd.DataFrame:
    """`frame` with each failing value of a defect or tolerated column replaced by the column's `fill`.

    A defect kept as sent (`KEEP`) is kept only when it matches the column's grammar (an NPI failing its
    check digit, an unassigned place of service); a value without the code's shape becomes null, since
    it may be any text, PHI included (a member id typed where the procedure code goes)."""
    registry = {c.name: c for c in layer_columns(table, "bronze")}
    out = frame
    for name, failing in soft.groupby("column", sort=False)["row"]:
        col = registry[str(name)]
        rows = pd.Index(failing.astype("int64").unique())
        if col.fill == KEEP:
            if col.regex is None:
                continue
            # kept as sent only when it has the code's shape: anything else may be any text, PHI included
            values = out.loc[rows, col.name].astype("object")
            grammar = re.compile(col.regex)
            shapeless = rows[~values.map(lambda v, g=grammar: isinstance(v, str) and g.match(v) is not None)
                             .to_numpy(dtype=bool)]
            if len(shapeless):
                out = frame.copy() if out is frame else out
                out.loc[shapeless, col.name] = None
            continue
        if out is frame:
            out = frame.copy()
        if col.fill is None:
            out[col.name] = out[col.name].astype("object") if col.dtype == "string" else out[col.name]
            out.loc[rows, col.name] = pd.NaT if col.dtype in ("date", "timestamp") else None
        else:
            out.loc[rows, col.name] = col.fill
    return out


def _defect_flags(index: pd.Index, soft: pd.DataFrame, table: str) -> pd.DataFrame:
    """One bool column per defect flag: the rows where a column carrying that flag failed a check."""
    registry = {c.name: c for c in layer_columns(table, "bronze")}
    flags = pd.DataFrame(False, index=index, columns=list(DEFECT_FLAGS))
    if soft.empty:
        return flags
    flag = soft["column"].map(lambda n: registry[n].defect)
    for name, failing in soft[flag.notna()].groupby(flag[flag.notna()], sort=False)["row"]:
        rows = pd.Index(failing.astype("int64").unique()).intersection(index)
        flags.loc[rows, str(name)] = True
    return flags


def claim_defects(flags: pd.DataFrame) -> pd.Series:
    """Comma-joined names of the flags set per row, in DEFECT_FLAGS order ('' when clean)."""
    if flags.empty:
        return pd.Series([], index=flags.index, dtype="object")
    bits = flags[list(DEFECT_FLAGS)].to_numpy(dtype=bool)
    names = np.array(DEFECT_FLAGS, dtype=object)
    # distinct patterns are few (2^5): join once per pattern
    keys = bits @ (1 << np.arange(len(DEFECT_FLAGS)))
    text = {k: ",".join(names[bits[i]]) for k, i in zip(*np.unique(keys, return_index=True), strict=True)}
    return pd.Series([text[k] for k in keys], index=flags.index, dtype="object")


def _defect_stats(good: pd.DataFrame) -> dict[str, Any]:
    names = [f"defect_{f}" for f in DEFECT_FLAGS]
    if not set(names) <= set(good.columns):
        return {}
    rows = len(good)
    with_defects = int(good[names].any(axis=1).sum()) if rows else 0
    return {
        "rows_with_defects": with_defects,
        "defect_rate": float(with_defects / rows) if rows else 0.0,
        "defects_by_flag": {f: int(good[f"defect_{f}"].sum()) for f in DEFECT_FLAGS} if rows else {},
    }


def _empty_result(table: str, bronze: pd.DataFrame) -> SilverResult:
    unknown = [str(c) for c in bronze.columns if c not in frame_columns(table, "bronze")]
    stats = _stats(table, empty_frame(table, "bronze"), pd.DataFrame(columns=["row", "column", "check"]), 0,
                   empty_frame(table, "silver"), empty_rejects(table), 0, unknown, True)
    log.info("silver %s: empty bronze partition, nothing to validate", table)
    return SilverResult(empty_frame(table, "silver"), empty_rejects(table), stats)


def _build(
    table: str,
    bronze: pd.DataFrame,
    *,
    prepare: Callable[[pd.DataFrame], pd.DataFrame],
    derive: Callable[[pd.DataFrame, pd.DataFrame], pd.DataFrame],
    state_key: list[str],
    as_of: datetime | None,
    facility_tz: str = "UTC",
) -> SilverResult:
    if len(bronze) == 0:
        return _empty_result(table, bronze)
    frame, unknown, placeholders = conform(bronze, table)
    frame = prepare(frame)  # columns every row needs, rejected or not (e.g. member_token)
    records = _without(_validate(frame, row_schema(table, "bronze", as_of=as_of, facility_tz=facility_tz), table), placeholders)
    records = pd.concat([records, placeholders], ignore_index=True) if not placeholders.empty else records
    records, soft = _split_defects(records, table)  # only usability failures reject the row
    frame = _fill_failed(frame, soft, table)
    passed = frame.drop(index=pd.Index(records["row"].unique(), dtype="int64"))
    derived = derive(passed, _defect_flags(passed.index, soft, table))[frame_columns(table, "silver")]
    derived_records = _validate(derived, row_schema(table, "silver", as_of=as_of, facility_tz=facility_tz), table)
    records = pd.concat([records, derived_records], ignore_index=True) if not derived_records.empty else records
    records = records.assign(row=records["row"].astype("int64"))
    failing = pd.Index(records["row"].unique(), dtype="int64")
    order = frame_columns(table, "bronze") + frame_columns(table, "silver")
    rejects = _rejects_frame(table, frame, _reasons(records, order))
    valid = derived.drop(index=failing.intersection(derived.index))
    good, duplicates = _dedupe(valid, state_key)
    stats = _stats(table, frame, records, len(valid), good, rejects, duplicates, unknown, False)
    stats.update(_defect_stats(good))
    log.info("silver %s: %d rows in, %d good, %d rejected (%.2f%%), %d duplicates removed%s", table,
             stats["rows_in"], stats["rows_good"], stats["rows_rejected"], 100 * stats["reject_rate"],
             duplicates, f", unknown columns dropped: {', '.join(unknown)}" if unknown else "")
    return SilverResult(good, rejects, stats)


def with_defects(rows: pd.DataFrame, flags: pd.DataFrame) -> pd.DataFrame:
    """Claims rows with patient_age, patient_zip3, icd_code_set, the `defect_*` flags and `claim_defects`.

    `flags` holds the single-column defects the contract found (a failing value of a defect column); the
    rules that need the service date are added here: an ICD code set that does not match the date, a
    procedure code deleted before it, a date of birth after it; patient_sex U (unknown) is a
    demographics defect too."""
    age = age_at(rows["patient_dob"], rows["service_date"])
    code_set = code_sets.icd_code_set(rows["icd10_primary"], rows["service_date"])
    flags = flags.reindex(rows.index, fill_value=False).copy()
    flags["diagnosis_code"] |= code_sets.icd_set_mismatch(code_set, rows["service_date"])
    flags["procedure_code"] |= code_sets.procedure_code_deleted(rows["cpt_code"], rows["service_date"])
    flags["demographics"] |= age.isna() | ~rows["patient_sex"].isin(("F", "M"))
    return rows.assign(
        patient_age=age,
        patient_zip3=zip3(rows["patient_zip"]),
        **{ICD_CODE_SET_COLUMN: code_set},
        **{f"defect_{f}": flags[f].astype("int64") for f in DEFECT_FLAGS},
        **{CLAIM_DEFECTS_COLUMN: claim_defects(flags)},
    )


def build_silver_claims(
    bronze: pd.DataFrame, phi_key: bytes, as_of: datetime | None = None, facility_tz: str = "UTC"
) -> SilverResult:
    """Silver claims: validated (PHI columns too), pseudonymized, every state of every claim version.

    Silver is the claims' history, a slowly changing table: a row is the state of (claim_id,
    claim_version) from its `updated_at` on. A later row of the same version is an in-place update made
    after submission (a new fact from then on); a new claim_version is a corrected claim (a new
    submission). Only the same state delivered twice (same claim_id, claim_version, updated_at) is
    de-duplicated. Which state was the submission decision is decided in gold (`claim_history`).
    Rows with claim defects land with their flags (`with_defects`); only unusable rows are rejected.
    With `as_of`, service dates and submissions after it are rejected. `facility_tz` (IANA name) is the
    zone in which service dates are local dates (a submission may not precede its service date there).
    """
    if not phi_key:
        raise ValueError("empty PHI key")

    def prepare(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(member_token=pseudonymize_member(frame["member_id"], phi_key))

    def derive(rows: pd.DataFrame, flags: pd.DataFrame) -> pd.DataFrame:
        return with_defects(rows, flags).drop(columns=sorted(phi_column_names() & set(rows.columns)))

    return _build("claims", bronze, prepare=prepare, derive=derive,
                  state_key=["claim_id", "claim_version", "updated_at"], as_of=as_of,
                  facility_tz=facility_tz)


def build_silver_remittances(
    bronze: pd.DataFrame, as_of: datetime | None = None, facility_tz: str = "UTC"
) -> SilverResult:
    """Silver remittances with `denied` and `carc_category`: every adjudication row is kept (the first
    adjudication, appeals, payment corrections); only the same row delivered twice (same claim_id,
    adjudicated_at, updated_at) is de-duplicated. The label is chosen at training time: the first
    adjudication of the version (`modelling.first_adjudications`)."""

    def derive(rows: pd.DataFrame, flags: pd.DataFrame) -> pd.DataFrame:
        denied = rows["claim_status"].eq("denied").astype(bool)
        return rows.assign(denied=denied, carc_category=carc_category(rows["carc_code"], denied))

    return _build("remittances", bronze, prepare=lambda f: f, derive=derive,
                  state_key=["claim_id", "adjudicated_at", "updated_at"], as_of=as_of,
                  facility_tz=facility_tz)


# --------------------------------------------------------------------------------------------------
# PHI guard
# --------------------------------------------------------------------------------------------------

PHI_VALUE_COLUMNS = ("member_id", "patient_name", "patient_dob", "patient_address", "patient_zip")
# Raw values shorter than this (5-digit zips) are only looked for where no format is registered:
# a zip like 99213 is also CPT 99213, so matching it inside a registered code column proves nothing.
MIN_AMBIGUOUS_LENGTH = 6


def _norm(value: Any) -> str:
    return str(value).strip().casefold()


def _norm_all(values: Any) -> list[str]:
    """`_norm` of each value; text arrays through pandas' string methods (one loop in C per method)."""
    values = pd.Series(values, dtype="object") if not isinstance(values, pd.Series) else values.astype("object")
    if len(values) and pd.api.types.infer_dtype(values, skipna=False) == "string":
        return values.str.strip().str.casefold().tolist()
    return [_norm(v) for v in values]


def _raw_phi_values(bronze: pd.DataFrame) -> dict[str, set[str]]:
    """Normalized raw PHI values of bronze per PHI column (dates of birth in their usual text forms)."""
    raw: dict[str, set[str]] = {}
    for name in PHI_VALUE_COLUMNS:
        if name not in bronze.columns:
            continue
        uniques = pd.Series(bronze[name].dropna().unique())
        if pd.api.types.is_datetime64_any_dtype(bronze[name].dtype):
            uniques = pd.to_datetime(uniques)
            values = [v for fmt in ("%Y-%m-%d", "%m/%d/%Y", "%Y%m%d") for v in uniques.dt.strftime(fmt)]
        else:
            values = uniques.tolist()
        raw[name] = {n for n in _norm_all(values) if n}
    return raw


def phi_leaks(frame: pd.DataFrame, bronze: pd.DataFrame) -> list[str]:
    """Descriptions (column names and row counts, never values) of PHI found in `frame`.

    Finds PHI columns of the registry, and values of string columns equal (trimmed, case-folded) to a
    raw member_id, patient_name, patient_dob (as text), patient_address or patient_zip of `bronze`;
    datetime columns the registry does not define are compared with the raw dates of birth (a registered
    date such as service_date may legitimately equal a newborn's DOB, so it is not compared).
    """
    phi = phi_column_names()
    leaks = [f"PHI column {c} present" for c in frame.columns if c in phi]
    if frame.empty or bronze is None or bronze.empty:
        return leaks
    raw = _raw_phi_values(bronze)
    unambiguous = {k: {v for v in vals if len(v) >= MIN_AMBIGUOUS_LENGTH} for k, vals in raw.items()}
    dobs = None
    if "patient_dob" in bronze.columns and pd.api.types.is_datetime64_any_dtype(bronze["patient_dob"].dtype):
        dobs = pd.DatetimeIndex(bronze["patient_dob"].dropna().unique())
    for name in frame.columns:
        if name in phi:
            continue
        s = frame[name]
        if pd.api.types.is_datetime64_any_dtype(s.dtype):
            if dobs is not None and len(dobs) and availability_of(str(name)) is None:
                hits = int(s.isin(dobs).sum())
                if hits:
                    leaks.append(f"column {name} contains raw patient_dob values ({hits} rows)")
            continue
        if not (pd.api.types.is_object_dtype(s.dtype) or isinstance(s.dtype, pd.StringDtype | pd.CategoricalDtype)):
            continue
        present = s.dropna()
        uniques = pd.unique(present.astype("object"))
        if not len(uniques):
            continue
        normalized = _norm_all(uniques)
        seen = set(normalized)
        candidates_by_phi = unambiguous if registry_regex(str(name)) is not None else raw
        for phi_name, candidates in candidates_by_phi.items():
            matched = seen & candidates
            if matched:
                raw_hits = [u for u, n in zip(uniques, normalized, strict=True) if n in matched]
                hits = int(present.isin(raw_hits).sum())
                leaks.append(f"column {name} contains raw {phi_name} values ({hits} rows)")
    return leaks


__all__ = [
    "AGE_CAP",
    "ContractError",
    "SilverResult",
    "age_at",
    "build_silver_claims",
    "build_silver_remittances",
    "carc_category",
    "claim_defects",
    "conform",
    "load_phi_key",
    "phi_leaks",
    "pseudonymize_member",
    "with_defects",
    "zip3",
]
