"""Configuration files (`configs/dev.yaml`, `configs/prod.yaml`): settings beside environment variables.

Every key of a file is one setting that also has an environment variable (the table `SETTINGS`); the
environment wins over the file, the file over the embedded default. `rcm --config FILE` and, for the
webserver and daemon, the `RCM_CONFIG` variable name the file. A file is validated as a whole when it is
read: an unknown key, a wrong type or a secret is a `ConfigError` naming the file and the key.

Secrets never come from a file: the PHI key, passwords, tokens, and URLs that carry them (a database URL
with a password, a webhook URL with a token) are refused, so a config file can be committed and read by
anyone who runs the pipeline.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

CONFIG_ENV = "RCM_CONFIG"


class ConfigError(ValueError):
    """A configuration file that cannot be used: the message names the file and the key."""


@dataclass(frozen=True)
class Setting:
    key: str  # dotted: section.name
    env: str  # the environment variable that overrides it
    kind: str  # str | int | float | date | cron | env | tz
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("env", "RCM_ENV", "env", "dev, demo or prod"),
    Setting("data_dir", "RCM_DATA_DIR", "str", "folder of the embedded defaults"),
    Setting("lake.url", "RCM_LAKE_URL", "str", "the Parquet lake: a folder or any fsspec URL"),
    Setting("lake.landing_dir", "RCM_LANDING_DIR", "str", "folder the landing sensor watches"),
    Setting("lake.quarantine_dir", "RCM_QUARANTINE_DIR", "str", "where refused landing files go"),
    Setting("source.url", "RCM_SOURCE_URL", "str", "SQLAlchemy URL of the source (no password here)"),
    Setting("source.facility_tz", "RCM_FACILITY_TZ", "tz", "IANA zone of the facility's service dates"),
    Setting("source.extract_lookback_days", "RCM_EXTRACT_LOOKBACK_DAYS", "int", "days re-read for late rows"),
    Setting("source.update_lookback_days", "RCM_UPDATE_LOOKBACK_DAYS", "int", "window for in-place updates"),
    Setting("partitions.start", "RCM_PARTITIONS_START", "date", "first day of history"),
    Setting("partitions.backfill_chunk_days", "RCM_BACKFILL_CHUNK_DAYS", "int",
            "at most this many days per backfill run (rcm backfill and Dagster backfills)"),
    Setting("partitions.train_weeks_per_run", "RCM_TRAIN_WEEKS_PER_RUN", "int",
            "at most this many model weeks per run (rcm backfill/train and Dagster backfills)"),
    Setting("schedules.daily_ingest_cron", "RCM_DAILY_INGEST_CRON", "cron", "nightly extraction (UTC)"),
    Setting("schedules.weekly_training_cron", "RCM_WEEKLY_TRAINING_CRON", "cron", "weekly training (UTC)"),
    Setting("mlflow.tracking_uri", "MLFLOW_TRACKING_URI", "str", "MLflow tracking server or database"),
    Setting("mlflow.artifact_location", "RCM_MLFLOW_ARTIFACTS", "str", "where new runs store artifacts"),
    Setting("model.train_window_days", "RCM_TRAIN_WINDOW_DAYS", "int", "rolling training window"),
    Setting("model.label_horizon_days", "RCM_LABEL_HORIZON_DAYS", "int", "label maturity before the cutoff"),
    Setting("model.min_train_days", "RCM_MIN_TRAIN_DAYS", "int", "matured days the first model needs"),
    Setting("model.seed", "RCM_MODEL_SEED", "int", "training seed"),
    Setting("model.holdout_fraction", "RCM_HOLDOUT_FRACTION", "float", "time-ordered holdout share"),
    Setting("model.min_labelled_rows", "RCM_MIN_LABELLED_ROWS", "int", "fewer labelled claims fail the week"),
    Setting("model.threads", "RCM_MODEL_THREADS", "int", "OpenMP threads per fit"),
    Setting("model.max_fit_rows", "RCM_MODEL_MAX_FIT_ROWS", "int",
            "at most this many rows fit the trees (a seeded sample; 0 = every row)"),
    Setting("gate.auc_floor", "RCM_GATE_AUC_FLOOR", "float", "holdout AUC below this is an error"),
    Setting("gate.max_auc_drop", "RCM_GATE_MAX_AUC_DROP", "float", "tolerated AUC loss vs the champion"),
    Setting("thresholds.max_reject_rate", "RCM_MAX_REJECT_RATE", "float", "silver reject rate that fails a day"),
    Setting("thresholds.decision_threshold", "RCM_DECISION_THRESHOLD", "float", "score sending a claim to review"),
    Setting("thresholds.psi_warn", "RCM_PSI_WARN", "float", "score PSI that warns"),
    Setting("exports.mode", "RCM_EXPORT_MODE", "str",
            "mode of exported files (worklist, evaluations), octal and quoted: '0640'; nothing for others"),
    Setting("exports.group", "RCM_EXPORT_GROUP", "str", "group of exported files (unset: the process's group)"),
)
BY_KEY = {s.key: s for s in SETTINGS}
BY_ENV = {s.env: s for s in SETTINGS}

# Names that are secrets wherever they appear (as a key, or a key's last part).
SECRET_NAME = re.compile(r"(^|_)(phi_key|password|passwd|secret|token|api_key|apikey|credentials?|webhook(_url)?)$",
                         re.IGNORECASE)
# Query parameters that carry a credential in a URL (webhooks, signed URLs).
SECRET_QUERY = {"token", "access_token", "key", "api_key", "apikey", "sig", "signature", "password", "secret",
                "x-amz-signature", "code"}
# Webhook hosts whose path is itself the token.
WEBHOOK_HOSTS = ("hooks.slack.com", "outlook.office.com", "webhook.office.com", "discord.com", "discordapp.com")
CRON_FIELD = re.compile(r"^[\d*/,\-A-Za-z?LW#]+$")


def secret_in_value(value: str) -> str | None:
    """Why a string value is a secret (a URL carrying a password or a token), or None."""
    if "://" not in value:
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if parts.password:
        return "a URL with a password"
    if any(name.lower() in SECRET_QUERY for name, _ in parse_qsl(parts.query, keep_blank_values=True)):
        return "a URL with a token in its query"
    host = (parts.hostname or "").lower()
    if any(host == h or host.endswith("." + h) for h in WEBHOOK_HOSTS):
        return "a webhook URL (its path is the token)"
    return None


def _flatten(data: Mapping[str, Any], where: Path, prefix: str = "") -> dict[str, Any]:
    flat = {}
    for name, value in data.items():
        if not isinstance(name, str):
            raise ConfigError(f"{where}: key {name!r} under {prefix or 'the top level'} is not a name")
        key = f"{prefix}{name}"
        if isinstance(value, Mapping):
            if key in BY_KEY:
                raise ConfigError(f"{where}: {key} must be a single value, not a section")
            flat.update(_flatten(value, where, key + "."))
        else:
            flat[key] = value
    return flat


def _typed(setting: Setting, value: Any, where: Path) -> str:
    """The value as the environment variable would spell it; ConfigError when its type is wrong."""
    what = {"int": "a whole number", "float": "a number", "date": "a date (YYYY-MM-DD)", "str": "a string",
            "cron": "a cron expression of 5 fields (quoted)", "env": "dev, demo or prod",
            "tz": "an IANA time zone name (e.g. America/Chicago)"}[setting.kind]
    wrong = ConfigError(f"{where}: {setting.key} must be {what}, got {value!r} ({type(value).__name__}); "
                        f"environment variable {setting.env}")
    if value is None:
        raise ConfigError(f"{where}: {setting.key} has no value; remove the key to use the default")
    if isinstance(value, bool) or isinstance(value, list | tuple | set):
        raise wrong
    if setting.kind == "int":
        if not isinstance(value, int) or value < 0:
            raise wrong
        return str(value)
    if setting.kind == "float":
        if not isinstance(value, int | float):
            raise wrong
        return repr(float(value))
    if setting.kind == "date":
        if isinstance(value, date):
            return value.isoformat()
        try:
            return date.fromisoformat(str(value)).isoformat()
        except ValueError:
            raise wrong from None
    if not isinstance(value, str):
        raise wrong
    if setting.kind == "cron" and (len(value.split()) != 5 or not all(CRON_FIELD.match(f) for f in value.split())):
        raise wrong
    if setting.kind == "env" and value not in ("dev", "demo", "prod"):
        raise wrong
    if setting.kind == "tz":
        try:
            ZoneInfo(value)
        except (ValueError, OSError, ZoneInfoNotFoundError):
            raise wrong from None
    return value


class _Loader(yaml.SafeLoader):
    """Safe YAML with dates left as text (validated here, so a bad date names its key)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}

def parse(text: str, where: Path) -> dict[str, str]:
    """Settings of one file's text as {environment variable: value}; ConfigError naming `where` and the key."""
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{where}: not valid YAML{at}: {getattr(exc, 'problem', None) or exc}") from None
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: must be a mapping of sections (lake:, source:, model: …), "
                          f"got {type(data).__name__}")
    flat = _flatten(data, where)
    for key, value in flat.items():  # secrets first: a misspelt secret key is still a secret
        if SECRET_NAME.search(key.rsplit(".", 1)[-1]):
            raise ConfigError(f"{where}: {key} is a secret; secrets come only from the environment "
                              f"(e.g. RCM_PHI_KEY), never from a configuration file")
        if isinstance(value, str) and (why := secret_in_value(value)):
            env = BY_KEY[key].env if key in BY_KEY else "an environment variable"
            raise ConfigError(f"{where}: {key} is {why}; secrets come only from the environment: set {env} "
                              "there and remove the key from the file")
    unknown = sorted(set(flat) - set(BY_KEY))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]}"
                          f"{' (and ' + ', '.join(unknown[1:]) + ')' if unknown[1:] else ''}; "
                          f"known keys: {', '.join(BY_KEY)}")
    return {BY_KEY[key].env: _typed(BY_KEY[key], value, where) for key, value in flat.items()}


_cache: dict[tuple[str, int, int], dict[str, str]] = {}


def load(path: Path | str) -> dict[str, str]:
    """The settings of the file at `path` ({environment variable: value}), validated; cached per version."""
    path = Path(path).expanduser()
    try:
        st = path.stat()
    except OSError:
        raise ConfigError(f"{path}: configuration file not found ({CONFIG_ENV} or --config)") from None
    if not path.is_file():
        raise ConfigError(f"{path}: not a file")
    stamp = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    if stamp not in _cache:
        _cache.clear()
        _cache[stamp] = parse(path.read_text(encoding="utf-8"), path)
    return _cache[stamp]


def active() -> dict[str, str]:
    """The settings of the file named by RCM_CONFIG (empty when unset), read at call time."""
    name = os.environ.get(CONFIG_ENV, "").strip()
    return load(name) if name else {}


def active_path() -> Path | None:
    name = os.environ.get(CONFIG_ENV, "").strip()
    return Path(name).expanduser() if name else None
