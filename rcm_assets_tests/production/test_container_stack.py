"""The production stack in containers (Dockerfile, compose.yaml), built and started for real.

The slow test builds the images as `make image` does (deploy/images/build.sh: bases from Debian packages,
cached between runs; podman and podman-compose installed with apt-get when missing and we are root),
checks the project image runs as non-root with exactly the pinned set, starts compose.yaml with
podman-compose under a project name of its own, waits for the code location to load over the webserver's
GraphQL, generates a small synthetic source inside the stack, launches one partition of daily_ingest_job
(bronze -> gold) over GraphQL, so the daemon dequeues it, the code server runs it and the Celery worker
executes its steps, and checks the run succeeded and gold's Parquet file is in the lake volume. Everything
it started is removed at the end (containers, volumes, network). Figures go to stderr ([rcm figure]).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from rcm_assets_tests.production.services import REPO, report_figure

COMPOSE = REPO / "compose.yaml"
BUILD = REPO / "deploy" / "images" / "build.sh"
IMAGE = "localhost/rcm_assets:dev"
PARTITION = "2025-01-05"
PROJECT_SERVICES = ("mlflow", "code-server", "webserver", "daemon", "worker")


def _pins(text: str) -> dict[str, str]:
    """name -> version of `name==version` lines, names normalized as pip does (PEP 503)."""
    pins = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[re.sub(r"[-_.]+", "-", name.split("[", 1)[0]).lower().strip()] = version.strip()
    return pins


# ---------------------------------------------------------------------------------------------------
# The files, without building anything


def test_compose_file_orders_starts_checks_health_and_keeps_secrets_out() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "rabbitmq", "mlflow", "code-server", "webserver", "daemon", "worker",
                             "serve"}
    for name, service in services.items():
        assert service["restart"] == "unless-stopped", name
        assert name == "worker" or "healthcheck" in service, f"{name} has no healthcheck"
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services and condition["condition"] in ("service_healthy", "service_started")
        # Secrets only through the env file: no password or key written in the compose file itself.
        for key in service.get("environment") or {}:
            assert not re.search(r"PASS|SECRET|PHI_KEY|_URL$|BROKER", key) or key in (
                "RCM_LAKE_URL", "MLFLOW_TRACKING_URI"), f"{name}: {key} belongs in the env file"
    assert services["webserver"]["depends_on"] == {"code-server": {"condition": "service_healthy"}}
    assert services["code-server"]["depends_on"]["postgres"] == {"condition": "service_healthy"}
    assert {s["image"] for n, s in services.items() if n in PROJECT_SERVICES} == {"${RCM_IMAGE:-localhost/rcm_assets:dev}"}
    # The env file is never committed; its example names every secret the services read.
    assert ".env" in (REPO / ".gitignore").read_text().split()
    example = (REPO / ".env.example").read_text()
    for name in ("POSTGRES_PASSWORD", "DAGSTER_POSTGRES_URL", "MLFLOW_BACKEND_URI", "RABBITMQ_DEFAULT_PASS",
                 "RCM_CELERY_BROKER", "RCM_PHI_KEY", "RCM_SOURCE_URL", "RCM_API_TOKEN"):
        assert re.search(rf"^{name}=\S", example, re.M), name
    assert not re.search(r"^[A-Z_]+=\S*[ \t]+#", example, re.M), "podman reads a comment after a value as the value"


def test_dockerfile_installs_dependencies_before_the_code() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert "ARG BASE=python:3.11-slim" in text and "\nUSER rcm\n" in text
    deps = text.index("-c constraints.txt -r pyproject.toml")
    assert text.index("COPY pyproject.toml constraints.txt ./") < deps < text.index("COPY rcm_assets ./rcm_assets")
    ignored = [line for line in (REPO / ".dockerignore").read_text().splitlines() if line and line[0] != "#"]
    assert ignored[0] == "*" and "deploy/.env" in ignored


# ---------------------------------------------------------------------------------------------------
# Built and started


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _podman_env() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": os.environ.get("CONTAINERS_CONF")
            or str(REPO / "deploy" / "podman" / "containers.conf")}


def _run(argv: list[str], env: dict[str, str], timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


@dataclass
class ComposeStack:
    project: str
    env: dict[str, str]
    web: str
    log: Path
    started: float = 0.0  # when `up` began

    def container(self, service: str) -> str:
        return f"{self.project}_{service}_1"  # podman-compose 1.0's names

    def exec(self, service: str, command: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return _run(["podman", "exec", self.container(service), "bash", "-c", command], self.env, timeout)

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(f"{self.web}/graphql", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.load(response)
        assert "errors" not in answer, answer
        return answer["data"]

    def logs(self) -> str:
        parts = []
        for service in ("postgres", "rabbitmq", *PROJECT_SERVICES):
            done = _run(["podman", "logs", "--tail", "25", self.container(service)], self.env, check=False)
            parts.append(f"----- {service}:\n{done.stdout[-2500:]}{done.stderr[-2500:]}")
        return "\n".join(parts)


@pytest.fixture(scope="module")
def images() -> dict[str, float]:
    """`make image`'s script; skipped where podman cannot be had (not Linux with apt, not root)."""
    if shutil.which("podman-compose") is None and (shutil.which("apt-get") is None or os.geteuid() != 0):
        pytest.skip("podman-compose missing and cannot be installed here (needs apt-get as root)")
    started = time.monotonic()
    _run([str(BUILD)], _podman_env(), timeout=1200)
    return {"build_seconds": time.monotonic() - started}


@pytest.fixture(scope="module")
def compose_stack(images: dict[str, float], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComposeStack]:
    root = tmp_path_factory.mktemp("compose")
    landing = root / "landing"
    landing.mkdir()
    landing.chmod(0o777)  # the containers' user (uid 10001) moves refused files out of it
    secrets = (REPO / ".env.example").read_text().replace("CHANGE_ME_AT_LEAST_16_BYTES", "smoke-phi-key-0123456789")
    secrets = secrets.replace("CHANGE_ME", f"smoke-{uuid.uuid4().hex[:12]}")
    # The source: a synthetic SQLite file the test writes into the data volume (production: the billing DB).
    secrets = re.sub(r"^RCM_SOURCE_URL=.*$", "RCM_SOURCE_URL=sqlite:////var/lib/rcm/source/source.db", secrets,
                     flags=re.M)
    (root / "env").write_text(secrets)
    web_port = _free_port()
    env = {**_podman_env(), "RCM_ENV_FILE": str(root / "env"), "RCM_LANDING_HOST_DIR": str(landing),
           "RCM_IMAGE": IMAGE, "POSTGRES_IMAGE": "localhost/rcm-postgres:15", "RABBITMQ_IMAGE": "localhost/rcm-rabbitmq:3",
           "RCM_WEBSERVER_PORT": str(web_port), "RCM_MLFLOW_PORT": str(_free_port())}
    stack = ComposeStack(f"rcmsmoke{uuid.uuid4().hex[:8]}", env, f"http://127.0.0.1:{web_port}", root / "compose.log")
    compose = ["podman-compose", "-f", str(COMPOSE), "-p", stack.project]
    try:
        stack.started = time.monotonic()
        done = _run([*compose, "up", "-d", "--no-build"], env, timeout=300)
        stack.log.write_text(done.stdout + done.stderr)
        yield stack
    finally:
        _run([*compose, "down", "-v", "-t", "10"], env, timeout=300, check=False)
        for volume in _run(["podman", "volume", "ls", "-q", "--filter", f"label=io.podman.compose.project={stack.project}"],
                           env, check=False).stdout.split():
            _run(["podman", "volume", "rm", "-f", volume], env, check=False)
        _run(["podman", "network", "rm", "-f", f"{stack.project}_default"], env, check=False)


@pytest.mark.slow
def test_image_runs_as_non_root_with_exactly_the_pinned_set(images: dict[str, float]) -> None:
    done = _run(["podman", "run", "--rm", "--entrypoint", "sh", IMAGE, "-c", "id -u; pip freeze"], _podman_env())
    uid, *freeze = done.stdout.splitlines()
    assert uid == "10001"
    constraints = _pins((REPO / "constraints.txt").read_text())
    installed = _pins("\n".join(freeze))
    assert [line for line in freeze if "==" not in line] == ["rcm_assets @ file:///opt/rcm"]
    # Every installed distribution at its pinned version; every runtime dependency of pyproject present.
    assert {n: v for n, v in installed.items() if constraints.get(n) != v} == {}
    runtime = _pins("\n".join(_pyproject()["project"]["dependencies"]))
    assert {n: v for n, v in runtime.items() if installed.get(n) != v} == {}
    dev_only = {"pytest", "ruff", "moto", "playwright"}
    assert not dev_only & set(installed), "dev tools in the production image"
    size = _run(["podman", "image", "inspect", IMAGE, "--format", "{{.Size}}"], _podman_env()).stdout.strip()
    report_figure(f"images built in {images['build_seconds']:.0f} s (make image); {IMAGE}: "
                  f"{int(size) / 1e9:.2f} GB, {len(installed)} distributions, all pinned")


def _healthy(stack: ComposeStack, service: str, within: float) -> subprocess.CompletedProcess:
    """Run the service's healthcheck until it passes or `within` seconds pass (the last result either way): a
    check that fails once on a loaded machine is retried as compose's `retries` would."""
    deadline = time.monotonic() + within
    while True:
        check = _run(["podman", "healthcheck", "run", stack.container(service)], stack.env, check=False)
        if check.returncode == 0 or time.monotonic() > deadline:
            return check
        time.sleep(5)


def _pyproject() -> dict:
    import tomllib

    return tomllib.loads((REPO / "pyproject.toml").read_text())


LOCATION = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }"
LAUNCH = """mutation($p: ExecutionParams!) { launchPipelineExecution(executionParams: $p) { __typename
  ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } ... on InvalidSubsetError { message }
  ... on RunConfigValidationInvalid { errors { message } } } }"""
RUN_STATUS = "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"


@pytest.mark.slow
def test_compose_stack_materializes_a_partition_through_celery(compose_stack: ComposeStack) -> None:
    stack = compose_stack
    entry = None
    while time.monotonic() - stack.started < 300:
        try:
            entries = stack.graphql(LOCATION)["workspaceOrError"]["locationEntries"]
            entry = entries[0] if entries else None
            if entry and entry["locationOrLoadError"] and entry["locationOrLoadError"]["__typename"] == "RepositoryLocation":
                break
        except OSError:  # the webserver is not listening yet
            pass
        time.sleep(3)
    else:
        pytest.fail(f"the code location did not load over GraphQL in 300 s: {entry}\n{stack.logs()}")
    loaded_seconds = time.monotonic() - stack.started

    stack.exec("code-server", "mkdir -p /var/lib/rcm/source && python -W ignore -m rcm_assets.synthetic "
               "--start 2025-01-01 --days 7 --claims-per-day 100 --seed 7 --source-url "
               "sqlite:////var/lib/rcm/source/source.db --ground-truth /var/lib/rcm/source/truth.parquet")

    started = time.monotonic()
    launched = stack.graphql(LAUNCH, {"p": {
        "selector": {"repositoryLocationName": "rcm_assets", "repositoryName": "__repository__",
                     "jobName": "daily_ingest_job"},
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": PARTITION}]}}})["launchPipelineExecution"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    status = None
    while time.monotonic() - started < 300:
        status = stack.graphql(RUN_STATUS, {"id": run_id})["runOrError"]["status"]
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        time.sleep(2)
    run_seconds = time.monotonic() - started
    assert status == "SUCCESS", f"run {run_id}: {status}\n{stack.logs()}"

    # Gold's file in the lake volume, written by the Celery worker, which executed the run's steps.
    found = stack.exec("worker", "find /var/lib/rcm/lake -name '*.parquet' | sort").stdout.split()
    assert f"/var/lib/rcm/lake/gold/claim_features/dt={PARTITION}/part-0.parquet" in found, found
    worker_log = _run(["podman", "logs", stack.container("worker")], stack.env)
    assert (worker_log.stdout + worker_log.stderr).count("succeeded in") >= 7, stack.logs()
    rows = stack.exec("code-server", "python -c \"import pyarrow.parquet as pq; print(pq.read_metadata("
                      f"'/var/lib/rcm/lake/gold/claim_features/dt={PARTITION}/part-0.parquet').num_rows)\"")
    assert int(rows.stdout.split()[-1]) > 0

    # The healthchecks of the file pass (podman runs them on demand here: no systemd timers in CI, so the test
    # retries each as the engine would, within the file's retries x interval), and the MLflow server answers
    # the other containers by its service name.
    for service in ("postgres", "rabbitmq", "mlflow", "code-server", "webserver", "daemon"):
        check = _healthy(stack, service, within=120)
        assert check.returncode == 0, f"{service} unhealthy: {check.stdout}{check.stderr}\n{stack.logs()}"
    stack.exec("code-server", "python -c \"import mlflow; mlflow.MlflowClient('http://mlflow:5000').search_experiments()\"")

    report_figure(f"compose stack: code location loaded over GraphQL {loaded_seconds:.0f} s after `up`; "
                  f"daily_ingest_job {PARTITION} via daemon + Celery worker: {run_seconds:.0f} s")
