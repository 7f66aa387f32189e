"""JSON-lines logging: the formatter, the per-run file handler, the CLI logger, and a real instance whose
dagster.yaml (written by `ensure_dagster_home`) makes runs log JSON with their run id, asset and partition."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import pytest
import yaml

from rcm_assets.lib import settings
from rcm_assets.platform import logfmt
from rcm_assets.platform.instance import default_instance_config, ensure_dagster_home, get_instance

FIELDS = ["ts", "level", "logger", "run_id", "job", "step", "asset", "partition", "event", "msg"]
TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
RUN_ID = "0d0b6ab6-1111-2222-3333-444455556666"


def _record(msg: str = "hello %s", args: tuple = ("world",), name: str = "rcm.test", level: int = logging.INFO,
            meta: dict | None = None, exc_info=None) -> logging.LogRecord:
    record = logging.LogRecord(name, level, __file__, 1, msg, args, exc_info)
    if meta is not None:
        record.dagster_meta = meta
    return record


def _meta(run_id: str | None = RUN_ID, step: str | None = "bronze__claims", tags: dict | None = None,
          event=None, orig: str = "orig message") -> dict:
    return {"run_id": run_id, "job_name": "daily_ingest_job", "job_tags": tags or {}, "step_key": step,
            "op_name": step, "resource_name": None, "resource_fn_name": None, "dagster_event": event,
            "dagster_event_batch_metadata": None, "orig_message": orig, "log_message_id": "x",
            "log_timestamp": "2025-01-01T00:00:00"}


def _event(name: str, asset_key=None, partition=None, error=None) -> SimpleNamespace:
    return SimpleNamespace(event_type=SimpleNamespace(name=name), event_type_value=name, asset_key=asset_key,
                           partition=partition, event_specific_data=SimpleNamespace(error=error))


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# ---------------------------------------------------------------------------------------------------
# Formatter


def test_plain_record_has_every_field_and_null_run_fields():
    out = json.loads(logfmt.RcmJsonFormatter().format(_record()))
    assert list(out) == FIELDS
    assert TS_RE.match(out["ts"])
    assert out["level"] == "INFO" and out["logger"] == "rcm.test" and out["msg"] == "hello world"
    assert all(out[k] is None for k in ("run_id", "job", "step", "asset", "partition", "event"))


def test_dagster_record_fields_from_meta_and_tags():
    record = _record(meta=_meta(tags={"dagster/partition": "2025-01-02"}))
    record.msg = "daily_ingest_job - 0d0b6ab6 - bronze__claims - orig message"  # dagster's decorated text
    out = json.loads(logfmt.RcmJsonFormatter().format(record))
    assert out["run_id"] == RUN_ID and out["job"] == "daily_ingest_job" and out["step"] == "bronze__claims"
    assert out["asset"] == "bronze/claims"
    assert out["partition"] == "2025-01-02"
    assert out["msg"] == "orig message"  # the undecorated message


def test_partition_range_tags_and_event_fields():
    tags = {"dagster/asset_partition_range_start": "2025-01-01", "dagster/asset_partition_range_end": "2025-01-03"}
    out = json.loads(logfmt.RcmJsonFormatter().format(_record(meta=_meta(step=None, tags=tags))))
    assert out["partition"] == "2025-01-01...2025-01-03" and out["asset"] is None
    ev = _event("ASSET_MATERIALIZATION", dg.AssetKey(["silver", "claims"]), "2025-01-02")
    out = json.loads(logfmt.RcmJsonFormatter().format(_record(meta=_meta(step="silver_claims", tags=tags,
                                                                          event=ev))))
    assert (out["asset"], out["partition"], out["event"]) == ("silver/claims", "2025-01-02",
                                                               "ASSET_MATERIALIZATION")
    assert logfmt.partition_from_tags({"dagster/asset_partition_range_start": "2025-01-01",
                                       "dagster/asset_partition_range_end": "2025-01-01"}) == "2025-01-01"
    assert logfmt.partition_from_tags(None) is None


def test_failure_event_carries_error_class_and_message_but_no_stack():
    error = SimpleNamespace(cls_name="SourceSchemaError", message="claims: column x missing", stack=["secret"])
    out = json.loads(logfmt.RcmJsonFormatter().format(
        _record(level=logging.ERROR, meta=_meta(event=_event("STEP_FAILURE", error=error)))))
    assert out["event"] == "STEP_FAILURE" and out["level"] == "ERROR"
    assert out["error"] == "SourceSchemaError: claims: column x missing"
    assert "secret" not in json.dumps(out)


def test_exception_info_and_non_ascii_and_unserializable_args():
    try:
        raise ValueError("bad")
    except ValueError:
        record = _record(msg="failed: %s", args=(Path("/x/ü"),), exc_info=sys.exc_info())
    out = json.loads(logfmt.RcmJsonFormatter().format(record))
    assert out["msg"] == "failed: /x/ü" and out["exc_type"] == "ValueError" and "Traceback" in out["exc"]


def test_asset_for_step():
    assert logfmt.asset_for_step(None) is None
    assert logfmt.asset_for_step("bronze__claims") == "bronze/claims"
    assert logfmt.asset_for_step("model__denial_model[x]") == "model/denial_model"
    assert logfmt.asset_for_step("plain_op") is None or "rcm_assets.definitions" in sys.modules


def test_asset_for_step_uses_loaded_definitions():
    import rcm_assets.definitions  # noqa: F401  (a run worker has it loaded)

    assert logfmt.asset_for_step("silver_claims") == "silver/claims,silver/claims_rejects"
    assert logfmt.asset_for_step("bronze__claims") == "bronze/claims"
    # gold's checks run inside its step now (no separate check op); a step of another layer
    assert logfmt.asset_for_step("model__lifecycle_review") == "model/lifecycle_review"


# ---------------------------------------------------------------------------------------------------
# Per-run file handler


def test_handler_writes_one_file_per_run_under_logs_dir(isolated_env: Path):
    handler = logfmt.PerRunFileHandler()
    assert handler.directory == settings.logs_dir() == isolated_env / "logs"
    assert not handler.directory.exists()  # created on first write only
    handler.handle(_record(meta=_meta()))
    handler.handle(_record(meta=_meta(run_id="run-b")))
    handler.handle(_record(msg="no run", args=()))
    handler.handle(_record(meta=_meta()))
    handler.close()
    files = sorted(p.name for p in handler.directory.iterdir())
    assert files == sorted([f"{RUN_ID}.jsonl", "run-b.jsonl", "rcm.jsonl"])
    assert [line["run_id"] for line in _lines(handler.directory / f"{RUN_ID}.jsonl")] == [RUN_ID, RUN_ID]
    assert _lines(handler.directory / "rcm.jsonl")[0]["msg"] == "no run"


def test_handler_bounds_open_files_and_closes_on_run_end(tmp_path: Path):
    handler = logfmt.PerRunFileHandler(directory=tmp_path, max_open=2)
    fds_before = len(os.listdir("/proc/self/fd")) if Path("/proc/self/fd").exists() else None
    for i in range(6):
        handler.handle(_record(meta=_meta(run_id=f"run-{i}")))
        assert handler.open_files <= 2
    handler.handle(_record(meta=_meta(run_id="run-5", event=_event("RUN_SUCCESS"))))
    assert str(tmp_path / "run-5.jsonl") not in handler._open
    handler.handle(_record(meta=_meta(run_id="run-0")))  # reopened after LRU eviction: appends
    assert len(_lines(tmp_path / "run-0.jsonl")) == 2
    assert len(_lines(tmp_path / "run-5.jsonl")) == 2
    handler.close()
    assert handler.open_files == 0
    if fds_before is not None:
        assert len(os.listdir("/proc/self/fd")) == fds_before


def test_handler_never_writes_outside_its_folder(tmp_path: Path):
    handler = logfmt.PerRunFileHandler(directory=tmp_path / "logs")
    handler.handle(_record(meta=_meta(run_id="../../etc/evil")))
    handler.close()
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(written) == 1 and written[0].parent == tmp_path / "logs"


# ---------------------------------------------------------------------------------------------------
# CLI logger


def test_setup_cli_logging_json_to_stream_idempotent():
    stream = io.StringIO()
    logger = logfmt.setup_cli_logging("DEBUG", stream=stream)
    logfmt.setup_cli_logging(logging.DEBUG, stream=stream)
    try:
        logging.getLogger("rcm.cli").debug("rows=%d", 3)
        lines = [json.loads(line) for line in stream.getvalue().splitlines()]
        assert len(lines) == 1 and lines[0]["msg"] == "rows=3" and lines[0]["logger"] == "rcm.cli"
        assert sum(getattr(h, "_rcm_cli", False) for h in logger.handlers) == 1
    finally:
        for h in [h for h in logger.handlers if getattr(h, "_rcm_cli", False)]:
            logger.removeHandler(h)
        logger.setLevel(logging.NOTSET)


# ---------------------------------------------------------------------------------------------------
# Instance


def test_ensure_dagster_home_creates_once_and_never_overwrites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    home = ensure_dagster_home()
    assert home == (tmp_path / ".dagster_home").resolve() and home.is_absolute()
    assert os.environ["DAGSTER_HOME"] == str(home)
    config = yaml.safe_load((home / "dagster.yaml").read_text())
    assert config == default_instance_config()
    assert config["python_logs"]["managed_python_loggers"] == ["rcm"]
    assert config["run_retries"] == {"enabled": True, "max_retries": 2, "retry_on_asset_or_op_failure": False}
    assert config["telemetry"] == {"enabled": False}
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    assert ensure_dagster_home() == home
    assert (home / "dagster.yaml").read_text() == "telemetry:\n  enabled: false\n"
    other = ensure_dagster_home(tmp_path / "other")
    assert os.environ["DAGSTER_HOME"] == str(other) and (other / "dagster.yaml").exists()
    assert [p.name for p in other.iterdir()] == ["dagster.yaml"]  # no temp file left behind


daily = dg.DailyPartitionsDefinition(start_date="2025-01-01")


@dg.asset(key=["bronze", "logged"], partitions_def=daily)
def logged(context) -> int:
    context.log.info("from context.log")
    logging.getLogger("rcm.bronze").info("from the rcm logger")
    logging.getLogger("rcm.bronze").debug("debug is below python_log_level")
    return 1


@dg.asset(key=["bronze", "broken"], partitions_def=daily)
def broken() -> int:
    raise ValueError("broken on purpose")


def test_real_instance_logs_json_lines_with_run_id_asset_partition(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_env: Path, capfd: pytest.CaptureFixture
):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    with get_instance() as instance:
        assert Path(instance.root_directory) == tmp_path / "home"
        ok = dg.materialize([logged], instance=instance, partition_key="2025-01-02")
        bad = dg.materialize([broken], instance=instance, partition_key="2025-01-03", raise_on_error=False)
    assert ok.success and not bad.success
    logs = isolated_env / "logs"

    # Console: JSON lines (Dagster's own coloured logger writes other lines; ignore those).
    err = capfd.readouterr().err
    console = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    mine = [line for line in console if line["run_id"] == ok.run_id]
    assert {line["msg"] for line in mine} == {"from context.log", "from the rcm logger"}
    assert all(line["asset"] == "bronze/logged" and line["partition"] == "2025-01-02" for line in mine)
    assert all(line["level"] in ("INFO", "WARNING", "ERROR", "CRITICAL") for line in console)

    # Per-run file: every line JSON, this run's id, engine events included.
    lines = _lines(logs / f"{ok.run_id}.jsonl")
    assert all(list(line) == FIELDS for line in lines) and {line["run_id"] for line in lines} == {ok.run_id}
    events = {line["event"] for line in lines}
    assert {"RUN_START", "STEP_START", "ASSET_MATERIALIZATION", "STEP_SUCCESS", "RUN_SUCCESS"} <= events
    mat = next(line for line in lines if line["event"] == "ASSET_MATERIALIZATION")
    assert (mat["asset"], mat["partition"], mat["step"]) == ("bronze/logged", "2025-01-02", "bronze__logged")
    assert "debug is below python_log_level" not in json.dumps(lines)
    assert sum(line["msg"] == "from the rcm logger" for line in lines) == 1  # captured once

    failed = _lines(logs / f"{bad.run_id}.jsonl")
    step_failure = next(line for line in failed if line["event"] == "STEP_FAILURE")
    assert step_failure["level"] == "ERROR" and step_failure["asset"] == "bronze/broken"
    assert step_failure["error"].startswith("ValueError: broken on purpose")
    assert failed[-1]["event"] == "RUN_FAILURE" and failed[-1]["partition"] == "2025-01-03"
    assert sorted(p.name for p in logs.iterdir()) == sorted([f"{ok.run_id}.jsonl", f"{bad.run_id}.jsonl"])
