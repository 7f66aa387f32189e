"""A multi-partition backfill on the PostgreSQL + Celery stack of deploy/ writes what the in-process run writes.

Started here: a fresh PostgreSQL database as the Dagster instance (deploy/dagster.yaml as is), two
dagster-celery worker processes from deploy/start-worker.sh on RabbitMQ, the lake in an S3 bucket. The
backfill is a command an operator types: `dagster job execute -j daily_ingest_job` with the partition-range
tags and RCM_EXECUTOR=celery, one run whose steps are Celery tasks (`dagster asset materialize
--partition-range` takes only single-run assets, and the daily assets backfill in chunks: multi-run). The
same partitions materialized in process on a local lake give the same Parquet files, row for row (the
extraction run id and time aside).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import dagster as dg
import pandas as pd
import psycopg2
import pytest
import yaml

from rcm_assets_tests.conftest import failure_text, materialize_range
from rcm_assets_tests.production.lake_compare import DAILY_ASSETS, assert_same_lake
from rcm_assets_tests.production.services import DEPLOY, S3Server, report_figure
from rcm_assets_tests.production.stack import Stack, dagster_cli

FIRST, LAST = "2025-02-03", "2025-02-06"


def test_deploy_dagster_yaml_is_the_default_instance_on_postgres() -> None:
    """deploy/dagster.yaml = the single-machine dagster.yaml with PostgreSQL storage (they cannot drift)."""
    from rcm_assets.platform.instance import default_instance_config

    deployed = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    assert deployed.pop("storage") == {"postgres": {"postgres_url": {"env": "DAGSTER_POSTGRES_URL"}}}
    assert deployed == default_instance_config()
    workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())
    assert workspace == yaml.safe_load((DEPLOY.parent / "workspace.yaml").read_text())


def test_executor_follows_rcm_executor(monkeypatch: pytest.MonkeyPatch) -> None:
    from rcm_assets.platform.executor import executor_from_env

    monkeypatch.delenv("RCM_EXECUTOR", raising=False)
    assert executor_from_env() is dg.in_process_executor
    monkeypatch.setenv("RCM_EXECUTOR", "celery")
    monkeypatch.setenv("RCM_CELERY_QUEUE", "rcm-nightly")
    celery = executor_from_env()
    assert celery.name == "rcm_celery" and celery.executor_creation_fn is not None
    monkeypatch.setenv("RCM_EXECUTOR", "dask")
    with pytest.raises(ValueError, match="RCM_EXECUTOR='dask'.*in_process"):
        executor_from_env()


def _daily_assets() -> list:
    """daily_ingest_job's assets (groups bronze, silver, gold): gold reads the learned evidence from the lake."""
    from rcm_assets.defs import bronze, gold, learned, payer_rules, silver

    return [bronze.claims, bronze.remittances, silver.claims, silver.remittances, silver.claim_versions,
            payer_rules.authorization_denials, learned.adjudication_evidence, gold.claim_features]


@pytest.mark.slow
def test_celery_backfill_on_postgres_matches_in_process(stack: Stack, amqp_broker: str, isolated_env: Path,
                                                        s3_env: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    queue, workers, ready_seconds = stack.start_workers(amqp_broker, count=2)

    started = time.monotonic()
    tags = {"dagster/asset_partition_range_start": FIRST, "dagster/asset_partition_range_end": LAST}
    done = stack.run([dagster_cli(), "job", "execute", "-m", "rcm_assets.definitions", "-j", "daily_ingest_job",
                      "--tags", json.dumps(tags)],
                     RCM_EXECUTOR="celery", RCM_CELERY_BROKER=amqp_broker, RCM_CELERY_QUEUE=queue)
    celery_seconds = time.monotonic() - started
    assert done.returncode == 0, f"{done.stdout[-4000:]}\n{done.stderr[-6000:]}\n{stack.diagnostics()}"
    assert "celery" in done.stderr.lower(), "the run did not go through the Celery executor"

    # Every worker process executed steps (acks_late + prefetch 1: a busy worker leaves the next step to the other).
    tasks = {w.name: w.log.read_text(errors="replace").count("succeeded in") for w in workers}
    assert all(n >= 1 for n in tasks.values()), f"{tasks}\n{stack.diagnostics()}"

    # The nightly schedule (running by default) paused by an operator through deploy/workspace.yaml: the
    # state is stored in the same database.
    scheduled = stack.run([dagster_cli(), "schedule", "stop", "daily_ingest_schedule",
                           "-w", str(DEPLOY / "workspace.yaml")])
    assert scheduled.returncode == 0, scheduled.stdout[-2000:] + scheduled.stderr[-4000:]

    # The run, its events, the materialized partitions and the schedule state are in PostgreSQL.
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", stack.env["DAGSTER_POSTGRES_URL"])
    with dg.DagsterInstance.from_config(str(stack.home)) as instance:
        storages = [type(s).__name__ for s in (instance.run_storage, instance.event_log_storage,
                                               instance.schedule_storage)]
        assert storages == ["PostgresRunStorage", "PostgresEventLogStorage", "PostgresScheduleStorage"]
        runs = instance.get_runs()
        assert [r.status for r in runs] == [dg.DagsterRunStatus.SUCCESS]
        days = {d.date().isoformat() for d in pd.date_range(FIRST, LAST, freq="D")}
        for key in (["bronze", "claims"], ["gold", "claim_features"]):
            assert instance.get_materialized_partitions(dg.AssetKey(key)) == days
        states = {s.name: s.status.value for s in instance.all_instigator_state()}
        assert states == {"daily_ingest_schedule": "STOPPED"}, states
    with psycopg2.connect(stack.dagster_db_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM event_logs WHERE run_id = %s", (runs[0].run_id,))
        assert cur.fetchone()[0] > 0
        cur.execute("SELECT count(*) FROM instigators WHERE status = 'STOPPED'")
        assert cur.fetchone()[0] == 1

    # The same partitions in process, on a local lake: the same files.
    from rcm_assets.platform.resources import build_resources

    monkeypatch.setenv("RCM_SOURCE_URL", stack.source_url)
    monkeypatch.setenv("RCM_LAKE_URL", str(isolated_env / "lake"))
    started = time.monotonic()
    local = materialize_range(_daily_assets(), FIRST, LAST, dg.DagsterInstance.ephemeral(), build_resources("dev"))
    in_process_seconds = time.monotonic() - started
    assert local.success, failure_text(local)
    rows = assert_same_lake(str(isolated_env / "lake"), stack.lake_url)
    assert rows["bronze/claims"] > 0 and rows["gold/claim_features"] > 0

    report_figure(f"Celery backfill {FIRST}..{LAST} ({len(DAILY_ASSETS)} assets, 2 workers, S3 lake, PostgreSQL "
                  f"instance): {celery_seconds:.1f} s incl. CLI start; in process, local lake: "
                  f"{in_process_seconds:.1f} s; workers ready in {ready_seconds:.1f} s; tasks per worker {tasks}")
