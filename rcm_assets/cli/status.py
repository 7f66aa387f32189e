"""`rcm status`: per asset, the latest partition, freshness, last check results and recent failures."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dagster as dg

# Days an asset's newest partition may lag behind yesterday before it is reported stale.
FRESHNESS_LAG_DAYS = {"bronze": 1, "silver": 1, "gold": 1, "predictions": 1, "model": 8}


def collect(instance: dg.DagsterInstance, defs: dg.Definitions) -> list[dict[str, Any]]:
    graph = defs.resolve_asset_graph()
    today = datetime.now(UTC).date()
    rows = []
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        materialized = sorted(instance.get_materialized_partitions(key)) if node.partitions_def else []
        latest_event = instance.get_latest_materialization_event(key)
        latest = materialized[-1] if materialized else None
        lag = (today - datetime.fromisoformat(latest).date()).days - 1 if latest else None
        allowed = FRESHNESS_LAG_DAYS.get(node.group_name or "", 1)
        checks = {}
        for check_key in sorted(node.check_keys, key=lambda c: c.name):
            record = instance.get_latest_asset_check_evaluation_record(check_key)
            if record is None:
                continue
            evaluation = record.event.asset_check_evaluation if record.event else None
            checks[check_key.name] = {
                "status": record.status.value,
                "passed": evaluation.passed if evaluation else None,
                "partition": record.partition,
                "description": evaluation.description if evaluation else None,
            }
        failed = instance.fetch_failed_materializations(key, limit=1).records
        rows.append({
            "asset": key.to_user_string(),
            "group": node.group_name,
            "latest_partition": latest,
            "partitions_materialized": len(materialized),
            "last_materialized_at": datetime.fromtimestamp(latest_event.timestamp, UTC).isoformat()
            if latest_event else None,
            "freshness": "unknown" if lag is None else ("fresh" if lag <= allowed - 1 else f"stale ({lag} days behind)"),
            "checks": checks,
            "last_failure": {
                "run_id": failed[0].run_id,
                "partition": failed[0].partition_key,
                "at": datetime.fromtimestamp(failed[0].timestamp, UTC).isoformat(),
            } if failed else None,
        })
    return rows


def shorten(text: str, limit: int = 160) -> str:
    """Range runs put one sentence per week in a description; the table shows the start (--json has all)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render(rows: list[dict[str, Any]]) -> str:
    lines = []
    for row in rows:
        bad = [f"{name} ({shorten(c['description'] or c['status'])})" for name, c in row["checks"].items()
               if c["passed"] is False]
        lines.append(f"{row['asset']:<36} latest {row['latest_partition'] or '-':<10} "
                     f"{row['freshness']:<24} checks {len(row['checks']) - len(bad)}/{len(row['checks'])} ok")
        for item in bad:
            lines.append(f"    failing check: {item}")
        if row["last_failure"]:
            failure = row["last_failure"]
            lines.append(f"    last failure: partition {failure['partition']} run {failure['run_id'][:8]} "
                         f"at {failure['at']}")
    return "\n".join(lines)
