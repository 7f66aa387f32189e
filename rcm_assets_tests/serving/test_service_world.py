"""The scoring service on the session pipeline's world: parity with the batch, the fallback, reloads on
promotion and rollback, the spool landing in predictions/presubmission_scores, and `rcm serve` over HTTP.

The pipeline's lake, reference files and registry are copied into this module's folder (the pipeline stays
read-only). The reason model and payer ratios of the day's week are trained here (the worklist needs them),
`serving/bundle` is published for the day, then claims of the day are scored through the service, and only
then is the batch run on the same day (scores re-scored, worklist): both must agree.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import requests
from fastapi.testclient import TestClient

from rcm_assets.defs import predictions, reason_model, serving, worklist
from rcm_assets.lib import champion as champion_lib
from rcm_assets.lib.settings import sqlite_url
from rcm_assets.serving.app import create_app
from rcm_assets.serving.bundle import ServeConfig
from rcm_assets.serving.schemas import claims_as_sent
from rcm_assets_tests.conftest import ENV_VARS, failure_text, materialize_range
from rcm_assets_tests.production.services import free_port

DAY = "2025-05-13"  # served by model week 2025-05-12 (the fixture's last trained week)
WEEK = "2025-05-12"
X12_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "x12"
# on the session pipeline: trains the day's reason-model week, re-runs the day's batch, starts `rcm serve`
# (2-3 minutes beyond the pipeline); CI runs it with the other slow tests (make test)
pytestmark = pytest.mark.slow
PHI = ("member_id", "patient_name", "patient_dob", "patient_address", "patient_zip")




@pytest.fixture(scope="module")
def world(pipeline, tmp_path_factory):
    from rcm_assets.platform.resources import MlflowResource, build_resources

    root = tmp_path_factory.mktemp("serving")
    data_dir = root / "data"
    shutil.copytree(pipeline.data_dir / "lake", data_dir / "lake")
    shutil.copytree(pipeline.data_dir / "reference", data_dir / "reference")
    (data_dir / "mlflow").mkdir(parents=True)
    shutil.copyfile(pipeline.data_dir / "mlflow" / "mlflow.db", data_dir / "mlflow" / "mlflow.db")
    env = {"RCM_DATA_DIR": str(data_dir), "RCM_PHI_KEY": pipeline.env["RCM_PHI_KEY"],
           "RCM_MLFLOW_ARTIFACTS": (data_dir / "mlflow" / "serving-artifacts").as_uri()}
    with pytest.MonkeyPatch.context() as mp:
        for name in ENV_VARS:
            mp.delenv(name, raising=False)
        for name, value in env.items():
            mp.setenv(name, value)
        resources = build_resources("dev")
        resources["mlflow_tracking"] = MlflowResource(
            tracking_uri=sqlite_url(data_dir / "mlflow" / "mlflow.db"),
            artifact_location=env["RCM_MLFLOW_ARTIFACTS"], experiment="rcm-serving-test")
        instance = dg.DagsterInstance.ephemeral()
        models = materialize_range([reason_model.denial_reason_model, reason_model.payer_allowed_ratios],
                                   WEEK, WEEK, instance, resources)
        assert models.success, failure_text(models)
        published = materialize_range([serving.bundle], DAY, DAY, instance, resources)
        assert published.success, failure_text(published)
    bronze = pd.read_parquet(data_dir / "lake" / "bronze" / "claims" / f"dt={DAY}" / "part-0.parquet")
    gold = pd.read_parquet(data_dir / "lake" / "gold" / "claim_features" / f"dt={DAY}" / "part-0.parquet")
    first = bronze.sort_values("updated_at", kind="stable").drop_duplicates(["claim_id", "claim_version"])
    keys = gold.set_index(["claim_id", "claim_version"]).index
    first = first[first.set_index(["claim_id", "claim_version"]).index.isin(keys)].reset_index(drop=True)
    return {"data_dir": data_dir, "env": env, "resources": resources, "instance": instance,
            "claims": claims_as_sent(first), "spool": root / "spool", "root": root}


@pytest.fixture()
def env_of(world, monkeypatch):
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in world["env"].items():
        monkeypatch.setenv(name, value)
    return world


def client_for(world, **overrides) -> TestClient:
    config = ServeConfig(day=DAY, reload_seconds=0, spool_dir=str(world["spool"]), **overrides)
    return TestClient(create_app(world["resources"], config))


def wait_ready(client: TestClient, seconds: float = 120) -> dict:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        answer = client.get("/readyz")
        if answer.status_code == 200:
            return answer.json()
        time.sleep(0.2)
    raise AssertionError(f"not ready after {seconds} s: {answer.json()}")


def test_bundle_names_the_versions_the_batch_uses(world):
    row = pd.read_parquet(world["data_dir"] / "lake" / "serving" / "bundle" / f"dt={DAY}" / "part-0.parquet")
    gold = pd.read_parquet(world["data_dir"] / "lake" / "gold" / "claim_features" / f"dt={DAY}" / "part-0.parquet")
    assert len(row) == 1
    assert row["feature_version"].iloc[0] == gold["feature_version"].iloc[0]
    assert row["champion_version"].iloc[0] is not None and row["fallback_version"].iloc[0] is not None
    assert row["reason_model_version"].iloc[0] is not None


def test_service_scores_as_the_batch_does(env_of):
    world = env_of
    claims = world["claims"]
    with client_for(world) as client:
        ready = wait_ready(client)
        assert ready["scored_by"] == "champion" and ready["serving_day"] == DAY
        answer = client.post("/v1/score", json={"claims": claims}, headers={"x-request-id": "parity-1"})
        assert answer.status_code == 200, answer.text
        served = answer.json()
        single = client.post("/v1/score", json=claims[0]).json()
    assert served["request_id"] == "parity-1" and served["scored_by"] == "champion"
    assert len(served["results"]) == len(claims)
    assert single["results"][0]["denial_probability"] == served["results"][0]["denial_probability"]
    # later, the batch on the same day: scores re-scored, the worklist's reasons
    with pytest.MonkeyPatch.context():
        scores = materialize_range([predictions.claim_denial_scores], DAY, DAY, world["instance"], world["resources"],
                                   run_config={"ops": {"predictions__claim_denial_scores": {"config": {"rescore": True}}}})
        lists = materialize_range([worklist.worklist], DAY, DAY, world["instance"], world["resources"],
                                  run_config={"ops": {"predictions__worklist": {"config": {"export": False}}}})
    assert scores.success and lists.success, failure_text(scores) + failure_text(lists)
    batch = pd.read_parquet(world["data_dir"] / "lake" / "predictions" / "worklist" / f"dt={DAY}" / "part-0.parquet")
    service = pd.DataFrame(served["results"])
    both = service.merge(batch, on=["claim_id", "claim_version"], suffixes=("", "_batch"), validate="one_to_one")
    assert len(both) == len(service) == len(batch)
    np.testing.assert_allclose(both["denial_probability"], both["denial_probability_batch"], rtol=0, atol=1e-9)
    assert (both["decision"] == both["decision_batch"]).all()
    assert (both["likely_reason"].fillna("") == both["likely_reason_batch"].fillna("")).all()
    assert (both["reason_category"].fillna("") == both["reason_category_batch"].fillna("")).all()
    assert both["likely_reason"].notna().all()
    assert (both["model_version"].astype(str) == both["model_version_batch"].astype(str)).all()
    # findings: biller sentences, each driver as the worklist words it, defects with what to fix
    texts = [f["text"] for r in served["results"] for f in r["findings"]]
    assert texts and all(isinstance(t, str) and t for t in texts)


def test_spool_lands_in_presubmission_scores_without_phi(env_of):
    world = env_of
    claims = world["claims"][:5]
    with client_for(world) as client:
        wait_ready(client)
        answer = client.post("/v1/score", json={"claims": claims}, headers={"x-request-id": "spool-1"})
        assert answer.status_code == 200
    today = datetime.now(UTC).date().isoformat()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(serving.SPOOL_ENV, str(world["spool"]))
        landed = materialize_range([serving.presubmission_scores], today, today, world["instance"], world["resources"])
    assert landed.success, failure_text(landed)
    stored = pd.read_parquet(world["data_dir"] / "lake" / "predictions" / "presubmission_scores" / f"dt={today}"
                             / "part-0.parquet")
    mine = stored[stored["request_id"] == "spool-1"]
    assert sorted(mine["claim_id"]) == sorted(c["claim_id"] for c in claims)
    assert list(stored.columns) == serving.SPOOL_COLUMNS
    assert not set(PHI) & set(stored.columns)
    text = stored.to_csv()
    for claim in claims:  # no claim content beyond its id: no member id, name or ZIP anywhere
        for column in ("member_id", "patient_name", "patient_address"):
            if claim[column]:
                assert str(claim[column]) not in text


def test_fallback_serves_when_the_champion_cannot_load_then_rollback_reloads(env_of):
    world = env_of
    mlf = world["resources"]["mlflow_tracking"]
    client = mlf.client()
    name = mlf.model_name
    champion = client.get_model_version_by_alias(name, champion_lib.ALIAS)
    broken = client.create_model_version(name, source=(world["root"] / "no-such-model").as_uri(),
                                         tags={"feature_version": champion.tags["feature_version"]})
    with client_for(world) as http:
        wait_ready(http)
        assert http.post("/v1/score", json=world["claims"][0]).json()["scored_by"] == "champion"
        champion_lib.promote(client, name, str(broken.version), datetime.fromisoformat(DAY).date(),
                             "test: an unloadable champion", "test")
        assert http.post("/v1/reload").json()["reloaded"] is True
        answer = http.post("/v1/score", json=world["claims"][0]).json()
        assert answer["scored_by"] == "fallback" and answer["results"][0]["scored_by"] == "fallback"
        assert f"champion v{broken.version} could not be loaded" in answer["scored_by_reason"]
        assert answer["model_name"].endswith("-fallback")
        metrics = http.get("/metrics").text
        assert 'rcm_serve_claims_scored_total{model_version="' in metrics and 'scored_by="fallback"' in metrics
        # a rollback to the earlier champion is served after a reload, without a restart
        champion_lib.rollback(client, name, str(champion.version), "test", today=datetime.fromisoformat(DAY).date())
        assert http.post("/v1/reload").json()["reloaded"] is True
        again = http.post("/v1/score", json=world["claims"][0]).json()
        assert again["scored_by"] == "champion" and again["model_version"] == str(champion.version)


def test_x12_claims_are_scored(env_of):
    world = env_of
    sample = X12_FIXTURES / "837p_5010.x12"
    with client_for(world) as client:
        wait_ready(client)
        answer = client.post("/v1/score/x12", content=sample.read_bytes(),
                             headers={"content-type": "application/edi-x12"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["results"] and all(0 <= r["denial_probability"] <= 1 for r in answer.json()["results"])


def test_rcm_serve_answers_over_http(env_of):
    """`rcm serve` as an operator starts it: a process on a free port, a claim scored over the socket."""
    world = env_of
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    env.update(world["env"], MLFLOW_TRACKING_URI=sqlite_url(world["data_dir"] / "mlflow" / "mlflow.db"),
               RCM_API_TOKEN="test-token", RCM_SERVE_SPOOL_DIR=str(world["spool"]))
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "rcm_assets", "serve", "--port", str(port), "--day", DAY,
                             "--reload-seconds", "0"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            time.sleep(0.2)
        ready_after = time.monotonic() - started
        claim = world["claims"][0]
        refused = requests.post(f"{base}/v1/score", json=claim, timeout=10)
        assert refused.status_code == 401
        answer = requests.post(f"{base}/v1/score", json=claim, timeout=30,
                               headers={"authorization": "Bearer test-token", "x-request-id": "http-1"})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["request_id"] == "http-1" and answer.headers["x-request-id"] == "http-1"
        assert body["results"][0]["claim_id"] == claim["claim_id"]
        assert requests.get(f"{base}/nope", timeout=5).status_code == 404
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    lines = [json.loads(line) for line in err.decode().splitlines() if line.startswith("{")]
    requests_logged = [r for r in lines if r.get("msg") == "request" and r.get("request_id") == "http-1"]
    assert requests_logged and requests_logged[0]["status"] == 200
    text = err.decode()
    for column in ("member_id", "patient_name", "patient_address", "icd10_primary"):
        if claim[column]:
            assert str(claim[column]) not in text, column
    assert ready_after < 300  # start-up itself is measured by benchmarks/bench_serve.py, not here
