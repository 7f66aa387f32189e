"""The PostgreSQL read path through ADBC (binary COPY into Arrow): the same rows and values as the
SQLAlchemy row fetches it replaced, and retried when the server kills the connection mid-read.

Needs the PostgreSQL server at RCM_TEST_PG_URL (`-m postgres`); each test works in its own schema.
"""

# ruff: noqa: F811  (the fixtures imported from test_source are used as arguments)
from __future__ import annotations

import logging
import time
import uuid

import adbc_driver_manager.dbapi as adbc_dbapi
import pandas as pd
import pytest
import sqlalchemy as sa

from rcm_assets.lib.source import SourceReader
from rcm_assets_tests.lib.test_source import (  # noqa: F401  (fixtures)
    DAY,
    NEXT,
    data,
    edited_claims,
    expected,
    ordered,
    pg_admin,
    pg_schema_url,
)

pytestmark = pytest.mark.postgres


def test_adbc_is_the_postgresql_read_path(pg_schema_url):
    assert SourceReader(pg_schema_url).use_adbc


@pytest.mark.parametrize("table", ["claims", "remittances"])
def test_adbc_rows_identical_to_row_fetches_and_to_the_generator(pg_schema_url, edited_claims, data, table):
    """Every day of the source (boundary edits included): the ADBC frame equals the SQLAlchemy path's
    frame exactly (values, dtypes, order) and holds the generator's rows of that day."""
    fast, rows = SourceReader(pg_schema_url), SourceReader(pg_schema_url)
    rows.use_adbc = False
    generated = edited_claims if table == "claims" else data.remittances
    total = 0
    days = [(d, d + pd.Timedelta(days=1)) for d in pd.date_range(DAY - pd.Timedelta(days=1), periods=5)]
    whole = (generated["updated_at"].min().floor("D"), generated["updated_at"].max().floor("D") + pd.Timedelta(days=1))
    for lo, hi in [(lo.to_pydatetime(), hi.to_pydatetime()) for lo, hi in [*days, whole]]:
        got = fast.read_changed(table, lo, hi)
        pd.testing.assert_frame_equal(got, rows.read_changed(table, lo, hi))
        pd.testing.assert_frame_equal(ordered(got, table), expected(generated, table, lo, hi))
        total += len(got)
    assert total >= len(generated) > 0  # the whole span: every generated row


def test_adbc_connection_killed_mid_extraction_is_retried(pg_admin, pg_schema_url, edited_claims, caplog,
                                                          monkeypatch):
    """pg_terminate_backend from another session kills the ADBC connection just as it sends the SELECT
    (the reader names itself by application_name); the reader reconnects and returns the day's rows."""
    app = f"rcm_kill_{uuid.uuid4().hex[:8]}"
    reader = SourceReader(f"{pg_schema_url}&application_name={app}", base_delay=0.05, max_delay=0.2)
    assert reader.use_adbc
    killed: list[int] = []
    execute = adbc_dbapi.Cursor.execute

    def kill_first_select(cursor, operation, parameters=None, **kwargs):
        if not killed and "updated_at >=" in operation:
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
        return execute(cursor, operation, parameters, **kwargs)

    monkeypatch.setattr(adbc_dbapi.Cursor, "execute", kill_first_select)
    with caplog.at_level(logging.WARNING, logger="rcm.source"):
        got = reader.read_changed("claims", DAY, NEXT)
    assert killed and reader.last_attempts == 2
    retry = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]
    assert len(retry) == 1 and "attempt 1/5" in retry[0]
    pd.testing.assert_frame_equal(ordered(got, "claims"), expected(edited_claims, "claims"))
