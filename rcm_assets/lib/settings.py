"""Where things live by default: one place that reads the environment, at call time (never at import).

Embedded defaults put everything under RCM_DATA_DIR (default ./data) so a new user needs no server:

    <data>/source.db            SQLite source database (RCM_SOURCE_URL overrides)
    <data>/lake/                Hive-layout Parquet lake (RCM_LAKE_URL overrides; any fsspec URL)
    <data>/landing/             landing folder watched by the file sensor (RCM_LANDING_DIR)
    <data>/quarantine/          files the sensor refused, each with a .reason.txt
    <data>/ground_truth/        true denial probabilities (evaluation only; never read by the pipeline)
    <data>/mlflow/              MLflow tracking database and artifacts (MLFLOW_TRACKING_URI overrides)
    <data>/logs/                JSON-lines run logs
"""

from __future__ import annotations

import os
from pathlib import Path

ENVIRONMENTS = ("dev", "prod")


def data_dir() -> Path:
    return Path(os.environ.get("RCM_DATA_DIR", "data")).expanduser().resolve()


def sqlite_url(path: Path) -> str:
    """An absolute SQLAlchemy SQLite URL (four slashes), independent of the working directory."""
    return f"sqlite:///{path.resolve()}"


def source_url() -> str:
    return os.environ.get("RCM_SOURCE_URL") or sqlite_url(data_dir() / "source.db")


def lake_url() -> str:
    return os.environ.get("RCM_LAKE_URL") or str(data_dir() / "lake")


def landing_dir() -> Path:
    return Path(os.environ.get("RCM_LANDING_DIR") or data_dir() / "landing").resolve()


def quarantine_dir() -> Path:
    return Path(os.environ.get("RCM_QUARANTINE_DIR") or data_dir() / "quarantine").resolve()


def ground_truth_path() -> Path:
    return data_dir() / "ground_truth" / "claims_truth.parquet"


def mlflow_tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or sqlite_url(data_dir() / "mlflow" / "mlflow.db")


def mlflow_artifact_location() -> str:
    return os.environ.get("RCM_MLFLOW_ARTIFACTS") or (data_dir() / "mlflow" / "artifacts").as_uri()


def logs_dir() -> Path:
    return data_dir() / "logs"


def environment() -> str:
    """The deployment environment, `dev` unless RCM_ENV says otherwise; unknown values are refused."""
    env = os.environ.get("RCM_ENV", "dev").strip().lower()
    if env not in ENVIRONMENTS:
        raise ValueError(f"RCM_ENV={env!r} is not one of {ENVIRONMENTS}")
    return env
