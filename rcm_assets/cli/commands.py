"""The CLI's commands: each one materializes assets through Dagster against the DAGSTER_HOME instance.

Runs are grouped by partitioning (daily layers, weekly model, daily scores), and a long range is cut into
consecutive runs of at most RCM_BACKFILL_CHUNK_DAYS days (`--chunk-days`), so a run's memory is bounded by
its chunk, not by the range. `--dry-run` runs the same steps against an ephemeral instance, a lake IO
manager that reads the real lake but keeps writes in memory, the real MLflow registry read-only (a private
snapshot when the run trains, see `platform.dry_run`) and, for `--input`, a temporary landing folder
holding the file beside the real landing files of its days; then it reports what a real run would have
written. Its exit code is the real run's.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from argparse import Namespace
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
from mlflow import MlflowClient

from rcm_assets import definitions
from rcm_assets.cli.console import EXIT_FAILED, EXIT_OK, UsageError, elapsed, say, utc_today
from rcm_assets.defs import partitions
from rcm_assets.lib import champion as champion_lib
from rcm_assets.lib import landing, settings
from rcm_assets.platform import dry_run as dry
from rcm_assets.platform.dry_run import DryRunLakeIOManager
from rcm_assets.platform.instance import get_instance
from rcm_assets.platform.memory import release_memory
from rcm_assets.platform.resources import LandingResource, MlflowResource, build_resources

GROUPS = {
    "daily": ("bronze", "silver", "gold"),
    "weekly": ("model",),
    "scoring": ("predictions",),
    "serving": ("serving",),  # the scoring service's bundle (serving/bundle): only when selected
}
# Run config fields each layer's assets take from the settings (environment or configuration file).
CONFIGURED_FIELDS = {
    "silver": settings.silver_overrides,
    "model": settings.model_overrides,
    "predictions": settings.scoring_overrides,
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


def op_name(key: dg.AssetKey) -> str | None:
    """The op that materializes an asset (None for an asset Dagster only observes, like landing/quarantine)."""
    assets_def = definitions.defs.resolve_asset_graph().get(key).assets_def
    return assets_def.op.name if assets_def.is_executable else None


def config_fields(assets_def: dg.AssetsDefinition) -> set[str]:
    """The run config fields an asset's op accepts (empty when it takes no config)."""
    schema = assets_def.op.config_schema
    config_type = getattr(schema, "config_type", None)
    return set(getattr(config_type, "fields", None) or {})


def configured_op_config(keys: Iterable[dg.AssetKey]) -> dict[str, dict]:
    """Op name -> run config for the selected assets, from the settings the environment or the
    configuration file set (gate parameters for the model, thresholds for silver and predictions);
    values nobody set are left to the assets' own defaults."""
    graph = definitions.defs.resolve_asset_graph()
    ops: dict[str, dict] = {}
    for key in keys:
        node = graph.get(key)
        values = CONFIGURED_FIELDS.get(node.group_name or "", dict)()
        if not values or op_name(key) is None:
            continue
        fields = config_fields(node.assets_def)
        picked = {name: value for name, value in values.items() if name in fields}
        if picked:
            ops.setdefault(op_name(key), {}).update(picked)
    return ops


class Runner:
    """Materializes selections over partition ranges, for real or as a dry run."""

    def __init__(self, dry_run: bool, command: str):
        self.dry_run = dry_run
        self.command = command
        # read once: a run's MLflow client exports its own tracking URI into the environment
        self.tracking_uri = settings.mlflow_tracking_uri()
        self.artifact_location = settings.mlflow_artifact_location()
        self.resources = build_resources()
        self.scratch_dir: Path | None = None  # dry runs only: registry snapshot, landing copy, demo source
        self.registry_snapshot: bool = False
        self.notes: list[str] = []  # dry runs: what a real run would also have written
        if dry_run:
            self.instance = dg.DagsterInstance.ephemeral()
            self.scratch_dir = Path(tempfile.mkdtemp(prefix="rcm-dry-run-"))
            self.resources["lake"] = DryRunLakeIOManager(base_url=settings.lake_url())
            real_db = dry.sqlite_path(self.tracking_uri)
            if command == "demo" or (real_db is not None and not real_db.is_file()):
                # an empty registry: the real demo removes the old one; a missing database is not created
                self.resources["mlflow_tracking"] = MlflowResource(
                    tracking_uri=settings.sqlite_url(self.scratch_dir / "mlflow.db"),
                    artifact_location=(self.scratch_dir / "artifacts").as_uri())
            else:  # the real registry, read-only
                self.resources["mlflow_tracking"] = dry.ReadOnlyMlflowResource(
                    tracking_uri=self.tracking_uri, artifact_location=self.artifact_location)
        else:
            self.instance = get_instance()

    def close(self) -> None:
        if self.scratch_dir is not None:
            shutil.rmtree(self.scratch_dir, ignore_errors=True)

    def use_registry_snapshot(self) -> None:
        """Training in a dry run logs and registers to run its gate: give it a private copy of the registry."""
        if not self.dry_run or self.registry_snapshot or self.command == "demo":
            return
        uri = self.tracking_uri
        if dry.sqlite_path(uri) is None:
            raise UsageError(f"a dry run that trains copies the MLflow registry, which needs a SQLite tracking "
                             f"store; MLFLOW_TRACKING_URI is {uri} (run `rcm train` without --dry-run, or "
                             "point MLFLOW_TRACKING_URI at a copy)")
        assert self.scratch_dir is not None
        tracking, artifacts = dry.snapshot_registry(uri, self.scratch_dir)
        self.resources["mlflow_tracking"] = MlflowResource(tracking_uri=tracking, artifact_location=artifacts)
        self.registry_snapshot = True

    def use_landing_dir(self, landing_dir: Path) -> None:
        """Dry runs: bronze reads this (temporary) landing folder instead of the real one."""
        real = self.resources["landing"]
        self.resources["landing"] = LandingResource(landing_dir=str(landing_dir),
                                                    quarantine_dir=str(landing_dir.parent / "quarantine"),
                                                    first_day=real.first_day)

    def redirect_exports(self, keys: list[dg.AssetKey], ops: dict[str, dict]) -> dict[str, Path]:
        """Dry runs: assets that export files outside the lake (an `export_dir` config field, e.g. the
        billers' worklist) export into the scratch folder instead; returns op -> that folder."""
        if not self.dry_run:
            return {}
        assert self.scratch_dir is not None
        graph = definitions.defs.resolve_asset_graph()
        folders = {}
        for key in keys:
            name = op_name(key)
            if name and name not in folders and "export_dir" in config_fields(graph.get(key).assets_def):
                folders[name] = self.scratch_dir / "exports" / name
                ops.setdefault(name, {})["export_dir"] = str(folders[name])
        return folders

    def registry_notes(self) -> list[str]:
        """Dry runs that trained: the versions and champion events a real run would have recorded."""
        if not self.registry_snapshot:
            return []
        snapshot: MlflowResource = self.resources["mlflow_tracking"]
        real_path = dry.sqlite_path(self.tracking_uri)
        with dry.restoring_tracking_uri():
            real = (dry.ReadOnlyMlflowClient(MlflowClient(tracking_uri=self.tracking_uri))
                    if real_path is not None and real_path.is_file() else None)
            return dry.registry_changes(real, MlflowClient(tracking_uri=snapshot.tracking_uri),
                                        snapshot.model_name) or ["would register no model version"]

    def run(self, keys: list[dg.AssetKey], first: str, last: str, label: str,
            op_config: dict[str, dict] | None = None) -> Outcome:
        """One run materializing `keys` for partitions first..last (their checks included); `op_config`
        maps an asset's op name to its run config (e.g. {"model__denial_model": {"force": True}}), on top
        of the values the settings give (`configured_op_config`)."""
        graph = definitions.defs.resolve_asset_graph()
        if any(graph.get(k).group_name in GROUPS["weekly"] for k in keys):
            self.use_registry_snapshot()
        tags = {"rcm/command": self.command, "rcm/dry_run": str(self.dry_run).lower()}
        kwargs: dict = {}
        if first == last:
            kwargs["partition_key"] = first
        else:
            tags.update({"dagster/asset_partition_range_start": first,
                         "dagster/asset_partition_range_end": last})
        ops = configured_op_config(keys)
        for op, cfg in (op_config or {}).items():
            ops.setdefault(op, {}).update(cfg)
        exports = self.redirect_exports(keys, ops)
        started = time.monotonic()
        say(f"  {label}: {first}{'' if first == last else ' .. ' + last} ...")
        with dry.restoring_tracking_uri():
            result = dg.materialize(
                all_assets(), selection=dg.AssetSelection.assets(*keys), instance=self.instance,
                resources=self.resources, tags=tags, raise_on_error=False,
                # the instance's JSON handler logs the run; Dagster's coloured console only for errors
                # (a failure is reported once, by `report`, in one line)
                run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}},
                            **({"ops": {op: {"config": cfg} for op, cfg in ops.items()}} if ops else {})},
                **kwargs,
            )
        outcome = Outcome(label=label, success=result.success, failures=failures_of(result, first, last))
        for event in result.get_asset_materialization_events():
            mat = event.step_materialization_data.materialization
            name = mat.asset_key.to_user_string()
            count = mat.metadata.get("dagster/row_count")
            outcome.rows[name] = outcome.rows.get(name, 0) + int(count.value if count is not None else 0)
            outcome.partitions[name] = outcome.partitions.get(name, 0) + 1
        for line in layer_progress(self.instance, result, outcome):
            say(line)
        for op, folder in exports.items():
            self.notes += [f"export: {op} would write {path.name}" for path in sorted(folder.rglob("*"))
                           if path.is_file()]
        state = "ok" if result.success else "FAILED"
        say(f"  {label}: {state} in {elapsed(started)} (run {result.run_id[:8]})")
        return outcome


def layer_progress(instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult, outcome: Outcome) -> list[str]:
    """One line per layer of a finished run: tables, rows, partitions, seconds its steps took."""
    graph = definitions.defs.resolve_asset_graph()
    layer_of_op = {}
    for key in graph.get_all_asset_keys():
        if (name := op_name(key)) is not None:
            layer_of_op.setdefault(name, graph.get(key).group_name or "?")
    started: dict[str, float] = {}
    seconds: dict[str, float] = {}
    kinds = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE}
    for entry in instance.all_logs(result.run_id, of_type=kinds):
        step = entry.step_key
        if step is None or step not in layer_of_op or entry.dagster_event is None:
            continue
        if entry.dagster_event.event_type == dg.DagsterEventType.STEP_START:
            started[step] = entry.timestamp
        elif step in started:
            layer = layer_of_op[step]
            seconds[layer] = seconds.get(layer, 0.0) + entry.timestamp - started.pop(step)
    layers: dict[str, list[str]] = {}
    for name in outcome.rows:
        layers.setdefault(name.split("/", 1)[0], []).append(name)
    lines = []
    for layer in [g for group in GROUPS.values() for g in group]:
        if layer not in seconds and layer not in layers:
            continue
        names = layers.get(layer, [])
        rows = sum(outcome.rows[n] for n in names)
        parts = max((outcome.partitions[n] for n in names), default=0)
        lines.append(f"    {layer:<12} {len(names)} table(s) {rows:>12,} rows {parts:>5} partition(s) "
                     f"{seconds.get(layer, 0.0):>7.1f} s")
    return lines


def asset_of_step(step_key: str) -> str:
    """The asset (or assets) a step materializes, as users write them (silver/claims)."""
    graph = definitions.defs.resolve_asset_graph()
    names = sorted(k.to_user_string() for k in graph.get_all_asset_keys() if op_name(k) == step_key)
    return ", ".join(names) if names else step_key


def failures_of(result: dg.ExecuteInProcessResult, first: str, last: str) -> list[tuple[str, str, str]]:
    """(asset, partition, reason) for failed steps and failed blocking checks, one line each."""
    span = first if first == last else f"{first}..{last}"
    found = []
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE":
            data = event.step_failure_data
            error = data.error
            cause = error
            while cause is not None and cause.cause is not None and "Failure" not in cause.cls_name:
                cause = cause.cause
            described = data.user_failure_data.description if data.user_failure_data is not None else None
            message = described or ((cause or error).message if (cause or error) else "failed")
            found.append((asset_of_step(event.step_key or "?"), span, " ".join(message.split())))
    for evaluation in result.get_asset_check_evaluations():
        if not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR:
            reason = " ".join((evaluation.description or "check failed").split())
            if any(reason in failure[2] for failure in found):
                continue  # the step's failure already says it
            found.append((f"{evaluation.asset_key.to_user_string()} [{evaluation.check_name}]", span, reason))
    return found


def report(outcomes: list[Outcome], dry_run: bool, runner: Runner | None = None) -> int:
    failed = [o for o in outcomes if not o.success]
    for outcome in failed:
        for asset, partition, reason in outcome.failures or [(outcome.label, "?", "run failed")]:
            say(f"FAILED {asset} partition {partition}: {reason}")
    if dry_run:
        say("dry run: nothing was written. A real run would have written:")
        for outcome in outcomes:
            for name, count in sorted(outcome.partitions.items()):
                say(f"  lake: {name}: {outcome.rows[name]:,} rows in {count} partition(s) under {settings.lake_url()}")
        for note in (runner.notes if runner else []):
            say(f"  {note}")
        for line in (runner.registry_notes() if runner else []):
            say(f"  MLflow: {line}")
        if outcomes:
            say(f"  instance: {len(outcomes)} run(s) recorded in {os.environ.get('DAGSTER_HOME', '.dagster_home')}")
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


def chunked(keys: list[str], size: int) -> list[tuple[str, str]]:
    """Consecutive (first, last) partition keys of at most `size` keys each, in order."""
    if size <= 0:
        raise UsageError(f"a backfill chunk must hold at least one partition, got {size}")
    return [(keys[i], keys[min(i + size, len(keys)) - 1]) for i in range(0, len(keys), size)]


def keys_between(defn: dg.PartitionsDefinition, first: str, last: str) -> list[str]:
    return [k for k in defn.get_partition_keys() if first <= k <= last]


def policy_size(keys: list[dg.AssetKey], default: int) -> int:
    """Partitions per run for `keys`: the smallest multi-run backfill policy among them, else `default`."""
    graph = definitions.defs.resolve_asset_graph()
    sizes = [policy.max_partitions_per_run for k in keys
             if (policy := graph.get(k).assets_def.backfill_policy) is not None and policy.max_partitions_per_run]
    return min(sizes, default=default)


def run_range(runner: Runner, selection: dict[str, list[dg.AssetKey]], first: date, last: date,
              op_config: dict[str, dict] | None = None, chunk_days: int | None = None) -> list[Outcome]:
    """Daily layers, then model weeks, then scores, each cut into consecutive runs of a bounded number of
    partitions (at most `chunk_days` days, default RCM_BACKFILL_CHUNK_DAYS; model weeks as their backfill
    policy allows), oldest first, so a run's memory is bounded by its chunk, not by the range. Stops at the
    first failed run, naming its chunk and what was not run. A dry run keeps each layer in one run: its
    writes stay in memory for one run only, so a later chunk could not see what an earlier one wrote."""
    days_per_run = settings.backfill_chunk_days() if chunk_days is None else chunk_days
    if days_per_run <= 0:
        raise UsageError(f"--chunk-days must be 1 or more, got {days_per_run}")
    plan: list[tuple[list[dg.AssetKey], list[tuple[str, str]], str]] = []

    def add(keys: list[dg.AssetKey], defn: dg.PartitionsDefinition, lo: str, hi: str, size: int, label: str):
        spans = [(lo, hi)] if runner.dry_run else chunked(keys_between(defn, lo, hi), size)
        plan.append((keys, spans, label))

    if selection.get("daily"):
        check_days(first, last, partitions.daily_partitions, "daily")
        add(selection["daily"], partitions.daily_partitions, first.isoformat(), last.isoformat(), days_per_run,
            "bronze → silver → gold")
    if selection.get("weekly") and (weeks := weeks_between(first, last)):
        add(selection["weekly"], partitions.weekly_partitions, *weeks,
            policy_size(selection["weekly"], max(1, days_per_run // 7)), "weekly models")
    if selection.get("scoring") and (days := scoring_days(first, last)):
        add(selection["scoring"], partitions.scoring_partitions, *days, days_per_run, "predictions")
    if selection.get("serving"):  # one day per run: a bundle describes one serving day
        add(selection["serving"], partitions.daily_partitions, first.isoformat(), last.isoformat(), 1, "serving")
    outcomes = []
    for step, (keys, spans, label) in enumerate(plan):
        ops = {op: cfg for op, cfg in (op_config or {}).items()
               if any("__".join(k.path) == op for k in keys)}
        for n, (lo, hi) in enumerate(spans, start=1):
            name = label if len(spans) == 1 else f"{label} [chunk {n}/{len(spans)}]"
            outcomes.append(runner.run(keys, lo, hi, name, op_config=ops or None))
            release_memory()
            if not outcomes[-1].success:
                left = ([f"{label} {spans[n][0]} .. {spans[-1][1]}"] if n < len(spans) else []) + [
                    f"{later} {rest[0][0]} .. {rest[-1][1]}" for _, rest, later in plan[step + 1:]]
                say(f"stopped at {name}, {lo} .. {hi}: it failed (the runs before it are written)"
                    + (f"; not run: {', '.join(left)}" if left else ""))
                return outcomes
    return outcomes


def cmd_extract(args: Namespace, runner: Runner) -> int:
    today = utc_today()
    if args.until is not None and args.date is None:
        raise UsageError("--until goes with --date")
    if args.input is not None:
        first, last = stage_input_file(args.input, runner)
    else:
        first, last = (args.since, today) if args.since is not None else (args.date, args.until or args.date)
        first = with_lookback(first, args.lookback_days)
    selection = {"daily": asset_keys_in_groups(GROUPS["daily"])}
    return report(run_range(runner, selection, first, last), args.dry_run, runner)


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


def stage_input_file(path: Path, runner: Runner) -> tuple[date, date]:
    """Validate a landing file given on the command line (CSV/Parquet named for its day, or X12 837/835)
    and copy it into the landing folder; returns the first and last day it feeds.

    A dry run copies it into a temporary landing folder instead, beside copies of the real landing files
    of the same days, so bronze reads exactly what the real run would read and its rows go through every
    contract and PHI check; the real landing folder is not touched.
    """
    if not path.is_file():
        raise UsageError(f"input file not found: {path}")
    try:
        if landing.is_x12_name(Path(path)):
            names, rejected, warnings = landing.validate_x12_file(path, partitions.PARTITIONS_START,
                                                                  utc_today(), settings.facility_tz())
            for problem in rejected:
                say(f"{path.name}: transaction set refused, the others kept: {problem.envelope}, "
                    f"segment {problem.segment_position} ({problem.segment}): {problem.problem}")
            for warning in warnings:
                say(f"{path.name}: envelope warning, nothing refused: {warning}")
            days = [name.day for name in names]
        else:
            days = [landing.validate_file(path, partitions.PARTITIONS_START, utc_today()).day]
    except landing.LandingError as exc:
        raise UsageError(f"{path.name} cannot be ingested ({exc.reason}): {exc}") from None
    first, last = min(days), max(days)
    target = settings.landing_dir() / path.name
    if runner.dry_run:
        assert runner.scratch_dir is not None
        staging = runner.scratch_dir / "landing"
        mirror_landing(settings.landing_dir(), staging, first, last)
        copy_atomically(path, staging / path.name)
        runner.use_landing_dir(staging)
        runner.notes.append(f"landing: would copy {path} to {target}")
    else:
        copy_atomically(path, target)
    return first, last


def copy_atomically(path: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.copyfile(path, tmp)
    tmp.replace(target)


def mirror_landing(real: Path, staging: Path, first: date, last: date) -> None:
    """Copy the real landing files bronze would read for first..last (named files of those days, every
    X12 file) into `staging`; hard links where the file system allows (read-only use, no copy cost)."""
    staging.mkdir(parents=True, exist_ok=True)
    wanted: list[Path] = []
    day = first
    while day <= last:
        for table in ("claims", "remittances"):
            wanted += landing.files_for_day(real, table, day)
        day += timedelta(days=1)
    wanted += landing.x12_files(real)
    for source in dict.fromkeys(wanted):
        target = staging / source.name
        try:
            os.link(source, target)
        except OSError:
            shutil.copy2(source, target)


# --force re-trains promoted weeks: the denial model and the week's reason model (each gate refuses a
# promoted week without it)
FORCE_RETRAIN = {op: {"force": True} for op in ("model__denial_model", "model__denial_reason_model")}


def cmd_train(args: Namespace, runner: Runner) -> int:
    week = week_of(args.date)
    keys = partitions.weekly_partitions.get_partition_keys()
    if week.isoformat() not in keys:
        raise UsageError(f"no model week {week}: weeks run {keys[0]} .. {keys[-1]}" if keys else "no model weeks yet")
    outcome = runner.run(asset_keys_in_groups(GROUPS["weekly"]), week.isoformat(), week.isoformat(), "weekly model",
                         op_config=FORCE_RETRAIN if args.force else None)
    return report([outcome], args.dry_run, runner)


def cmd_predict(args: Namespace, runner: Runner) -> int:
    day = utc_today() if args.window == "today" else args.date
    check_days(day, day, partitions.scoring_partitions, "prediction")
    selection = {"scoring": asset_keys_in_groups(GROUPS["scoring"])}
    if args.window == "today":  # today's claims so far: extract them first, then score
        selection["daily"] = asset_keys_in_groups(GROUPS["daily"])
    # written scores are kept unless --rescore asks to rewrite them (each rewrite is recorded)
    rescore = {"predictions__claim_denial_scores": {"rescore": True}} if getattr(args, "rescore", False) else None
    return report(run_range(runner, selection, day, day, op_config=rescore), args.dry_run, runner)


def cmd_backfill(args: Namespace, runner: Runner) -> int:
    selection = resolve_selection(args.select)
    # after a feature change: `--select gold model --force` rebuilds gold and retrains the promoted weeks
    force = FORCE_RETRAIN if getattr(args, "force", False) else None
    outcomes = run_range(runner, selection, args.start, args.end, op_config=force,
                         chunk_days=getattr(args, "chunk_days", None))
    return report(outcomes, args.dry_run, runner)


def cmd_model(args: Namespace) -> int:
    mlf = MlflowResource(tracking_uri=settings.mlflow_tracking_uri(),
                         artifact_location=settings.mlflow_artifact_location())
    client = mlf.client()
    if args.model_command == "history":
        events = champion_lib.history(client, mlf.model_name)
        if events.empty:
            say("no promotions yet")
        for _, event in events.iterrows():  # one readable sentence per decision
            say(f"{event['at'][:19]}  v{event['version']:<4} {event['action']:<9} from {event['effective']}  "
                f"{event['sentence']}")
        say(f"current champion: v{champion_lib.current_champion(client, mlf.model_name)}")
        return EXIT_OK
    try:
        champion_lib.rollback(client, mlf.model_name, args.version, by="rcm model rollback")
    except Exception as exc:  # unknown version: a usage error, reported plainly
        raise UsageError(f"cannot roll back to version {args.version}: {exc}") from None
    say(f"champion is now v{args.version} (from {utc_today()})")
    return EXIT_OK


def cmd_worklist(args: Namespace) -> int:
    """`rcm worklist evaluate`: each day's top K against K random claims and the naive prior-auth rule, on
    the outcomes known now; writes the per-day table (CSV) and the plot (PNG)."""
    from rcm_assets.cli.worklist_evaluation import evaluate

    return evaluate(args.start, args.end, args.k, args.out, args.min_labelled_share)

