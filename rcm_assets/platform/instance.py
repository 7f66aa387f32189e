"""The Dagster instance the CLI, the webserver and the daemon share: DAGSTER_HOME, default ./.dagster_home.

On first use the folder is created with a `dagster.yaml` that makes every run log JSON lines (console and
`<RCM_DATA_DIR>/logs/<run_id>.jsonl`, see `rcm_assets.platform.logfmt`), retries runs that died for reasons other
than a step failure (steps have their own RetryPolicy), limits concurrent runs (and a backfill's runs to one at
a time, in order) and turns telemetry off.
An existing `dagster.yaml` is never touched: production points DAGSTER_HOME at its own (PostgreSQL
storage, other limits).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dagster as dg
import yaml

DEFAULT_HOME = ".dagster_home"
MAX_CONCURRENT_RUNS = 2
# The runs of one Dagster backfill go one at a time, oldest chunk first (the run queue is FIFO): a backfill of
# the daily layers is cut into runs of RCM_BACKFILL_CHUNK_DAYS days, and gold reads the version index the
# earlier chunks wrote (defs/gold.read_earlier_versions), so a chunk must not run beside the one before it.
BACKFILL_RUNS_AT_ONCE = {"key": "dagster/backfill", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}


def default_instance_config() -> dict[str, Any]:
    """The dagster.yaml written for a new DAGSTER_HOME (SQLite storage under the home folder)."""
    formatter = {"()": "rcm_assets.platform.logfmt.RcmJsonFormatter"}
    return {
        "telemetry": {"enabled": False},
        "python_logs": {
            "python_log_level": "INFO",
            "managed_python_loggers": ["rcm"],
            "dagster_handler_config": {
                "handlers": {
                    # Console: what an operator reads; Dagster's engine events are DEBUG, so INFO keeps
                    # it to the pipeline's own messages plus failures.
                    "rcm_console": {"class": "logging.StreamHandler", "level": "INFO", "formatter": "rcm_json",
                                    "stream": "ext://sys.stderr"},
                    # Per-run file: the audit trail, including the engine events (materializations with
                    # their asset and partition, step starts and ends, run success or failure).
                    "rcm_run_file": {"class": "rcm_assets.platform.logfmt.PerRunFileHandler", "level": "DEBUG",
                                     "formatter": "rcm_json"},
                },
                "formatters": {"rcm_json": formatter},
            },
        },
        "run_retries": {"enabled": True, "max_retries": 2, "retry_on_asset_or_op_failure": False},
        "concurrency": {"runs": {"max_concurrent_runs": MAX_CONCURRENT_RUNS,
                                 "tag_concurrency_limits": [BACKFILL_RUNS_AT_ONCE]}},
    }


def ensure_dagster_home(path: Path | None = None) -> Path:
    """The absolute DAGSTER_HOME (argument, else $DAGSTER_HOME, else ./.dagster_home), created with a
    default dagster.yaml when it has none; also exported as DAGSTER_HOME for this process and its children."""
    home = Path(path or os.environ.get("DAGSTER_HOME") or DEFAULT_HOME).expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        text = "# Written by rcm_assets.platform.instance on first use; edit freely, it is never overwritten.\n"
        text += yaml.safe_dump(default_instance_config(), sort_keys=False)
        tmp = home / f".dagster.yaml.{os.getpid()}.tmp"
        tmp.write_text(text)
        try:
            os.link(tmp, config)  # atomic create-if-absent: a concurrent first use keeps one file
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def get_instance() -> dg.DagsterInstance:
    """The persistent instance at DAGSTER_HOME (created on first use)."""
    ensure_dagster_home()
    return dg.DagsterInstance.get()


def prepare_instance(path: Path | None = None) -> Path:
    """Ensure DAGSTER_HOME and create its SQLite storage now, in this one process.

    `dagster-webserver` and `dagster-daemon` started side by side on a fresh home both create the
    storage and race on its schema version (alembic: "more than one head present"); call this first.
    """
    home = ensure_dagster_home(path)
    with dg.DagsterInstance.get():
        pass
    return home
