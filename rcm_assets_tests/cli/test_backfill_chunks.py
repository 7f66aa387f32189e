"""Chunked backfills: `rcm backfill` cuts a range into consecutive runs of at most N days (memory bounded by
a chunk, not by the range), writes exactly what one run over the range writes, and stops at the first failed
chunk naming it; Dagster's own backfills get the same bound through the daily assets' backfill policy."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from datetime import date
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from rcm_assets.cli import commands
from rcm_assets.lib import settings

REPO = Path(__file__).resolve().parents[2]
FIRST, LAST = date(2025, 1, 1), date(2025, 1, 12)  # 12 days: three chunks of 4
CHUNK = 4
RUN_COLUMNS = ["_ingested_at", "_run_id"]  # what differs between any two runs, chunked or not
DAILY = {"daily": commands.asset_keys_in_groups(commands.GROUPS["daily"])}


def backfill_into(data_dir: Path, source_db: Path, monkeypatch: pytest.MonkeyPatch, chunk_days: int):
    """bronze → gold over FIRST..LAST into a fresh data folder and Dagster home, in runs of `chunk_days`."""
    data_dir.mkdir()
    shutil.copyfile(source_db, data_dir / "source.db")
    monkeypatch.setenv("RCM_DATA_DIR", str(data_dir))
    monkeypatch.setenv("DAGSTER_HOME", str(data_dir / "home"))
    (data_dir / "home").mkdir()
    runner = commands.Runner(dry_run=False, command="backfill")
    try:
        return runner, commands.run_range(runner, DAILY, FIRST, LAST, chunk_days=chunk_days)
    finally:
        runner.close()


def lake_tables(lake: Path) -> dict[str, pd.DataFrame]:
    """Every Parquet file of the lake by relative path, without the columns that name the run."""
    return {str(path.relative_to(lake)): pd.read_parquet(path).drop(columns=RUN_COLUMNS, errors="ignore")
            for path in sorted(lake.rglob("*.parquet"))}


def test_chunk_spans_are_consecutive_and_bounded():
    keys = [f"2025-01-{d:02d}" for d in range(1, 13)]
    assert commands.chunked(keys, 5) == [("2025-01-01", "2025-01-05"), ("2025-01-06", "2025-01-10"),
                                         ("2025-01-11", "2025-01-12")]
    assert commands.chunked(keys, 31) == [("2025-01-01", "2025-01-12")]
    assert commands.chunked(keys[:1], 1) == [("2025-01-01", "2025-01-01")]
    with pytest.raises(commands.UsageError):
        commands.chunked(keys, 0)


def test_chunked_backfill_writes_the_same_lake_as_one_run(synthetic_source, isolated_env, tmp_path, monkeypatch):
    monkeypatch.delenv("RCM_BACKFILL_CHUNK_DAYS", raising=False)
    _, chunked = backfill_into(tmp_path / "chunked", synthetic_source.source_db, monkeypatch, chunk_days=CHUNK)
    _, whole = backfill_into(tmp_path / "whole", synthetic_source.source_db, monkeypatch, chunk_days=365)
    assert [o.success for o in chunked] == [True, True, True]
    assert [o.success for o in whole] == [True]
    assert [o.label for o in chunked] == [f"bronze → silver → gold [chunk {n}/3]" for n in (1, 2, 3)]

    a, b = lake_tables(tmp_path / "chunked" / "lake"), lake_tables(tmp_path / "whole" / "lake")
    assert sorted(a) == sorted(b)
    assert sum(f"gold/claim_features/dt=2025-01-{d:02d}/part-0.parquet" in a for d in range(1, 13)) == 12
    for path in a:
        pd.testing.assert_frame_equal(a[path], b[path], obj=path)
    assert sum(len(f) for p, f in a.items() if p.startswith("gold/")) > 0

    # the chunk boundary matters: versions first seen in an earlier chunk change again in a later one,
    # and gold (reading the earlier chunk's version index from the lake) leaves them out as one run does
    silver = pd.concat([f.assign(dt=p.split("dt=")[1][:10]) for p, f in a.items() if p.startswith("silver/claims/")])
    chunk_of = silver["dt"].map(lambda d: (date.fromisoformat(d) - FIRST).days // CHUNK)
    spans = silver.assign(chunk=chunk_of).groupby(["claim_id", "claim_version"])["chunk"].nunique()
    crossing = spans[spans > 1].index
    assert len(crossing), "the synthetic source has no claim version spanning two chunks"
    # each such version is one decision, on the day it was first seen, in both lakes
    gold = pd.concat([f.assign(dt=p.split("dt=")[1][:10]) for p, f in a.items() if p.startswith("gold/")])
    first_day = silver.groupby(["claim_id", "claim_version"])["dt"].min()
    seen = gold.set_index(["claim_id", "claim_version"]).loc[list(crossing), "dt"]
    assert seen.index.is_unique and (seen == first_day.loc[list(crossing)]).all()

def rcm(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rcm_assets", *args], cwd=REPO, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=600)


def test_backfill_stops_at_the_first_failed_chunk_naming_it(source_in_data_dir, isolated_env, tmp_path):
    # a row repeated with the same (claim_id, updated_at) on 2025-01-07 fails bronze's blocking uniqueness check
    with sqlite3.connect(isolated_env / "source.db") as con:
        con.execute("INSERT INTO claims SELECT * FROM claims WHERE updated_at >= '2025-01-07' "
                    "AND updated_at < '2025-01-08' LIMIT 1")
    env = {"DAGSTER_HOME": str(tmp_path / "home"), "RCM_EXTRACT_LOOKBACK_DAYS": "0"}
    result = rcm("backfill", "--start", "2025-01-01", "--end", "2025-01-12", "--select", "bronze",
                 "--chunk-days", "5", env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert "bronze → silver → gold [chunk 1/3]: ok" in out
    assert ("stopped at bronze → silver → gold [chunk 2/3], 2025-01-06 .. 2025-01-10: it failed (the runs before "
            "it are written); not run: bronze → silver → gold 2025-01-11 .. 2025-01-12") in out
    assert "FAILED bronze/claims" in out and "2025-01-06..2025-01-10" in out
    assert "[chunk 3/3]" not in out
    written = sorted(p.name for p in (isolated_env / "lake" / "bronze" / "claims").iterdir())
    assert written == [f"dt=2025-01-0{d}" for d in range(1, 6)]


def test_chunk_days_flag_and_setting_are_checked(home_env):
    assert rcm("backfill", "--start", "2025-01-01", "--end", "2025-01-02", "--chunk-days", "0",
               env=home_env).returncode == 2
    bad = rcm("backfill", "--start", "2025-01-01", "--end", "2025-01-02",
              env={**home_env, "RCM_BACKFILL_CHUNK_DAYS": "a month"})
    assert bad.returncode == 2 and "RCM_BACKFILL_CHUNK_DAYS" in bad.stderr


@pytest.fixture()
def home_env(isolated_env: Path, tmp_path: Path) -> dict[str, str]:
    return {"DAGSTER_HOME": str(tmp_path / "home")}


@pytest.mark.parametrize(("read", "variable", "key", "default"), [
    (settings.backfill_chunk_days, "RCM_BACKFILL_CHUNK_DAYS", "backfill_chunk_days", 31),
    (settings.train_weeks_per_run, "RCM_TRAIN_WEEKS_PER_RUN", "train_weeks_per_run", 8),
])
def test_setting_from_the_environment_or_the_configuration_file(read, variable, key, default, isolated_env,
                                                                 tmp_path, monkeypatch):
    monkeypatch.delenv(variable, raising=False)
    monkeypatch.delenv("RCM_CONFIG", raising=False)
    assert read() == default
    config = tmp_path / "rcm.yaml"
    config.write_text(f"partitions:\n  {key}: 2\n")
    monkeypatch.setenv("RCM_CONFIG", str(config))
    assert read() == 2
    monkeypatch.setenv(variable, "7")
    assert read() == 7
    monkeypatch.setenv(variable, "0")
    with pytest.raises(settings.SettingError, match=variable):
        read()


def test_dagster_backfills_of_the_daily_layers_and_scores_are_bounded_by_the_chunk():
    """Every daily and scoring asset the CLI backfills is multi-run with the configured size, and the daily
    ones share one policy (Dagster never puts assets with different policies in one run)."""
    from rcm_assets import definitions
    from rcm_assets.defs import partitions

    graph = definitions.defs.resolve_asset_graph()
    keys = [k for group in ("daily", "scoring") for layer in commands.GROUPS[group]
            for k in commands.asset_keys_in_groups([layer]) if commands.op_name(k) is not None]
    policies = {k.to_user_string(): graph.get(k).assets_def.backfill_policy for k in keys}
    expected = dg.BackfillPolicy.multi_run(max_partitions_per_run=partitions.BACKFILL_CHUNK_DAYS)
    assert {name: p for name, p in policies.items() if p != expected} == {}
    assert "gold/claim_features" in policies and "predictions/claim_denial_scores" in policies
    # and no partitioned asset backfills a whole range in one run (monitoring included): each run is bounded
    unbounded = sorted(k.to_user_string() for k in graph.get_all_asset_keys()
                       if graph.get(k).is_partitioned and graph.get(k).assets_def.is_executable
                       and not (graph.get(k).assets_def.backfill_policy or expected).max_partitions_per_run)
    assert unbounded == []


def test_the_policy_size_follows_the_setting_when_the_code_location_loads(isolated_env):
    code = ("from rcm_assets import definitions; "
            "print(definitions.defs.resolve_asset_graph().get("
            "__import__('dagster').AssetKey(['gold','claim_features'])).assets_def.backfill_policy)")
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], cwd=REPO, capture_output=True, text=True,
                         env={**os.environ, "RCM_BACKFILL_CHUNK_DAYS": "9"}, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "max_partitions_per_run=9" in out.stdout


def test_the_weekly_model_assets_share_one_policy_of_the_weeks_per_run_setting():
    """The weekly assets backfill RCM_TRAIN_WEEKS_PER_RUN weeks per run (default 8), all with one policy so
    a chunk's training set, models and review are one run; `rcm backfill` cuts its weeks the same way.
    One week per run made the demo's twelve weeks twelve runs (half of its model time was start-up)."""
    from rcm_assets import definitions
    from rcm_assets.defs import partitions

    graph = definitions.defs.resolve_asset_graph()
    weekly = [k for k in commands.asset_keys_in_groups(commands.GROUPS["weekly"]) if commands.op_name(k)]
    assert {k.to_user_string() for k in weekly} >= {"model/training_set", "model/denial_model",
                                                    "model/denial_reason_model", "model/lifecycle_review"}
    expected = dg.BackfillPolicy.multi_run(max_partitions_per_run=partitions.TRAIN_WEEKS_PER_RUN)
    assert {k.to_user_string(): graph.get(k).assets_def.backfill_policy for k in weekly
            if graph.get(k).assets_def.backfill_policy != expected} == {}
    assert commands.policy_size(weekly, 1) == partitions.TRAIN_WEEKS_PER_RUN == 8


def test_a_dagster_backfills_chunks_run_one_at_a_time_in_order(tmp_path):
    """A new instance queues a backfill's runs one at a time (FIFO): chunk k+1's gold reads the version index
    chunk k wrote. The deployed dagster.yaml says the same (test_celery_postgres checks they agree)."""
    from rcm_assets.platform.instance import prepare_instance

    home = prepare_instance(tmp_path / "home")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
    assert {"key": "dagster/backfill", "value": {"applyLimitPerUniqueValue": True}, "limit": 1} in limits
