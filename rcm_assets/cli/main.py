"""`rcm`: one entry point that runs everything through Dagster, so every run shows in the UI.

Exit codes: 0 success; 1 a run failed or a blocking check failed (asset, partition and reason printed);
2 usage error (bad date, unknown asset, missing file, missing production setting).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from rcm_assets.cli.console import EXIT_USAGE, UsageError

PROD_SETTINGS = ("RCM_SOURCE_URL", "RCM_LAKE_URL", "RCM_PHI_KEY", "MLFLOW_TRACKING_URI",
                 "RCM_MLFLOW_ARTIFACTS", "RCM_LANDING_DIR", "RCM_QUARANTINE_DIR", "DAGSTER_HOME")


def parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rcm", description=__doc__.splitlines()[0])
    parser.add_argument("--env", choices=("dev", "prod"), default=None,
                        help="dev allows embedded defaults; prod requires every setting from the environment")
    sub = parser.add_subparsers(dest="command", required=True)

    def writer(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--dry-run", action="store_true",
                       help="read, transform and validate everything; write nothing; say what would be written")
        return p

    demo = writer("demo", "generate a synthetic source and run the whole graph over it")
    demo.add_argument("--start", type=parse_day, default=date(2025, 1, 1))
    demo.add_argument("--days", type=int, default=200)
    demo.add_argument("--claims-per-day", type=int, default=400)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--from-x12", action="store_true",
                      help="deliver the claims and remittances as X12 837/835 files in the landing folder "
                           "(the SQL source stays empty)")

    extract = writer("extract", "extract days into bronze, silver and gold")
    when = extract.add_mutually_exclusive_group(required=True)
    when.add_argument("--since", type=parse_day, help="every day from this one to today")
    when.add_argument("--date", type=parse_day, help="this day (or the range up to --until)")
    when.add_argument("--input", type=Path,
                      help="a landing file to ingest (claims_YYYY-MM-DD*.csv|parquet, or X12 *.837/*.835)")
    extract.add_argument("--until", type=parse_day, help="with --date: the last day of the range")
    extract.add_argument("--lookback-days", type=int, default=None, metavar="N",
                         help="also re-read the N days before the first day, for rows committed late "
                              "(default: RCM_EXTRACT_LOOKBACK_DAYS or 2)")

    train = writer("train", "train and gate the model of the week containing --date")
    train.add_argument("--date", type=parse_day, required=True)
    train.add_argument("--force", action="store_true",
                       help="train a week whose gate already promoted a model; a new promotion serves from "
                            "today on, so days already scored keep their model")

    predict = writer("predict", "score a day's claims with the champion serving on that day")
    which = predict.add_mutually_exclusive_group(required=True)
    which.add_argument("--date", type=parse_day)
    which.add_argument("--window", choices=("today",))

    backfill = writer("backfill", "re-run a range of days (and weeks) as few runs as possible")
    backfill.add_argument("--start", type=parse_day, required=True)
    backfill.add_argument("--end", type=parse_day, required=True)
    backfill.add_argument("--select", nargs="+", default=None, metavar="ASSET",
                          help="asset keys such as bronze/claims or layers such as silver (default: all)")

    status = sub.add_parser("status", help="per asset: latest partition, freshness, checks, failures")
    status.add_argument("--json", action="store_true")

    model = sub.add_parser("model", help="champion history and rollback")
    model_sub = model.add_subparsers(dest="model_command", required=True)
    model_sub.add_parser("history", help="who held the champion alias, from when")
    rollback = model_sub.add_parser("rollback", help="make an earlier version the champion again")
    rollback.add_argument("--version", required=True)
    return parser


def check_environment(env: str) -> None:
    """prod refuses embedded defaults: every setting must come from the environment."""
    os.environ["RCM_ENV"] = env
    if env == "prod":
        missing = [name for name in PROD_SETTINGS if not os.environ.get(name)]
        if missing:
            raise UsageError(f"--env prod needs these settings in the environment: {', '.join(missing)}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        check_environment(args.env or os.environ.get("RCM_ENV", "dev"))
        return dispatch(args)
    except UsageError as exc:
        sys.stderr.write(f"rcm: error: {exc}\n")
        return EXIT_USAGE


def dispatch(args: argparse.Namespace) -> int:
    """Run one parsed command. Dagster, MLflow and pandas are imported only here, after parsing,
    so `rcm --help` and usage errors answer at once."""
    from rcm_assets.cli import commands

    if args.command == "status":
        return commands.cmd_status(args)
    if args.command == "model":
        return commands.cmd_model(args)
    if args.command == "demo":
        from rcm_assets.cli import demo

        handler = demo.run
    else:
        handler = {"extract": commands.cmd_extract, "train": commands.cmd_train,
                   "predict": commands.cmd_predict, "backfill": commands.cmd_backfill}[args.command]
    runner = commands.Runner(dry_run=args.dry_run, command=args.command)
    try:
        return handler(args, runner)
    finally:
        runner.close()
