"""The CLI's commands: each one materializes assets through Dagster against the DAGSTER_HOME instance.

Runs are grouped by partitioning so a range of days is one run per group (daily layers, weekly model,
daily scores). `--dry-run` uses an ephemeral instance, a lake IO manager that reads the real lake but
keeps writes in memory, and a throwaway MLflow store, then reports what would have been written.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from argparse import Namespace
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import dagster as dg

from rcm_assets import definitions
from rcm_assets.cli import status as status_report
from rcm_assets.cli.console import EXIT_FAILED, EXIT_OK, UsageError, as_json, elapsed, say, utc_today
from rcm_assets.defs import partitions
from rcm_assets.lib import champion as champion_lib
from rcm_assets.lib import landing, settings
from rcm_assets.platform.dry_run import DryRunLakeIOManager
from rcm_assets.platform.instance import get_instance
from rcm_assets.platform.resources import MlflowResource, build_resources

GROUPS = {
    "daily": ("bronze", "silver", "gold"),
    "weekly": ("model",),
    "scoring": ("predictions",),
}


@dataclass
class Outcome:
    """What a run did: success, failures (asset, partition, reason) and what was (or would be) written."""

    label: str
    success: bool = True
    failures: list[tuple[str, str, str]] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)  # asset -> rows materialized (or that would be)
    partitions: dict[str, int] = field(default_factory=dict)  # asset -> partitions materialized


def all_assets() -> list:
    repo = definitions.defs
    return [*repo.assets, *(repo.asset_checks or [])]


def asset_keys_in_groups(groups: Iterable[str]) -> list[dg.AssetKey]:
    graph = definitions.defs.resolve_asset_graph()
    wanted = set(groups)
    return sorted((k for k in graph.get_all_asset_keys() if graph.get(k).group_name in wanted),
                  key=lambda k: k.to_user_string())


class Runner:
    """Materializes selections over partition ranges, for real or as a dry run."""

    def __init__(self, dry_run: bool, command: str):
        self.dry_run = dry_run
        self.command = command
        self.resources = build_resources()
        self.scratch_dir: Path | None = None  # dry runs only: throwaway source and MLflow
        if dry_run:
            self.instance = dg.DagsterInstance.ephemeral()
            self.scratch_dir = Path(tempfile.mkdtemp(prefix="rcm-dry-run-"))
            self.resources["lake"] = DryRunLakeIOManager(base_url=settings.lake_url())
            self.resources["mlflow_tracking"] = MlflowResource(
                tracking_uri=settings.sqlite_url(self.scratch_dir / "mlflow.db"),
                artifact_location=(self.scratch_dir / "artifacts").as_uri(),
            )
        else:
            self.instance = get_instance()

    def close(self) -> None:
        if self.scratch_dir is not None:
            shutil.rmtree(self.scratch_dir, ignore_errors=True)

    def run(self, keys: list[dg.AssetKey], first: str, last: str, label: str,
            op_config: dict[str, dict] | None = None) -> Outcome:
        """One run materializing `keys` for partitions first..last (their checks included); `op_config`
        maps an asset's op name to its run config (e.g. {"model__denial_model": {"force": True}})."""
        tags = {"rcm/command": self.command, "rcm/dry_run": str(self.dry_run).lower()}
        kwargs: dict = {}
        if first == last:
            kwargs["partition_key"] = first
        else:
            tags.update({"dagster/asset_partition_range_start": first,
                         "dagster/asset_partition_range_end": last})
        started = time.monotonic()
        say(f"  {label}: {first}{'' if first == last else ' .. ' + last} ...")
        result = dg.materialize(
            all_assets(), selection=dg.AssetSelection.assets(*keys), instance=self.instance,
            resources=self.resources, tags=tags, raise_on_error=False,
            # the instance's JSON handler logs the run; keep Dagster's coloured console to warnings
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}},
                        **({"ops": {op: {"config": cfg} for op, cfg in op_config.items()}} if op_config else {})},
            **kwargs,
        )
        outcome = Outcome(label=label, success=result.success, failures=failures_of(result, first, last))
        for event in result.get_asset_materialization_events():
            mat = event.step_materialization_data.materialization
            name = mat.asset_key.to_user_string()
            count = mat.metadata.get("dagster/row_count")
            outcome.rows[name] = outcome.rows.get(name, 0) + int(count.value if count is not None else 0)
            outcome.partitions[name] = outcome.partitions.get(name, 0) + 1
        state = "ok" if result.success else "FAILED"
        say(f"  {label}: {state} in {elapsed(started)} (run {result.run_id[:8]})")
        return outcome


def failures_of(result: dg.ExecuteInProcessResult, first: str, last: str) -> list[tuple[str, str, str]]:
    """(asset, partition, reason) for failed steps and failed blocking checks."""
    span = first if first == last else f"{first}..{last}"
    found = []
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE":
            error = event.step_failure_data.error
            cause = error
            while cause is not None and cause.cause is not None and "Failure" not in cause.cls_name:
                cause = cause.cause
            message = (cause or error).message.strip().splitlines()[0] if (cause or error) else "failed"
            found.append((event.step_key or "?", span, message))
    for evaluation in result.get_asset_check_evaluations():
        if not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR:
            found.append((f"{evaluation.asset_key.to_user_string()} [{evaluation.check_name}]", span,
                          evaluation.description or "check failed"))
    return found


def report(outcomes: list[Outcome], dry_run: bool) -> int:
    failed = [o for o in outcomes if not o.success]
    for outcome in failed:
        for asset, partition, reason in outcome.failures or [(outcome.label, "?", "run failed")]:
            say(f"FAILED {asset} partition {partition}: {reason}")
    if dry_run:
        say("dry run: nothing was written. It would have written:")
        for outcome in outcomes:
            for name, count in sorted(outcome.partitions.items()):
                say(f"  {name}: {outcome.rows[name]} rows in {count} partition(s) under {settings.lake_url()}")
    return EXIT_FAILED if failed else EXIT_OK


# --------------------------------------------------------------------------------------------------
# Ranges and validation
# --------------------------------------------------------------------------------------------------


def check_days(first: date, last: date, defn: dg.TimeWindowPartitionsDefinition, what: str) -> None:
    keys = defn.get_partition_keys()
    if not keys:
        raise UsageError(f"no {what} partitions exist yet")
    if first > last:
        raise UsageError(f"start {first} is after end {last}")
    if first.isoformat() < keys[0] or last.isoformat() > keys[-1]:
        raise UsageError(f"{what} days must lie within {keys[0]} .. {keys[-1]} (got {first} .. {last})")


def week_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def weeks_between(first: date, last: date) -> tuple[str, str] | None:
    """Model weeks whose Monday lies in [first, last], clipped to existing weekly partitions."""
    keys = [k for k in partitions.weekly_partitions.get_partition_keys()
            if first.isoformat() <= k <= last.isoformat()]
    return (keys[0], keys[-1]) if keys else None


def scoring_days(first: date, last: date) -> tuple[str, str] | None:
    start = max(first, partitions.MODEL_START)
    return (start.isoformat(), last.isoformat()) if start <= last else None


def resolve_selection(names: list[str] | None) -> dict[str, list[dg.AssetKey]]:
    """Group -> asset keys for `--select` names (asset keys like bronze/claims or layer names)."""
    graph = definitions.defs.resolve_asset_graph()
    every = {k.to_user_string(): k for k in graph.get_all_asset_keys()}
    chosen: set[dg.AssetKey] = set()
    for name in names or list(GROUPS["daily"] + GROUPS["weekly"] + GROUPS["scoring"]):
        if name in every:
            chosen.add(every[name])
        elif any(name in layers for layers in GROUPS.values()):
            chosen.update(asset_keys_in_groups([name]))
        else:
            raise UsageError(f"unknown asset or layer {name!r}; known: {', '.join(sorted(every))}")
    return {group: [k for k in asset_keys_in_groups(layers) if k in chosen]
            for group, layers in GROUPS.items()}


# --------------------------------------------------------------------------------------------------
# Commands
# --------------------------------------------------------------------------------------------------


def run_range(runner: Runner, selection: dict[str, list[dg.AssetKey]], first: date, last: date) -> list[Outcome]:
    """Daily layers, then model weeks, then scores: one run each, stopping at the first failure."""
    plan = []
    if selection.get("daily"):
        check_days(first, last, partitions.daily_partitions, "daily")
        plan.append((selection["daily"], first.isoformat(), last.isoformat(), "bronze → silver → gold"))
    if selection.get("weekly") and (weeks := weeks_between(first, last)):
        plan.append((selection["weekly"], *weeks, "weekly models"))
    if selection.get("scoring") and (days := scoring_days(first, last)):
        plan.append((selection["scoring"], *days, "predictions"))
    outcomes = []
    for keys, lo, hi, label in plan:
        outcomes.append(runner.run(keys, lo, hi, label))
        if not outcomes[-1].success:
            break
    return outcomes


def cmd_extract(args: Namespace, runner: Runner) -> int:
    today = utc_today()
    if args.until is not None and args.date is None:
        raise UsageError("--until goes with --date")
    if args.input is not None:
        first, last = stage_input_file(args.input, args.dry_run)
    else:
        first, last = (args.since, today) if args.since is not None else (args.date, args.until or args.date)
        first = with_lookback(first, args.lookback_days)
    selection = {"daily": asset_keys_in_groups(GROUPS["daily"])}
    return report(run_range(runner, selection, first, last), args.dry_run)


def with_lookback(first: date, lookback_days: int | None) -> date:
    """`first` moved back by the lookback days (rows committed late land on days already extracted;
    bronze stores only the rows it lacks). Never before the partitions start; a `first` already before
    it is left for the range check to refuse."""
    lookback = settings.extract_lookback_days() if lookback_days is None else lookback_days
    if lookback < 0:
        raise UsageError(f"--lookback-days must be 0 or more, got {lookback}")
    if first < partitions.PARTITIONS_START:
        return first
    return max(partitions.PARTITIONS_START, first - timedelta(days=lookback))


def stage_input_file(path: Path, dry_run: bool) -> tuple[date, date]:
    """Validate a landing file given on the command line (CSV/Parquet named for its day, or X12 837/835)
    and copy it into the landing folder; returns the first and last day it feeds."""
    if not path.is_file():
        raise UsageError(f"input file not found: {path}")
    try:
        if landing.is_x12_name(path.name):
            names, rejected = landing.validate_x12_file(path, partitions.PARTITIONS_START, utc_today(),
                                                        settings.facility_tz())
            for problem in rejected:
                say(f"{path.name}: transaction set refused, the others kept: {problem.envelope}, "
                    f"segment {problem.segment_position} ({problem.segment}): {problem.problem}")
            days = [name.day for name in names]
        else:
            days = [landing.validate_file(path, partitions.PARTITIONS_START, utc_today()).day]
    except landing.LandingError as exc:
        raise UsageError(f"{path.name} cannot be ingested ({exc.reason}): {exc}") from None
    target = settings.landing_dir() / path.name
    if dry_run:
        say(f"dry run: would copy {path} to {target}")
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        shutil.copyfile(path, tmp)
        tmp.replace(target)
    return min(days), max(days)


def cmd_train(args: Namespace, runner: Runner) -> int:
    week = week_of(args.date)
    keys = partitions.weekly_partitions.get_partition_keys()
    if week.isoformat() not in keys:
        raise UsageError(f"no model week {week}: weeks run {keys[0]} .. {keys[-1]}" if keys else "no model weeks yet")
    force = {"model__denial_model": {"force": True}} if args.force else None
    outcome = runner.run(asset_keys_in_groups(GROUPS["weekly"]), week.isoformat(), week.isoformat(), "weekly model",
                         op_config=force)
    return report([outcome], args.dry_run)


def cmd_predict(args: Namespace, runner: Runner) -> int:
    day = utc_today() if args.window == "today" else args.date
    check_days(day, day, partitions.scoring_partitions, "prediction")
    selection = {"scoring": asset_keys_in_groups(GROUPS["scoring"])}
    if args.window == "today":  # today's claims so far: extract them first, then score
        selection["daily"] = asset_keys_in_groups(GROUPS["daily"])
    return report(run_range(runner, selection, day, day), args.dry_run)


def cmd_backfill(args: Namespace, runner: Runner) -> int:
    selection = resolve_selection(args.select)
    return report(run_range(runner, selection, args.start, args.end), args.dry_run)


def cmd_status(args: Namespace) -> int:
    rows = status_report.collect(get_instance(), definitions.defs)
    say(as_json(rows) if args.json else status_report.render(rows))
    return EXIT_OK


def cmd_model(args: Namespace) -> int:
    mlf = MlflowResource(tracking_uri=settings.mlflow_tracking_uri(),
                         artifact_location=settings.mlflow_artifact_location())
    client = mlf.client()
    if args.model_command == "history":
        events = champion_lib.history(client, mlf.model_name)
        say(events.to_string(index=False) if not events.empty else "no promotions yet")
        say(f"current champion: v{champion_lib.current_champion(client, mlf.model_name)}")
        return EXIT_OK
    try:
        champion_lib.rollback(client, mlf.model_name, args.version, by="rcm model rollback")
    except Exception as exc:  # unknown version: a usage error, reported plainly
        raise UsageError(f"cannot roll back to version {args.version}: {exc}") from None
    say(f"champion is now v{args.version} (from {utc_today()})")
    return EXIT_OK

