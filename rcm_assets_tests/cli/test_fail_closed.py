"""Fail closed (issue 26.5): no pseudonymization key written in the code is used outside the explicit demo
environment. Unset, `rcm extract` stops before any run with one sentence naming RCM_PHI_KEY, and a run
started any other way (UI, daemon, sensor) stops in silver with the same sentence; `rcm demo` runs in the
demo environment unless one is named."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pytest

from rcm_assets.cli.console import UsageError
from rcm_assets.cli.main import check_environment, demo_environment
from rcm_assets.defs import bronze, silver
from rcm_assets.platform.resources import build_resources
from rcm_assets_tests.cli.test_dry_run import DAY, home, rcm  # noqa: F401
from rcm_assets_tests.conftest import failure_text, materialize_range


def test_extract_without_a_key_stops_with_one_sentence_naming_the_setting(home, monkeypatch, capsys):  # noqa: F811
    monkeypatch.delenv("RCM_PHI_KEY")
    code, out = rcm(monkeypatch, capsys, "extract", "--date", DAY)
    assert code == 2
    line = out.strip()
    assert "\n" not in line and line.count(". ") == 0
    assert line.startswith("rcm: error: RCM_PHI_KEY is not set") and "RCM_ENV=demo" in line
    code, out = rcm(monkeypatch, capsys, "backfill", "--start", DAY, "--end", DAY)
    assert code == 2 and "RCM_PHI_KEY is not set" in out


def test_rcm_demo_runs_in_the_demo_environment_unless_one_is_named(monkeypatch):
    monkeypatch.delenv("RCM_PHI_KEY")
    monkeypatch.delenv("RCM_ENV", raising=False)
    assert demo_environment("demo") == "demo" and demo_environment("extract") is None
    check_environment(demo_environment("demo"), "demo")  # the published key is allowed: no error
    assert os.environ["RCM_ENV"] == "demo"
    monkeypatch.setenv("RCM_ENV", "dev")  # named: dev, which needs the key even for the demo
    assert demo_environment("demo") is None
    with pytest.raises(UsageError, match="RCM_PHI_KEY is not set"):
        check_environment(demo_environment("demo"), "demo")


def test_a_run_without_a_key_stops_in_silver_naming_the_setting(source_in_data_dir, monkeypatch):
    """Started outside the CLI (the UI, the daemon): the silver step refuses, nothing lands in silver."""
    monkeypatch.delenv("RCM_PHI_KEY")
    day = source_in_data_dir.start.isoformat()
    result = materialize_range([bronze.claims, silver.claims], day, day, dg.DagsterInstance.ephemeral(),
                               build_resources("dev"))
    assert not result.success
    assert "RCM_PHI_KEY is not set: the dev environment needs the PHI pseudonymization key" in failure_text(result)
    assert not list((Path(os.environ["RCM_DATA_DIR"]) / "lake" / "silver").rglob("*.parquet"))
