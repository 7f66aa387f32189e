"""End to end against real servers: dagster-webserver and dagster-daemon on loopback, a temporary
DAGSTER_HOME and data folder, everything driven through the GraphQL API.

- the code location loads with every asset, check, sensor and schedule of `rcm_assets.definitions`;
- a partition backfill launched over GraphQL completes;
- a file dropped in the landing folder is picked up by the running sensor and lands its bronze partition;
- X12 837 and 835 files dropped there are picked up too, and declarative automation carries their day on
  to silver, gold and predictions (a champion was trained before the servers started: `rcm backfill`
  over the history, with short training windows so a few synthetic weeks suffice);
- a bad file ends in quarantine with a reason file;
- every process the test started is gone afterwards.

The landing files are dropped as soon as the servers are up, so the sensor ticks (30 s interval, 10 s
settle time) overlap the backfill instead of adding to it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from unittest import mock

import pandas as pd
import pytest
import requests

from rcm_assets_tests.conftest import process_group_members

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
WORKSPACE = REPO / "workspace.yaml"
BIN = Path(sys.executable).parent
LOCATION = "rcm_assets"
REPOSITORY = "__repository__"
LOAD_TIMEOUT = 180.0
BACKFILL_TIMEOUT = 240.0
LANDING_TIMEOUT = 240.0
AUTOMATION_TIMEOUT = 420.0  # silver, the version index, gold and predictions: a few 30 s automation ticks
STOP_TIMEOUT = 30.0
POLL = 2.0

SYNTH_START = date(2025, 1, 1)
BACKFILL_DAYS = ["2025-02-20", "2025-02-21"]  # after the CLI backfill: only the GraphQL backfill lands them
LANDING_DAY = date(2025, 2, 22)
# Short windows (horizon 21 + 28 training days) make 2025-02-17 the first model week; the history up to
# that Monday is backfilled (a champion serves it) and the X12 files of the next day flow to predictions.
# A small world's windows, and its gate floor: 28 days x 200 claims leave the first week's model with ~1,800 rows
# and few learned statistics (0.64 holdout AUC without reference files), so the floor is the one a hospital
# that small would set (as the other small worlds of the suite do).
WINDOWS = {"RCM_LABEL_HORIZON_DAYS": "21", "RCM_TRAIN_WINDOW_DAYS": "28", "RCM_MIN_TRAIN_DAYS": "21",
           "RCM_GATE_AUC_FLOOR": "0.60"}
MODEL_WEEK = date(2025, 2, 17)
X12_DAY = date(2025, 2, 18)
BAD_FILE = "claims_2025-01-08_bad.csv"
LANDING_TAG = "rcm/landing_file"
BACKFILL_ASSETS = [["bronze", "claims"], ["bronze", "remittances"], ["silver", "claims"],
                   ["silver", "claims_rejects"], ["silver", "remittances"], ["silver", "remittances_rejects"]]

WORKSPACE_Q = """{ workspaceOrError { __typename
  ... on Workspace { locationEntries { name loadStatus locationOrLoadError { __typename
      ... on RepositoryLocation { name repositories { name } }
      ... on PythonError { message stack } } } }
  ... on PythonError { message } } }"""
REPOSITORY_Q = """query($sel: RepositorySelector!) { repositoryOrError(repositorySelector: $sel) { __typename
  ... on Repository {
    assetNodes { assetKey { path } assetChecksOrError { __typename ... on AssetChecks { checks { name } } } }
    sensors { name sensorState { status } }
    schedules { name cronSchedule scheduleState { status } }
    jobs { name } }
  ... on PythonError { message } ... on RepositoryNotFoundError { message } } }"""
DAEMONS_Q = """{ instance { daemonHealth { allDaemonStatuses { daemonType required healthy
  lastHeartbeatErrors { message } } } } }"""
BACKFILL_M = """mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) { __typename
  ... on LaunchBackfillSuccess { backfillId }
  ... on PythonError { message stack } ... on Error { message } } }"""
BACKFILL_Q = """query($id: String!) { partitionBackfillOrError(backfillId: $id) { __typename
  ... on PartitionBackfill { status numPartitions runs(limit: 50) { runId status tags { key value } } }
  ... on PythonError { message } } }"""
RUNS_Q = """query($f: RunsFilter) { runsOrError(filter: $f, limit: 50) { __typename
  ... on Runs { results { runId status jobName tags { key value } } } ... on PythonError { message } } }"""
RUN_EVENTS_Q = """query($id: ID!) { logsForRun(runId: $id, limit: 500) { __typename
  ... on EventConnection { events { __typename ... on MessageEvent { message level } } } } }"""


# ---------------------------------------------------------------------------------------------------
# Processes


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _restore_sigint() -> None:
    """Children of a non-interactive shell inherit SIGINT ignored; dagster maps SIGTERM onto SIGINT, so
    without this neither signal would stop them (DAGSTER_NOTES §10.4)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"


def _processes_with(marker: str) -> list[int]:
    """Pids (not ours) whose environment holds `marker`: every process the servers started inherits it."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in environ.split(b"\0") and state != "Z":
            found.append(int(entry.name))
    return found



@dataclass
class Live:
    root: Path
    data_dir: Path
    home: Path
    env: dict[str, str]
    port: int
    data: Any = None
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)
    stopped: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"

    @property
    def marker(self) -> str:
        return f"DAGSTER_HOME={self.home}"

    def start(self, name: str, argv: list[str]) -> None:
        log = self.root / f"{name}.log"
        self.logs[name] = log
        with open(log, "wb") as out:
            self.procs[name] = subprocess.Popen(
                argv, cwd=self.root, env=self.env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                preexec_fn=_restore_sigint, start_new_session=True,  # own session and process group
            )

    def diagnostics(self) -> str:
        parts = []
        for name, proc in self.procs.items():
            parts.append(f"----- {name} (pid {proc.pid}, returncode {proc.poll()}) tail of {self.logs[name]}:")
            parts.append(_tail(self.logs[name]))
        return "\n".join(parts)

    def fail(self, message: str) -> None:
        pytest.fail(f"{message}\n{self.diagnostics()}", pytrace=False)

    def gql(self, query: str, variables: dict | None = None) -> dict:
        response = requests.post(self.url, json={"query": query, "variables": variables or {}}, timeout=60)
        body = response.json()
        if response.status_code != 200 or body.get("errors"):
            self.fail(f"GraphQL error {response.status_code}: {json.dumps(body)[:2000]}")
        return body["data"]

    def wait_for(self, what: str, probe: Callable[[], Any], timeout: float) -> Any:
        """Poll `probe` until it returns something truthy; fail with the servers' logs on timeout."""
        deadline, last = time.monotonic() + timeout, None
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    self.fail(f"{name} exited with {proc.returncode} while waiting for {what}")
            try:
                result = probe()
            except requests.RequestException as exc:
                result, last = None, exc
            if result:
                return result
            time.sleep(POLL)
        self.fail(f"timed out after {timeout:.0f} s waiting for {what} (last error: {last})")

    def stop(self) -> list[int]:
        """SIGTERM every process group, wait, SIGKILL leftovers; return the pids still alive (none)."""
        if self.stopped:
            return []
        self.stopped = True
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + STOP_TIMEOUT
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        # Children (code servers, run workers) share their parent's process group.
        while time.monotonic() < deadline and any(process_group_members(p.pid) for p in self.procs.values()):
            time.sleep(0.5)
        for proc in self.procs.values():
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        leftovers = set(_processes_with(self.marker))
        for proc in self.procs.values():
            leftovers |= set(process_group_members(proc.pid))
        for pid in leftovers:  # started by us (our DAGSTER_HOME in their environment) but escaped the group
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return sorted(leftovers)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    from rcm_assets.lib import settings
    from rcm_assets.platform.instance import prepare_instance
    from rcm_assets.synthetic import (
        generate,
        write_landing_file,
        write_reference_files,
        write_source,
        write_x12_files,
    )

    root = tmp_path_factory.mktemp("live")
    data_dir = root / "data"
    data_dir.mkdir()
    overrides = {"RCM_DATA_DIR": str(data_dir), "RCM_ENV": "dev", "RCM_PHI_KEY": "live-test-phi-key-0123456789",
                 "PYTHONUNBUFFERED": "1", **WINDOWS}
    dropped = ("DAGSTER_HOME", "RCM_SOURCE_URL", "RCM_LAKE_URL", "RCM_LANDING_DIR", "RCM_QUARANTINE_DIR",
               "MLFLOW_TRACKING_URI", "RCM_MLFLOW_ARTIFACTS", "RCM_PARTITIONS_START")
    with mock.patch.dict(os.environ, overrides):  # restored afterwards, DAGSTER_HOME included
        for name in dropped:
            os.environ.pop(name, None)
        home = prepare_instance(root / "dagster_home")  # storage created before two servers race on it
        data = generate(start=SYNTH_START, days=55, claims_per_day=200, seed=1)
        write_source(data, settings.source_url())
        write_reference_files(data, data_dir / "reference")  # the partial files the world's hospital has
        settings.landing_dir().mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        # the history and its first champion, through the CLI (another process: partitions are fixed at import)
        history = subprocess.run(
            [sys.executable, "-m", "rcm_assets", "backfill", "--start", SYNTH_START.isoformat(),
             "--end", MODEL_WEEK.isoformat()], env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
        assert history.returncode == 0, history.stdout[-3000:] + history.stderr[-3000:]
    live = Live(root=root, data_dir=data_dir, home=home, env=env, port=_free_port(), data=data)
    try:
        live.start("webserver", [str(BIN / "dagster-webserver"), "-w", str(WORKSPACE), "-h", "127.0.0.1",
                                 "-p", str(live.port)])
        live.start("daemon", [str(BIN / "dagster-daemon"), "run", "-w", str(WORKSPACE)])
        live.wait_for("the code location to load", lambda: _location_loaded(live), LOAD_TIMEOUT)
        # Drop the landing files now: the sensor works on them while the backfill runs.
        landing = data_dir / "landing"
        write_landing_file(data, LANDING_DAY, landing)
        (landing / BAD_FILE).write_text("foo,bar\n1,2\n")
        write_x12_files(data, [X12_DAY], landing, "UTC")
        yield live
    finally:
        live.stop()


def _location_loaded(live: Live) -> bool:
    data = live.gql(WORKSPACE_Q)["workspaceOrError"]
    if data["__typename"] != "Workspace":
        live.fail(f"workspaceOrError: {data}")
    for entry in data["locationEntries"]:
        loaded = entry["locationOrLoadError"]
        if entry["name"] != LOCATION or loaded is None:
            continue
        if loaded["__typename"] == "PythonError":
            live.fail(f"code location failed to load: {loaded['message']}\n{''.join(loaded['stack'])}")
        return loaded["__typename"] == "RepositoryLocation"
    return False


def _runs(live: Live, tags: dict[str, str] | None = None) -> list[dict]:
    variables = {"f": {"tags": [{"key": k, "value": v} for k, v in (tags or {}).items()]}}
    data = live.gql(RUNS_Q, variables)["runsOrError"]
    if data["__typename"] != "Runs":
        live.fail(f"runsOrError: {data}")
    return data["results"]


def _failure_messages(live: Live, run_id: str) -> str:
    events = live.gql(RUN_EVENTS_Q, {"id": run_id})["logsForRun"].get("events", [])
    return "\n".join(e.get("message", "") for e in events if e.get("level") in ("ERROR", "CRITICAL"))[-4000:]


# ---------------------------------------------------------------------------------------------------
# Tests (in order; they share the servers)


def test_location_loads_with_every_definition(live: Live):
    from rcm_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    repo_def = defs.get_repository_def()
    expected_assets = {key.to_user_string() for key in graph.get_all_asset_keys()}
    expected_checks = {(c.asset_key.to_user_string(), c.name) for c in graph.asset_check_keys}
    expected_sensors = {s.name for s in repo_def.sensor_defs}
    expected_schedules = {s.name: s.cron_schedule for s in repo_def.schedule_defs}
    expected_jobs = {j.name for j in repo_def.get_all_jobs() if not j.name.startswith("__")}

    sel = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY}
    repo = live.gql(REPOSITORY_Q, {"sel": sel})["repositoryOrError"]
    assert repo["__typename"] == "Repository", repo
    assets = {"/".join(node["assetKey"]["path"]) for node in repo["assetNodes"]}
    checks = set()
    for node in repo["assetNodes"]:
        found = node["assetChecksOrError"]
        assert found["__typename"] == "AssetChecks", found
        checks |= {("/".join(node["assetKey"]["path"]), c["name"]) for c in found["checks"]}
    sensors = {s["name"]: s["sensorState"]["status"] for s in repo["sensors"]}
    schedules = {s["name"]: s["cronSchedule"] for s in repo["schedules"]}

    assert assets == expected_assets
    assert checks == expected_checks
    assert set(sensors) == expected_sensors
    assert schedules == expected_schedules
    assert expected_jobs <= {j["name"] for j in repo["jobs"]}
    # A few by name, so an empty definitions object cannot pass.
    assert {"bronze/claims", "bronze/remittances", "silver/claims", "gold/claim_features"} <= assets
    assert ("bronze/claims", "required_columns_present") in checks
    assert sensors["landing_file_sensor"] == "RUNNING"  # default_status RUNNING: no UI toggle needed
    assert sensors["rcm_automation_sensor"] == "RUNNING"
    assert "daily_ingest_schedule" in schedules

    # The daemon processes that drive sensors, backfills and the run queue are alive.
    def daemons_healthy() -> bool:
        statuses = live.gql(DAEMONS_Q)["instance"]["daemonHealth"]["allDaemonStatuses"]
        wanted = {"SENSOR", "BACKFILL", "QUEUED_RUN_COORDINATOR", "ASSET"}
        return wanted <= {s["daemonType"] for s in statuses if s["healthy"]}

    live.wait_for("the sensor, backfill, run-queue and asset daemons to be healthy", daemons_healthy, 60)


def test_partition_backfill_over_graphql_completes(live: Live):
    params = {"assetSelection": [{"path": p} for p in BACKFILL_ASSETS], "partitionNames": BACKFILL_DAYS,
              "fromFailure": False, "title": "live test backfill", "tags": [{"key": "rcm/test", "value": "live"}]}
    launched = live.gql(BACKFILL_M, {"p": params})["launchPartitionBackfill"]
    if launched["__typename"] != "LaunchBackfillSuccess":
        live.fail(f"launchPartitionBackfill: {launched}")
    backfill_id = launched["backfillId"]

    def finished() -> dict | None:
        found = live.gql(BACKFILL_Q, {"id": backfill_id})["partitionBackfillOrError"]
        assert found["__typename"] == "PartitionBackfill", found
        return found if found["status"] not in ("REQUESTED", "CANCELING", "FAILING") else None

    result = live.wait_for(f"backfill {backfill_id} to finish", finished, BACKFILL_TIMEOUT)
    if result["status"] != "COMPLETED_SUCCESS":
        failures = "\n".join(f"run {r['runId']} {r['status']}: {_failure_messages(live, r['runId'])}"
                             for r in result["runs"] if r["status"] != "SUCCESS")
        live.fail(f"backfill ended {result['status']}:\n{failures}")
    assert result["runs"] and all(r["status"] == "SUCCESS" for r in result["runs"])
    lake = live.data_dir / "lake"
    for day in BACKFILL_DAYS:
        for table in (["bronze", "claims"], ["bronze", "remittances"], ["silver", "claims"]):
            assert (lake.joinpath(*table) / f"dt={day}" / "part-0.parquet").is_file(), (table, day)


def test_landing_file_is_picked_up_by_the_running_sensor(live: Live):
    name = f"claims_{LANDING_DAY.isoformat()}.csv"

    def landed() -> dict | None:
        runs = _runs(live, {LANDING_TAG: name})
        done = [r for r in runs if r["status"] in ("SUCCESS", "FAILURE", "CANCELED")]
        return done[0] if done else None

    run = live.wait_for(f"a run for landing file {name}", landed, LANDING_TIMEOUT)
    if run["status"] != "SUCCESS":
        live.fail(f"landing run {run['runId']} ended {run['status']}:\n{_failure_messages(live, run['runId'])}")
    tags = {t["key"]: t["value"] for t in run["tags"]}
    assert tags["dagster/partition"] == LANDING_DAY.isoformat()
    assert tags.get("dagster/sensor_name") == "landing_file_sensor"
    part = live.data_dir / "lake" / "bronze" / "claims" / f"dt={LANDING_DAY.isoformat()}" / "part-0.parquet"
    assert part.is_file()

    # The run logged JSON lines to its own file under RCM_DATA_DIR/logs (the instance's python_logs).
    run_log = live.data_dir / "logs" / f"{run['runId']}.jsonl"
    assert run_log.is_file(), sorted(p.name for p in (live.data_dir / "logs").glob("*"))
    lines = [json.loads(line) for line in run_log.read_text().splitlines()]
    assert lines and {line["run_id"] for line in lines} == {run["runId"]}
    assert any(line["event"] == "ASSET_MATERIALIZATION" and line["asset"] == "bronze/claims"
               and line["partition"] == LANDING_DAY.isoformat() for line in lines)


def test_x12_files_flow_through_the_sensor_and_automation_to_predictions(live: Live):
    names = sorted(p.name for p in (live.data_dir / "landing").iterdir() if p.suffix in (".837", ".835"))
    assert names == [f"claims_{X12_DAY.isoformat()}.837", f"remittances_{X12_DAY.isoformat()}.835"], names

    def landed(name: str) -> Callable[[], dict | None]:
        def check() -> dict | None:
            done = [r for r in _runs(live, {LANDING_TAG: name}) if r["status"] in ("SUCCESS", "FAILURE", "CANCELED")]
            return done[0] if done else None
        return check

    for name in names:
        run = live.wait_for(f"a run for X12 file {name}", landed(name), LANDING_TIMEOUT)
        if run["status"] != "SUCCESS":
            live.fail(f"X12 run {run['runId']} ended {run['status']}:\n{_failure_messages(live, run['runId'])}")
    lake, day = live.data_dir / "lake", X12_DAY.isoformat()
    for table in ("claims", "remittances"):
        assert (lake / "bronze" / table / f"dt={day}" / "part-0.parquet").is_file(), table
    scores = lake / "predictions" / "claim_denial_scores" / f"dt={day}" / "part-0.parquet"
    live.wait_for(f"automation to carry {day} to predictions", lambda: scores.is_file() or None, AUTOMATION_TIMEOUT)
    gold = pd.read_parquet(lake / "gold" / "claim_features" / f"dt={day}" / "part-0.parquet")
    scored = pd.read_parquet(scores)
    assert len(scored) == len(gold) > 100
    assert set(scored["claim_id"]) == set(gold["claim_id"])
    assert scored["denial_probability"].between(0, 1).all()


def test_bad_landing_file_ends_in_quarantine(live: Live):
    quarantine = live.data_dir / "quarantine"

    def quarantined() -> dict | None:
        for reason_file in quarantine.glob("*.reason.json") if quarantine.is_dir() else []:
            record = json.loads(reason_file.read_text())
            if record.get("file") == BAD_FILE:
                return record
        return None

    record = live.wait_for(f"{BAD_FILE} in quarantine", quarantined, LANDING_TIMEOUT)
    assert record["reason"] == "wrong_columns", record
    assert (quarantine / record["quarantined_as"]).is_file()
    assert not (live.data_dir / "landing" / BAD_FILE).exists()
    assert not _runs(live, {LANDING_TAG: BAD_FILE})  # nothing was requested for it


def test_teardown_leaves_no_process(live: Live):
    pids = [p.pid for p in live.procs.values()]
    leftovers = live.stop()
    assert not leftovers, f"processes left after SIGTERM/SIGKILL: {leftovers}"
    assert all(p.poll() is not None for p in live.procs.values())
    assert not any(process_group_members(pid) for pid in pids)
    assert not _processes_with(live.marker)
    for name, proc in live.procs.items():  # SIGTERM was enough: nobody needed the SIGKILL
        assert proc.returncode != -signal.SIGKILL, (name, _tail(live.logs[name]))
