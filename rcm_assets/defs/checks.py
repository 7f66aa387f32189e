"""Shared helpers for asset checks computed inside an asset step.

A failing blocking check does not stop the IO manager from writing (DAGSTER_NOTES §4.2), so assets
evaluate their blocking checks *before* returning the output: `publish` yields the check results and
raises instead of yielding the output when a blocking one failed, so bad data never lands.

Checks are recorded per partition. A check spec with a `partitions_def` (see `spec`) gets one evaluation
per partition of the run, also in a single-run range (a backfill, the nightly lookback run), where
Dagster's own `AssetCheckResult` would record one unpartitioned evaluation and leave every planned
partition "skipped". Because the checks run inside the asset's step, they run whenever the asset is
materialized, whatever launched the run (CLI, backfill, schedule, sensor, automation).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import dagster as dg

PartitionResults = Mapping[str, Sequence[dg.AssetCheckResult]]


def result(
    check_name: str,
    passed: bool,
    *,
    asset_key: dg.AssetKey | None = None,
    warn_only: bool = False,
    description: str | None = None,
    **metadata: Any,
) -> dg.AssetCheckResult:
    """An AssetCheckResult with its evidence; `warn_only` checks fail with WARN severity."""
    return dg.AssetCheckResult(
        check_name=check_name,
        asset_key=asset_key,
        passed=bool(passed),
        severity=dg.AssetCheckSeverity.WARN if warn_only else dg.AssetCheckSeverity.ERROR,
        description=description,
        metadata=metadata,
    )


def spec(
    name: str,
    asset: dg.AssetKey,
    description: str,
    *,
    blocking: bool = False,
    partitions_def: dg.PartitionsDefinition | None = None,
) -> dg.AssetCheckSpec:
    """A check spec with its description; with `partitions_def` its evaluations are kept per partition."""
    return dg.AssetCheckSpec(name, asset=asset, description=description, blocking=blocking,
                             partitions_def=partitions_def)


def per_partition(keys: Sequence[str], frame: Any, evaluate: Any, column: str = "dt") -> dict[str, list]:
    """`evaluate(rows_of_day, day)` for each partition key of the run (days without rows get an empty frame)."""
    if column not in getattr(frame, "columns", ()):
        return {keys[0]: list(evaluate(frame, keys[0]))} if len(keys) == 1 else {
            k: list(evaluate(frame.iloc[0:0], k)) for k in keys}
    groups = dict(tuple(frame.groupby(column, sort=False, observed=True))) if len(frame) else {}
    return {k: list(evaluate(groups.get(k, frame.iloc[0:0]), k)) for k in keys}


def publish(
    outputs: Iterable[dg.Output],
    checks: Iterable[dg.AssetCheckResult] | PartitionResults,
    *,
    what: str,
    context: dg.AssetExecutionContext | None = None,
) -> Iterator[dg.Output | dg.AssetCheckResult | dg.AssetCheckEvaluation]:
    """Yield check results, then the outputs only if no ERROR-severity check failed.

    `checks` is a list (one result per check for the whole run) or {partition key: results} (one result
    per check and partition). Partitioned specs get one evaluation per partition of the run: the
    partition's own result, or the run's result for each partition when only that was given.
    """
    by_partition: dict[str | None, list[dg.AssetCheckResult]] = (
        {k: list(v) for k, v in checks.items()} if isinstance(checks, Mapping) else {None: list(checks)})
    flat = [(k, c) for k, results in by_partition.items() for c in results]
    failed = [(k, c) for k, c in flat if not c.passed and c.severity == dg.AssetCheckSeverity.ERROR]
    events = list(_check_events(by_partition, context))
    if failed:
        yield from events
        reasons = "; ".join(f"{c.check_name}{f' [{k}]' if k else ''}: {c.description or 'failed'}"
                            for k, c in failed)
        raise dg.Failure(
            description=f"{what} not written: blocking check(s) failed — {reasons}",
            metadata={"failed_checks": ", ".join(sorted({c.check_name or "" for _, c in failed})),
                      "failed_partitions": ", ".join(sorted({k for k, _ in failed if k})) or "n/a"},
            allow_retries=False,  # bad data stays bad: retrying would only delay the failure
        )
    yield from outputs
    yield from events


def record(
    by_partition: Mapping[str | None, Sequence[dg.AssetCheckResult]], context: dg.AssetExecutionContext | None = None
) -> Iterator[dg.Output | dg.AssetCheckResult | dg.AssetCheckEvaluation]:
    """Record results without `publish`'s gate on the outputs (an asset whose output is written whatever
    its check says, such as the model's row that documents a refused candidate)."""
    return _check_events(by_partition, context)


def _check_events(
    by_partition: Mapping[str | None, Sequence[dg.AssetCheckResult]], context: dg.AssetExecutionContext | None
) -> Iterator[dg.Output | dg.AssetCheckResult | dg.AssetCheckEvaluation]:
    """Dagster events recording the results: per-partition evaluations for partitioned specs."""
    try:
        context = context or dg.AssetExecutionContext.get()
    except dg.DagsterInvariantViolationError:  # direct invocation outside a run: plain results
        context = None
    if context is None:
        yield from (c for results in by_partition.values() for c in results)
        return
    assets_def = context.assets_def
    selected = context.selected_asset_check_keys
    run_keys = context.partition_keys if context.has_partition_key_range or context.has_partition_key else []
    names_by_asset: dict[str, list[dg.AssetKey]] = {}
    for key in assets_def.check_keys:
        names_by_asset.setdefault(key.name, []).append(key.asset_key)
    announced: set[dg.AssetCheckKey] = set()
    for partition, results in by_partition.items():
        for c in results:
            asset_key = c.asset_key or _only(names_by_asset.get(c.check_name or "", []), c.check_name)
            check_key = dg.AssetCheckKey(asset_key, c.check_name or "")
            if check_key not in selected:
                continue  # deselected (a subsettable asset): evaluated and enforced, not recorded
            check_spec = assets_def.get_spec_for_check_key(check_key)
            if check_spec.partitions_def is None or not run_keys:
                if check_key not in announced:  # one result per unpartitioned check: the worst one
                    announced.add(check_key)
                    yield _worst(by_partition, check_key, asset_key)
                continue
            if check_key not in announced:  # the check's output: marks the check as executed
                announced.add(check_key)
                yield dg.Output(None, output_name=assets_def.get_output_name_for_asset_check_key(check_key))
            for key in ([partition] if partition is not None else run_keys):
                yield dg.AssetCheckEvaluation(
                    asset_key=asset_key, check_name=check_key.name, passed=c.passed, metadata=c.metadata,
                    severity=c.severity, description=c.description, blocking=check_spec.blocking,
                    partition=key, target_materialization_data=None,
                )


def _worst(by_partition: Mapping[str | None, Sequence[dg.AssetCheckResult]], check_key: dg.AssetCheckKey,
           asset_key: dg.AssetKey) -> dg.AssetCheckResult:
    """An unpartitioned check's one result for the run: the first failing partition's, else the first."""
    same = [c for results in by_partition.values() for c in results
            if c.check_name == check_key.name and (c.asset_key or asset_key) == check_key.asset_key]
    chosen = next((c for c in same if not c.passed), same[0])
    return chosen if chosen.asset_key else chosen._replace(asset_key=asset_key)


def _only(keys: list[dg.AssetKey], name: str | None) -> dg.AssetKey:
    if len(keys) != 1:
        raise dg.DagsterInvariantViolationError(f"check {name!r} targets {len(keys)} assets: name the asset key")
    return keys[0]
