"""Read changed rows from the source database, safely and fast.

The extraction contract: `read_changed(table, start, end)` returns the rows with
`start <= updated_at < end` (half-open, so consecutive days never overlap or leave gaps), with exactly
the registry's source columns, cast to the frame conventions. It is the only place that talks SQL to
the source, so it owns the things that go wrong there:

* **Schema drift** is detected by reflecting the table before reading; a renamed or missing column is a
  `SourceSchemaError` naming it, extra columns are tolerated and reported (`last_unknown_columns`).
* **Transient failures** (dropped connections, `pg_terminate_backend`, timeouts, a locked SQLite file)
  are retried with exponential backoff and full jitter; every attempt re-runs the whole read, so a failed
  attempt can never leave partial rows behind. Permanent failures (bad SQL, missing table, auth, unknown
  database) fail at once with a `SourceError` that says what is wrong.
* **Injection**: values are always bound parameters; table and column names only ever come from the
  registry whitelist.
* **No secrets, no PHI in messages**: URLs are logged with the password masked, and cast errors report
  the column, the expected type and a count, never the offending values.
* **Speed**: SQLite files and PostgreSQL are read through ADBC straight into Arrow (PostgreSQL's driver
  reads the server's binary COPY stream, not row fetches) and cast column-wise in Arrow; other databases
  go through SQLAlchemy with bound parameters. `benchmarks/bench_source_postgres.py` measures the
  PostgreSQL read against `psql \\copy` of the same rows.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.pool import NullPool

from rcm_assets.lib import settings
from rcm_assets.lib.columns import Column, source_columns

__all__ = [
    "SourceError",
    "SourceSchemaError",
    "SourceReader",
    "cast_to_registry",
    "is_transient",
    "mask_url",
    "resolve_driver",
]

LOG = logging.getLogger("rcm.source")

UPDATED_AT = "updated_at"
APPLICATION_NAME = "rcm_source_reader"
# ADBC's SQLite driver infers Arrow types from the first batch of rows; a nullable column that is NULL in
# the whole first batch is typed int64 and the next batch's strings then fail. One batch for the whole
# result makes the inference see every row (the driver allocates per row, not per batch_rows).
_ADBC_BATCH_ROWS = str(1 << 30)


class SourceError(RuntimeError):
    """A permanent source problem: bad SQL, missing table, authentication, unknown database."""


class SourceSchemaError(SourceError):
    """The source's columns or values do not match the registry (missing/renamed columns, bad types)."""


# --------------------------------------------------------------------------------------------------
# URL masking and error classification (pure functions)

_USERINFO_PASSWORD = re.compile(r"(?P<pre>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/?#@\s]*:)(?P<pw>[^@/?#\s]*)(?=@)")
_PASSWORD_PARAM = re.compile(r"(?i)(?P<pre>\bpass(?:word|wd)?\s*=\s*)(?P<pw>'[^']*'|\"[^\"]*\"|[^&\s;]+)")


def mask_url(url: str | URL) -> str:
    """The URL with any password replaced by `***`, safe for logs and error messages."""
    text = url.render_as_string(hide_password=False) if isinstance(url, URL) else str(url)
    text = _USERINFO_PASSWORD.sub(lambda m: m.group("pre") + "***", text)
    return _PASSWORD_PARAM.sub(lambda m: m.group("pre") + "***", text)


def _password_of(url: str) -> str | None:
    try:
        return make_url(url).password or None
    except Exception:
        return None


def _scrub(text: str, url: str | None = None) -> str:
    """Remove passwords (the URL's own, and any that look like one) from a message."""
    password = _password_of(url) if url else None
    if password:
        text = text.replace(str(password), "***")
    return mask_url(text)


# Postgres SQLSTATE classes / codes. Connection-time failures (auth, unknown database) carry no
# SQLSTATE in psycopg2, which is why the message patterns below exist too.
_TRANSIENT_SQLSTATE_PREFIXES = ("08",)  # connection exception
_TRANSIENT_SQLSTATES = frozenset(
    {"40001", "40P01", "53300", "55P03", "57014", "57P01", "57P02", "57P03", "58030"}
)
_PERMANENT_SQLSTATE_PREFIXES = ("0A", "22", "23", "28", "3D", "3F", "42")

_PERMANENT_PATTERNS = (
    "syntax error",
    "no such table",
    "no such column",
    "does not exist",
    "authentication failed",
    "no password supplied",
    "password required",
    "password is required",
    "no pg_hba.conf entry",
    "permission denied",
    "access denied",
    "not authorized",
    "unable to open database file",
    "file is not a database",
    "malformed",
    "undefinedtable",
    "undefinedcolumn",
)
_TRANSIENT_PATTERNS = (
    "database is locked",
    "database table is locked",
    "database is busy",
    "sqlite_busy",
    "server closed the connection",
    "terminating connection",
    "connection already closed",
    "connection not open",
    "connection reset",
    "connection refused",
    "connection timed out",
    "could not connect",
    "could not receive data",
    "could not send data",
    "no connection to the server",
    "lost connection",
    "server has gone away",
    "ssl syscall error",
    "ssl connection has been closed",
    "eof detected",
    "broken pipe",
    "timeout",
    "timed out",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "too many connections",
    "deadlock detected",
    "could not serialize access",
    "conflict with recovery",
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, the DBAPI error it wraps and its causes, each once."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop(0)
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo.extend([getattr(e, "orig", None), e.__cause__, e.__context__])


def _message(exc: BaseException) -> str:
    """The error's own message, without SQLAlchemy's echo of the statement (first line only)."""
    if isinstance(exc, sa.exc.StatementError) and exc.orig is not None:
        return ""  # the wrapped DBAPI error is examined on its own
    text = str(exc.args[0]) if exc.args and isinstance(exc.args[0], str) else str(exc)
    return text.strip().splitlines()[0] if text.strip() else ""


def _sqlstate(exc: BaseException) -> str | None:
    code = getattr(exc, "pgcode", None) or getattr(exc, "sqlstate", None)
    return code if isinstance(code, str) and len(code) == 5 else None


def is_transient(exc: BaseException) -> bool:
    """True when retrying the same read may succeed (connection lost, lock, timeout, failover).

    Pure: looks only at the exception (its class, SQLSTATE, message and chained DBAPI error). Permanent
    signals win over transient ones; anything unrecognised is permanent, so bugs fail fast.
    """
    verdict: bool | None = None
    for e in _chain(exc):
        if isinstance(e, SourceError):
            return False
        code = _sqlstate(e)
        if code:
            if code in _TRANSIENT_SQLSTATES or code.startswith(_TRANSIENT_SQLSTATE_PREFIXES):
                verdict = True if verdict is None else verdict
            elif code.startswith(_PERMANENT_SQLSTATE_PREFIXES):
                return False
        msg = _message(e).lower()
        if any(p in msg for p in _PERMANENT_PATTERNS):
            return False
        if any(p in msg for p in _TRANSIENT_PATTERNS):
            verdict = True if verdict is None else verdict
        if getattr(e, "connection_invalidated", False) or isinstance(
            e, sa.exc.DisconnectionError | sa.exc.TimeoutError | TimeoutError | ConnectionError
        ):
            verdict = True if verdict is None else verdict
    return bool(verdict)


def _describe(exc: BaseException, url: str | None = None) -> str:
    """`Class: first line of the DBAPI message`, passwords scrubbed, statement text left out."""
    inner = exc
    if isinstance(exc, sa.exc.StatementError) and exc.orig is not None:
        inner = exc.orig
    msg = _message(inner) or type(inner).__name__
    msg = msg.split("\nquery:")[0]
    if len(msg) > 300:
        msg = msg[:300] + "…"
    return f"{type(inner).__name__}: {_scrub(msg, url)}"


# --------------------------------------------------------------------------------------------------
# Casting to the frame conventions

_BOOL_WORDS = {"true": True, "t": True, "1": True, "yes": True, "y": True,
               "false": False, "f": False, "0": False, "no": False, "n": False}
_BAD = object()
_NS_MIN, _NS_MAX = pd.Timestamp.min, pd.Timestamp.max


def _source_cols(table: str) -> tuple[Column, ...]:
    try:
        return source_columns(table)
    except KeyError:
        raise SourceError(
            f"unknown source table {table!r}; only registry tables are read: claims, remittances"
        ) from None


def _fail(table: str, source: str, col: Column, problem: str) -> SourceSchemaError:
    return SourceSchemaError(f"{table} ({source}): column {col.name!r} expected {col.dtype}; {problem}")


def _to_str(v: Any) -> Any:
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, float | np.floating):
        if np.isnan(v):
            return None
        return str(int(v)) if float(v).is_integer() else repr(float(v))
    if isinstance(v, bytes | bytearray):
        try:
            return bytes(v).decode("utf-8")
        except UnicodeDecodeError:
            return _BAD
    return str(v)


def _cast_string(s: pd.Series, col: Column, table: str, source: str) -> np.ndarray:
    if s.dtype == object and pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty"):
        values = s.to_numpy(dtype=object, copy=True)
        values[pd.isna(values)] = None
        return values
    values = np.array([_to_str(v) for v in s.to_numpy(dtype=object)], dtype=object)
    bad = int(sum(v is _BAD for v in values))
    if bad:
        raise _fail(table, source, col, f"{bad} value(s) cannot be cast to text")
    return values


def _require_no_nulls(nulls: int, col: Column, table: str, source: str) -> None:
    if nulls and not col.nullable:
        raise _fail(table, source, col, f"{nulls} null value(s) in a non-nullable column")


def _numeric(s: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """float64 values, the null mask and the mask of present values that are not numbers."""
    if pd.api.types.is_bool_dtype(s.dtype) or pd.api.types.is_numeric_dtype(s.dtype):
        nulls = s.isna().to_numpy()
        return s.to_numpy(dtype="float64", na_value=np.nan), nulls, np.zeros(len(s), dtype=bool)
    if pd.api.types.is_datetime64_any_dtype(s.dtype) or isinstance(s.dtype, pd.PeriodDtype):
        nulls = s.isna().to_numpy()
        return np.full(len(s), np.nan), nulls, ~nulls
    obj = s.astype(object)
    nulls = obj.isna().to_numpy()
    # booleans inside an object column are not numbers for the registry's purposes
    is_bool = obj.map(lambda v: isinstance(v, bool | np.bool_)).to_numpy(dtype=bool)
    num = pd.to_numeric(obj.where(~is_bool, None), errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    return num, nulls, np.isnan(num) & ~nulls


def _cast_int(s: pd.Series, col: Column, table: str, source: str) -> np.ndarray:
    if pd.api.types.is_integer_dtype(s.dtype) and not s.hasnans:
        return s.to_numpy(dtype="int64")
    if s.dtype == object and pd.api.types.infer_dtype(s, skipna=False) == "integer":
        try:
            return s.to_numpy(dtype="int64")
        except OverflowError:
            pass
    num, nulls, bad = _numeric(s)
    with np.errstate(invalid="ignore"):
        bad = bad | (~nulls & (~np.isfinite(num) | (np.mod(num, 1) != 0) | (np.abs(num) > 2**63 - 1)))
    if bad.any():
        raise _fail(table, source, col, f"{int(bad.sum())} value(s) cannot be cast (not whole numbers)")
    _require_no_nulls(int(nulls.sum()), col, table, source)
    return num.astype("int64")


def _cast_float(s: pd.Series, col: Column, table: str, source: str) -> np.ndarray:
    if pd.api.types.is_float_dtype(s.dtype) and s.dtype == "float64":
        return s.to_numpy()
    num, _, bad = _numeric(s)
    if bad.any():
        raise _fail(table, source, col, f"{int(bad.sum())} value(s) cannot be cast (not numbers)")
    return num


def _bool_value(v: Any) -> Any:
    if v is None or v is pd.NA:
        return None
    if isinstance(v, bool | np.bool_):
        return bool(v)
    if isinstance(v, int | np.integer):
        return {0: False, 1: True}.get(int(v), _BAD)
    if isinstance(v, float | np.floating):
        if np.isnan(v):
            return None
        return {0.0: False, 1.0: True}.get(float(v), _BAD)
    if isinstance(v, str):
        return _BOOL_WORDS.get(v.strip().lower(), _BAD)
    return _BAD


def _cast_bool(s: pd.Series, col: Column, table: str, source: str) -> np.ndarray:
    if s.dtype == bool:
        return s.to_numpy()
    if pd.api.types.is_integer_dtype(s.dtype) and not s.hasnans:
        values = s.to_numpy(dtype="int64")
        bad = int(((values != 0) & (values != 1)).sum())
        if bad:
            raise _fail(table, source, col, f"{bad} value(s) cannot be cast (not 0/1)")
        return values.astype(bool)
    mapped = [_bool_value(v) for v in s.to_numpy(dtype=object)]
    bad = sum(v is _BAD for v in mapped)
    if bad:
        raise _fail(table, source, col, f"{bad} value(s) cannot be cast (expected true/false or 0/1)")
    _require_no_nulls(sum(v is None for v in mapped), col, table, source)
    return np.array(mapped, dtype=bool)


def _cast_temporal(s: pd.Series, col: Column, table: str, source: str) -> np.ndarray:
    dtype = s.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        out = s.dt.tz_convert("UTC").dt.tz_localize(None)
    elif pd.api.types.is_datetime64_dtype(dtype):
        out = s
    elif pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
        # numbers are not dates (epoch guessing is how silent errors start); all-null is fine
        nulls = s.isna().to_numpy()
        if (~nulls).any():
            raise _fail(table, source, col, f"{int((~nulls).sum())} value(s) cannot be cast (numbers)")
        return np.full(len(s), np.datetime64("NaT"), dtype="datetime64[ns]")
    else:
        obj = s.astype(object)
        nulls = obj.isna().to_numpy()
        try:
            parsed = pd.to_datetime(obj, errors="coerce", utc=True, format="ISO8601")
        except (ValueError, TypeError, OverflowError):
            parsed = pd.Series(
                [pd.to_datetime(v, errors="coerce", utc=True) for v in obj], dtype="datetime64[ns, UTC]"
            )
        bad = int((parsed.isna().to_numpy() & ~nulls).sum())
        if bad:
            raise _fail(table, source, col, f"{bad} value(s) cannot be cast (expected ISO 8601)")
        out = parsed.dt.tz_localize(None)
    try:
        values = out.astype("datetime64[ns]")
    except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime):
        bad = int(((out < _NS_MIN) | (out > _NS_MAX)).sum()) or len(out)
        raise _fail(table, source, col, f"{bad} value(s) out of the datetime64[ns] range") from None
    if col.dtype == "date":
        values = values.dt.normalize()
    return values.to_numpy()


_CASTERS: dict[str, Callable[[pd.Series, Column, str, str], np.ndarray]] = {
    "string": _cast_string,
    "int64": _cast_int,
    "float64": _cast_float,
    "bool": _cast_bool,
    "date": _cast_temporal,
    "timestamp": _cast_temporal,
}


def cast_to_registry(df: pd.DataFrame, table: str, source: str = "<where>") -> pd.DataFrame:
    """`df` with exactly the registry source columns of `table`, in registry order, cast to the frame
    conventions (strings object/None, int64, float64, bool, naive-UTC datetime64[ns]).

    Extra columns are dropped (the reader reports them). Raises SourceSchemaError naming the table,
    column, expected type and how many values failed; the values themselves are never included
    because they may be PHI. Nulls in non-nullable int/bool columns are refused here since numpy
    cannot represent them; other value-level rules (strings, ranges) belong to the silver contract.
    """
    cols = _source_cols(table)
    absent = [c for c in cols if c.optional and c.name not in df.columns]
    if absent:  # an optional column a source does not have yet reads as null
        df = df.assign(**{c.name: pd.Series([None] * len(df), index=df.index, dtype=object) for c in absent})
    missing = [c.name for c in cols if c.name not in df.columns]
    if missing:
        raise SourceSchemaError(f"{table} ({source}): source column(s) missing: {', '.join(missing)}")
    if df.columns.duplicated().any():
        dupes = sorted({str(c) for c in df.columns[df.columns.duplicated()]})
        raise SourceSchemaError(f"{table} ({source}): duplicate column(s): {', '.join(dupes)}")
    data = {c.name: _CASTERS[c.dtype](df[c.name], c, table, source) for c in cols}
    return pd.DataFrame(data, index=pd.RangeIndex(len(df)), columns=[c.name for c in cols])


# Arrow fast path (the ADBC reader): the same conversions as cast_to_registry, column-wise in Arrow.
# Anything unusual returns None and the pandas path above decides (and reports errors precisely).

def _arrow_column(arr: pa.ChunkedArray, col: Column) -> pa.ChunkedArray | None:
    n, t = len(arr), arr.type
    all_null = arr.null_count == n
    target = {
        "string": pa.string(), "int64": pa.int64(), "float64": pa.float64(), "bool": pa.bool_(),
        "date": pa.timestamp("ns"), "timestamp": pa.timestamp("ns"),
    }[col.dtype]
    if all_null and (col.nullable or col.dtype in ("string", "float64", "date", "timestamp") or n == 0):
        return pa.chunked_array([pa.nulls(n, target)])
    try:
        if col.dtype == "string":
            return arr if pa.types.is_string(t) else (arr.cast(pa.string()) if pa.types.is_large_string(t) else None)
        if col.dtype in ("int64", "bool") and arr.null_count:
            return None
        if col.dtype == "int64":
            return arr if pa.types.is_int64(t) else (arr.cast(pa.int64()) if pa.types.is_integer(t) else None)
        if col.dtype == "float64":
            return arr.cast(pa.float64()) if pa.types.is_floating(t) or pa.types.is_integer(t) else None
        if col.dtype == "bool":
            if pa.types.is_boolean(t):
                return arr
            if pa.types.is_integer(t):
                if pc.all(pc.is_in(arr, value_set=pa.array([0, 1], type=t))).as_py():
                    return arr.cast(pa.bool_())
            return None
        if pa.types.is_timestamp(t) or pa.types.is_date(t):  # typed columns (PostgreSQL); zones: UTC values
            out = arr.cast(pa.timestamp("ns"))
            return out if col.dtype == "timestamp" else pc.floor_temporal(out, unit="day")
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            if col.dtype == "date":
                return arr.cast(pa.date32()).cast(pa.timestamp("ns"))
            return arr.cast(pa.timestamp("ns"))  # refuses zone offsets: the pandas path converts those
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return None


def _arrow_to_frame(tbl: pa.Table, table: str, source: str) -> pd.DataFrame:
    cols = _source_cols(table)
    for c in cols:
        if c.optional and c.name not in tbl.column_names:  # an optional column the source lacks: null
            tbl = tbl.append_column(c.name, pa.nulls(tbl.num_rows, pa.string()))
    arrays = [_arrow_column(tbl.column(c.name), c) for c in cols]
    if any(a is None for a in arrays):
        return cast_to_registry(tbl.to_pandas(), table, source)
    fast = pa.Table.from_arrays(arrays, names=[c.name for c in cols])
    return fast.to_pandas()


# --------------------------------------------------------------------------------------------------
# The reader

def _utc_naive(value: datetime | date) -> datetime:
    if not isinstance(value, date):
        raise TypeError(f"window bounds must be datetime or date, not {type(value).__name__}")
    if not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day)
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def _sqlite_text(value: datetime) -> str:
    """A bound for SQLite's text timestamps that compares like the instant it stands for.

    Stored values look like `YYYY-MM-DD HH:MM:SS[.ffffff]`. Trailing zeros of the fraction are dropped
    from the bound, so a value equal to the bound compares >= it in text whatever its number of
    fractional digits (e.g. a row at exactly midnight, stored with or without `.000000`).
    """
    text = value.strftime("%Y-%m-%d %H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text


def resolve_driver(url: str | URL) -> URL:
    """The SQLAlchemy URL, with `postgresql://` mapped to the installed driver.

    SQLAlchemy 2.1 made psycopg (v3) the default for `postgresql://`; this project installs
    psycopg2-binary, so a plain `postgresql://` URL would fail with ModuleNotFoundError.
    """
    try:
        parsed = make_url(url)
    except Exception:
        raise SourceError(f"invalid source URL {mask_url(str(url))}") from None
    if parsed.drivername == "postgresql":
        try:
            import psycopg  # noqa: F401
        except ImportError:
            parsed = parsed.set(drivername="postgresql+psycopg2")
    return parsed


def _quote_sqlite(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# RCM_SOURCE_URL values that say "no SQL source": X12 / landing files only.
NO_SOURCE_URLS = ("none", "")
DEFAULT_SOURCE_FILE = "source.db"  # settings.source_url()'s default, under the data directory


class SourceReader:
    """Reads the rows of a source table changed in a time window, with retries and schema checks."""

    def __init__(
        self,
        url: str,
        max_attempts: int = 5,
        base_delay: float = 0.5,
        max_delay: float = 30.0,
        logger: logging.Logger | logging.LoggerAdapter | Any | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self.url = str(url)
        self.masked_url = mask_url(self.url)
        self.max_attempts = int(max_attempts)
        self.base_delay = float(base_delay)
        self.max_delay = float(max_delay)
        self.log = logger if logger is not None else LOG
        self.last_unknown_columns: list[str] = []
        self.last_attempts = 0
        self._sleep: Callable[[float], None] = time.sleep
        self._random = random.Random()
        self._engine: Engine | None = None
        # No SQL source (an X12 / landing-file deployment): RCM_SOURCE_URL=none, or no URL set and no
        # default database file: every read is empty and bronze takes its rows from the landing folder.
        self.no_source = self.url.strip().lower() in NO_SOURCE_URLS
        if self.no_source:
            self.url, self.masked_url = NO_SOURCE_URLS[0], NO_SOURCE_URLS[0]
            self._url, self.backend, self._sqlite_file, self.use_adbc = make_url("sqlite://"), "none", None, False
            return
        self._url = resolve_driver(self.url)
        db = self._url.database
        self.backend = self._url.get_backend_name()
        self._sqlite_file: Path | None = (
            Path(db) if self.backend == "sqlite" and db and db != ":memory:" and not db.startswith("file:")
            else None
        )
        # PostgreSQL through ADBC (binary COPY into Arrow) when its driver is installed; False: row fetches
        self.use_adbc = self.backend == "postgresql" and _has_adbc_postgresql()

    # ---- plumbing

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (no pool: each read opens a fresh connection, so a retry never reuses a
        connection the server killed)."""
        if self._engine is None:
            connect_args: dict[str, Any] = {}
            if self.backend == "sqlite":
                connect_args["timeout"] = 0  # a lock is reported at once and retried (and logged) here
            elif self.backend == "postgresql" and "application_name" not in self._url.query:
                connect_args["application_name"] = APPLICATION_NAME
            try:
                engine = sa.create_engine(self._url, poolclass=NullPool, connect_args=connect_args)
            except Exception as exc:
                raise SourceError(f"cannot create an engine for {self.masked_url}: {_describe(exc, self.url)}") from None
            if self.backend == "postgresql":
                sa.event.listen(engine, "connect", _postgres_session_utc)
            self._engine = engine
        return self._engine

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    # ---- public API

    def read_changed(self, table: str, start: datetime | date, end: datetime | date) -> pd.DataFrame:
        """Rows of `table` with start <= updated_at < end (naive = UTC), registry columns, cast."""
        cols = _source_cols(table)
        lo, hi = _utc_naive(start), _utc_naive(end)
        if hi < lo:
            raise ValueError(f"end {hi} is before start {lo}")
        if self.no_source or self._default_file_absent():
            self.last_attempts, self.last_unknown_columns = 0, []
            self.log.info("%s: no SQL source configured (RCM_SOURCE_URL unset or 'none', no %s): 0 source rows; "
                          "rows come from the landing folder", table, DEFAULT_SOURCE_FILE)
            return cast_to_registry(pd.DataFrame({c.name: pd.Series([], dtype=object) for c in cols}), table,
                                    source="no source")
        t0 = time.perf_counter()
        for attempt in range(1, self.max_attempts + 1):
            self.last_attempts = attempt
            try:
                frame = self._read_once(table, cols, lo, hi)
            except SourceError:
                raise
            except Exception as exc:
                what = _describe(exc, self.url)
                if not is_transient(exc):
                    raise SourceError(
                        f"{table}: reading {self.masked_url} failed with a permanent error, not retried: {what}"
                    ) from None
                if attempt == self.max_attempts:
                    raise SourceError(
                        f"{table}: reading {self.masked_url} failed after {attempt} attempt(s); last error: {what}"
                    ) from None
                delay = self._random.uniform(0.0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))
                self.log.warning(
                    "%s: transient source error on attempt %d/%d (%s) reading %s; retrying in %.2fs",
                    table, attempt, self.max_attempts, what, self.masked_url, delay,
                )
                self._sleep(delay)
                continue
            self.log.info(
                "%s: read %d row(s) with %s <= updated_at < %s from %s in %.2fs (%d attempt(s))",
                table, len(frame), lo.isoformat(sep=" "), hi.isoformat(sep=" "), self.masked_url,
                time.perf_counter() - t0, attempt,
            )
            return frame
        raise AssertionError("unreachable")

    def _default_file_absent(self) -> bool:
        """True when the URL is the default one (RCM_SOURCE_URL unset) and its database file does not exist:
        a deployment fed by landing files only. A URL someone configured must exist (an error otherwise)."""
        if self._sqlite_file is None or settings.setting("RCM_SOURCE_URL"):
            return False
        default = settings.data_dir() / DEFAULT_SOURCE_FILE
        return self._sqlite_file.resolve() == default.resolve() and not self._sqlite_file.exists()

    # ---- one attempt: reflect, check, read, cast (all or nothing)

    def _check_columns(self, table: str, cols: tuple[Column, ...]) -> tuple[Column, ...]:
        """The columns to select: every registry column, less the optional ones the table lacks."""
        if self._sqlite_file is not None and not self._sqlite_file.exists():
            raise SourceError(f"source database file not found: {self._sqlite_file}")
        with self.engine.connect() as conn:
            insp = sa.inspect(conn)
            if not insp.has_table(table):
                raise SourceError(f"source table {table!r} not found in {self.masked_url}")
            present = [c["name"] for c in insp.get_columns(table)]
        expected = [c.name for c in cols]
        missing = [c.name for c in cols if c.name not in present and not c.optional]
        unknown = [n for n in present if n not in expected]
        if missing:
            msg = f"{table}: source column(s) missing: {', '.join(missing)}"
            if unknown:
                msg += f"; unknown column(s) present: {', '.join(unknown)}"
            raise SourceSchemaError(msg)
        if unknown:
            self.log.warning("%s: ignoring unknown source column(s): %s", table, ", ".join(unknown))
        self.last_unknown_columns = unknown
        return tuple(c for c in cols if c.name in present)

    def _read_once(self, table: str, cols: tuple[Column, ...], lo: datetime, hi: datetime) -> pd.DataFrame:
        cols = self._check_columns(table, cols)
        source = f"source {self.masked_url}"
        if self._sqlite_file is not None:
            return _arrow_to_frame(self._read_adbc(table, cols, lo, hi), table, source)
        if self.use_adbc:
            return _arrow_to_frame(self._read_adbc_postgresql(table, cols, lo, hi), table, source)
        return cast_to_registry(self._read_sqlalchemy(table, cols, lo, hi), table, source)

    def _read_adbc(self, table: str, cols: tuple[Column, ...], lo: datetime, hi: datetime) -> pa.Table:
        import adbc_driver_sqlite.dbapi as adbc_sqlite

        names = ", ".join(_quote_sqlite(c.name) for c in cols)
        ts = _quote_sqlite(UPDATED_AT)
        sql = f"SELECT {names} FROM {_quote_sqlite(table)} WHERE {ts} >= ? AND {ts} < ? ORDER BY {ts}"
        with adbc_sqlite.connect(str(self._sqlite_file)) as conn, conn.cursor() as cur:
            cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": _ADBC_BATCH_ROWS})
            cur.execute(sql, (_sqlite_text(lo), _sqlite_text(hi)))
            return cur.fetch_arrow_table()

    def _adbc_postgresql_uri(self) -> str:
        """The libpq URI of the source (query parameters such as `options` kept), with the reader's
        application_name so the server's activity view names it as it does for SQLAlchemy reads."""
        url = self._url.set(drivername="postgresql")
        if "application_name" not in url.query:
            url = url.update_query_dict({"application_name": APPLICATION_NAME})
        return url.render_as_string(hide_password=False)

    def _read_adbc_postgresql(self, table: str, cols: tuple[Column, ...], lo: datetime, hi: datetime) -> pa.Table:
        import adbc_driver_postgresql.dbapi as adbc_pg

        q = self.engine.dialect.identifier_preparer.quote
        names = ", ".join(q(c.name) for c in cols)
        ts = q(UPDATED_AT)
        sql = f"SELECT {names} FROM {q(table)} WHERE {ts} >= $1 AND {ts} < $2 ORDER BY {ts}"
        with adbc_pg.connect(self._adbc_postgresql_uri()) as conn, conn.cursor() as cur:
            cur.execute("SET TIME ZONE 'UTC'")  # naive bounds and timestamptz values both mean UTC
            cur.execute(sql, (lo, hi))
            return cur.fetch_arrow_table()

    def _read_sqlalchemy(self, table: str, cols: tuple[Column, ...], lo: datetime, hi: datetime) -> pd.DataFrame:
        q = self.engine.dialect.identifier_preparer.quote
        names = ", ".join(q(c.name) for c in cols)
        ts = q(UPDATED_AT)
        sql = sa.text(f"SELECT {names} FROM {q(table)} WHERE {ts} >= :start AND {ts} < :end ORDER BY {ts}")
        params: dict[str, Any] = {"start": lo, "end": hi}
        if self.backend == "sqlite":
            params = {"start": _sqlite_text(lo), "end": _sqlite_text(hi)}
        with self.engine.connect() as conn:
            result = conn.execute(sql, params)
            keys = list(result.keys())
            rows = result.fetchall()
        return pd.DataFrame.from_records(rows, columns=keys, coerce_float=True)


def _has_adbc_postgresql() -> bool:
    try:
        import adbc_driver_postgresql.dbapi  # noqa: F401
    except ImportError:
        return False
    return True


def _postgres_session_utc(dbapi_conn: Any, _record: Any) -> None:
    """Run the session in UTC so naive bounds and timestamptz values both mean UTC."""
    autocommit = getattr(dbapi_conn, "autocommit", None)
    if autocommit is not None:
        dbapi_conn.autocommit = True
    cur = dbapi_conn.cursor()
    try:
        cur.execute("SET TIME ZONE 'UTC'")
    finally:
        cur.close()
        if autocommit is not None:
            dbapi_conn.autocommit = autocommit
