"""`rcm demo`: generate a synthetic source and run the whole graph over it, then summarize."""

from __future__ import annotations

import shutil
import time
from argparse import Namespace
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import mlflow
import pandas as pd

from rcm_assets.cli.commands import GROUPS, Runner, asset_keys_in_groups, report, run_range
from rcm_assets.cli.console import EXIT_OK, UsageError, elapsed, say, utc_today
from rcm_assets.cli.evaluation import model_vs_bayes, read_lake, scored_vs_bayes
from rcm_assets.defs import partitions
from rcm_assets.lib import settings
from rcm_assets.platform.resources import LandingResource, SourceResource
from rcm_assets.synthetic import generate, write_ground_truth, write_source, write_x12_files


def run(args: Namespace, runner: Runner) -> int:
    first: date = args.start
    last = first + timedelta(days=args.days - 1)
    if args.days < 1 or args.claims_per_day < 1:
        raise UsageError("--days and --claims-per-day must be positive")
    if first < partitions.PARTITIONS_START or last > utc_today():
        raise UsageError(f"demo days must lie within {partitions.PARTITIONS_START} .. {utc_today()} "
                         f"(got {first} .. {last}); set RCM_PARTITIONS_START to start earlier")
    started = time.monotonic()
    facility_tz = settings.facility_tz()  # the pipeline reads the same setting
    say(f"[1/3] generating {args.days} days x {args.claims_per_day} claims (seed {args.seed}, realistic source, "
        f"facility time zone {facility_tz}) ...")
    data = generate(start=first, days=args.days, claims_per_day=args.claims_per_day, seed=args.seed,
                    facility_tz=facility_tz)
    source_url, truth_path = settings.source_url(), settings.ground_truth_path()
    if args.dry_run:  # the synthetic source goes to a throwaway folder; nothing under RCM_DATA_DIR changes
        tmp = Path(runner.scratch_dir or ".")
        source_url, truth_path = settings.sqlite_url(tmp / "source.db"), tmp / "claims_truth.parquet"
        runner.resources["source"] = SourceResource(url=source_url)
    else:
        settings.data_dir().mkdir(parents=True, exist_ok=True)
        for path in reset_outputs():
            say(f"      removed the previous demo's {path} (the demo regenerates its whole world)")
    if args.from_x12:  # the rows arrive as X12 files only; the SQL source holds none of them
        landing_dir = Path(runner.scratch_dir or ".") / "landing" if args.dry_run else settings.landing_dir()
        if args.dry_run:
            runner.resources["landing"] = LandingResource(
                landing_dir=str(landing_dir), quarantine_dir=str(landing_dir.parent / "quarantine"),
                first_day=partitions.PARTITIONS_START.isoformat())
        files = write_x12_files(data, None, landing_dir, facility_tz)
        say(f"      {len(files)} X12 files (837, 835) -> {landing_dir}")
        write_source(replace(data, claims=data.claims.iloc[0:0], remittances=data.remittances.iloc[0:0]),
                     source_url)
    else:
        write_source(data, source_url)
    write_ground_truth(data, truth_path)
    say(f"      {len(data.claims):,} claim rows, {len(data.remittances):,} remittance rows "
        f"-> {'X12 files' if args.from_x12 else 'the source'} "
        f"{settings.source_url() if not args.dry_run else '(temporary)'} ({elapsed(started)})")

    say("[2/3] running the graph (one run per partitioning) ...")
    selection = {group: asset_keys_in_groups(layers) for group, layers in GROUPS.items()}
    outcomes = run_range(runner, selection, first, last)
    code = report(outcomes, args.dry_run)
    if code != EXIT_OK or args.dry_run:
        return code

    say("[3/3] summary")
    rows: dict[str, int] = {}
    for outcome in outcomes:
        rows.update(outcome.rows)
    for name in sorted(rows):
        say(f"  {name:<36} {rows[name]:>10,} rows")
    summarize_models(first, last, truth_path)
    say(f"  lake:   {settings.lake_url()}")
    say(f"  source: {settings.source_url()}")
    say(f"  MLflow: {settings.mlflow_tracking_uri()}  (mlflow ui --backend-store-uri <that URI>)")
    say("  UI:     make dev  (or: .venv/bin/dagster dev) then open http://127.0.0.1:3000")
    say(f"done in {elapsed(started)}")
    return EXIT_OK


def reset_outputs() -> list[Path]:
    """Remove the lake and MLflow folders a previous demo left under RCM_DATA_DIR.

    The demo regenerates the source, so the models and scores of the last demo describe another world;
    and a model week promoted before is refused without --force. Only local folders inside the data
    folder are removed, never a lake or tracking server configured elsewhere.
    """
    data_dir = settings.data_dir()
    removed = []
    for path in (Path(settings.lake_url()), data_dir / "mlflow"):
        if path.is_dir() and data_dir in path.resolve().parents:
            shutil.rmtree(path)
            removed.append(path)
    return removed


def summarize_models(first: date, last: date, truth_path: Path) -> None:
    weeks = [k for k in partitions.weekly_partitions.get_partition_keys() if first.isoformat() <= k <= last.isoformat()]
    models = read_lake(settings.lake_url(), ["model", "denial_model"], weeks, column="week")
    if models.empty:
        say("  no model weeks in this range")
        return
    promoted = int(models["promoted"].sum())
    say(f"  models: {len(models)} weekly versions, {promoted} promoted; latest week {models['week'].iloc[-1]}: "
        f"v{models['model_version'].iloc[-1]} holdout AUC {models['holdout_roc_auc'].iloc[-1]:.4f}")
    latest = models.iloc[-1]
    truth = pd.read_parquet(truth_path)
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri())
    result = model_vs_bayes(settings.lake_url(), date.fromisoformat(latest["week"]),
                            f"models:/{latest['model_name']}/{latest['model_version']}",
                            latest["feature_version"], truth)
    say(f"  latest model vs Bayes-optimal on its holdout ({int(result['holdout_rows']):,} claims): "
        f"AUC {result['model_auc']:.4f} vs {result['bayes_auc']:.4f} "
        f"(gap {result['bayes_auc'] - result['model_auc']:.4f})")
    served = scored_vs_bayes(settings.lake_url(), partitions.MODEL_START, last, truth)
    if served["scored_rows"]:
        say(f"  scores served out of time vs Bayes-optimal ({int(served['scored_rows']):,} adjudicated claims, "
            f"{partitions.MODEL_START} .. {last}): AUC {served['model_auc']:.4f} vs {served['bayes_auc']:.4f} "
            f"(gap {served['bayes_auc'] - served['model_auc']:.4f})")
