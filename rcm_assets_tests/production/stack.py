"""The PostgreSQL + Celery + object-storage stack of deploy/, started for a test module.

One temporary DAGSTER_HOME holds deploy/dagster.yaml verbatim (runs, event logs and schedules in a fresh
PostgreSQL database), the lake is a fresh bucket on the session's S3 server, the source is a copy of the
session's synthetic SQLite file. `Stack.env` is the environment every process of the deployment gets.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from rcm_assets_tests.conftest import ENV_VARS, SyntheticSource
from rcm_assets_tests.production.services import BIN, DEPLOY, REPO, S3Server, Service, sqlalchemy_url, tail

PHI_KEY = "test-phi-key-0123456789abcdef"  # the same key as the in-process runs: the same member tokens
WORKER_READY = re.compile(rb"@\S+ ready\.")


@dataclass
class Stack:
    root: Path
    home: Path
    data_dir: Path
    source_url: str
    lake_url: str
    bucket: str
    dagster_db_url: str
    s3: S3Server
    env: dict[str, str]
    services: list[Service] = field(default_factory=list)
    queues: list[tuple[str, str]] = field(default_factory=list)  # (broker, queue) to delete at the end

    def run(self, argv: list[str], timeout: float = 600, **extra_env: str) -> subprocess.CompletedProcess:
        """A command of the deployment (the dagster or rcm CLI) in its environment; output captured."""
        return subprocess.run(argv, env={**self.env, **extra_env}, cwd=self.root, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def start_workers(self, broker: str, count: int = 2) -> tuple[str, list[Service], float]:
        """`count` dagster-celery worker processes started by deploy/start-worker.sh on a queue of their own
        (other tests on the same broker never take its tasks); returns the queue, the workers, seconds to ready."""
        queue = f"rcm-test-{uuid.uuid4().hex[:10]}"
        env = {**self.env, "RCM_CELERY_BROKER": broker, "RCM_CELERY_QUEUE": queue}
        started = time.monotonic()
        workers = [Service.start(f"worker{i}", [str(DEPLOY / "start-worker.sh"), f"worker{i}-{queue}"],
                                 env, self.root / f"worker{i}.log") for i in range(count)]
        self.services.extend(workers)
        self.queues.append((broker, queue))
        for worker in workers:
            worker.wait_until(lambda w=worker: bool(WORKER_READY.search(w.log.read_bytes())), started)
        return queue, workers, time.monotonic() - started

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop()
        for broker, queue in self.queues:  # Celery declares its queues durable: leave none behind
            from kombu import Connection

            with Connection(broker, connect_timeout=5) as connection:
                connection.default_channel.queue_delete(queue)

    def diagnostics(self) -> str:
        return "\n".join(f"----- {s.name} (exit {s.proc.poll()}):\n{tail(s.log)}" for s in self.services)


def build_stack(root: Path, synthetic: SyntheticSource, s3: S3Server, dagster_db_url: str) -> Stack:
    from rcm_assets.lib import settings

    home, data_dir = root / "dagster_home", root / "data"
    home.mkdir()
    data_dir.mkdir()
    shutil.copyfile(DEPLOY / "dagster.yaml", home / "dagster.yaml")
    source = data_dir / "source.db"
    shutil.copyfile(synthetic.source_db, source)
    bucket = s3.new_bucket("stack")
    lake_url = f"s3://{bucket}/lake"
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS and not k.startswith(("RCM_", "MLFLOW_"))}
    env.update(s3.env)
    env.update({
        "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",  # the deploy scripts call dagster-celery, mlflow
        "DAGSTER_HOME": str(home), "DAGSTER_POSTGRES_URL": sqlalchemy_url(dagster_db_url),
        "RCM_DATA_DIR": str(data_dir), "RCM_PHI_KEY": PHI_KEY, "RCM_ENV": "dev",
        "RCM_SOURCE_URL": settings.sqlite_url(source), "RCM_LAKE_URL": lake_url,
        "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO),
    })
    return Stack(root, home, data_dir, settings.sqlite_url(source), lake_url, bucket, dagster_db_url, s3, env)


def dagster_cli() -> str:
    return str(Path(sys.executable).parent / "dagster")
