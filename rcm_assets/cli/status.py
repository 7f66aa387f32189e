"""`rcm status`: per asset, the latest partition, freshness, last check results and recent failures.

Answering fast matters more here than anywhere: status is what an operator types first. Loading the code
location (pandas, scikit-learn, MLflow) costs seconds, so status reads which assets and checks exist from a
small catalog cached beside the instance (`$DAGSTER_HOME/rcm_status_catalog.json`), rebuilt from the
definitions whenever a file of the package changed; and it asks the instance in batches (one query for
every asset's latest materialization, one for every check's latest evaluation).
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg

# Days an asset's newest partition may lag behind yesterday before it is reported stale.
FRESHNESS_LAG_DAYS = {"bronze": 1, "silver": 1, "gold": 1, "predictions": 1, "model": 8}
CATALOG_FILE = "rcm_status_catalog.json"


def package_fingerprint() -> str:
    """Changes whenever a module of the package changes (names, sizes, modification times)."""
    root = Path(__file__).resolve().parents[1]  # the rcm_assets package
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        st = path.stat()
        digest.update(f"{path.relative_to(root)}:{st.st_size}:{st.st_mtime_ns};".encode())
    return digest.hexdigest()[:16]


def build_catalog(defs: dg.Definitions) -> list[dict[str, Any]]:
    """Each asset of the definitions: key, group, partitioned or not, its check names."""
    graph = defs.resolve_asset_graph()
    def op(key: dg.AssetKey) -> str | None:
        assets_def = graph.get(key).assets_def
        return assets_def.op.name if assets_def.is_executable else None

    return [{
        "asset": key.to_user_string(),
        "path": list(key.path),
        "group": graph.get(key).group_name,
        "op": op(key),
        "partitioned": graph.get(key).partitions_def is not None,
        "checks": sorted(c.name for c in graph.get(key).check_keys),
    } for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string())]


def catalog(home: Path) -> list[dict[str, Any]]:
    """The asset catalog: the cached one when the package has not changed, else built from the
    definitions (imported only then) and cached."""
    path = home / CATALOG_FILE
    fingerprint = package_fingerprint()
    try:
        cached = json.loads(path.read_text())
        if cached.get("fingerprint") == fingerprint:
            return cached["assets"]
    except (OSError, ValueError, KeyError, AttributeError):
        pass
    from rcm_assets.definitions import defs

    assets = build_catalog(defs)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps({"fingerprint": fingerprint, "assets": assets}))
        tmp.replace(path)
    except OSError:  # a read-only home still answers, just without the cache
        tmp.unlink(missing_ok=True)
    return assets


def _at(timestamp: float | None) -> str | None:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds") if timestamp else None


def failure_reason(entry: Any) -> str | None:
    """The first line of a step failure's own description (a dg.Failure) or error message."""
    data = entry.dagster_event.step_failure_data if entry.dagster_event else None
    if data is None:
        return None
    text = (data.user_failure_data.description if data.user_failure_data else None) or (
        data.error.message if data.error else "")
    return " ".join(text.split()) or None


def recent_step_failures(instance: dg.DagsterInstance, runs: int = 20) -> dict[str, dict[str, Any]]:
    """Op name -> its newest failure among the latest failed runs (run id, partition or range, time).

    Dagster records a failed step as a run event, not always as an asset event, so a day whose bronze
    failed would otherwise look as if it never ran."""
    found: dict[str, dict[str, Any]] = {}
    records = instance.get_run_records(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]), limit=runs)
    for record in records:  # newest first
        run = record.dagster_run
        tags = run.tags
        partition = tags.get("dagster/partition") or (
            f"{tags['dagster/asset_partition_range_start']}..{tags['dagster/asset_partition_range_end']}"
            if "dagster/asset_partition_range_start" in tags else None)
        for entry in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE):
            if entry.step_key and entry.step_key not in found:
                found[entry.step_key] = {"run_id": run.run_id, "partition": partition, "at": _at(entry.timestamp),
                                         "reason": failure_reason(entry)}
    return found


def collect(instance: dg.DagsterInstance, assets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per asset of the catalog, from a handful of instance queries."""
    today = datetime.now(UTC).date()
    keys = [dg.AssetKey(a["path"]) for a in assets]
    records = {r.asset_entry.asset_key: r.asset_entry for r in instance.get_asset_records(keys)}
    check_keys = [dg.AssetCheckKey(key, name) for key, a in zip(keys, assets, strict=True) for name in a["checks"]]
    evaluations = instance.event_log_storage.get_latest_asset_check_execution_by_key(check_keys) if check_keys else {}
    step_failures = recent_step_failures(instance)
    rows = []
    for key, asset in zip(keys, assets, strict=True):
        entry = records.get(key)
        materialized = sorted(instance.get_materialized_partitions(key)) if asset["partitioned"] and entry else []
        latest = materialized[-1] if materialized else None
        lag = (today - datetime.fromisoformat(latest).date()).days - 1 if latest else None
        allowed = FRESHNESS_LAG_DAYS.get(asset["group"] or "", 1)
        checks = {}
        for name in asset["checks"]:
            record = evaluations.get(dg.AssetCheckKey(key, name))
            if record is None:
                continue
            evaluation = record.event.asset_check_evaluation if record.event else None
            checks[name] = {
                "status": record.status.value,
                "passed": evaluation.passed if evaluation else None,
                "partition": record.partition,
                "description": evaluation.description if evaluation else None,
            }
        failed = instance.fetch_failed_materializations(key, limit=1).records
        last_failure = ({"run_id": failed[0].run_id, "partition": failed[0].partition_key, "at": _at(failed[0].timestamp)}
                        if failed else None)
        step_failure = step_failures.get(asset.get("op") or "")
        if step_failure and (last_failure is None or step_failure["at"] > last_failure["at"]):
            last_failure = step_failure
        last = entry.last_materialization if entry else None
        rows.append({
            "asset": asset["asset"],
            "group": asset["group"],
            "latest_partition": latest,
            "partitions_materialized": len(materialized),
            "last_materialized_at": _at(last.timestamp) if last else None,
            "freshness": "unknown" if lag is None else ("fresh" if lag <= allowed - 1 else f"stale ({lag} days behind)"),
            "checks": checks,
            "last_failure": last_failure,
        })
    return rows


def shorten(text: str, limit: int = 160) -> str:
    """Range runs put one sentence per week in a description; the table shows the start (--json has all)."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render(rows: list[dict[str, Any]]) -> str:
    """A table to read at a glance, then the problems (failing checks, last failures) one per line."""
    header = ("asset", "latest", "parts", "freshness", "checks", "last run")
    table = []
    problems = []
    for row in rows:
        bad = [(name, c) for name, c in row["checks"].items() if c["passed"] is False]
        passed = sum(c["passed"] is True for c in row["checks"].values())  # planned or skipped: not ok
        checks = f"{passed}/{len(row['checks'])} ok" if row["checks"] else "-"
        ran = row["latest_partition"] or row["last_materialized_at"]
        freshness = row["freshness"] if ran else ("failed" if row["last_failure"] else "never run")
        last_run = (row["last_materialized_at"] or "-")[:16].replace("T", " ")
        failure = row["last_failure"]
        if failure and (failure["at"] or "") > (row["last_materialized_at"] or ""):  # not mended since
            last_run = "FAILED " + (failure["at"] or "")[:16].replace("T", " ")
            reason = f": {shorten(failure['reason'])}" if failure.get("reason") else ""
            problems.append(f"{row['asset']}: failed partition {failure['partition'] or '-'} "
                            f"at {(failure['at'] or '')[:19]} (run {failure['run_id'][:8]}){reason}")
        for name, c in bad:
            problems.append(f"{row['asset']} [{name}] partition {c['partition'] or '-'}: "
                            f"{shorten(c['description'] or c['status'])}")
        table.append((row["asset"], row["latest_partition"] or "-", str(row["partitions_materialized"] or "-"),
                      freshness, checks + (" !" if bad else ""), last_run))
    widths = [max(len(r[i]) for r in [header, *table]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
             for r in [header, tuple("-" * w for w in widths), *table]]
    if problems:
        lines += ["", "problems:", *(f"  {p}" for p in problems)]
    return "\n".join(lines)


MONITORING_SUMMARY = (  # asset, what to say, metadata keys of its latest materialization
    ("monitoring/feature_drift", "feature drift", ("max_psi", "worst_status")),
    ("monitoring/score_drift", "score drift", ("overall_psi", "flagged_share", "worst_status")),
    ("monitoring/label_freshness", "label arrival", ("worst_status",)),
    ("monitoring/realized_performance", "realized AUC", ("champion_auc", "labelled", "cohort")),
)


def monitoring_summary(instance: dg.DagsterInstance) -> list[str]:
    """One line per monitor: its latest partition and headline figures (from materialization metadata,
    one batched query); empty when no monitor has run."""
    keys = [dg.AssetKey(name.split("/")) for name, _, _ in MONITORING_SUMMARY]
    records = {r.asset_entry.asset_key: r.asset_entry for r in instance.get_asset_records(keys)}
    lines = []
    for key, (_, label, fields) in zip(keys, MONITORING_SUMMARY, strict=True):
        entry = records.get(key)
        event = entry.last_materialization if entry else None
        materialization = event.asset_materialization if event else None
        if materialization is None:
            continue
        values = {k: materialization.metadata[k].value for k in fields if k in materialization.metadata}
        text = ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items())
        lines.append(f"  {label:<14} {materialization.partition or '-':<10}  {text}")
    return ["", "monitoring (latest):", *lines] if lines else []


def run(as_json: bool) -> str:
    """The `rcm status` answer for the instance at DAGSTER_HOME (its table, or JSON)."""
    from rcm_assets.platform.instance import ensure_dagster_home, get_instance

    instance = get_instance()
    rows = collect(instance, catalog(ensure_dagster_home()))
    return json.dumps(rows, indent=2, default=str) if as_json else "\n".join([render(rows), *monitoring_summary(instance)])
