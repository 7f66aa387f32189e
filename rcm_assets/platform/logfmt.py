"""Structured logs: one JSON object per line, with the Dagster run id, asset and partition.

The instance's `python_logs` block (written by `rcm_assets.platform.instance`) installs two handlers for every
run: a console handler and `PerRunFileHandler`, both formatting with `RcmJsonFormatter`. Dagster
attaches its context to each record it handles (`record.dagster_meta`: run id, job, step, run tags and
the Dagster event), and the formatter turns that into flat fields:

    {"ts": "2025-01-02T03:04:05.678Z", "level": "INFO", "logger": "rcm.bronze", "run_id": "…",
     "job": "__ASSET_JOB", "step": "bronze__claims", "asset": "bronze/claims", "partition": "2025-01-02",
     "event": "ASSET_MATERIALIZATION", "msg": "…"}

No PHI: only the message, Dagster's own identifiers and an error's class and message are written — never
event metadata, run config or a record's `extra` values. Messages are the callers' responsibility (the
package's modules log counts and names, never cell values).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rcm_assets.lib import settings

META_ATTR = "dagster_meta"  # dagster._core.log_manager.LOG_RECORD_METADATA_ATTR
PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
# Events after which a run writes nothing more: its log file can be closed.
RUN_END_EVENTS = frozenset({"PIPELINE_SUCCESS", "PIPELINE_FAILURE", "PIPELINE_CANCELED",
                            "RUN_SUCCESS", "RUN_FAILURE", "RUN_CANCELED"})
DEFINITIONS_MODULE = "rcm_assets.definitions"
NO_RUN_FILE = "rcm.jsonl"
MAX_ERROR_CHARS = 500
_SAFE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


# ---------------------------------------------------------------------------------------------------
# Step key -> asset key(s)

_step_assets: dict[str, str] | None = None
_step_assets_for: int | None = None
_step_assets_guard = threading.local()


def _definitions_step_assets() -> dict[str, str] | None:
    """Op name -> asset key(s) of the code location, if it is already imported in this process.

    A run worker has imported it (that is how it runs the assets); this never imports it itself, so
    formatting a log line cannot trigger a code-location load.
    """
    global _step_assets, _step_assets_for
    module = sys.modules.get(DEFINITIONS_MODULE)
    defs = getattr(module, "defs", None) if module is not None else None
    if defs is None or getattr(_step_assets_guard, "busy", False):
        return None
    if _step_assets is not None and _step_assets_for == id(defs):
        return _step_assets
    _step_assets_guard.busy = True
    try:
        mapping: dict[str, str] = {}
        for assets_def in defs.resolve_asset_graph().assets_defs:
            if not assets_def.is_executable:
                continue
            keys = sorted(k.to_user_string() for k in assets_def.keys)
            if not keys:  # an asset-checks definition: attribute it to the checked assets
                keys = sorted({c.asset_key.to_user_string() for c in assets_def.check_keys})
            if keys:
                mapping[assets_def.node_def.name] = ",".join(keys)
    except Exception:  # never let logging fail; remember the failure so it is not retried per record
        mapping = {}
    finally:
        _step_assets_guard.busy = False
    _step_assets, _step_assets_for = mapping, id(defs)
    return mapping


def asset_for_step(step_key: str | None) -> str | None:
    """The asset key(s) a step materializes or checks, `a/b` form, comma-separated for multi-assets.

    Uses the loaded code location when there is one; otherwise the convention that an asset's op is
    named after its key path joined with `__`.
    """
    if not step_key:
        return None
    op_name = step_key.split("[", 1)[0]  # mapped steps: op[mapping_key]
    mapping = _definitions_step_assets()
    if mapping is not None and op_name in mapping:
        return mapping[op_name]
    if "__" in op_name:
        return op_name.replace("__", "/")
    return None


# ---------------------------------------------------------------------------------------------------
# Formatter


def _iso_utc(created: float) -> str:
    stamp = datetime.fromtimestamp(created, tz=UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def partition_from_tags(tags: Mapping[str, str] | None) -> str | None:
    """The run's partition: `dagster/partition`, or a range as `start...end` (single-run backfills)."""
    if not tags:
        return None
    if tags.get(PARTITION_TAG):
        return tags[PARTITION_TAG]
    start, end = tags.get(RANGE_START_TAG), tags.get(RANGE_END_TAG)
    if start and end:
        return start if start == end else f"{start}...{end}"
    return None


def run_id_of(record: logging.LogRecord) -> str | None:
    meta = getattr(record, META_ATTR, None)
    return meta.get("run_id") if isinstance(meta, Mapping) else None


def _event_name(event: Any) -> str | None:
    """The event type's current name (`RUN_SUCCESS`, not the stored legacy value `PIPELINE_SUCCESS`)."""
    kind = getattr(event, "event_type", None)
    return getattr(kind, "name", None) or getattr(event, "event_type_value", None)


def _error_of(event: Any) -> str | None:
    """`ClassName: message` of a failure event's root error (the user's, not Dagster's wrappers); no
    stack: it can quote source lines and data."""
    data = getattr(event, "event_specific_data", None)
    error = getattr(data, "error", None)
    if error is None:
        return None
    seen = 0
    while getattr(error, "cause", None) is not None and seen < 10:  # wrapper -> the error it wraps
        error, seen = error.cause, seen + 1
    cls_name = getattr(error, "cls_name", None) or "Error"
    message = " ".join(str(getattr(error, "message", "") or "").split())
    # format_exception_only text already starts with the (possibly module-qualified) class name
    text = message if message.split(":", 1)[0].endswith(cls_name) else f"{cls_name}: {message}"
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 3] + "..."


class RcmJsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, run_id, job, step, asset, partition, event, msg.

    Works for records Dagster handled (it reads `record.dagster_meta`) and for plain records (the run
    fields are then null).
    """

    def format(self, record: logging.LogRecord) -> str:
        meta = getattr(record, META_ATTR, None)
        meta = meta if isinstance(meta, Mapping) else {}
        event = meta.get("dagster_event")
        step = meta.get("step_key")
        asset = partition = event_type = None
        if event is not None:
            event_type = _event_name(event)
            try:
                key = event.asset_key
                asset = key.to_user_string() if key is not None else None
                partition = event.partition
            except Exception:  # event kinds without asset data
                asset = partition = None
        asset = asset or asset_for_step(step)
        partition = partition or partition_from_tags(meta.get("job_tags"))
        message = meta.get("orig_message") if meta else None
        if message is None:
            message = record.getMessage()
        out: dict[str, Any] = {
            "ts": _iso_utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "run_id": meta.get("run_id"),
            "job": meta.get("job_name"),
            "step": step,
            "asset": asset,
            "partition": partition,
            "event": event_type,
            "msg": message,
        }
        error = _error_of(event) if event is not None else None
        if error:
            out["error"] = error
        if record.exc_info and record.exc_info[0] is not None:
            out["exc_type"] = record.exc_info[0].__name__
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


# ---------------------------------------------------------------------------------------------------
# Per-run file handler


class PerRunFileHandler(logging.Handler):
    """Appends each record as a JSON line to `<logs dir>/<run_id>.jsonl` (`rcm.jsonl` without a run).

    Files are opened `O_APPEND` and each line is one `write`, so the several processes of a run (run
    worker, step workers) can share a file. At most `max_open` files stay open (least recently used is
    closed first), and a run's file is closed when its run ends. The folder is created on first write.
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None, level: int | str = logging.NOTSET,
                 max_open: int = 8) -> None:
        super().__init__(level)
        self.directory = Path(directory) if directory else settings.logs_dir()
        self.max_open = max(1, int(max_open))
        self._open: OrderedDict[str, int] = OrderedDict()
        self.setFormatter(RcmJsonFormatter())

    def path_for(self, run_id: str | None) -> Path:
        if not run_id:
            return self.directory / NO_RUN_FILE
        if not _SAFE_NAME.fullmatch(run_id):  # never let a run id address another path
            run_id = re.sub(r"[^A-Za-z0-9_-]", "_", run_id)[:64] or "run"
        return self.directory / f"{run_id}.jsonl"

    def _fd(self, path: Path) -> int:
        name = str(path)
        fd = self._open.get(name)
        if fd is not None:
            self._open.move_to_end(name)
            return fd
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(name, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o640)
        self._open[name] = fd
        while len(self._open) > self.max_open:
            _, old = self._open.popitem(last=False)
            os.close(old)
        return fd

    def _close_path(self, path: Path) -> None:
        fd = self._open.pop(str(path), None)
        if fd is not None:
            os.close(fd)

    @property
    def open_files(self) -> int:
        return len(self._open)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = (self.format(record) + "\n").encode("utf-8")
            path = self.path_for(run_id_of(record))
            os.write(self._fd(path), line)
            meta = getattr(record, META_ATTR, None)
            event = meta.get("dagster_event") if isinstance(meta, Mapping) else None
            if event is not None and _event_name(event) in RUN_END_EVENTS:
                self._close_path(path)
        except Exception:
            self.handleError(record)

    def close(self) -> None:
        self.acquire()
        try:
            while self._open:
                _, fd = self._open.popitem()
                try:
                    os.close(fd)
                except OSError:
                    pass
        finally:
            self.release()
        super().close()


# ---------------------------------------------------------------------------------------------------
# The CLI process's own logger


class _NotInsideRun(logging.Filter):
    """Drop a record while Dagster captures the `rcm` logger: the instance's handlers print it, with
    the run id, so the CLI's own handler would only duplicate it without run fields."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, META_ATTR, None) is not None:
            return False
        return not any(type(h).__name__ == "DagsterLogHandler" for h in logging.getLogger("rcm").handlers)


def setup_cli_logging(level: int | str = logging.INFO, stream: Any = None) -> logging.Logger:
    """JSON lines on stderr for the CLI's own `rcm` logger; idempotent (replaces its earlier handler)."""
    logger = logging.getLogger("rcm")
    for handler in [h for h in logger.handlers if getattr(h, "_rcm_cli", False)]:
        logger.removeHandler(handler)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(RcmJsonFormatter())
    handler.addFilter(_NotInsideRun())
    handler._rcm_cli = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level if isinstance(level, int) else level.upper())
    return logger
