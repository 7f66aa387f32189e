"""`rcm model history`: every decision as one readable sentence (issue 13.7), on the pipeline's registry."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

from rcm_assets.lib import champion as champion_lib
from rcm_assets.lib.settings import sqlite_url

REPO = Path(__file__).resolve().parents[2]


def test_history_prints_one_sentence_per_decision(pipeline, isolated_env):
    (isolated_env / "mlflow").mkdir()
    shutil.copyfile(pipeline.data_dir / "mlflow" / "mlflow.db", isolated_env / "mlflow" / "mlflow.db")
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=sqlite_url(isolated_env / "mlflow" / "mlflow.db"))
    name = pipeline.resources["mlflow_tracking"].model_name
    champion_lib.rollback(client, name, "1", by="test-operator", today=date(2025, 6, 2))
    events = champion_lib.history(client, name)

    done = subprocess.run([sys.executable, "-m", "rcm_assets", "model", "history"], cwd=REPO,
                          env={**os.environ, "RCM_DATA_DIR": str(isolated_env)}, capture_output=True, text=True,
                          timeout=300)

    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if " from 20" in line]
    assert len(lines) == len(events) >= 2
    promotions = [line for line in lines if " promote " in line]
    assert promotions and all("Promoted: holdout ROC AUC" in line and "serves from" in line for line in promotions)
    assert "rollback" in lines[-1] and "Rollback by test-operator: v1 serves from 2025-06-02" in lines[-1]
    assert "current champion: v1" in done.stdout
