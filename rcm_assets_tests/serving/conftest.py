"""Serving tests: the service's load threads open MLflow's SQLite connections, which are finalized whenever the
garbage collector finds them. Collected after each test, at a known point: a finalizer that runs inside a later
test's `ast.parse` makes CPython 3.11's parser raise "AST constructor recursion depth mismatch"."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def collect_service_garbage() -> Iterator[None]:
    yield
    gc.collect()
