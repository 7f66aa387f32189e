"""Where things live by default: one place that reads the environment, at call time (never at import).

Embedded defaults put everything under RCM_DATA_DIR (default ./data) so a new user needs no server:

    <data>/source.db            SQLite source database (RCM_SOURCE_URL overrides)
    <data>/lake/                Hive-layout Parquet lake (RCM_LAKE_URL overrides; any fsspec URL)
    <data>/landing/             landing folder watched by the file sensor (RCM_LANDING_DIR)
    <data>/quarantine/          files the sensor refused, each with a .reason.json
    <data>/ground_truth/        true denial probabilities (evaluation only; never read by the pipeline)
    <data>/mlflow/              MLflow tracking database and artifacts (MLFLOW_TRACKING_URI overrides)
    <data>/logs/                JSON-lines run logs

Times: every timestamp in a frame is naive UTC; `service_date` is a local calendar date. The facility's
IANA time zone (RCM_FACILITY_TZ, default UTC) says which local date a timestamp falls on (`local_dates`).
"""

from __future__ import annotations

import os
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rcm_assets.lib import config_file, exports
from rcm_assets.lib.exports import ExportPermissions

if TYPE_CHECKING:  # pandas is imported where frames are handled, so `rcm status` and `--help` start fast
    import pandas as pd

# dev and demo use the embedded defaults (SQLite source, local lake and MLflow); only demo, the synthetic
# world of `rcm demo`, may use the published PHI key (`transforms.load_phi_key`); prod refuses embedded defaults.
ENVIRONMENTS = ("dev", "demo", "prod")


class SettingError(config_file.ConfigError):
    """A setting (environment variable or configuration file value) that cannot be used; names it."""


FACILITY_TZ_ENV = "RCM_FACILITY_TZ"
DEFAULT_FACILITY_TZ = "UTC"
# Easternmost UTC offset in the time zone database (Pacific/Kiritimati): no local date is later than
# the UTC instant plus this, whatever the facility's zone.
MAX_UTC_OFFSET = timedelta(hours=14)


def setting(name: str, default: str | None = None) -> str | None:
    """The value of setting `name` (its environment variable's name): the environment first, then the
    configuration file named by RCM_CONFIG (`lib.config_file`), then `default`. Read at call time."""
    value = os.environ.get(name)
    if value:
        return value
    return config_file.active().get(name, default)


def where(name: str) -> str:
    """Where setting `name` comes from, for error messages: the variable, or the file's key and the file."""
    if not os.environ.get(name) and name in config_file.active() and name in config_file.BY_ENV:
        return f"{config_file.BY_ENV[name].key} (in {config_file.active_path()})"
    return name


def from_config_file(name: str) -> str | None:
    """The value the configuration file gives `name`, when the environment does not set it."""
    return None if os.environ.get(name) else config_file.active().get(name)


def data_dir() -> Path:
    return Path(setting("RCM_DATA_DIR", "data")).expanduser().resolve()


def sqlite_url(path: Path) -> str:
    """An absolute SQLAlchemy SQLite URL (four slashes), independent of the working directory."""
    return f"sqlite:///{path.resolve()}"


def source_url() -> str:
    return setting("RCM_SOURCE_URL") or sqlite_url(data_dir() / "source.db")


def lake_url() -> str:
    return setting("RCM_LAKE_URL") or str(data_dir() / "lake")


def landing_dir() -> Path:
    return Path(setting("RCM_LANDING_DIR") or data_dir() / "landing").resolve()


def quarantine_dir() -> Path:
    return Path(setting("RCM_QUARANTINE_DIR") or data_dir() / "quarantine").resolve()


def reference_dir() -> Path:
    """The hospital's reference files (payers.csv, prior_auth_list.csv, chargemaster.csv,
    code_categories.csv; each optional: docs/REFERENCE_DATA.md)."""
    return Path(setting("RCM_REFERENCE_DIR") or data_dir() / "reference").resolve()


def ground_truth_path() -> Path:
    return data_dir() / "ground_truth" / "claims_truth.parquet"


def mlflow_tracking_uri() -> str:
    return setting("MLFLOW_TRACKING_URI") or sqlite_url(data_dir() / "mlflow" / "mlflow.db")


def mlflow_artifact_location() -> str:
    return setting("RCM_MLFLOW_ARTIFACTS") or (data_dir() / "mlflow" / "artifacts").as_uri()


def logs_dir() -> Path:
    return data_dir() / "logs"


def partitions_start() -> date:
    """First day of the daily partitions (RCM_PARTITIONS_START, default 2025-01-01)."""
    raw = setting("RCM_PARTITIONS_START", "2025-01-01")
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise SettingError(f"{where('RCM_PARTITIONS_START')}={raw!r} is not a date (YYYY-MM-DD)") from None


def check_time_zone(name: str, *, setting: str = FACILITY_TZ_ENV) -> str:
    """`name` when it is an IANA time zone (e.g. America/New_York); ValueError naming `setting` otherwise."""
    try:
        if not isinstance(name, str) or not name.strip() or name != name.strip():
            raise ValueError(name)
        ZoneInfo(name)
    except (ValueError, OSError, ZoneInfoNotFoundError):
        raise SettingError(f"{setting}={name!r} is not an IANA time zone name (e.g. 'America/New_York', "
                         "'Asia/Tokyo', 'UTC')") from None
    return name


def facility_tz() -> str:
    """The facility's IANA time zone (RCM_FACILITY_TZ, default UTC): where service dates are local dates."""
    if FACILITY_TZ_ENV in os.environ:  # set, even empty, it is what the operator asked for: checked as is
        return check_time_zone(os.environ[FACILITY_TZ_ENV])
    return check_time_zone(setting(FACILITY_TZ_ENV, DEFAULT_FACILITY_TZ))


def local_dates(utc: pd.Series, tz: str | None) -> pd.Series:
    """Local calendar date in `tz` (midnight, naive datetime64[ns]) of naive-UTC timestamps; NaT stays NaT.

    `tz=None` means "any zone": the latest local date anywhere (UTC+14), the zone-independent bound.
    """
    import pandas as pd

    ts = pd.Series(utc).astype("datetime64[ns]")
    if tz is None:
        return (ts + MAX_UTC_OFFSET).dt.normalize()
    if check_time_zone(tz, setting="time zone") == "UTC":
        return ts.dt.normalize()
    return ts.dt.tz_localize("UTC").dt.tz_convert(tz).dt.tz_localize(None).dt.normalize().astype("datetime64[ns]")


def _positive_int(name: str, default: int) -> int:
    raw = setting(name, str(default))
    if not raw.isdigit() or int(raw) <= 0:
        raise SettingError(f"{where(name)}={raw!r} must be a positive whole number of days")
    return int(raw)


def train_window_days() -> int:
    """Length of the rolling training window (RCM_TRAIN_WINDOW_DAYS, default 180)."""
    return _positive_int("RCM_TRAIN_WINDOW_DAYS", 180)


def label_horizon_days() -> int:
    """Label-maturity horizon between the window end and the cutoff (RCM_LABEL_HORIZON_DAYS, default 60)."""
    return _positive_int("RCM_LABEL_HORIZON_DAYS", 60)


def min_train_days() -> int:
    """Days of matured claims the first model needs (RCM_MIN_TRAIN_DAYS, default 56)."""
    return _positive_int("RCM_MIN_TRAIN_DAYS", 56)


DEFAULT_BACKFILL_CHUNK_DAYS = 31


def backfill_chunk_days() -> int:
    """At most this many days per backfill run (RCM_BACKFILL_CHUNK_DAYS, default 31): `rcm backfill` cuts a
    longer range into consecutive runs, and the daily assets' Dagster backfill policy is multi-run with this
    size, so a run's memory is bounded by a chunk of days rather than by the range."""
    return _positive_int("RCM_BACKFILL_CHUNK_DAYS", DEFAULT_BACKFILL_CHUNK_DAYS)


DEFAULT_TRAIN_WEEKS_PER_RUN = 8


def train_weeks_per_run() -> int:
    """At most this many model weeks per run (RCM_TRAIN_WEEKS_PER_RUN, default 8): the weekly assets'
    backfill policy. A run holds one week's training set at a time, plus the gold keys of its weeks' windows
    (read once per run); more weeks per run save a run's start-up and the window's re-reads."""
    return _positive_int("RCM_TRAIN_WEEKS_PER_RUN", DEFAULT_TRAIN_WEEKS_PER_RUN)


def extract_lookback_days() -> int:
    """Earlier days the nightly extraction reads again (RCM_EXTRACT_LOOKBACK_DAYS, default 2, 0 = none).

    A row committed late (replica lag, a long transaction) carries an `updated_at` of a day already
    extracted; re-reading that day picks it up, and bronze stores only the rows it lacked.
    """
    raw = setting("RCM_EXTRACT_LOOKBACK_DAYS", "2")
    if not raw.isdigit():
        raise SettingError(f"{where('RCM_EXTRACT_LOOKBACK_DAYS')}={raw!r} must be a whole number of days (0 or more)")
    return int(raw)


def update_lookback_days() -> int:
    """How far back gold looks for an earlier state of a claim version (RCM_UPDATE_LOOKBACK_DAYS, default
    120): a version seen within that many days before is an in-place update, not a new submission."""
    return _positive_int("RCM_UPDATE_LOOKBACK_DAYS", 120)


def environment() -> str:
    """The deployment environment, `dev` unless RCM_ENV says otherwise (dev, demo, prod); unknown values are
    refused."""
    env = setting("RCM_ENV", "dev").strip().lower()
    if env not in ENVIRONMENTS:
        raise SettingError(f"RCM_ENV={env!r} is not one of {ENVIRONMENTS}")
    return env


def _number(name: str, kind: type) -> int | float | None:
    """An optional numeric setting (environment or configuration file); None when neither sets it."""
    raw = setting(name)
    if raw is None:
        return None
    try:
        value = kind(raw)
    except ValueError:
        raise SettingError(f"{where(name)}={raw!r} must be {'a whole number' if kind is int else 'a number'}") from None
    if value < 0:
        raise SettingError(f"{where(name)}={raw!r} must not be negative")
    return value


def _present(values: dict[str, int | float | None]) -> dict[str, int | float]:
    return {k: v for k, v in values.items() if v is not None}


def model_overrides() -> dict[str, int | float]:
    """Model and gate parameters set by the environment or the configuration file, as the model asset's
    run config fields (unset ones keep the asset's defaults)."""
    return _present({
        "seed": _number("RCM_MODEL_SEED", int), "holdout_fraction": _number("RCM_HOLDOUT_FRACTION", float),
        "min_labelled_rows": _number("RCM_MIN_LABELLED_ROWS", int), "threads": _number("RCM_MODEL_THREADS", int),
        "max_fit_rows": _number("RCM_MODEL_MAX_FIT_ROWS", int),
        "auc_floor": _number("RCM_GATE_AUC_FLOOR", float), "max_auc_drop": _number("RCM_GATE_MAX_AUC_DROP", float),
    })


def scoring_overrides() -> dict[str, float]:
    """Scoring thresholds set by the environment or the configuration file (prediction run config fields)."""
    return _present({"decision_threshold": _number("RCM_DECISION_THRESHOLD", float),
                     "psi_warn_threshold": _number("RCM_PSI_WARN", float)})


def silver_overrides() -> dict[str, float]:
    """The silver reject-rate threshold, when the environment or the configuration file sets it."""
    return _present({"max_reject_rate": _number("RCM_MAX_REJECT_RATE", float)})


def export_permissions() -> ExportPermissions:
    """Mode and group of exported files (RCM_EXPORT_MODE, default 0640; RCM_EXPORT_GROUP, a group name or
    gid, unset = the process's group): they carry claim numbers (PHI), see `lib.exports`."""
    mode, group = setting(exports.MODE_ENV), setting(exports.GROUP_ENV)
    try:
        return ExportPermissions(
            exports.parse_mode(mode, where(exports.MODE_ENV)) if mode else exports.DEFAULT_MODE,
            exports.parse_group(group, where(exports.GROUP_ENV)) if group else None)
    except ValueError as exc:
        raise SettingError(str(exc)) from None


def daily_ingest_cron() -> str:
    """When the nightly extraction runs (RCM_DAILY_INGEST_CRON, UTC, default 02:00 every day)."""
    return setting("RCM_DAILY_INGEST_CRON", "0 2 * * *")


def weekly_training_cron() -> str:
    """When the weekly training runs (RCM_WEEKLY_TRAINING_CRON, UTC, default Monday 03:00)."""
    return setting("RCM_WEEKLY_TRAINING_CRON", "0 3 * * 1")
