"""The production services the tests start or reach on loopback, each skipped with a reason when absent.

- an S3-compatible object store: moto's server (`moto_server`, a dev dependency) on a free port;
- PostgreSQL (RCM_TEST_PG_URL, default postgresql://postgres@127.0.0.1:5432/test): a fresh database per
  use, dropped at the end of the session, so nothing collides with other tests;
- RabbitMQ (RCM_TEST_AMQP_URL, default pyamqp://guest:guest@127.0.0.1:5672//) for the Celery workers;
- the MLflow tracking server and Celery workers are started by the tests' own fixtures from these.

Every process is started in its own session and stopped by its process group.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from rcm_assets_tests.conftest import process_group_members

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
PG_ADMIN_URL = os.environ.get("RCM_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
AMQP_URL = os.environ.get("RCM_TEST_AMQP_URL", "pyamqp://guest:guest@127.0.0.1:5672//")
S3_KEYS = {"AWS_ACCESS_KEY_ID": "rcm-test", "AWS_SECRET_ACCESS_KEY": "rcm-test-secret",
           "AWS_DEFAULT_REGION": "us-east-1"}
START_TIMEOUT = 90.0
STOP_TIMEOUT = 20.0


def sqlalchemy_url(url: str) -> str:
    """A postgresql:// URL for SQLAlchemy (Dagster, MLflow): SQLAlchemy 2.1 maps the bare scheme to psycopg 3,
    the project installs psycopg2."""
    return url.replace("postgresql://", "postgresql+psycopg2://", 1)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def reachable(host: str, port: int, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"


def _restore_sigint() -> None:
    """Children of a non-interactive shell inherit SIGINT ignored (see test_live_daemon)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@dataclass
class Service:
    """A server process started by a test, in its own process group, with its output in a log file."""

    name: str
    proc: subprocess.Popen
    log: Path
    seconds_to_start: float = 0.0

    @classmethod
    def start(cls, name: str, argv: list[str], env: dict[str, str], log: Path, cwd: Path | None = None) -> Service:
        with open(log, "wb") as out:
            proc = subprocess.Popen(argv, env=env, cwd=cwd or log.parent, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, preexec_fn=_restore_sigint, start_new_session=True)
        return cls(name, proc, log)

    def wait_until(self, ready: Callable[[], bool], started: float, timeout: float = START_TIMEOUT) -> None:
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{tail(self.log)}")
            try:
                if ready():
                    self.seconds_to_start = time.monotonic() - started
                    return
            except Exception:  # not up yet
                pass
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f} s:\n{tail(self.log)}")

    def stop(self) -> None:
        """SIGTERM the process group, then SIGKILL what is left of it."""
        for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and process_group_members(self.proc.pid):
                self.proc.poll()
                time.sleep(0.2)
        self.proc.poll()



# ---------------------------------------------------------------------------------------------------
# S3 (moto server)


@dataclass
class S3Server:
    service: Service
    endpoint: str

    @property
    def env(self) -> dict[str, str]:
        """What every process needs to reach this store: boto3/s3fs read AWS_ENDPOINT_URL_S3, MLflow its own."""
        return {**S3_KEYS, "AWS_ENDPOINT_URL_S3": self.endpoint, "MLFLOW_S3_ENDPOINT_URL": self.endpoint}

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=S3_KEYS["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=S3_KEYS["AWS_SECRET_ACCESS_KEY"],
                            region_name=S3_KEYS["AWS_DEFAULT_REGION"])

    def new_bucket(self, prefix: str = "rcm") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        paginator = self.client().get_paginator("list_objects_v2")
        return sorted(obj["Key"] for page in paginator.paginate(Bucket=bucket, Prefix=prefix)
                      for obj in page.get("Contents", []))


_RUNNING_S3: list[S3Server] = []


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto's S3 server on a free loopback port, one for the whole session.

    The fixture is imported by more than one conftest/test module, and pytest then makes one instance per
    definition; s3fs caches its filesystems (and their endpoint) per process, so a second server would be
    silently ignored. The first instance starts the server; the others reuse it.
    """
    if _RUNNING_S3:
        yield _RUNNING_S3[0]
        return
    binary = BIN / "moto_server"
    if not binary.exists():
        pytest.skip(f"moto_server not installed next to {sys.executable} (make install adds moto[s3])")
    port = free_port()
    log = tmp_path_factory.mktemp("s3") / "moto.log"
    started = time.monotonic()
    service = Service.start("moto_server", [str(binary), "-H", "127.0.0.1", "-p", str(port)],
                            {**os.environ, **S3_KEYS}, log)
    server = S3Server(service, f"http://127.0.0.1:{port}")
    try:
        service.wait_until(lambda: server.client().list_buckets() is not None, started)
        _RUNNING_S3.append(server)
        yield server
    finally:
        _RUNNING_S3.clear()
        service.stop()


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """This test's process reaches the session's S3 server through the standard AWS variables."""
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    return s3_server


# ---------------------------------------------------------------------------------------------------
# PostgreSQL


@dataclass
class PostgresDatabases:
    """Creates databases named rcm_<purpose>_<random> on the test server; drops them all at the end."""

    admin_url: str
    created: list[str] = field(default_factory=list)

    def _connect(self):
        import psycopg2

        conn = psycopg2.connect(self.admin_url, connect_timeout=5)
        conn.autocommit = True
        return conn

    def create(self, purpose: str) -> str:
        name = f"rcm_{purpose}_{uuid.uuid4().hex[:10]}"
        conn = self._connect()  # autocommit: CREATE DATABASE cannot run in a transaction
        try:
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        self.created.append(name)
        parts = urlsplit(self.admin_url)
        return parts._replace(scheme="postgresql", path=f"/{name}").geturl()

    def drop_all(self) -> None:
        conn = self._connect()
        try:
            with conn.cursor() as cur:
                for name in self.created:
                    cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            conn.close()


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[PostgresDatabases]:
    databases = PostgresDatabases(PG_ADMIN_URL.replace("postgresql+psycopg2://", "postgresql://"))
    try:
        databases._connect().close()
    except Exception as exc:
        pytest.skip(f"PostgreSQL at {urlsplit(PG_ADMIN_URL).netloc.rsplit('@', 1)[-1]} unreachable "
                    f"({type(exc).__name__}); set RCM_TEST_PG_URL")
    try:
        yield databases
    finally:
        databases.drop_all()


# ---------------------------------------------------------------------------------------------------
# RabbitMQ


@pytest.fixture(scope="session")
def amqp_broker() -> str:
    parts = urlsplit(AMQP_URL)
    host, port = parts.hostname or "127.0.0.1", parts.port or 5672
    if not reachable(host, port):
        pytest.skip(f"RabbitMQ broker at {host}:{port} unreachable; set RCM_TEST_AMQP_URL")
    return AMQP_URL


def report_figure(text: str) -> None:
    """A measured figure (service start, run time): on stderr, shown with `pytest -s` or on failure."""
    sys.stderr.write(f"[rcm figure] {text}\n")
