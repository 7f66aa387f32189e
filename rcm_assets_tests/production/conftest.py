"""The production services (see services.py) and the deploy/ stack (stack.py) as fixtures of this folder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rcm_assets_tests.conftest import SyntheticSource
from rcm_assets_tests.production.services import (
    PostgresDatabases,
    S3Server,
    amqp_broker,
    pg_databases,
    s3_env,
    s3_server,
)
from rcm_assets_tests.production.stack import Stack, build_stack

__all__ = ["amqp_broker", "pg_databases", "s3_env", "s3_server", "stack"]


@pytest.fixture(scope="module")
def stack(s3_server: S3Server, pg_databases: PostgresDatabases, synthetic_source: SyntheticSource,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """deploy/'s stack on a fresh PostgreSQL database and S3 bucket; every process it started is stopped."""
    built = build_stack(tmp_path_factory.mktemp("stack"), synthetic_source, s3_server, pg_databases.create("dagster"))
    try:
        yield built
    finally:
        built.stop()
