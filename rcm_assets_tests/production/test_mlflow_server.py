"""The pipeline trains and registers its model through an MLflow tracking server (deploy/start-mlflow.sh)
whose backend store is PostgreSQL and whose artifacts live in the object store.

The model asset trains its first week on a copy of the session pipeline's silver and gold (the `pipeline`
fixture of conftest, already built for the other model tests), on the PostgreSQL Dagster instance of
deploy/, with the MLflow resource pointed at the server. The server proxies artifacts (`mlflow-artifacts:/`),
so the pipeline needs no object-store credentials for MLflow; the test loads the registered model back
through the server with none either.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import pytest
import requests

from rcm_assets_tests.conftest import PipelineRun, failure_text, materialize_range
from rcm_assets_tests.production.services import (
    DEPLOY,
    PostgresDatabases,
    Service,
    free_port,
    report_figure,
    sqlalchemy_url,
)
from rcm_assets_tests.production.stack import Stack

pytestmark = pytest.mark.slow

ARTIFACT_PREFIX = "mlflow"
MODEL_NAME = "rcm_denial_model"


@dataclass
class MlflowServer:
    url: str
    db_url: str
    service: Service


@pytest.fixture(scope="module")
def mlflow_server(stack: Stack, pg_databases: PostgresDatabases) -> Iterator[MlflowServer]:
    db_url = pg_databases.create("mlflow")
    port = free_port()
    env = {**stack.env, "MLFLOW_BACKEND_URI": sqlalchemy_url(db_url),
           "MLFLOW_ARTIFACTS_DESTINATION": f"s3://{stack.bucket}/{ARTIFACT_PREFIX}"}
    started = time.monotonic()
    # A client's keep-alive connection would otherwise hold uvicorn's graceful shutdown until the SIGKILL.
    argv = [str(DEPLOY / "start-mlflow.sh"), "--host", "127.0.0.1", "--port", str(port),
            "--uvicorn-opts", "--timeout-graceful-shutdown 2"]
    service = Service.start("mlflow", argv, env, stack.root / "mlflow.log")
    stack.services.append(service)
    url = f"http://127.0.0.1:{port}"
    service.wait_until(lambda: requests.get(f"{url}/health", timeout=2).status_code == 200, started, timeout=180)
    yield MlflowServer(url, db_url, service)


def test_pipeline_trains_and_registers_through_the_mlflow_server(stack: Stack, mlflow_server: MlflowServer,
                                                                 pipeline: PipelineRun, isolated_env: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import dagster as dg

    from rcm_assets.defs import model, training_set
    from rcm_assets.platform.io_manager import ParquetLakeIOManager
    from rcm_assets.platform.resources import MlflowResource

    lake = isolated_env / "lake"  # silver and gold of the session pipeline; this test writes its own model
    shutil.copytree(pipeline.data_dir / "lake", lake, ignore=shutil.ignore_patterns("model", "predictions"))
    resources = {**pipeline.resources, "lake": ParquetLakeIOManager(base_url=str(lake)),
                 "mlflow_tracking": MlflowResource(tracking_uri=mlflow_server.url,
                                                   artifact_location="mlflow-artifacts:/rcm-denials")}
    week = pipeline.weeks[0]
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", stack.env["DAGSTER_POSTGRES_URL"])
    for name, value in pipeline.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("RCM_DATA_DIR", str(isolated_env))
    started = time.monotonic()
    with dg.DagsterInstance.from_config(str(stack.home)) as instance:
        result = materialize_range([training_set.training_set, model.denial_model], week, week, instance, resources)
        train_seconds = time.monotonic() - started
        assert result.success, failure_text(result)
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"

    # Registered in the server's PostgreSQL backend store...
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_server.url)
    versions = client.search_model_versions(f"name='{MODEL_NAME}'")
    assert versions, f"no version of {MODEL_NAME} registered"
    with psycopg2.connect(mlflow_server.db_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM model_versions WHERE name = %s", (MODEL_NAME,))
        assert cur.fetchone()[0] == len(versions)
        cur.execute("SELECT count(*) FROM runs")
        assert cur.fetchone()[0] >= len(versions)

    # ...its artifacts in the object store, nothing in a local MLflow folder.
    keys = stack.s3.keys(stack.bucket, f"{ARTIFACT_PREFIX}/")
    assert any(k.endswith("/MLmodel") for k in keys), keys[:20]
    assert not (isolated_env / "mlflow").exists() and not Path("mlruns").exists()

    # The registered model loads back through the server (proxied artifacts: no S3 credentials here).
    import mlflow.sklearn

    for name in ("AWS_ENDPOINT_URL_S3", "MLFLOW_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    latest = max(versions, key=lambda v: int(v.version))
    loaded = mlflow.sklearn.load_model(f"models:/{MODEL_NAME}/{latest.version}")
    assert hasattr(loaded, "predict_proba")
    report_figure(f"MLflow server (PostgreSQL store, S3 artifacts) ready in {mlflow_server.service.seconds_to_start:.1f} s; "
                  f"model week {week} trained and registered through it in {train_seconds:.1f} s; "
                  f"{len(versions)} version(s), {len(keys)} artifact objects")
