"""Alerts that reach people: failed asset checks and failed runs, posted to a chat webhook and logged.

Two Dagster run-status sensors: `check_failure_alert_sensor` reads the check evaluations of every run that
succeeded and alerts when a check starts failing for an asset and partition (once, however many runs
re-evaluate it) and when it recovers; `run_failure_alert_sensor` alerts once on every failed run, naming
its cause in one sentence. What each sensor already said is kept in a small state file beside the log.
Each alert is a Slack/Teams-compatible JSON (`text`, plus Slack `blocks`) POSTed to RCM_ALERT_WEBHOOK_URL
(when set) and appended as a JSON line to the alerts log (RCM_ALERT_LOG, default <data>/logs/alerts.jsonl). An alert carries asset keys, check names, partitions, severities, our own
check descriptions (counts, codes, statistics) and the run id: never metadata values or row data, so no PHI.
"""

import json
import os
import re
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg

from rcm_assets.lib import settings

WEBHOOK_ENV = "RCM_ALERT_WEBHOOK_URL"
LOG_ENV = "RCM_ALERT_LOG"
TIMEOUT_S = 10
# Long runs of digits or id-like tokens are cut from free text before it leaves (belt and braces: our
# descriptions hold codes and counts, but an exception message could quote a value).
_ID_LIKE = re.compile(r"\b(?=[A-Za-z0-9-]*\d)[A-Za-z0-9-]{9,}\b")


def scrub(text: str | None, limit: int = 400) -> str:
    """Free text made safe to send: id-like tokens (9+ characters with a digit) redacted, length capped."""
    if not text:
        return ""
    cleaned = _ID_LIKE.sub("[redacted]", text)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def alert_log_path() -> Path:
    return Path(os.environ.get(LOG_ENV) or settings.logs_dir() / "alerts.jsonl")


def payload(title: str, lines: list[str], fields: dict[str, str], severity: str) -> dict[str, Any]:
    """Slack incoming-webhook JSON (`text` + `blocks`); Teams and most chat tools read `text`."""
    icon = {"ERROR": ":red_circle:", "WARN": ":warning:"}.get(severity, ":information_source:")
    text = f"{icon} {title}\n" + "\n".join(lines)
    return {
        "text": text,
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:2900] or title}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"*{k}*: {v}"} for k, v in fields.items()][:10]},
        ],
        "rcm": {"severity": severity, **fields},
    }


def deliver(message: dict[str, Any]) -> str:
    """Append to the alerts log, then POST to the webhook when configured; returns what happened."""
    record = {"at": datetime.now(UTC).isoformat(), **message}
    path = alert_log_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")
    url = os.environ.get(WEBHOOK_ENV)
    if not url:
        return f"logged to {path} ({WEBHOOK_ENV} not set)"
    request = urllib.request.Request(url, data=json.dumps(message).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310 (operator-set URL)
        return f"posted (HTTP {response.status}) and logged to {path}"


def check_evaluations(instance: dg.DagsterInstance, run_id: str) -> list[dg.AssetCheckEvaluation]:
    """Every check evaluation a run recorded, passed or failed."""
    entries = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    return [e.dagster_event.event_specific_data for e in entries if e.dagster_event]


def failed_checks(instance: dg.DagsterInstance, run_id: str) -> list[dg.AssetCheckEvaluation]:
    """The failed check evaluations a run recorded."""
    return [c for c in check_evaluations(instance, run_id) if not c.passed]


def evaluated_partition(evaluation: dg.AssetCheckEvaluation) -> str:
    """The partition an evaluation speaks about: its own, else the day a freshness check expected."""
    if evaluation.partition:
        return evaluation.partition
    expected = (evaluation.metadata or {}).get("expected_partition")
    return str(getattr(expected, "value", expected)) if expected is not None else "-"


def state_key(evaluation: dg.AssetCheckEvaluation) -> str:
    """One alert state per asset, check and partition (the stable key an alert is posted once for)."""
    return f"{evaluation.asset_key.to_user_string()}|{evaluation.check_name}|{evaluated_partition(evaluation)}"


class AlertState:
    """What a sensor has already said, kept in a small JSON file beside the alerts log.

    `failing` holds the checks (by `state_key`) whose failure was posted and not yet seen to recover;
    `runs` the ids of the last runs examined, so a tick retried after a crash never posts twice. Both are
    bounded: failing entries older than FAILING_KEPT_DAYS and all but the last RUNS_KEPT runs are dropped.
    """

    RUNS_KEPT = 2000
    FAILING_KEPT_DAYS = 14

    def __init__(self, name: str) -> None:
        self.path = alert_log_path().with_name(f"alerts_state.{name}.json")
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        self.failing: dict[str, str] = dict(data.get("failing", {}))
        self.runs: list[str] = list(data.get("runs", []))

    def seen(self, run_id: str) -> bool:
        return run_id in self.runs

    def save(self, run_id: str) -> None:
        """Record the run as examined and write the state atomically."""
        self.runs = [*self.runs, run_id][-self.RUNS_KEPT:]
        oldest = (datetime.now(UTC) - timedelta(days=self.FAILING_KEPT_DAYS)).isoformat()
        self.failing = {k: since for k, since in self.failing.items() if since >= oldest}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"failing": self.failing, "runs": self.runs}), encoding="utf-8")
        os.replace(tmp, self.path)

    def changes(self, evaluations: list[dg.AssetCheckEvaluation]
                ) -> tuple[list[dg.AssetCheckEvaluation], list[dg.AssetCheckEvaluation]]:
        """(newly failing, recovered) among a run's evaluations; the state follows them."""
        failing, recovered = [], []
        for evaluation in evaluations:
            key = state_key(evaluation)
            if not evaluation.passed and key not in self.failing:
                self.failing[key] = datetime.now(UTC).isoformat()
                failing.append(evaluation)
            elif evaluation.passed and key in self.failing:
                del self.failing[key]
                recovered.append(evaluation)
        return failing, recovered


def _check_line(c: dg.AssetCheckEvaluation) -> str:
    partition = evaluated_partition(c)
    return (f"• [{c.severity.value}] {c.asset_key.to_user_string()} · {c.check_name}"
            f"{f' · {partition}' if partition != '-' else ''}: {scrub(c.description)}")


def check_alert(run: dg.DagsterRun, failed: list[dg.AssetCheckEvaluation]) -> dict[str, Any]:
    severity = "ERROR" if any(c.severity == dg.AssetCheckSeverity.ERROR for c in failed) else "WARN"
    lines = [_check_line(c) for c in failed[:20]]
    if len(failed) > 20:
        lines.append(f"… and {len(failed) - 20} more")
    return payload(f"rcm_assets: {len(failed)} failed check(s) in {run.job_name}", lines,
                   {"run_id": run.run_id, "job": run.job_name, "failed_checks": str(len(failed))}, severity)


def recovery_alert(run: dg.DagsterRun, recovered: list[dg.AssetCheckEvaluation]) -> dict[str, Any]:
    lines = [f"• {c.asset_key.to_user_string()} · {c.check_name}"
             f"{f' · {p}' if (p := evaluated_partition(c)) != '-' else ''} passes again" for c in recovered[:20]]
    if len(recovered) > 20:
        lines.append(f"… and {len(recovered) - 20} more")
    return payload(f"rcm_assets: {len(recovered)} check(s) recovered in {run.job_name}", lines,
                   {"run_id": run.run_id, "job": run.job_name, "recovered_checks": str(len(recovered))}, "INFO")


# Never return a SkipReason from a run-status sensor: Dagster turns every run the function returns None
# for into a run reaction, and a tick that holds reactions and a skip fails as a whole ("received both"),
# so its cursor never moves and the same runs are examined, and alerted, again on every tick.
@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS, name="check_failure_alert_sensor",
    default_status=dg.DefaultSensorStatus.RUNNING, minimum_interval_seconds=30,
    description=("Posts each check that starts failing (per asset, check and partition) and its recovery, "
                 "from every successful run, to RCM_ALERT_WEBHOOK_URL and the alerts log"),
)
def check_failure_alert_sensor(context: dg.RunStatusSensorContext) -> None:
    run = context.dagster_run
    state = AlertState("checks")
    if state.seen(run.run_id):
        return
    failing, recovered = state.changes(check_evaluations(context.instance, run.run_id))
    if failing:
        context.log.info(deliver(check_alert(run, failing)))
    if recovered:
        context.log.info(deliver(recovery_alert(run, recovered)))
    state.save(run.run_id)


def failure_cause(context: dg.RunFailureSensorContext) -> str:
    """One sentence naming why the run failed: the first failed step and the error our code raised (the
    innermost cause, not Dagster's wrapper), else the run's own message; scrubbed of id-like values."""
    for event in context.get_step_failure_events():
        error = getattr(event.event_specific_data, "error", None)
        while error is not None and error.cause is not None:
            error = error.cause
        if error is not None:
            first = (error.message or "").strip().splitlines()
            text = first[0].removeprefix(f"{error.cls_name}: ") if first else "no message"
            return scrub(f"step {event.step_key} raised {error.cls_name}: {text}", limit=300)
    return scrub(context.failure_event.message, limit=300)


@dg.run_failure_sensor(
    name="run_failure_alert_sensor", default_status=dg.DefaultSensorStatus.RUNNING, minimum_interval_seconds=30,
    description="Posts every failed run once, with its cause and failed checks, to RCM_ALERT_WEBHOOK_URL and the alerts log",
)
def run_failure_alert_sensor(context: dg.RunFailureSensorContext) -> None:
    run = context.dagster_run
    state = AlertState("runs")
    if state.seen(run.run_id):
        return
    failed = failed_checks(context.instance, run.run_id)
    steps = [e.step_key for e in context.get_step_failure_events() if e.step_key]
    lines = [f"• cause: {failure_cause(context)}"]
    lines += [f"• failed step: {s}" for s in steps[:10]]
    lines += [_check_line(c) for c in failed[:20]]
    partition = run.tags.get("dagster/partition") or (
        f"{run.tags.get('dagster/asset_partition_range_start')}..{run.tags.get('dagster/asset_partition_range_end')}"
        if run.tags.get("dagster/asset_partition_range_start") else "none")
    context.log.info(deliver(payload(
        f"rcm_assets: run of {run.job_name} failed", lines,
        {"run_id": run.run_id, "job": run.job_name, "partition": partition}, "ERROR")))
    state.save(run.run_id)


alert_sensors = [check_failure_alert_sensor, run_failure_alert_sensor]
