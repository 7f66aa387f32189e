"""A quiet, clear CLI: no Dagster label warnings, one line per expected failure, no traceback, progress per
layer, and `rcm status` as a table that names what failed and why — from a cached asset catalog."""

from __future__ import annotations

import json
import sqlite3

import dagster as dg

from rcm_assets.cli import status
from rcm_assets.definitions import defs
from rcm_assets_tests.cli.test_cli import rcm


def test_an_expected_failure_is_one_line_and_status_names_it(source_in_data_dir, isolated_env, monkeypatch):
    home = isolated_env.parent / "dagster_home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with sqlite3.connect(isolated_env / "source.db") as con:
        con.execute("ALTER TABLE claims RENAME COLUMN billed_amount TO billed_amt")
    result = rcm("extract", "--date", "2025-02-03", "--lookback-days", "0")
    assert result.returncode == 1
    everything = result.stdout + result.stderr
    assert "Traceback" not in everything and "Warning" not in everything, everything
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    assert failed == ["FAILED bronze/claims partition 2025-02-03: bronze/claims: claims: source column(s) missing: "
                      "billed_amount; unknown column(s) present: billed_amt"]
    # progress: a line per layer that ran, with tables, rows, partitions and seconds
    progress = [line.split() for line in result.stdout.splitlines() if line.startswith("    ")]
    assert [p[0] for p in progress] == ["bronze", "silver"] and all(p[-1] == "s" for p in progress)

    shown = rcm("status")
    assert shown.returncode == 0 and "Warning" not in shown.stderr, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].split() == ["asset", "latest", "parts", "freshness", "checks", "last", "run"]
    row = next(line for line in lines if line.startswith("bronze/claims "))
    assert "failed" in row and "FAILED" in row
    assert any(line.strip().startswith("bronze/claims: failed partition 2025-02-03") and "billed_amount" in line
               for line in lines[lines.index("problems:"):])
    remittances = next(line for line in lines if line.startswith("bronze/remittances "))
    assert "2025-02-03" in remittances and "4/4 ok" not in remittances  # freshness not yet evaluated
    assert (home / status.CATALOG_FILE).is_file()


def test_status_reads_the_cached_catalog_until_the_package_changes(tmp_path, monkeypatch):
    built = status.catalog(tmp_path)
    assert [a["asset"] for a in built] == sorted(k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys())
    cached = json.loads((tmp_path / status.CATALOG_FILE).read_text())
    cached["assets"] = cached["assets"][:1]
    (tmp_path / status.CATALOG_FILE).write_text(json.dumps(cached))
    assert status.catalog(tmp_path) == cached["assets"]  # read, not rebuilt
    monkeypatch.setattr(status, "package_fingerprint", lambda: "changed")
    assert status.catalog(tmp_path) == built  # a changed package rebuilds it


def test_status_table_on_an_empty_instance_lists_every_asset_as_never_run(tmp_path):
    with dg.DagsterInstance.ephemeral() as instance:
        rows = status.collect(instance, status.build_catalog(defs))
    table = status.render(rows).splitlines()
    assert len(table) == 2 + len(rows) and all("never run" in line for line in table[2:])
    assert "problems:" not in table
