"""A live `dagster dev` (webserver and daemon) on a small materialized world, shared by the UI tests.

The world, made before the servers start in a temporary DAGSTER_HOME and data folder: synthetic claims from
2025-01-01, the remittances of the training window's outcome days and the claims of its feature days through
bronze, silver and gold, and one model week (2025-02-03, short windows) trained, registered in MLflow and
promoted. Only the days the model reads are materialized: every partition costs its checks' events in the
on-disk SQLite event log. The servers run in their own process group and are stopped (and checked gone).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from unittest import mock

import pytest
import requests

from rcm_assets_tests.conftest import process_group_members

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CHROMIUM = Path("/usr/bin/chromium")
SYNTH_START = date(2025, 1, 1)
WORLD_DAYS = 33  # 2025-01-01 .. 2025-02-02
# Short windows: model week 2025-02-03 trains on claims submitted in [2025-01-06, 2025-01-13) labelled by
# outcomes known before 2025-02-03 (horizon 21 days, window 7, first week after 21 + 7 days).
WINDOWS = {"RCM_LABEL_HORIZON_DAYS": "21", "RCM_TRAIN_WINDOW_DAYS": "7", "RCM_MIN_TRAIN_DAYS": "7"}
MODEL_WEEK = "2025-02-03"
FEATURE_DAYS = ("2025-01-06", "2025-01-13")
OUTCOME_DAYS = ("2025-01-06", "2025-02-02")
# The world is small, so the model gate gets a small-sample configuration (what `rcm train` would pass).
MODEL_CONFIG = {"min_labelled_rows": 200, "auc_floor": 0.5}
WORLD_SCRIPT = """
import json, sys, warnings
warnings.simplefilter("ignore")
import dagster as dg
from rcm_assets.definitions import defs
from rcm_assets.platform.resources import build_resources
spec = json.loads(sys.argv[1])
instance = dg.DagsterInstance.get()
def run(keys, first, last, **kw):
    tags = {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
    result = dg.materialize([*defs.assets, *defs.asset_checks], instance=instance, resources=build_resources(),
                            selection=dg.AssetSelection.assets(*[dg.AssetKey(k.split("/")) for k in keys]),
                            tags=tags if first != last else {}, partition_key=None if first != last else first,
                            raise_on_error=False, **kw)
    if not result.success:
        sys.exit(f"world: {keys} {first}..{last} failed")
run(["bronze/remittances", "silver/remittances", "silver/remittances_rejects"], *spec["outcomes"])
run(["bronze/claims", "silver/claims", "silver/claims_rejects", "silver/claim_versions", "gold/claim_features"],
    *spec["features"])
run(["model/training_set", "model/denial_model"], spec["week"], spec["week"],
    run_config={"ops": {"model__denial_model": {"config": spec["model_config"]}}})
"""
LOAD_TIMEOUT = 180.0
POLL = 1.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _restore_sigint() -> None:
    """dagster maps SIGTERM onto SIGINT; children of a non-interactive shell inherit SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)



@dataclass
class LiveDagster:
    root: Path
    data_dir: Path
    home: Path
    env: dict[str, str]
    port: int
    proc: subprocess.Popen | None = None
    log: Path | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def tail(self, lines: int = 60) -> str:
        if self.log is None or not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def gql(self, query: str, variables: dict | None = None) -> dict:
        response = requests.post(f"{self.base}/graphql", json={"query": query, "variables": variables or {}},
                                 timeout=60)
        body = response.json()
        if response.status_code != 200 or body.get("errors"):
            pytest.fail(f"GraphQL error {response.status_code}: {str(body)[:2000]}\n{self.tail()}", pytrace=False)
        return body["data"]

    def wait_for(self, what: str, probe, timeout: float):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                pytest.fail(f"dagster dev exited ({self.proc.returncode}) waiting for {what}\n{self.tail()}",
                            pytrace=False)
            try:
                found = probe()
            except requests.RequestException:
                found = None
            if found:
                return found
            time.sleep(POLL)
        pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{self.tail()}", pytrace=False)

    def stop(self) -> list[int]:
        if self.proc is None:
            return []
        pgid = self.proc.pid
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        # dagster dev stops its daemon, webserver and code servers in turn: on a loaded 2-core host that
        # took over 30 s (measured); 60 s before SIGKILL, and a process still alive then fails the test
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process_group_members(pgid):
            time.sleep(0.5)
        leftovers = process_group_members(pgid)
        if leftovers:
            os.killpg(pgid, signal.SIGKILL)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        return leftovers


LOCATION_Q = """{ workspaceOrError { ... on Workspace { locationEntries { name
  locationOrLoadError { __typename ... on PythonError { message } } } } } }"""


@pytest.fixture(scope="package")
def live_dagster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDagster]:
    from rcm_assets.lib import settings
    from rcm_assets.platform.instance import prepare_instance
    from rcm_assets.synthetic import generate, write_source

    root = tmp_path_factory.mktemp("ui_live")
    data_dir = root / "data"
    data_dir.mkdir()
    overrides = {"RCM_DATA_DIR": str(data_dir), "RCM_ENV": "dev", "RCM_PHI_KEY": "ui-test-phi-key-0123456789",
                 "PYTHONUNBUFFERED": "1", **WINDOWS}
    dropped = ("DAGSTER_HOME", "RCM_SOURCE_URL", "RCM_LAKE_URL", "RCM_LANDING_DIR", "RCM_QUARANTINE_DIR",
               "MLFLOW_TRACKING_URI", "RCM_MLFLOW_ARTIFACTS", "RCM_PARTITIONS_START", "RCM_CONFIG")
    timings: dict[str, float] = {}
    with mock.patch.dict(os.environ, overrides):
        for name in dropped:
            os.environ.pop(name, None)
        home = prepare_instance(root / "dagster_home")
        started = time.monotonic()
        data = generate(start=SYNTH_START, days=WORLD_DAYS, claims_per_day=600, seed=1)
        write_source(data, settings.source_url())
        settings.landing_dir().mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        spec = {"outcomes": OUTCOME_DAYS, "features": FEATURE_DAYS, "week": MODEL_WEEK, "model_config": MODEL_CONFIG}
        done = subprocess.run([sys.executable, "-c", WORLD_SCRIPT, json.dumps(spec)], env=env, cwd=root,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
        timings["world_seconds"] = time.monotonic() - started
    live = LiveDagster(root=root, data_dir=data_dir, home=home, env=env, port=_free_port(), timings=timings)
    live.log = root / "dagster_dev.log"
    started = time.monotonic()
    with open(live.log, "wb") as out:
        live.proc = subprocess.Popen(
            [str(BIN / "dagster"), "dev", "-w", str(REPO / "workspace.yaml"), "-h", "127.0.0.1",
             "-p", str(live.port)],
            cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=_restore_sigint, start_new_session=True)
    try:
        def loaded() -> bool:
            entries = live.gql(LOCATION_Q)["workspaceOrError"].get("locationEntries", [])
            for entry in entries:
                loc = entry["locationOrLoadError"]
                if loc and loc["__typename"] == "PythonError":
                    pytest.fail(f"code location failed to load: {loc['message']}", pytrace=False)
                if loc and loc["__typename"] == "RepositoryLocation":
                    return True
            return False

        live.wait_for("the code location to load", loaded, LOAD_TIMEOUT)
        timings["server_start_seconds"] = time.monotonic() - started
        sys.stderr.write(f"live dagster: {', '.join(f'{k} {v:.0f}' for k, v in timings.items())}\n")
        yield live
    finally:
        leftovers = live.stop()
        assert not leftovers, f"dagster dev processes still alive: {leftovers}"
