"""defs/alerts: failed checks and failed runs reach a webhook (a local HTTP server started here) and the
alerts log, as Slack/Teams-compatible JSON without PHI."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import dagster as dg
import pytest

from rcm_assets.defs import alerts, checks

PHI_VALUE = "Jane Q Doe 1961-04-02"  # stands for a patient value a check could hold in its metadata
MEMBER_ID = "MBR884213377"


class Webhook:
    """A real HTTP server on 127.0.0.1 that records every POSTed JSON body."""

    def __init__(self) -> None:
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append({"content_type": self.headers["Content-Type"], "body": json.loads(body)})
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/rcm"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture()
def webhook(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Webhook]:
    hook = Webhook()
    monkeypatch.setenv(alerts.WEBHOOK_ENV, hook.url)
    monkeypatch.setenv(alerts.LOG_ENV, str(tmp_path / "alerts.jsonl"))
    yield hook
    hook.close()


@dg.asset(check_specs=[dg.AssetCheckSpec("row_count_recorded", asset="claims_today"),
                       dg.AssetCheckSpec("no_duplicate_claims", asset="claims_today")])
def claims_today():
    yield dg.Output(1)
    yield dg.AssetCheckResult(check_name="row_count_recorded", passed=True)
    yield dg.AssetCheckResult(
        check_name="no_duplicate_claims", passed=False, severity=dg.AssetCheckSeverity.WARN,
        description=f"3 duplicate rows (first: claim {MEMBER_ID})",
        metadata={"example_patient": PHI_VALUE})


@dg.asset
def broken_extract():
    raise ValueError(f"source refused the query for member {MEMBER_ID}")


def sensor_context(result: dg.ExecuteInProcessResult, instance: dg.DagsterInstance, name: str, event):
    return dg.build_run_status_sensor_context(sensor_name=name, dagster_instance=instance,
                                              dagster_run=result.dagster_run, dagster_event=event)


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_failed_check_is_posted_and_logged_without_phi(webhook: Webhook, tmp_path: Path) -> None:
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([claims_today], instance=instance)
    assert result.success
    context = sensor_context(result, instance, "check_failure_alert_sensor", result.get_run_success_event())
    alerts.check_failure_alert_sensor(context)

    assert len(webhook.received) == 1
    post = webhook.received[0]
    assert post["content_type"] == "application/json"
    body = post["body"]
    assert "no_duplicate_claims" in body["text"] and "claims_today" in body["text"]
    assert "row_count_recorded" not in body["text"]  # passed checks are not alerts
    assert [b["type"] for b in body["blocks"]] == ["header", "section", "context"]  # Slack block kit
    assert body["rcm"]["severity"] == "WARN" and body["rcm"]["run_id"] == result.run_id
    text = json.dumps(body)
    assert PHI_VALUE not in text and MEMBER_ID not in text and "[redacted]" in text

    logged = read_log(tmp_path / "alerts.jsonl")
    assert len(logged) == 1 and logged[0]["text"] == body["text"] and "at" in logged[0]


def test_a_run_without_failed_checks_sends_nothing(webhook: Webhook, tmp_path: Path) -> None:
    instance = dg.DagsterInstance.ephemeral()

    @dg.asset
    def fine():
        return 1

    result = dg.materialize([fine], instance=instance)
    outcome = alerts.check_failure_alert_sensor(
        sensor_context(result, instance, "check_failure_alert_sensor", result.get_run_success_event()))
    assert outcome is None  # never a SkipReason: a tick mixing it with run reactions fails whole
    assert webhook.received == [] and not (tmp_path / "alerts.jsonl").exists()


def test_a_failed_run_is_posted_with_its_step_and_no_phi(webhook: Webhook, tmp_path: Path) -> None:
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([broken_extract], instance=instance, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
    context = sensor_context(result, instance, "run_failure_alert_sensor", failure).for_run_failure()
    alerts.run_failure_alert_sensor(context)

    body = webhook.received[0]["body"]
    assert "failed" in body["text"] and "broken_extract" in body["text"]
    assert body["rcm"]["severity"] == "ERROR" and body["rcm"]["run_id"] == result.run_id
    assert MEMBER_ID not in json.dumps(body)
    assert read_log(tmp_path / "alerts.jsonl")[0]["rcm"]["run_id"] == result.run_id


def test_without_a_webhook_the_alert_is_still_logged(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(alerts.WEBHOOK_ENV, raising=False)
    monkeypatch.setenv(alerts.LOG_ENV, str(tmp_path / "a.jsonl"))
    outcome = alerts.deliver(alerts.payload("t", ["line"], {"run_id": "r"}, "WARN"))
    assert "not set" in outcome and read_log(tmp_path / "a.jsonl")[0]["text"].endswith("line")


def test_scrub_redacts_id_like_tokens_and_keeps_words_and_numbers() -> None:
    assert alerts.scrub("claim 2025010100001 of MBR884213377 denied 3 times, PSI 0.31") == \
        "claim [redacted] of [redacted] denied 3 times, PSI 0.31"
    assert alerts.scrub("x" * 500).endswith("…") and len(alerts.scrub("x" * 500)) == 400


# ------------------------------------------------------------------------------------------------
# Many runs through the real sensor machinery: ticks never jam, every run is examined once, every alert
# is posted once per asset, check and partition state.

DAYS = dg.StaticPartitionsDefinition([f"d{i:03d}" for i in range(400)])
DAY_KEY = dg.AssetKey("claims_day")


@dg.asset(key=DAY_KEY, partitions_def=DAYS,
          check_specs=[checks.spec("rows_present", DAY_KEY, "The day has rows", partitions_def=DAYS)])
def claims_day(context):
    outcome = context.run.tags["outcome"]
    if outcome == "error":
        raise ValueError(f"source refused the query for member {MEMBER_ID}")
    yield from checks.publish(
        [dg.Output(1)],
        {context.partition_key: [checks.result("rows_present", outcome == "pass", warn_only=True,
                                               description=None if outcome == "pass" else "no rows")]},
        what="claims_day", context=context)


def outcome_of(i: int) -> str:
    return "error" if i % 7 == 3 else "warn" if i % 5 == 1 else "pass"


def drain(sensor: dg.SensorDefinition, instance: dg.DagsterInstance, cursor: str | None) -> tuple[str | None, int]:
    """Tick the sensor until it has nothing left to examine; (cursor, runs reacted to)."""
    reacted = 0
    for _ in range(1000):
        data = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=cursor))
        assert not (data.skip_message and data.dagster_run_reactions)
        reactions = len(data.dagster_run_reactions or [])
        assert all(r.error is None for r in data.dagster_run_reactions or [])
        reacted += reactions
        if data.cursor == cursor and not reactions:
            return cursor, reacted
        cursor = data.cursor
    raise AssertionError("the sensor never caught up")


def run_world(instance: dg.DagsterInstance, runs: list[tuple[str, str]]) -> None:
    for partition, outcome in runs:
        dg.materialize_to_memory([claims_day], instance=instance, partition_key=partition,
                                 tags={"outcome": outcome}, raise_on_error=False)


def drive(n_runs: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(alerts.WEBHOOK_ENV, raising=False)
    log = tmp_path / "alerts.jsonl"
    monkeypatch.setenv(alerts.LOG_ENV, str(log))
    instance = dg.DagsterInstance.ephemeral()
    cursors = {s.name: drain(s, instance, None)[0] for s in alerts.alert_sensors}  # first tick sets the cursor
    first = [(f"d{i:03d}", outcome_of(i)) for i in range(n_runs)]
    run_world(instance, first)
    reacted = {}
    for sensor in alerts.alert_sensors:
        cursors[sensor.name], reacted[sensor.name] = drain(sensor, instance, cursors[sensor.name])
    outcomes = [o for _, o in first]
    assert reacted == {"check_failure_alert_sensor": outcomes.count("pass") + outcomes.count("warn"),
                       "run_failure_alert_sensor": outcomes.count("error")}
    posted = read_log(log)
    failing = [p for p in posted if "failed check" in p["text"]]
    failed_runs = [p for p in posted if "run of" in p["text"]]
    assert len(failing) == outcomes.count("warn") and len(failed_runs) == outcomes.count("error")
    assert len({p["rcm"]["run_id"] for p in posted}) == len(posted)  # each run alerted at most once
    assert all("ValueError" in p["text"] and MEMBER_ID not in p["text"] for p in failed_runs)  # the cause, scrubbed

    # The warned days again: still failing (no new alert), or recovered (one INFO alert each).
    warned = [k for k, o in first if o == "warn"]
    again = [(k, "warn" if i % 2 else "pass") for i, k in enumerate(warned)]
    run_world(instance, again + again)  # twice: the second pass changes nothing
    for sensor in alerts.alert_sensors:
        cursors[sensor.name], _ = drain(sensor, instance, cursors[sensor.name])
    later = read_log(log)[len(posted):]
    assert len(later) == sum(1 for _, o in again if o == "pass")
    assert all(p["rcm"]["severity"] == "INFO" and "recovered" in p["text"] for p in later)


def test_alert_sensors_never_jam_and_alert_once_per_run_and_state(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    drive(40, tmp_path, monkeypatch)


@pytest.mark.slow
def test_three_hundred_mixed_runs_through_the_alert_sensors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    drive(300, tmp_path, monkeypatch)


def test_the_freshness_warning_is_posted_once_per_day_and_once_when_it_recovers(tmp_path: Path,
                                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The hourly freshness run (and, before, every landing run) re-evaluates the same missing day: one
    alert when it starts failing, none while it stays so, one when the day lands."""
    from datetime import UTC, datetime

    from rcm_assets.defs import freshness

    monkeypatch.delenv(alerts.WEBHOOK_ENV, raising=False)
    log = tmp_path / "alerts.jsonl"
    monkeypatch.setenv(alerts.LOG_ENV, str(log))
    defs = dg.Definitions(assets=[dg.AssetSpec(k) for k in freshness.FRESH_ASSETS],
                          asset_checks=[freshness.freshness_checks], jobs=[freshness.freshness_job])
    job = defs.resolve_job_def(freshness.freshness_job.name)
    instance = dg.DagsterInstance.ephemeral()
    sensor = alerts.check_failure_alert_sensor
    cursor, _ = drain(sensor, instance, None)
    for _ in range(3):
        assert job.execute_in_process(instance=instance).success
    cursor, reacted = drain(sensor, instance, cursor)
    assert reacted == 3
    [posted] = read_log(log)
    day = freshness.expected_day(datetime.now(UTC)).isoformat()
    assert posted["text"].count(f"freshness_check · {day}") == 3  # bronze claims, remittances, scores

    for key in freshness.FRESH_ASSETS:
        instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=day))
    for _ in range(2):
        assert job.execute_in_process(instance=instance).success
    drain(sensor, instance, cursor)
    later = read_log(log)[1:]
    assert len(later) == 1 and "3 check(s) recovered" in later[0]["text"]
