"""The source reader: exact day windows, schema drift, casting, injection safety and retries.

SQLite tests run everywhere; PostgreSQL tests (`-m postgres`) need the server at RCM_TEST_PG_URL and
each works in its own schema, dropped afterwards.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from rcm_assets.lib import source as src
from rcm_assets.lib.columns import source_column_names, source_columns
from rcm_assets.lib.source import (
    SourceError,
    SourceReader,
    SourceSchemaError,
    cast_to_registry,
    is_transient,
    mask_url,
)
from rcm_assets.synthetic import generate, write_source

DAY = datetime(2025, 1, 2)
NEXT = DAY + timedelta(days=1)
KEYS = {"claims": ["claim_id", "claim_version", "updated_at"], "remittances": ["claim_id", "updated_at"]}
EXPECTED_DTYPES = {"string": np.dtype(object), "int64": np.dtype("int64"), "float64": np.dtype("float64"),
                   "bool": np.dtype(bool), "date": np.dtype("datetime64[ns]"),
                   "timestamp": np.dtype("datetime64[ns]")}
# (row index in the generated claims frame, new updated_at, stored text): exact boundary cases of [D, D+1)
BOUNDARY_EDITS = (
    (0, DAY, "2025-01-02 00:00:00.000000"),                              # exactly D: included
    (1, NEXT, "2025-01-03 00:00:00.000000"),                             # exactly D+1: excluded
    (2, NEXT - timedelta(microseconds=1), "2025-01-02 23:59:59.999999"),  # last instant of D: included
    (3, DAY - timedelta(microseconds=1), "2025-01-01 23:59:59.999999"),   # last instant of D-1: excluded
    (4, NEXT, "2025-01-03 00:00:00"),           # D+1 stored without a fraction: still excluded
    (5, DAY, "2025-01-02 00:00:00"),            # D stored without a fraction: still included
)


# ---------------------------------------------------------------------------------------------- data

@pytest.fixture(scope="module")
def data():
    return generate(start=date(2025, 1, 1), days=4, claims_per_day=150, seed=7)


@pytest.fixture(scope="module")
def edited_claims(data) -> pd.DataFrame:
    """The generated claims with the boundary edits applied (what the source holds after `_edit`)."""
    claims = data.claims.copy()
    for i, ts, _ in BOUNDARY_EDITS:
        claims.loc[i, "updated_at"] = pd.Timestamp(ts)
    return claims


def _edit_sqlite(path: Path, claims: pd.DataFrame) -> None:
    with sqlite3.connect(path) as conn:
        for i, _, text in BOUNDARY_EDITS:
            row = claims.iloc[i]
            cur = conn.execute("UPDATE claims SET updated_at = ? WHERE claim_id = ? AND claim_version = ?",
                               (text, row.claim_id, int(row.claim_version)))
            assert cur.rowcount == 1


def expected(frame: pd.DataFrame, table: str, lo: datetime = DAY, hi: datetime = NEXT) -> pd.DataFrame:
    rows = frame[(frame["updated_at"] >= lo) & (frame["updated_at"] < hi)][source_column_names(table)]
    return rows.sort_values(KEYS[table]).reset_index(drop=True)


def ordered(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    return frame.sort_values(KEYS[table]).reset_index(drop=True)


@pytest.fixture
def sqlite_db(tmp_path, data) -> Path:
    path = tmp_path / "source.db"
    write_source(data, f"sqlite:///{path}")
    _edit_sqlite(path, data.claims)
    return path


@pytest.fixture
def reader(sqlite_db) -> SourceReader:
    r = SourceReader(f"sqlite:///{sqlite_db}", base_delay=0.05, max_delay=0.2)
    yield r
    r.dispose()


def _sql(path: Path, *statements: str) -> None:
    with sqlite3.connect(path) as conn:
        for s in statements:
            conn.execute(s)


# ------------------------------------------------------------------------------------ day extraction

def test_reads_exactly_the_rows_of_a_day(reader, edited_claims, data):
    got = reader.read_changed("claims", DAY, NEXT)
    want = expected(edited_claims, "claims")
    pd.testing.assert_frame_equal(ordered(got, "claims"), want)
    ids = set(zip(got.claim_id, got.claim_version, strict=True))
    for i, ts, _ in BOUNDARY_EDITS:
        row = data.claims.iloc[i]
        assert ((row.claim_id, row.claim_version) in ids) == (DAY <= ts < NEXT), (i, ts)

    rem = reader.read_changed("remittances", DAY, NEXT)
    pd.testing.assert_frame_equal(ordered(rem, "remittances"), expected(data.remittances, "remittances"))


def test_consecutive_days_partition_the_rows(reader, edited_claims):
    start = datetime(2025, 1, 1)
    days = [reader.read_changed("claims", start + timedelta(d), start + timedelta(d + 1)) for d in range(4)]
    assert sum(len(d) for d in days) == len(expected(edited_claims, "claims", start, start + timedelta(4)))
    both = pd.concat(days)
    assert not both.duplicated(["claim_id", "claim_version"]).any()


def test_reread_is_idempotent(reader):
    first = reader.read_changed("claims", DAY, NEXT)
    second = reader.read_changed("claims", DAY, NEXT)
    pd.testing.assert_frame_equal(first, second)  # same rows, same order (ORDER BY updated_at)
    assert first["updated_at"].is_monotonic_increasing


def test_aware_and_date_bounds_mean_utc(reader):
    naive = reader.read_changed("claims", DAY, NEXT)
    eastern = timezone(timedelta(hours=-5))
    aware = reader.read_changed("claims", datetime(2025, 1, 1, 19, tzinfo=eastern), NEXT.replace(tzinfo=UTC))
    as_dates = reader.read_changed("claims", DAY.date(), NEXT.date())
    pd.testing.assert_frame_equal(naive, aware)
    pd.testing.assert_frame_equal(naive, as_dates)


def test_empty_window_has_the_registry_schema(reader):
    got = reader.read_changed("claims", datetime(2030, 1, 1), datetime(2030, 1, 2))
    assert len(got) == 0
    assert list(got.columns) == source_column_names("claims")
    assert {c.name: got[c.name].dtype for c in source_columns("claims")} == {
        c.name: EXPECTED_DTYPES[c.dtype] for c in source_columns("claims")}


@pytest.mark.parametrize("table", ["claims", "remittances"])
def test_dtypes_follow_the_frame_conventions(reader, table):
    got = reader.read_changed(table, DAY, NEXT)
    assert list(got.columns) == source_column_names(table)
    for c in source_columns(table):
        assert got[c.name].dtype == EXPECTED_DTYPES[c.dtype], c.name
        if c.dtype == "string":
            assert all(v is None or isinstance(v, str) for v in got[c.name]), c.name
        if c.dtype == "date":
            assert (got[c.name].dropna() == got[c.name].dropna().dt.normalize()).all()
    if table == "claims":
        assert got["modifiers"].isna().any() and got["prior_auth_number"].isna().any()
        assert got["eligibility_verified"].any() and not got["eligibility_verified"].all()


def test_nullable_column_null_in_a_long_prefix_keeps_its_type(tmp_path, data):
    """ADBC infers types from the first batch; a string column NULL for thousands of rows must stay text."""
    claims = data.claims.copy()
    many = pd.concat([claims] * 12, ignore_index=True)
    many["claim_id"] = [f"C{i:010d}" for i in range(len(many))]
    many = many.sort_values("updated_at", kind="stable").reset_index(drop=True)
    many["prior_auth_number"] = None
    many.loc[len(many) - 3:, "prior_auth_number"] = "PA12345"
    many["updated_at"] = DAY + pd.to_timedelta(np.arange(len(many)), unit="s")
    data2 = dataclasses.replace(data, claims=many)
    path = tmp_path / "prefix.db"
    write_source(data2, f"sqlite:///{path}")
    got = SourceReader(f"sqlite:///{path}").read_changed("claims", DAY, NEXT)
    assert len(got) == len(many)
    assert got["prior_auth_number"].dtype == object
    assert got["prior_auth_number"].notna().sum() == 3


# ------------------------------------------------------------------------------------ schema drift

def test_missing_table_is_named(tmp_path, reader, sqlite_db):
    _sql(sqlite_db, "DROP TABLE remittances")
    with pytest.raises(SourceError, match="source table 'remittances' not found"):
        reader.read_changed("remittances", DAY, NEXT)
    assert reader.last_attempts == 1


def test_missing_database_file_is_named_and_not_created(tmp_path):
    path = tmp_path / "nope.db"
    with pytest.raises(SourceError, match="source database file not found"):
        SourceReader(f"sqlite:///{path}").read_changed("claims", DAY, NEXT)
    assert not path.exists()


def test_renamed_column_is_named(reader, sqlite_db):
    _sql(sqlite_db, "ALTER TABLE claims RENAME COLUMN billed_amount TO billed_amt")
    with pytest.raises(SourceSchemaError) as info:
        reader.read_changed("claims", DAY, NEXT)
    assert str(info.value) == "claims: source column(s) missing: billed_amount; unknown column(s) present: billed_amt"
    assert reader.last_attempts == 1


def test_unknown_extra_column_is_tolerated_and_reported(reader, sqlite_db, edited_claims, caplog):
    _sql(sqlite_db, "ALTER TABLE claims ADD COLUMN referral_source TEXT DEFAULT 'web'")
    with caplog.at_level(logging.WARNING, logger="rcm.source"):
        got = reader.read_changed("claims", DAY, NEXT)
    assert reader.last_unknown_columns == ["referral_source"]
    assert list(got.columns) == source_column_names("claims")
    pd.testing.assert_frame_equal(ordered(got, "claims"), expected(edited_claims, "claims"))
    assert "referral_source" in caplog.text


def test_uncastable_column_is_named_without_its_values(reader, sqlite_db, data):
    secret = "Jane Q Patient"  # looks like PHI: must never appear in the error
    day_rows = expected(data.claims, "claims")
    ids = tuple(day_rows.claim_id[:2])
    _sql(sqlite_db, f"UPDATE claims SET patient_dob = '{secret}' WHERE claim_id IN {ids!r}")
    with pytest.raises(SourceSchemaError) as info:
        reader.read_changed("claims", DAY, NEXT)
    msg = str(info.value)
    assert "claims" in msg and "'patient_dob'" in msg and "expected date" in msg and "2 value(s)" in msg
    assert secret not in msg and "Jane" not in msg
    assert reader.last_attempts == 1


def test_uncastable_int_is_named(reader, sqlite_db, data):
    cid = expected(data.claims, "claims").claim_id[0]
    _sql(sqlite_db, f"UPDATE claims SET units = 'several' WHERE claim_id = '{cid}'")
    with pytest.raises(SourceSchemaError, match=r"'units' expected int64; 1 value\(s\) cannot be cast") as info:
        reader.read_changed("claims", DAY, NEXT)
    assert "several" not in str(info.value)


# ---------------------------------------------------------------------------------- injection safety

@pytest.mark.parametrize("table", ["sqlite_master", "claims; DROP TABLE claims", "Claims", "ground_truth"])
def test_table_outside_the_registry_is_refused(reader, sqlite_db, table):
    with pytest.raises(SourceError, match="unknown source table"):
        reader.read_changed(table, DAY, NEXT)
    assert reader.read_changed("claims", DAY, NEXT) is not None  # nothing was dropped


def test_malicious_bound_string_is_refused_by_the_reader(reader):
    with pytest.raises(TypeError):
        reader.read_changed("claims", "2025-01-01' OR 1=1 --", NEXT)  # type: ignore[arg-type]


@pytest.mark.parametrize("path", ["adbc", "sqlalchemy"])
def test_values_are_bound_parameters(reader, sqlite_db, monkeypatch, path):
    """Even if a hostile string reached the query it is compared as a value, never spliced into SQL."""
    evil = "2025-01-01' OR 1=1 --"
    monkeypatch.setattr(src, "_sqlite_text", lambda v: evil if v == DAY else "2025-01-03 00:00:00")
    if path == "sqlalchemy":
        monkeypatch.setattr(reader, "_sqlite_file", None)  # same file, read through SQLAlchemy
        seen: list[tuple[str, object]] = []
        sa.event.listen(reader.engine, "before_cursor_execute",
                        lambda conn, cur, stmt, params, ctx, many: seen.append((stmt, params)))
    got = reader.read_changed("claims", DAY, NEXT)
    # as a text value "2025-01-01' ..." sorts after every "2025-01-01 hh:mm" row: only D's rows remain
    assert len(got) > 0
    assert (got["updated_at"] >= DAY).all() and (got["updated_at"] < NEXT).all()
    if path == "sqlalchemy":
        select = [(s, p) for s, p in seen if "updated_at" in s and "SELECT" in s]
        assert select and all("OR 1=1" not in s for s, _ in select)
        assert any(evil in tuple(p) for _, p in select)
    with sqlite3.connect(sqlite_db) as conn:
        assert conn.execute("SELECT count(*) FROM claims").fetchone()[0] > len(got)


# -------------------------------------------------------------------------------- error classification

class _PgError(Exception):
    def __init__(self, msg: str, pgcode: str | None = None):
        super().__init__(msg)
        self.pgcode = pgcode


def _sa_op(msg: str, invalidated: bool = False) -> sa.exc.OperationalError:
    import psycopg2

    return sa.exc.OperationalError("SELECT 1", {}, psycopg2.OperationalError(msg),
                                   connection_invalidated=invalidated)


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (sqlite3.OperationalError("database is locked"), True),
        (_sa_op("database is locked"), True),
        (Exception("INVALID_ARGUMENT: [SQLite] Failed to prepare query: database is locked\nquery: SELECT"), True),
        (_sa_op("server closed the connection unexpectedly\n\tThis probably means the server terminated"), True),
        (_sa_op("terminating connection due to administrator command"), True),
        (_PgError("terminating connection due to administrator command", "57P01"), True),
        (_sa_op("connection to server at \"10.0.0.5\", port 5432 failed: Connection refused"), True),
        (_sa_op("timeout expired"), True),
        (_sa_op("SSL SYSCALL error: EOF detected"), True),
        (_sa_op("anything at all", invalidated=True), True),
        (_PgError("could not serialize access due to concurrent update", "40001"), True),
        (TimeoutError("read timed out"), True),
        (ConnectionResetError("peer reset"), True),
        (sa.exc.TimeoutError("QueuePool limit reached"), True),
        (_sa_op('syntax error at or near "SELEC"'), False),
        (_PgError('relation "claims" does not exist', "42P01"), False),
        (sqlite3.OperationalError("no such table: claims"), False),
        (sqlite3.OperationalError("no such column: billed_amount"), False),
        (_sa_op('connection to server failed: FATAL:  password authentication failed for user "rcm"'), False),
        (_sa_op('connection to server failed: FATAL:  role "nobody" does not exist'), False),
        (_sa_op('connection to server failed: FATAL:  database "nodb" does not exist'), False),
        (_PgError("permission denied for table claims", "42501"), False),
        (SourceSchemaError("claims: source column(s) missing: units"), False),
        (ValueError("bad value"), False),
        (KeyError("x"), False),
    ],
    ids=lambda v: v if isinstance(v, bool) else f"{type(v).__name__}:{str(v)[:40]}",
)
def test_is_transient(exc, transient):
    assert is_transient(exc) is transient


def test_is_transient_follows_the_cause_chain():
    try:
        try:
            raise sqlite3.OperationalError("database is locked")
        except sqlite3.OperationalError as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as outer:
        assert is_transient(outer)


# ----------------------------------------------------------------------------------------- retries

def test_retries_use_full_jitter_bounded_backoff_and_mask_the_password(monkeypatch, caplog):
    url = "postgresql://rcm:s3cr3t-pw@db.internal:5432/claims"
    reader = SourceReader(url, max_attempts=6, base_delay=1.0, max_delay=3.0)
    calls, sleeps = [], []
    reader._sleep = sleeps.append

    def flaky(table, cols, lo, hi):
        calls.append(1)
        if len(calls) < 5:
            raise _sa_op("server closed the connection unexpectedly (password=s3cr3t-pw)")
        return pd.DataFrame({"ok": [1]})

    monkeypatch.setattr(reader, "_read_once", flaky)
    with caplog.at_level(logging.WARNING, logger="rcm.source"):
        out = reader.read_changed("claims", DAY, NEXT)
    assert list(out["ok"]) == [1] and reader.last_attempts == 5
    assert len(sleeps) == 4
    caps = [1.0, 2.0, 3.0, 3.0]  # base * 2**(n-1), capped at max_delay
    assert all(0.0 <= s <= cap for s, cap in zip(sleeps, caps, strict=True))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [f"attempt {n}/6" in r.getMessage() for n, r in enumerate(warnings, 1)] == [True] * 4
    assert all("OperationalError" in r.getMessage() and "server closed" in r.getMessage() for r in warnings)
    assert "s3cr3t-pw" not in caplog.text and "rcm:***@db.internal" in caplog.text


def test_gives_up_after_max_attempts_with_a_clear_error(monkeypatch):
    reader = SourceReader("sqlite:///x.db", max_attempts=3, base_delay=0.0)
    reader._sleep = lambda s: None
    monkeypatch.setattr(reader, "_read_once", lambda *a: (_ for _ in ()).throw(_sa_op("database is locked")))
    with pytest.raises(SourceError, match=r"failed after 3 attempt\(s\); last error: OperationalError: database is locked"):
        reader.read_changed("claims", DAY, NEXT)


def test_permanent_error_fails_after_one_attempt(reader, sqlite_db, caplog):
    """`claims` replaced by a view over a table that is gone: a real SQL error, not worth retrying."""
    _sql(sqlite_db, "ALTER TABLE claims RENAME TO claims_old",
         "CREATE VIEW claims AS SELECT * FROM claims_old", "DROP TABLE claims_old")
    t0 = time.perf_counter()
    with caplog.at_level(logging.WARNING, logger="rcm.source"), pytest.raises(SourceError) as info:
        reader.read_changed("claims", DAY, NEXT)
    assert reader.last_attempts == 1 and time.perf_counter() - t0 < 2
    assert "permanent error, not retried" in str(info.value) and "no such table" in str(info.value)
    assert not [r for r in caplog.records if "retrying" in r.getMessage()]


def test_flaky_sqlite_lock_is_retried(reader, sqlite_db, edited_claims, caplog):
    """Another process holds an exclusive lock for a moment; the reader backs off and succeeds."""
    hold = textwrap_lock_script(sqlite_db, seconds=0.6)
    proc = subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        reader.max_attempts, reader.base_delay, reader.max_delay = 12, 0.1, 0.4
        with caplog.at_level(logging.WARNING, logger="rcm.source"):
            got = reader.read_changed("claims", DAY, NEXT)
    finally:
        proc.wait(timeout=10)
    assert reader.last_attempts > 1
    retries = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]
    assert retries and all("database is locked" in m for m in retries)
    assert "attempt 1/12" in retries[0]
    pd.testing.assert_frame_equal(ordered(got, "claims"), expected(edited_claims, "claims"))


def textwrap_lock_script(path: Path, seconds: float) -> str:
    # A separate process: in-process the ADBC driver's own SQLite copy would not see sqlite3's locks.
    return (
        "import sqlite3, time\n"
        f"c = sqlite3.connect({str(path)!r}, isolation_level=None)\n"
        "c.execute('BEGIN EXCLUSIVE')\n"
        "print('locked', flush=True)\n"
        f"time.sleep({seconds})\n"
        "c.execute('ROLLBACK')\n"
    )


# ------------------------------------------------------------------------------------ cast_to_registry

def _claims_frame(data, n=4) -> pd.DataFrame:
    return data.claims.head(n).reset_index(drop=True).copy()


def test_cast_accepts_text_booleans_and_converts_aware_timestamps(data):
    raw = _claims_frame(data).astype(object)
    raw["eligibility_verified"] = ["true", "FALSE", 1, False]
    raw["units"] = ["2", 3, 4.0, np.int64(5)]
    raw["billed_amount"] = ["10.5", 11, None, 12.25]
    raw["updated_at"] = pd.to_datetime(["2025-01-02T05:00:00+05:00"] * 4, utc=True).tz_convert("Asia/Karachi")
    raw["submitted_at"] = ["2025-01-02 00:00:00.5", "2025-01-02T01:00:00Z", "2025-01-02", None]
    raw["service_date"] = ["2024-12-30"] * 4
    raw["extra"] = 1
    raw = raw[list(reversed(raw.columns))]
    out = cast_to_registry(raw, "claims", source="test")
    assert list(out.columns) == source_column_names("claims")
    assert out["eligibility_verified"].tolist() == [True, False, True, False]
    assert out["units"].dtype == "int64" and out["units"].tolist() == [2, 3, 4, 5]
    assert out["billed_amount"].dtype == "float64" and np.isnan(out["billed_amount"][2])
    assert (out["updated_at"] == pd.Timestamp("2025-01-02 00:00:00")).all()
    assert out["updated_at"].dtype == "datetime64[ns]"
    assert out["submitted_at"].tolist()[:3] == [pd.Timestamp("2025-01-02 00:00:00.5"),
                                                pd.Timestamp("2025-01-02 01:00"), pd.Timestamp("2025-01-02")]
    assert pd.isna(out["submitted_at"][3])
    assert out["service_date"].dtype == "datetime64[ns]"


def test_cast_is_identity_on_conforming_frames(data):
    frame = data.claims.head(50).reset_index(drop=True)
    pd.testing.assert_frame_equal(cast_to_registry(frame, "claims"), frame[source_column_names("claims")])


def test_cast_normalizes_string_nulls(data):
    raw = _claims_frame(data)
    raw["modifiers"] = [None, np.nan, pd.NA, "25"]
    raw["patient_zip"] = [2134, 2134.0, "02134", "10001"]  # numbers become text (silver checks the regex)
    out = cast_to_registry(raw, "claims")
    assert out["modifiers"].tolist() == [None, None, None, "25"]
    assert out["patient_zip"].tolist() == ["2134", "2134", "02134", "10001"]


@pytest.mark.parametrize(
    ("column", "values", "pattern"),
    [
        ("eligibility_verified", ["true", "maybe", 2, False], r"'eligibility_verified' expected bool; 2 value"),
        ("eligibility_verified", [True, None, True, False], r"'eligibility_verified' expected bool; 1 null"),
        ("units", [1, None, 3, 4], r"'units' expected int64; 1 null value\(s\) in a non-nullable column"),
        ("units", [1, 2.5, "many", 4], r"'units' expected int64; 2 value\(s\) cannot be cast"),
        ("billed_amount", ["1.0", "SSN 123-45-6789", 3, 4], r"'billed_amount' expected float64; 1 value"),
        ("submitted_at", ["2025-01-01", "01/02/2025 Jane", None, "2025-13-45"], r"'submitted_at' expected timestamp; 2 value"),
        ("patient_dob", [1, 2, 3, 4], r"'patient_dob' expected date; 4 value"),
    ],
)
def test_cast_errors_name_table_column_type_and_count_never_values(data, column, values, pattern):
    raw = _claims_frame(data).astype({column: object})
    raw[column] = pd.Series(values, dtype=object)
    with pytest.raises(SourceSchemaError, match=pattern) as info:
        cast_to_registry(raw, "claims", source="landing claims_2025-01-02.csv")
    msg = str(info.value)
    assert msg.startswith("claims (landing claims_2025-01-02.csv): column")
    for v in values:
        if isinstance(v, str) and v not in ("true", "1.0", "2025-01-01"):
            assert v not in msg


def test_cast_names_missing_columns(data):
    with pytest.raises(SourceSchemaError, match="source column\\(s\\) missing: units, billed_amount"):
        cast_to_registry(data.claims.drop(columns=["units", "billed_amount"]), "claims")


# -------------------------------------------------------------------------------------------- mask_url

@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://rcm:p%40ss@db:5432/src", "postgresql://rcm:***@db:5432/src"),
        ("postgresql+psycopg2://rcm:hunter2@db/src?sslmode=require", "postgresql+psycopg2://rcm:***@db/src?sslmode=require"),
        ("postgresql://db/src?user=rcm&password=hunter2", "postgresql://db/src?user=rcm&password=***"),
        ("sqlite:////data/source.db", "sqlite:////data/source.db"),
        ("postgresql://rcm@db/src", "postgresql://rcm@db/src"),
    ],
)
def test_mask_url(url, masked):
    assert mask_url(url) == masked


def test_plain_postgresql_url_uses_the_installed_driver():
    assert SourceReader("postgresql://u@h/db").engine.dialect.driver in ("psycopg2", "psycopg")


# ------------------------------------------------------------------------------------------ PostgreSQL

PG_URL = os.environ.get("RCM_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _psycopg2(url: str) -> sa.URL:
    return src.resolve_driver(url)


@pytest.fixture
def pg_admin() -> Iterator[sa.Engine]:
    """An autocommit engine on the test server; skips the test when the server is unreachable."""
    admin = sa.create_engine(_psycopg2(PG_URL), isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool,
                             connect_args={"connect_timeout": 3})
    try:
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.DBAPIError as exc:  # unreachable server / refused; anything else is a test bug
        admin.dispose()
        pytest.skip(f"PostgreSQL at {mask_url(PG_URL)} unreachable ({type(exc).__name__}); set RCM_TEST_PG_URL")
    yield admin
    admin.dispose()


@pytest.fixture
def pg_schema_url(data, pg_admin) -> Iterator[str]:
    """A fresh schema holding generated data (boundary edits applied); the URL selects it by search_path."""
    schema = f"rcm_src_{uuid.uuid4().hex[:10]}"
    with pg_admin.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    url = f"{PG_URL}{sep}options={quote(f'-csearch_path={schema}')}"
    try:
        write_source(data, _psycopg2(url).render_as_string(hide_password=False))
        with pg_admin.connect() as conn:
            for i, ts, _ in BOUNDARY_EDITS:
                row = data.claims.iloc[i]
                conn.execute(sa.text(f'UPDATE "{schema}".claims SET updated_at = :ts '
                                     "WHERE claim_id = :cid AND claim_version = :v"),
                             {"ts": ts, "cid": row.claim_id, "v": int(row.claim_version)})
        yield url
    finally:
        with pg_admin.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


@pytest.mark.postgres
def test_pg_reads_exactly_the_rows_of_a_day(pg_schema_url, edited_claims, data):
    reader = SourceReader(pg_schema_url)
    got = reader.read_changed("claims", DAY, NEXT)
    pd.testing.assert_frame_equal(ordered(got, "claims"), expected(edited_claims, "claims"))
    rem = reader.read_changed("remittances", DAY, NEXT)
    pd.testing.assert_frame_equal(ordered(rem, "remittances"), expected(data.remittances, "remittances"))
    pd.testing.assert_frame_equal(got, reader.read_changed("claims", DAY, NEXT))


@pytest.mark.postgres
def test_pg_connection_killed_mid_extraction_is_retried(pg_admin, pg_schema_url, edited_claims, caplog):
    """pg_terminate_backend from another session kills the reading connection after it reflected the
    table and just as it sends the SELECT; the reader reconnects and returns exactly the day's rows."""
    app = f"rcm_kill_{uuid.uuid4().hex[:8]}"
    reader = SourceReader(f"{pg_schema_url}&application_name={app}", base_delay=0.05, max_delay=0.2)
    reader.use_adbc = False  # the SQLAlchemy read path; the ADBC one: test_source_postgres.py
    killed: list[int] = []

    def kill_first_select(conn, cursor, statement, params, context, many):
        if killed or "updated_at >=" not in statement:
            return
        with pg_admin.connect() as c:
            pids = c.execute(sa.text("SELECT pid FROM pg_stat_activity WHERE application_name = :a"),
                             {"a": app}).scalars().all()
            assert len(pids) == 1, pids
            c.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pids[0]})
            deadline = time.monotonic() + 5
            while c.execute(sa.text("SELECT 1 FROM pg_stat_activity WHERE pid = :p"), {"p": pids[0]}).first():
                assert time.monotonic() < deadline, "backend did not terminate"
                time.sleep(0.02)
        killed.append(pids[0])

    sa.event.listen(reader.engine, "before_cursor_execute", kill_first_select)
    with caplog.at_level(logging.WARNING, logger="rcm.source"):
        got = reader.read_changed("claims", DAY, NEXT)
    assert killed and reader.last_attempts == 2
    retry = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]
    assert len(retry) == 1 and "attempt 1/5" in retry[0]
    assert "terminat" in retry[0] or "server closed" in retry[0]
    pd.testing.assert_frame_equal(ordered(got, "claims"), expected(edited_claims, "claims"))


@pytest.mark.postgres
def test_pg_connection_killed_while_query_runs_is_retried(pg_admin, pg_schema_url, edited_claims, caplog):
    """A slow source (a view sleeping 1 s) killed by another thread while the SELECT is running."""
    schema = sa.make_url(pg_schema_url).query["options"].split("=", 1)[1]
    app = f"rcm_slow_{uuid.uuid4().hex[:8]}"
    with pg_admin.connect() as c:
        c.execute(sa.text(f'ALTER TABLE "{schema}".claims RENAME TO claims_data'))
        c.execute(sa.text(f'CREATE VIEW "{schema}".claims AS SELECT d.* FROM "{schema}".claims_data d, '
                          "(SELECT pg_sleep(1)) s"))
    reader = SourceReader(f"{pg_schema_url}&application_name={app}", base_delay=0.05, max_delay=0.2)
    killed: list[int] = []

    def killer():
        deadline = time.monotonic() + 10
        with pg_admin.connect() as c:
            while time.monotonic() < deadline and not killed:
                pid = c.execute(sa.text(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = :a AND state = 'active' "
                    "AND query LIKE '%updated_at >=%'"), {"a": app}).scalar()
                if pid:
                    c.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid})
                    killed.append(pid)
                time.sleep(0.02)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        with caplog.at_level(logging.WARNING, logger="rcm.source"):
            got = reader.read_changed("claims", DAY, NEXT)
    finally:
        thread.join(timeout=15)
    assert killed and reader.last_attempts == 2
    pd.testing.assert_frame_equal(ordered(got, "claims"), expected(edited_claims, "claims"))


@pytest.mark.postgres
def test_pg_auth_failure_fails_fast_without_the_password(pg_admin, caplog):
    url = sa.make_url(PG_URL).set(username=f"nobody_{uuid.uuid4().hex[:6]}", password="hunter2-secret")
    reader = SourceReader(url.render_as_string(hide_password=False), base_delay=1.0)
    t0 = time.perf_counter()
    with caplog.at_level(logging.DEBUG, logger="rcm.source"), pytest.raises(SourceError) as info:
        reader.read_changed("claims", DAY, NEXT)
    assert time.perf_counter() - t0 < 2 and reader.last_attempts == 1
    msg = str(info.value)
    assert "permanent error, not retried" in msg and url.username in msg
    assert "hunter2-secret" not in msg and "hunter2-secret" not in caplog.text
    assert info.value.__cause__ is None  # the driver's exception (and its connection details) is not chained


@pytest.mark.postgres
def test_pg_unknown_database_fails_fast(pg_admin):
    url = sa.make_url(PG_URL).set(database=f"no_db_{uuid.uuid4().hex[:6]}")
    reader = SourceReader(url.render_as_string(hide_password=False))
    with pytest.raises(SourceError, match="does not exist"):
        reader.read_changed("claims", DAY, NEXT)
    assert reader.last_attempts == 1
