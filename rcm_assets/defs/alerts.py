"""Alerts that reach people: failed asset checks and failed runs, posted to a chat webhook and logged.

Two Dagster run-status sensors: `check_failure_alert_sensor` reads the check evaluations of every run that
finished (succeeded or failed) and alerts on each failed one; `run_failure_alert_sensor` alerts on every
failed run. Each alert is a Slack/Teams-compatible JSON (`text`, plus Slack `blocks`) POSTed to
RCM_ALERT_WEBHOOK_URL (when set) and appended as a JSON line to the alerts log (RCM_ALERT_LOG, default
<data>/logs/alerts.jsonl). An alert carries asset keys, check names, partitions, severities, our own
check descriptions (counts, codes, statistics) and the run id: never metadata values or row data, so no PHI.
"""

import json
import os
import re
import urllib.request
from datetime import UTC, datetime
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


def failed_checks(instance: dg.DagsterInstance, run_id: str) -> list[dg.AssetCheckEvaluation]:
    """The failed check evaluations a run recorded."""
    entries = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    evaluations = [e.dagster_event.event_specific_data for e in entries if e.dagster_event]
    return [c for c in evaluations if not c.passed]


def check_alert(run: dg.DagsterRun, failed: list[dg.AssetCheckEvaluation]) -> dict[str, Any]:
    severity = "ERROR" if any(c.severity == dg.AssetCheckSeverity.ERROR for c in failed) else "WARN"
    lines = [f"• [{c.severity.value}] {c.asset_key.to_user_string()} · {c.check_name}"
             f"{f' · {c.partition}' if c.partition else ''}: {scrub(c.description)}" for c in failed[:20]]
    if len(failed) > 20:
        lines.append(f"… and {len(failed) - 20} more")
    return payload(f"rcm_assets: {len(failed)} failed check(s) in {run.job_name}", lines,
                   {"run_id": run.run_id, "job": run.job_name, "failed_checks": str(len(failed))}, severity)


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS, name="check_failure_alert_sensor",
    default_status=dg.DefaultSensorStatus.RUNNING, minimum_interval_seconds=30,
    description="Posts failed asset checks of every finished run to RCM_ALERT_WEBHOOK_URL and the alerts log",
)
def check_failure_alert_sensor(context: dg.RunStatusSensorContext) -> dg.SkipReason | None:
    failed = failed_checks(context.instance, context.dagster_run.run_id)
    if not failed:
        return dg.SkipReason(f"run {context.dagster_run.run_id[:8]}: every check passed")
    context.log.info(deliver(check_alert(context.dagster_run, failed)))
    return None


@dg.run_failure_sensor(
    name="run_failure_alert_sensor", default_status=dg.DefaultSensorStatus.RUNNING, minimum_interval_seconds=30,
    description="Posts every failed run (with its failed checks) to RCM_ALERT_WEBHOOK_URL and the alerts log",
)
def run_failure_alert_sensor(context: dg.RunFailureSensorContext) -> None:
    run = context.dagster_run
    failed = failed_checks(context.instance, run.run_id)
    steps = [e.step_key for e in context.get_step_failure_events() if e.step_key]
    lines = [f"• run failed: {scrub(context.failure_event.message)}"]
    lines += [f"• failed step: {s}" for s in steps[:10]]
    lines += check_alert(run, failed)["blocks"][1]["text"]["text"].split("\n") if failed else []
    partition = run.tags.get("dagster/partition") or (
        f"{run.tags.get('dagster/asset_partition_range_start')}..{run.tags.get('dagster/asset_partition_range_end')}"
        if run.tags.get("dagster/asset_partition_range_start") else "none")
    context.log.info(deliver(payload(
        f"rcm_assets: run of {run.job_name} failed", lines,
        {"run_id": run.run_id, "job": run.job_name, "partition": partition}, "ERROR")))


alert_sensors = [check_failure_alert_sensor, run_failure_alert_sensor]
