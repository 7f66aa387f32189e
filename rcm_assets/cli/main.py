"""`rcm`: one entry point that runs everything through Dagster, so every run shows in the UI.

Exit codes: 0 success; 1 a run failed or a blocking check failed (asset, partition and reason printed);
2 usage error (bad date, unknown asset, missing file, missing production setting, bad configuration file).

Configuration: `--config FILE` (before or after the command) or RCM_CONFIG names a YAML file of settings
(`configs/dev.yaml`, `configs/prod.yaml`, validated by `lib.config_file`); environment variables win over
it, and secrets come only from the environment.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from rcm_assets.cli.console import EXIT_OK, EXIT_USAGE, UsageError, say
from rcm_assets.lib.config_file import ConfigError
from rcm_assets.platform.notices import quiet_dagster_labels

PROD_SETTINGS = ("RCM_SOURCE_URL", "RCM_LAKE_URL", "RCM_PHI_KEY", "MLFLOW_TRACKING_URI",
                 "RCM_MLFLOW_ARTIFACTS", "RCM_LANDING_DIR", "RCM_QUARANTINE_DIR", "DAGSTER_HOME")
# Settings that only the environment may give (secrets, and Dagster's own home); the others may also come
# from the configuration file.
ENVIRONMENT_ONLY = ("RCM_PHI_KEY", "DAGSTER_HOME")

def parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def positive_days(text: str) -> int:
    if not text.isdigit() or int(text) <= 0:
        raise argparse.ArgumentTypeError(f"not a positive whole number of days: {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rcm", description=__doc__.splitlines()[0])
    parser.add_argument("--env", choices=("dev", "demo", "prod"), default=None,
                        help="dev allows embedded defaults but needs RCM_PHI_KEY; demo (the default of `rcm "
                             "demo`) also allows the published demo PHI key; prod requires every setting from "
                             "the environment or the configuration file (secrets from the environment only)")
    config_help = "YAML configuration file (configs/dev.yaml, configs/prod.yaml); default: $RCM_CONFIG"
    parser.add_argument("--config", type=Path, default=None, metavar="FILE", help=config_help)
    sub = parser.add_subparsers(dest="command", required=True)
    # `--config` is accepted after the command too (rcm train --config configs/prod.yaml ...)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, default=argparse.SUPPRESS, metavar="FILE", help=config_help)

    def writer(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, parents=[common])
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
    demo.add_argument("--drift", nargs="?", const="AETNA/lab", default=None, metavar="PAYER/FAMILY",
                      help="switch on the generator's drift scenario: from --drift-start the payer requires prior "
                           "auth for the CPT family (default AETNA/lab); the monitoring assets then run and the "
                           "summary says when they caught it")
    demo.add_argument("--drift-start", type=parse_day, default=None,
                      help="onset of the drift (default: the middle of the demo)")
    demo.add_argument("--world", choices=("default", "hospital_b"), default="default",
                      help="which synthetic hospital generates the data: the default world or hospital B "
                           "(numeric payer ids, 2,700 codes, rules the pipeline has never seen)")
    demo.add_argument("--no-reference-files", action="store_true",
                      help="supply no reference files (payers, prior-auth lists, chargemaster, code categories)")

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
    predict.add_argument("--rescore", action="store_true",
                         help="rewrite scores already written for the day (kept otherwise); each rewrite is "
                              "recorded in the run's metadata and log")

    backfill = writer("backfill", "re-run a range of days (and weeks) in runs of at most --chunk-days days")
    backfill.add_argument("--start", type=parse_day, required=True)
    backfill.add_argument("--end", type=parse_day, required=True)
    backfill.add_argument("--select", nargs="+", default=None, metavar="ASSET",
                          help="asset keys such as bronze/claims or layers such as silver (default: all)")
    backfill.add_argument("--chunk-days", type=positive_days, default=None, metavar="N",
                          help="at most N days per run; a longer range runs as consecutive runs, oldest first, "
                               "stopping at the first that fails (default: RCM_BACKFILL_CHUNK_DAYS or 31; "
                               "model weeks go RCM_TRAIN_WEEKS_PER_RUN, default 8, per run); bounds a run's memory by N days, not by the range")
    backfill.add_argument("--force", action="store_true",
                          help="also re-train model weeks whose gate already promoted a model (after a feature "
                               "change: --select gold model --force); their promotions serve from today on")

    serve = sub.add_parser("serve", parents=[common], help="the pre-submission scoring service (HTTP)")
    serve.add_argument("--host", default=os.environ.get("RCM_SERVE_HOST", "127.0.0.1"),
                       help="address to bind (default 127.0.0.1; another needs RCM_API_TOKEN)")
    serve.add_argument("--port", type=int, default=int(os.environ.get("RCM_SERVE_PORT", "8000")))
    serve.add_argument("--day", type=parse_day, default=None,
                       help="serve this day's bundle (replays, tests); default today (UTC)")
    serve.add_argument("--reload-seconds", type=float, default=30.0,
                       help="how often the bundle and the champion history are re-read (0: never)")
    serve.add_argument("--request-timeout", type=float, default=10.0, help="seconds a request may score")
    serve.add_argument("--load-timeout", type=float, default=120.0, help="seconds a (re)load may take")
    status = sub.add_parser("status", parents=[common], help="per asset: latest partition, freshness, checks, failures")
    status.add_argument("--json", action="store_true")

    model = sub.add_parser("model", parents=[common], help="champion history and rollback")
    model_sub = model.add_subparsers(dest="model_command", required=True)
    model_sub.add_parser("history", parents=[common], help="who held the champion alias, from when")
    rollback = model_sub.add_parser("rollback", parents=[common], help="make an earlier version the champion again")
    rollback.add_argument("--version", required=True)

    worklist = sub.add_parser("worklist", parents=[common], help="the billers' worklist: how its top K would have done")
    worklist_sub = worklist.add_subparsers(dest="worklist_command", required=True)
    evaluate = worklist_sub.add_parser("evaluate", parents=[common], help="top K a day vs random and the naive prior-auth rule "
                                       "(CSV table + PNG plot)")
    evaluate.add_argument("--start", type=parse_day, required=True)
    evaluate.add_argument("--end", type=parse_day, required=True)
    evaluate.add_argument("--k", type=int, default=200, help="claims a team works a day (default 200)")
    evaluate.add_argument("--out", type=Path, default=None,
                          help="folder for the table and plot (default: <RCM_DATA_DIR>/landing_out/evaluation)")
    evaluate.add_argument("--min-labelled-share", type=float, default=0.5, metavar="S",
                          help="leave out days where fewer than this share of the listed claims have an outcome")
    return parser


def use_config_file(path: Path | None) -> None:
    """Make `path` (else $RCM_CONFIG) the configuration file of this process and the runs it starts,
    validated now: a bad file is a usage error naming the file and the key."""
    from rcm_assets.lib import config_file

    if path is not None:
        os.environ[config_file.CONFIG_ENV] = str(path.expanduser().resolve())
    try:
        config_file.active()
    except config_file.ConfigError as exc:
        raise UsageError(str(exc)) from None


def demo_environment(command: str | None) -> str | None:
    """`rcm demo` runs in the demo environment (the published PHI key allowed) unless an environment is
    named (--env, RCM_ENV or the configuration file); every other command in the one named, default dev."""
    from rcm_assets.lib import settings

    return "demo" if command == "demo" and not settings.setting("RCM_ENV") else None


KEYED_COMMANDS = ("extract", "backfill", "demo")  # they pseudonymize member ids (silver)


def check_phi_key(env: str, command: str | None) -> None:
    """Fail closed before any run: a command that pseudonymizes needs RCM_PHI_KEY outside the demo
    environment; one sentence names the setting (the run itself refuses too: `transforms.load_phi_key`)."""
    if command in KEYED_COMMANDS and env != "demo" and not os.environ.get("RCM_PHI_KEY", "").strip():
        raise UsageError(f"RCM_PHI_KEY is not set: `rcm {command}` in the {env} environment needs the PHI "
                         "pseudonymization key (a secret of at least 16 bytes) from the environment; only the "
                         "demo environment (--env demo, RCM_ENV=demo, or `rcm demo`) uses the published demo key")


def check_environment(env: str | None, command: str | None = None) -> None:
    """prod refuses embedded defaults: every setting must come from the environment or the configuration
    file (secrets and DAGSTER_HOME from the environment only)."""
    from rcm_assets.lib import settings

    try:
        env = env or settings.environment()
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    os.environ["RCM_ENV"] = env
    if env == "prod":
        missing = [name for name in PROD_SETTINGS
                   if not (os.environ.get(name) if name in ENVIRONMENT_ONLY else settings.setting(name))]
        if missing:
            raise UsageError(f"--env prod needs these settings (environment, or the configuration file for "
                             f"those that are not secrets): {', '.join(missing)}")
    check_phi_key(env, command)


def quiet_mlflow() -> None:
    """MLflow's console chatter (artifact download progress bars, "Registered model ... already exists",
    a schema hint per logged model) says nothing an operator acts on; the run's own progress lines and the
    JSON logs say what happened. Warnings and errors still show."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for name in ("mlflow", "mlflow.store.db.utils", "mlflow.tracking", "mlflow.models"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer column", category=UserWarning)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        use_config_file(getattr(args, "config", None))
        check_environment(args.env or demo_environment(args.command), args.command)
        return dispatch(args)
    except (UsageError, ConfigError) as exc:  # a bad setting, wherever it is first read, is a usage error
        sys.stderr.write(f"rcm: error: {exc}\n")
        return EXIT_USAGE


def dispatch(args: argparse.Namespace) -> int:
    """Run one parsed command. Dagster, MLflow and pandas are imported only here, after parsing,
    so `rcm --help` and usage errors answer at once."""
    quiet_dagster_labels()
    quiet_mlflow()
    if args.command == "serve":  # the HTTP service: no Dagster run of its own
        from rcm_assets.cli import serve

        return serve.run(args)
    if args.command == "status":  # answers without loading the code location (cli/status.py)
        from rcm_assets.cli import status

        say(status.run(args.json))
        return EXIT_OK
    from rcm_assets.cli import commands

    if args.command == "model":
        return commands.cmd_model(args)
    if args.command == "worklist":
        return commands.cmd_worklist(args)
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
