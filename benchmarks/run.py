"""The benchmark: one command, one table of ratios measured in one run, each beside its lower bound.

    python benchmarks/run.py [--claims-per-day 1000] [--days 49] [--year] [--seed 7] [--json PATH]
                             [--keep DIR] [--overhead-partitions 10] [--instance sqlite|postgres]
                             [--chunk-days 31] [--memory-ranges 30,90]
    python benchmarks/run.py --keep DIR --scoring [--replicate 20] [--code OLD_TREE,NEW_TREE] [--repeat 2]
    make bench

It generates a synthetic source (SQLite) into a scratch folder and drives the real CLI (`python -m
rcm_assets ...`, a fresh process each, on a fresh Dagster instance, lake and MLflow store), timing every
command as a child process (wall seconds, CPU seconds and peak RSS from `os.wait4`). Each figure is set
beside a lower bound measured in the same run, as a child process too:

* extraction: `rcm backfill --select bronze` over every day vs a bare ADBC -> Arrow -> Parquet read of
  the same rows (`bench_extract.bare_adbc`, one query per day and table);
* silver + gold: `rcm backfill --select silver gold` vs a bare pandas/pyarrow script of the same lib
  transforms (silver claims and remittances, the version index, decisions, features), Parquet in and out;
* Dagster's overhead per partition: N one-partition runs (and one N-partition run) of a trivial asset on a
  SQLite instance vs calling the same function N times;
* the nightly run (`rcm extract --date D --lookback-days 0`) on day 2 vs on the last day, after a backfill
  of all the days before it: wall time split into process start (import of the code location), the
  steps' own seconds (data) and the rest (Dagster run, events);
* the full backfill bronze -> gold: wall time, claims/s and peak RSS;
* training the last model week (`rcm train`, its first model: denial and reason models, MLflow) vs a bare
  read + training frame + fit;
* scoring (`rcm backfill --select predictions` over that week's days) in claims/s vs a bare
  `predict_denial` on the same gold rows.

* with `--scoring` only this instead, on the world an earlier run kept in `--keep DIR` (same sizes): the
  scored week's gold and silver claims replicated `--replicate` times under new claim ids, then
  `rcm backfill --select predictions/claim_denial_scores` and `--select predictions` (scores, shadow scores,
  worklist), each on a fresh copy of the instance, for each source tree of `--code` in turn (before/after on
  one world): claims/s end to end and in steps, seconds per step, Dagster events; the trees' predictions,
  worklist exports and check evaluations are compared (run-stamped columns aside);

* with `--burst` only this instead (`bench_burst.py`): 200 claims files over 20 days (170 plain, 10
  overlapping, 20 re-sent) dropped in 4 bursts 30 s apart into the landing folder of a live
  `dagster-daemon`: minutes to the last bronze partition (target 2), then silver and gold; runs requested,
  rows lost or duplicated, alerts posted, Beta/Preview lines in the daemon's log;

* with `--serve DATA_DIR` only this instead (`bench_serve.py`): `rcm serve` on the world in DATA_DIR (an
  `rcm demo` data folder), single-claim requests at 50/s for 60 s, 1,000-claim batches and start-up, against
  the service's budget, with a latency histogram;

* with `--memory-ranges 30,90` only this instead: peak RSS of `rcm backfill --select bronze silver gold`
  over each range (same claims/day, a fresh lake and instance each), in runs of `--chunk-days` days and as
  one run over the range (`--chunk-days` = the range, the behaviour before chunking): chunked, the peak
  should not grow with the range.

The machine is shared: compare the ratios, measured in the same run, more than the absolute seconds. The
default sizes (49 days x 1,000 claims, label horizon 14 days, first model after 21 days of matured claims)
finish in a few minutes; `--year` is 365 days x 20,000 claims with the production training settings.
The table is printed as Markdown and written as JSON (the path is printed).
"""
# ruff: noqa: T201

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
# the synthetic worlds' runs pseudonymize with a key of their own (outside the demo environment a run
# without RCM_PHI_KEY stops); a key in the caller's environment wins
BENCH_PHI_KEY = os.environ.get("RCM_PHI_KEY", "bench-phi-key-0123456789abcdef")
START = date(2025, 1, 6)  # a Monday, so weeks line up with the days
UPDATE_LOOKBACK_DAYS = 120  # RCM_UPDATE_LOOKBACK_DAYS' default: how far back gold looks for a version


# --------------------------------------------------------------------------------------------------
# Child processes: wall, CPU and peak RSS of exactly that process


def measure(cmd: list[str], env: dict[str, str], log: Path, cwd: Path = REPO) -> dict:
    """Run `cmd`, wait for it with wait4 (its own rusage), return wall/cpu/peak RSS and its output."""
    with open(log, "w") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    text = log.read_text()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}); its output ({log}):\n{text[-4000:]}")
    result = {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024,
              "output": text}
    found = re.findall(r"^RESULT (.*)$", text, flags=re.M)
    if found:
        result.update(json.loads(found[-1]))
    return result


def layer_seconds(output: str) -> dict[str, float]:
    """The CLI's per-layer step seconds (`    bronze   2 table(s)   12,345 rows   1 partition(s)   1.2 s`)."""
    found: dict[str, float] = {}
    for layer, _rows, seconds in re.findall(
            r"^\s+(\w+)\s+\d+ table\(s\)\s+([\d,]+) rows\s+\d+ partition\(s\)\s+([\d.]+) s", output, flags=re.M):
        found[layer] = found.get(layer, 0.0) + float(seconds)
    return found


def run_seconds(output: str) -> float:
    """Seconds the CLI's Dagster runs took (`  label: ok in 12.3 s (run ...)`), process start excluded."""
    return sum(float(x) for x in re.findall(r": (?:ok|FAILED) in ([\d.]+) s \(run ", output))


def layer_rows(output: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for layer, rows in re.findall(r"^\s+(\w+)\s+\d+ table\(s\)\s+([\d,]+) rows", output, flags=re.M):
        found[layer] = found.get(layer, 0) + int(rows.replace(",", ""))
    return found


# --------------------------------------------------------------------------------------------------
# The pieces run inside child processes (`run.py --piece NAME --spec JSON`): each prints `RESULT {json}`


def piece_generate(spec: dict) -> dict:
    from rcm_assets.synthetic import generate, write_source

    t = time.perf_counter()
    data = generate(start=date.fromisoformat(spec["start"]), days=spec["days"],
                    claims_per_day=spec["claims_per_day"], seed=spec["seed"])
    t_gen = time.perf_counter() - t
    t = time.perf_counter()
    write_source(data, spec["source_url"])
    return {"claims": int(data.claims["claim_id"].nunique()), "claim_rows": len(data.claims),
            "remittance_rows": len(data.remittances), "generate_s": t_gen, "write_s": time.perf_counter() - t}


def piece_bare_extract(spec: dict) -> dict:
    """The floor of extraction: per day and table one ADBC query into Arrow, written as one Parquet file."""
    import pyarrow.parquet as pq
    from bench_extract import bare_adbc

    out = Path(spec["out"])
    rows = 0
    first = datetime.fromisoformat(spec["start"])
    for table in ("claims", "remittances"):
        for d in range(spec["days"]):
            lo = first + timedelta(days=d)
            tbl = bare_adbc(Path(spec["db"]), table, lo, lo + timedelta(days=1), single_batch=True)
            folder = out / table / f"dt={lo.date().isoformat()}"
            folder.mkdir(parents=True, exist_ok=True)
            pq.write_table(tbl, folder / "part-0.parquet")
            rows += tbl.num_rows
    return {"rows": rows}


def read_lake_table(lake: Path, *path: str, columns: list[str] | None = None, days: set[str] | None = None):
    """A lake table (hive `dt=` folders) as one pandas frame with `dt` as text, read with pyarrow."""
    import pandas as pd
    import pyarrow.parquet as pq

    frames = []
    for folder in sorted((lake.joinpath(*path)).glob("dt=*")):
        day = folder.name[3:]
        if days is not None and day not in days:
            continue
        for file in sorted(folder.glob("*.parquet")):
            frames.append(pq.read_table(file, columns=columns).to_pandas().assign(dt=day))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def write_by_day(frame, out: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    for day, rows in frame.groupby("dt", sort=True):
        folder = out / f"dt={day}"
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pandas(rows.drop(columns=["dt"]), preserve_index=False),
                       folder / "part-0.parquet")


def piece_bare_silver_gold(spec: dict) -> dict:
    """The floor of silver + gold: the same lib transforms on every bronze row at once, Parquet in and out."""
    from rcm_assets.lib import claim_history, settings
    from rcm_assets.lib import features as F
    from rcm_assets.lib import transforms as T

    lake, out = Path(spec["lake"]), Path(spec["out"])
    tz = settings.facility_tz()
    days = set(spec["days"]) if spec.get("days") else None  # a sample of days: the whole year needs > 20 GB
    bronze_claims = read_lake_table(lake, "bronze", "claims", days=days)
    bronze_remittances = read_lake_table(lake, "bronze", "remittances", days=days)
    silver_claims = T.build_silver_claims(bronze_claims, T.DEV_PHI_KEY, facility_tz=tz).good
    silver_remittances = T.build_silver_remittances(bronze_remittances, facility_tz=tz).good
    versions = claim_history.version_index(silver_claims)
    decisions, _ = claim_history.decision_rows(silver_claims, None, settings.update_lookback_days())
    gold = F.compute_features(F.decision_time_view(decisions))
    for name, frame in (("silver_claims", silver_claims), ("silver_remittances", silver_remittances),
                        ("claim_versions", versions), ("gold", gold)):
        write_by_day(frame, out / name)
    return {"bronze_rows": len(bronze_claims) + len(bronze_remittances), "gold_rows": len(gold)}


def piece_bare_model(spec: dict) -> dict:
    """The floor of training and scoring: read the week's gold and outcomes, training frame, fit, predict."""
    import pandas as pd

    from rcm_assets.lib import modelling as M

    lake = Path(spec["lake"])
    week = pd.Timestamp(spec["week"])
    end = week - pd.Timedelta(days=spec["horizon_days"])
    start = end - pd.Timedelta(days=spec["window_days"])
    t = time.perf_counter()
    days = {d.date().isoformat() for d in pd.date_range(start - pd.Timedelta(days=7), week - pd.Timedelta(days=1))}
    gold = read_lake_table(lake, "gold", "claim_features", days=days)
    outcomes = read_lake_table(lake, "silver", "remittances")
    ts = M.training_frame(gold, outcomes, week, start, end)
    train, holdout = M.time_holdout_split(ts)
    model = M.fit_model(train.X, train.y, seed=0)
    M.predict_denial(model, holdout.X)
    t_train = time.perf_counter() - t
    scoring = read_lake_table(lake, "gold", "claim_features", days=set(spec["scoring_days"]))
    t = time.perf_counter()
    M.predict_denial(model, scoring)
    t_score = time.perf_counter() - t
    return {"train_s": t_train, "train_rows": len(train.y), "score_s": t_score, "score_rows": len(scoring)}


def piece_dagster_overhead(spec: dict) -> dict:
    """N one-partition runs and one N-partition run of a trivial asset on a SQLite instance, vs no Dagster."""
    import dagster as dg

    n = spec["partitions"]
    parts = dg.DailyPartitionsDefinition(start_date=spec["start"], end_offset=1)

    def work(day: str) -> int:
        return len(day)

    @dg.asset(partitions_def=parts, backfill_policy=dg.BackfillPolicy.single_run())
    def trivial(context):  # no annotations: `from __future__ import annotations` hides dg from Dagster
        return dg.MaterializeResult(metadata={"n": sum(work(k) for k in context.partition_keys)})

    keys = parts.get_partition_keys()[:n]
    instance = dg.DagsterInstance.get()
    t = time.perf_counter()
    for key in keys:
        dg.materialize([trivial], instance=instance, partition_key=key)
    t_runs = time.perf_counter() - t
    t = time.perf_counter()
    dg.materialize([trivial], instance=instance, tags={"dagster/asset_partition_range_start": keys[0],
                                                        "dagster/asset_partition_range_end": keys[-1]})
    t_range = time.perf_counter() - t
    t = time.perf_counter()
    for key in keys:
        work(key)
    t_bare = time.perf_counter() - t
    # one event write on this instance: materializations of a partition reported outside a run
    writes = 50
    t = time.perf_counter()
    for i in range(writes):
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key="bench_event", partition=keys[i % n],
                                                                    metadata={"dagster/row_count": i}))
    t_event = (time.perf_counter() - t) / writes
    return {"runs_s": t_runs, "range_s": t_range, "bare_s": t_bare, "partitions": n, "event_s": t_event}


def piece_import(spec: dict) -> dict:
    t = time.perf_counter()
    import rcm_assets.definitions  # noqa: F401

    return {"import_s": time.perf_counter() - t}


def piece_step_seconds(spec: dict) -> dict:
    """Seconds each asset's steps took over every run of the instance (DAGSTER_HOME), and its event count."""
    import dagster as dg

    instance = dg.DagsterInstance.get()
    kinds = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS}
    seconds: dict[str, float] = {}
    events = runs = 0
    since = spec.get("since", 0.0)  # only the runs created after this time (the instance may hold older ones)
    records = [r for r in instance.get_run_records() if r.create_timestamp.timestamp() >= since]
    for record in records:
        runs += 1
        events += len(instance.all_logs(record.dagster_run.run_id))
        started: dict[str, float] = {}
        for entry in instance.all_logs(record.dagster_run.run_id, of_type=kinds):
            if entry.dagster_event.event_type == dg.DagsterEventType.STEP_START:
                started[entry.step_key] = entry.timestamp
            elif entry.step_key in started:
                seconds[entry.step_key] = seconds.get(entry.step_key, 0.0) + entry.timestamp - started.pop(entry.step_key)
    if spec.get("checks_out"):  # every check evaluation, for comparing the outputs of two code versions
        found = []
        for record in records:
            for entry in instance.all_logs(record.dagster_run.run_id,
                                           of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION):
                e = entry.dagster_event.event_specific_data
                found.append({"asset": e.asset_key.to_user_string(), "check": e.check_name,
                              "partition": e.partition, "passed": e.passed, "severity": str(e.severity),
                              "description": e.description,
                              "metadata": {k: str(v.value) for k, v in sorted(e.metadata.items())
                                           if k != "evaluated_at"}})  # the clock: differs in every run
        found.sort(key=lambda c: (c["asset"], c["check"], c["partition"] or ""))
        Path(spec["checks_out"]).write_text(json.dumps(found, indent=1))
    return {"steps": seconds, "events": events, "runs": runs}


PIECES = {"generate": piece_generate, "bare_extract": piece_bare_extract, "bare_silver_gold": piece_bare_silver_gold,
          "bare_model": piece_bare_model, "dagster_overhead": piece_dagster_overhead, "import": piece_import,
          "step_seconds": piece_step_seconds}


# --------------------------------------------------------------------------------------------------
# The run


def row(what: str, measured: str, bound: str, ratio: float | None, target: str, cpu_ratio: float | None = None,
        verdict: str = "—", **figures) -> dict:
    """One line of the table; `ratio` is wall over wall, `cpu_ratio` CPU over CPU (steadier on a busy host);
    `verdict` says whether the target is met and, where it is not, where the measured seconds went."""
    return {"what": what, "measured": measured, "lower_bound": bound,
            "ratio": None if ratio is None else round(ratio, 2),
            "cpu_ratio": None if cpu_ratio is None else round(cpu_ratio, 2), "target": target, "verdict": verdict,
            **figures}


GB = 1024  # MB
BACKFILL_TARGET = 20_000  # claims/s, bronze -> gold
SCORING_TARGET = 200_000  # claims/s end to end
MEMORY_TARGET_MB = 4 * GB
NIGHTLY_TARGET = 1.2  # x day 2
TRAIN_TARGET_S = 90.0
YEAR_TARGET_S = 600.0  # a year's backfill plus a year of daily scoring


def split(res: dict) -> tuple[float, float, float]:
    """(process start, steps, Dagster runs and events) seconds of a CLI command's wall time: the steps are
    the per-layer step seconds the CLI prints, the runs their `ok in` seconds, the start the rest."""
    steps = sum(layer_seconds(res["output"]).values())
    in_runs = run_seconds(res["output"])
    return res["wall_s"] - in_runs, steps, in_runs - steps


def where_it_went(start_s: float, steps_s: float, dagster_s: float, events: int, event_s: float) -> str:
    """Where a command's wall seconds went: its Dagster event writes (events x the cost of one write on the
    instance, measured; most happen inside the steps), the process start, and the rest (the steps' data
    work plus Dagster's own step and run bookkeeping)."""
    total = start_s + steps_s + dagster_s
    writes = min(events * event_s, steps_s + dagster_s)
    share = (lambda x: f"{x:.0f} s ({x / total:.0%})") if total > 0 else (lambda x: f"{x:.0f} s")
    return (f"Dagster event writes ≈ {share(writes)} ({events:,} events × {event_s * 1e3:.0f} ms), process start "
            f"{share(start_s)}, data work and step bookkeeping {share(steps_s + dagster_s - writes)}")


def cpu(res: dict) -> str:
    return f"{res['cpu_s']:.1f} s CPU"


def markdown(rows: list[dict]) -> str:
    lines = ["| what | measured | lower bound (same run) | ratio wall (CPU) | target | verdict |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        ratio = "—" if r["ratio"] is None else f"{r['ratio']:.2f}×"
        if r.get("cpu_ratio") is not None:
            ratio += f" ({r['cpu_ratio']:.2f}×)"
        lines.append(f"| {r['what']} | {r['measured']} | {r['lower_bound']} | {ratio} | {r['target']} | "
                     f"{r.get('verdict', '—')} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--claims-per-day", type=int, default=1_000)
    ap.add_argument("--days", type=int, default=49)
    ap.add_argument("--year", action="store_true", help="365 days x 20,000 claims/day, production training settings")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--overhead-partitions", type=int, default=10)
    ap.add_argument("--instance", choices=("sqlite", "postgres"), default="sqlite",
                    help="Dagster instance of the CLI runs: the default SQLite one, or deploy/dagster.yaml on a "
                         "scratch database of --pg-url (created and dropped)")
    ap.add_argument("--pg-url", default=os.environ.get("RCM_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"),
                    help="PostgreSQL server for --instance postgres and the per-partition overhead on PostgreSQL "
                         "(skipped when unreachable)")
    ap.add_argument("--chunk-days", type=int, default=None, metavar="N",
                    help="days per backfill run of the CLI backfills (default: the CLI's, RCM_BACKFILL_CHUNK_DAYS or 31)")
    ap.add_argument("--memory-ranges", default=None, metavar="D1,D2",
                    help="measure only the peak RSS of bronze → gold backfills over these range lengths (days), "
                         "chunked (--chunk-days, default 31) and as one run each")
    ap.add_argument("--json", type=Path, default=None, help="where to write the table (default: a file in /tmp)")
    ap.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it (default: temporary)")
    ap.add_argument("--scoring", action="store_true",
                    help="only time scoring on the kept world of --keep (an earlier run with the same --days, "
                         "--claims-per-day): `rcm backfill --select predictions/claim_denial_scores` and "
                         "`--select predictions` over the scored week, gold replicated --replicate times")
    ap.add_argument("--replicate", type=int, default=20, help="with --scoring: copies of each scored gold day")
    ap.add_argument("--code", default=None, metavar="DIR[,DIR]",
                    help="with --scoring: source trees whose rcm_assets the CLI runs, compared (default: this one)")
    ap.add_argument("--repeat", type=int, default=1, help="with --scoring: rounds (best wall, median CPU)")
    ap.add_argument("--burst", action="store_true",
                    help="only the drop-folder burst against a live dagster-daemon (benchmarks/bench_burst.py)")
    ap.add_argument("--burst-days", type=int, default=20, help="with --burst: days the files describe")
    ap.add_argument("--burst-files-per-day", type=int, default=10, help="with --burst: files per day")
    ap.add_argument("--burst-count", type=int, default=4, help="with --burst: bursts the files come in")
    ap.add_argument("--burst-gap", type=float, default=30.0, help="with --burst: seconds between bursts")
    ap.add_argument("--serve", type=Path, default=None, metavar="DATA_DIR",
                    help="only the scoring service's latency budget on the world in DATA_DIR (bench_serve.py)")
    ap.add_argument("--piece", choices=tuple(PIECES), help=argparse.SUPPRESS)
    ap.add_argument("--spec", default="{}", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.piece:
        print("RESULT " + json.dumps(PIECES[args.piece](json.loads(args.spec))), flush=True)
        return 0
    if args.year:
        args.days, args.claims_per_day = 365, 20_000
    if args.serve is not None:  # `rcm serve` under load: its own table (bench_serve.py)
        import bench_serve

        return bench_serve.main(["--data-dir", str(args.serve)])

    if args.scoring and (args.keep is None or not (args.keep / "home").is_dir()):
        raise SystemExit("--scoring needs --keep DIR: the folder of an earlier full run kept with --keep")
    work = args.keep or Path(tempfile.mkdtemp(prefix="rcm-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    databases: list[str] = []
    try:
        if args.burst:
            import bench_burst

            rows = bench_burst.burst(args, work)
        elif args.scoring:
            rows = scoring_only(args, work)
        else:
            rows = memory_scaling(args, work) if args.memory_ranges else run(args, work, databases)
    finally:
        for url in databases:
            drop_database(args.pg_url, url)
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    table = markdown(rows)
    print()
    print(table)
    path = args.json or Path(tempfile.gettempdir()) / f"rcm-bench-{datetime.now():%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps({"sizes": {"days": args.days, "claims_per_day": args.claims_per_day,
                                          "year": args.year, "chunk_days": args.chunk_days,
                                          "memory_ranges": args.memory_ranges},
                                "machine": {"cpus": len(os.sched_getaffinity(0)),
                                            "load_at_end": os.getloadavg()[0]},
                                "rows": rows}, indent=2))
    print(f"\ntable written to {path}")
    return 0


def scratch_database(admin_url: str) -> str | None:
    """A new empty database on the server (its SQLAlchemy URL), or None when the server is unreachable."""
    import uuid

    import sqlalchemy as sa

    from rcm_assets.lib.source import resolve_driver

    name = f"rcm_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(resolve_driver(admin_url), isolation_level="AUTOCOMMIT",
                             connect_args={"connect_timeout": 3})
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.DBAPIError as exc:
        print(f"  PostgreSQL at {admin_url} unreachable ({type(exc).__name__}): PostgreSQL figures skipped")
        return None
    finally:
        admin.dispose()
    return resolve_driver(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, url: str) -> None:
    import sqlalchemy as sa

    from rcm_assets.lib.source import resolve_driver

    admin = sa.create_engine(resolve_driver(admin_url), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{sa.make_url(url).database}" WITH (FORCE)'))
    finally:
        admin.dispose()


def postgres_home(home: Path, admin_url: str, databases: list[str]) -> str | None:
    """`home` as a DAGSTER_HOME with deploy/dagster.yaml on a scratch database; its DAGSTER_POSTGRES_URL."""
    url = scratch_database(admin_url)
    if url is None:
        return None
    databases.append(url)
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
    return url


def run(args: argparse.Namespace, work: Path, databases: list[str]) -> list[dict]:
    days, per_day = args.days, args.claims_per_day
    first, last = START, START + timedelta(days=days - 1)
    data = work / "data"
    env = dict(os.environ, RCM_DATA_DIR=str(data), DAGSTER_HOME=str(work / "home"),
               RCM_PARTITIONS_START=START.isoformat(), RCM_EXTRACT_LOOKBACK_DAYS="0", PYTHONWARNINGS="ignore",
               RCM_PHI_KEY=BENCH_PHI_KEY)
    for name in ("RCM_SOURCE_URL", "RCM_LAKE_URL", "MLFLOW_TRACKING_URI", "RCM_MLFLOW_ARTIFACTS", "RCM_CONFIG",
                 "RCM_LANDING_DIR", "RCM_QUARANTINE_DIR", "RCM_EXECUTOR"):
        env.pop(name, None)
    horizon, window, min_train = 60, 180, 56
    if not args.year:  # small worlds: a shorter label horizon so some weeks train and score
        horizon, min_train = 14, 21
    env.update(RCM_LABEL_HORIZON_DAYS=str(horizon), RCM_MIN_TRAIN_DAYS=str(min_train),
               RCM_TRAIN_WINDOW_DAYS=str(window))
    (work / "home").mkdir(parents=True, exist_ok=True)
    if args.instance == "postgres":
        pg = postgres_home(work / "home", args.pg_url, databases)
        if pg is None:
            raise SystemExit("--instance postgres needs the PostgreSQL server at --pg-url")
        env["DAGSTER_POSTGRES_URL"] = pg
    (data).mkdir(parents=True, exist_ok=True)
    db = data / "source.db"
    lake = data / "lake"
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    py = [sys.executable, "-W", "ignore"]
    cli = [*py, "-m", "rcm_assets"]
    me = [*py, str(Path(__file__).resolve())]
    figures: dict[str, dict] = {}

    if args.chunk_days is not None:
        env["RCM_BACKFILL_CHUNK_DAYS"] = str(args.chunk_days)

    def step(name: str, cmd: list[str], **env_override: str) -> dict:
        print(f"  {name} ...", end="", flush=True)
        result = measure(cmd, {**env, **env_override}, logs / f"{name}.log")
        print(f" {result['wall_s']:.1f} s wall, {result['cpu_s']:.1f} s CPU, {result['peak_rss_mb']:,.0f} MB peak")
        figures[name] = {k: v for k, v in result.items() if k != "output"}
        return result

    def piece(name: str, env_override: dict[str, str] | None = None, **spec) -> dict:
        return step(name, [*me, "--piece", name.split(":")[0], "--spec", json.dumps(spec)], **(env_override or {}))

    model_start = first_model_week(first, horizon, min_train)
    weeks = [model_start + timedelta(days=7 * i) for i in range((last - model_start).days // 7 + 1)]
    print(f"bench: {days} days x {per_day:,} claims/day from {first} (cpus {len(os.sched_getaffinity(0))}, "
          f"load {os.getloadavg()[0]:.1f}); work folder {work}")
    gen = piece("generate", start=first.isoformat(), days=days, claims_per_day=per_day, seed=args.seed,
                source_url=f"sqlite:///{db}")
    claims = gen["claim_rows"]
    print(f"  source: {gen['claim_rows']:,} claim rows, {gen['remittance_rows']:,} remittance rows")

    # the process start: importing the code location, in a fresh process
    start_up = piece("import")
    # nightly run on day 2, before any history exists
    early = step("nightly_day2", [*cli, "extract", "--date", (first + timedelta(days=1)).isoformat(),
                                  "--lookback-days", "0"])
    # extraction of every day but the last: the Dagster run vs the bare read
    backfill_started = time.time()
    bronze = step("backfill_bronze", [*cli, "backfill", "--select", "bronze", "--start", first.isoformat(),
                                      "--end", (last - timedelta(days=1)).isoformat()])
    bare_extract = piece("bare_extract", db=str(db), start=first.isoformat(), days=days - 1,
                         out=str(work / "bare" / "bronze"))
    silver_gold = step("backfill_silver_gold", [*cli, "backfill", "--select", "silver", "gold", "--start",
                                                first.isoformat(), "--end", (last - timedelta(days=1)).isoformat()])
    # the bare script holds every row at once: past two months (a year needs > 20 GB) it runs on the first
    # 31 days and its seconds are scaled by the bronze rows (it is linear in them)
    sample = [(first + timedelta(days=i)).isoformat() for i in range(31)] if days > 62 else None
    bare_sg = piece("bare_silver_gold", lake=str(lake), out=str(work / "bare" / "silver_gold"), days=sample)
    if sample:
        scale = layer_rows(bronze["output"]).get("bronze", 0) / bare_sg["bronze_rows"]
        bare_sg.update(wall_s=bare_sg["wall_s"] * scale, cpu_s=bare_sg["cpu_s"] * scale,
                       note=f" (first 31 days, scaled ×{scale:.1f} by bronze rows)")
    backfill_events = piece("step_seconds", since=backfill_started)["events"]
    # nightly run on the last day, after the whole history before it
    late = step("nightly_last_day", [*cli, "extract", "--date", last.isoformat(), "--lookback-days", "0"])
    overhead_home = work / "overhead-sqlite"
    overhead_home.mkdir()
    overhead = piece("dagster_overhead", {"DAGSTER_HOME": str(overhead_home)}, start=first.isoformat(),
                     partitions=args.overhead_partitions)
    pg_home = work / "overhead-postgres"
    pg_url = postgres_home(pg_home, args.pg_url, databases)
    overhead_pg = (piece("dagster_overhead:postgres", {"DAGSTER_HOME": str(pg_home), "DAGSTER_POSTGRES_URL": pg_url},
                         start=first.isoformat(), partitions=args.overhead_partitions) if pg_url else None)

    rows = []
    bronze_rows = layer_rows(bronze["output"]).get("bronze", 0)
    rows.append(row("extraction: `rcm backfill --select bronze`, all days but the last",
                    f"{bronze['wall_s']:.1f} s, {cpu(bronze)} ({bronze_rows:,} rows, "
                    f"{bronze_rows / bronze['wall_s']:,.0f} rows/s)",
                    f"{bare_extract['wall_s']:.1f} s, {cpu(bare_extract)}: bare ADBC → Arrow → Parquet",
                    bronze["wall_s"] / bare_extract["wall_s"], "—", bronze["cpu_s"] / bare_extract["cpu_s"]))
    rows.append(row("silver + gold: `rcm backfill --select silver gold`",
                    f"{silver_gold['wall_s']:.1f} s, {cpu(silver_gold)}, {silver_gold['peak_rss_mb']:,.0f} MB",
                    f"{bare_sg['wall_s']:.1f} s, {cpu(bare_sg)}: bare pandas/pyarrow script, same lib transforms"
                    f"{bare_sg.get('note', '')}",
                    silver_gold["wall_s"] / bare_sg["wall_s"], "—", silver_gold["cpu_s"] / bare_sg["cpu_s"]))
    n = overhead["partitions"]
    rows.append(row(f"Dagster per partition: {n} one-partition runs of a trivial asset",
                    f"{overhead['runs_s'] / n * 1e3:.0f} ms/partition (one {n}-partition run: "
                    f"{overhead['range_s'] * 1e3:.0f} ms)",
                    f"{overhead['bare_s'] / n * 1e6:.1f} µs/partition without Dagster", None, "—"))
    if overhead_pg is not None:
        rows.append(row("… the same on a PostgreSQL instance (deploy/dagster.yaml)",
                        f"{overhead_pg['runs_s'] / n * 1e3:.0f} ms/partition (one {n}-partition run: "
                        f"{overhead_pg['range_s'] * 1e3:.0f} ms)",
                        f"{overhead['runs_s'] / n * 1e3:.0f} ms/partition on SQLite",
                        overhead_pg["runs_s"] / overhead["runs_s"], "—"))
    early_rows = layer_rows(early["output"]).get("bronze", 0) or 1
    for name, res in (("day 2", early), ("last day", late)):
        start_s, data_s, rest = split(res)
        ratio, cpu_ratio = res["wall_s"] / early["wall_s"], res["cpu_s"] / early["cpu_s"]
        # day 2 has few remittances yet (they follow claims by weeks): compare per bronze row as well
        rows_ratio = (layer_rows(res["output"]).get("bronze", 0) or 1) / early_rows
        per_row = cpu_ratio / rows_ratio
        steps_per_row = (data_s / split(early)[1]) / rows_ratio if split(early)[1] else float("nan")
        if min(ratio, cpu_ratio) <= NIGHTLY_TARGET:
            flat = "flat: met"
        elif per_row <= NIGHTLY_TARGET:
            flat = (f"{cpu_ratio:.2f}× day 2 in CPU for {rows_ratio:.2f}× its rows: {per_row:.2f}× per row, met; "
                    f"the steps {steps_per_row:.2f}× per row (gold and the authorization denials read the "
                    f"claim-version index of the {UPDATE_LOOKBACK_DAYS} days before: it grows for "
                    f"{UPDATE_LOOKBACK_DAYS} days, then stays flat)")
        else:
            flat = f"not flat: {cpu_ratio:.2f}× day 2 in CPU, {per_row:.2f}× per row"
        data_share = data_s / res["wall_s"]
        verdict = (f"{flat}; data {data_share:.0%} of the run" + (
            "" if data_share >= 0.5 else
            f" (not most of it: the process start, {start_s:.1f} s, is importing the code location's stack, "
            f"{start_up['wall_s']:.1f} s bare; Dagster's run and event writes {rest:.1f} s are per run and "
            f"partition, not per row; both are fixed, so the data share grows with the day's rows)"))
        rows.append(row(f"nightly `rcm extract` of {name} ({layer_rows(res['output']).get('bronze', 0):,} bronze rows)",
                        f"{res['wall_s']:.1f} s, {cpu(res)}, {res['peak_rss_mb']:,.0f} MB",
                        f"split: process start and imports {start_s:.1f} s, steps (data) {data_s:.1f} s, "
                        f"Dagster run and events {rest:.1f} s (a bare import of the code location: "
                        f"{start_up['wall_s']:.1f} s)",
                        ratio, "≤ 1.2× day 2; most seconds on data", cpu_ratio, verdict=verdict))
    backfill_wall = bronze["wall_s"] + silver_gold["wall_s"]
    peak = max(bronze["peak_rss_mb"], silver_gold["peak_rss_mb"])
    bare_wall = bare_extract["wall_s"] + bare_sg["wall_s"]
    backfill_cpu = bronze["cpu_s"] + silver_gold["cpu_s"]
    bare_cpu = bare_extract["cpu_s"] + bare_sg["cpu_s"]
    rate, bare_backfill_rate = claims / backfill_wall, claims / bare_wall
    parts = [sum(x) for x in zip(split(bronze), split(silver_gold), strict=True)]
    verdict = "met" if rate >= BACKFILL_TARGET else (
        f"not met: {rate:,.0f} claims/s, {BACKFILL_TARGET / rate:.1f}× short. Of its {backfill_wall:.0f} s: "
        f"{where_it_went(*parts, backfill_events, overhead['event_s'])}. The bare "
        f"script of the same operations {bare_backfill_rate:,.0f} claims/s"
        + (" (below the target itself on this machine)" if bare_backfill_rate < BACKFILL_TARGET else ""))
    verdict += "; memory met" if peak <= MEMORY_TARGET_MB else f"; memory not met ({peak:,.0f} MB)"
    rows.append(row(f"full backfill bronze → gold ({days - 1} days, {claims:,} claim rows)",
                    f"{backfill_wall:.1f} s = {rate:,.0f} claims/s "
                    f"({claims / backfill_cpu:,.0f}/CPU s); peak RSS {peak:,.0f} MB",
                    f"{bare_wall:.1f} s bare = {bare_backfill_rate:,.0f} claims/s "
                    f"(peak {max(bare_extract['peak_rss_mb'], bare_sg['peak_rss_mb']):,.0f} MB)",
                    backfill_wall / bare_wall, "≥ 20,000 claims/s; ≤ 4 GB", backfill_cpu / bare_cpu, verdict=verdict))

    trainable = [w for w in weeks if w < last]  # a week starting on the last day has no day to score
    if trainable:
        # the last week whose days lie before the last day: its first model (the gate has no champion to
        # beat), then its days scored by it; earlier weeks are not trained (they would only cost time)
        week = trainable[-1]
        train_started = time.time()
        train = step("train_week", [*cli, "train", "--date", week.isoformat()])
        train_steps_by_op = piece("step_seconds", since=train_started)["steps"]
        score_days = [week + timedelta(days=i) for i in range((last - week).days)]
        score_started = time.time()
        score = step("backfill_predictions", [*cli, "backfill", "--select", "predictions", "--start",
                                              score_days[0].isoformat(), "--end", score_days[-1].isoformat()])
        score_events = piece("step_seconds", since=score_started)["events"]
        bare_model = piece("bare_model", lake=str(lake), week=week.isoformat(), horizon_days=horizon,
                           window_days=window, scoring_days=[d.isoformat() for d in score_days])
        train_steps = layer_seconds(train["output"]).get("model", float("nan"))
        by_step = ", ".join(f"{op.split('__')[-1]} {sec:.0f} s"
                            for op, sec in sorted(train_steps_by_op.items(), key=lambda kv: -kv[1]))
        if window < 180 or per_day < 20_000:
            verdict = (f"not applicable at this size ({window}-day window at {per_day:,} claims/day; the target is "
                       f"for 180 days at 20,000: --year); steps: {by_step}")
        elif train["wall_s"] <= TRAIN_TARGET_S and train["peak_rss_mb"] <= MEMORY_TARGET_MB:
            verdict = f"met; steps: {by_step}"
        else:
            verdict = (f"not met ({train['wall_s']:.0f} s, {train['peak_rss_mb']:,.0f} MB): steps {by_step}; "
                       f"process start and Dagster {train['wall_s'] - train_steps:.0f} s; the bare read + "
                       f"selection + one fit alone {bare_model['train_s']:.0f} s")
        rows.append(row(f"`rcm train` week {week} ({bare_model['train_rows']:,} training rows; denial + "
                        "reason model, MLflow)",
                        f"{train['wall_s']:.1f} s, {cpu(train)} ({train_steps:.1f} s in steps), "
                        f"{train['peak_rss_mb']:,.0f} MB",
                        f"{bare_model['train_s']:.1f} s bare read + training frame + fit",
                        train["wall_s"] / bare_model["train_s"], "180-day window ≤ 90 s, ≤ 4 GB", verdict=verdict))
        scored = bare_model["score_rows"]  # the gold claims of the scored days (each scored once)
        score_steps = layer_seconds(score["output"]).get("predictions", float("nan"))
        bare_rate = bare_model["score_rows"] / bare_model["score_s"]
        rate_steps = scored / score_steps if score_steps else float("nan")
        score_rate = scored / score["wall_s"] if scored else 0.0
        # what Dagster alone costs these days: a range run of a trivial asset, per partition, times the days
        # and the three scoring assets
        floor_s = overhead["range_s"] / n * len(score_days) * 3
        verdict = "met" if score_rate >= SCORING_TARGET else (
            f"not met: {score_rate:,.0f} claims/s, {SCORING_TARGET / max(score_rate, 1):.0f}× short. "
            f"{where_it_went(*split(score), score_events, overhead['event_s'])}. Dagster's per-partition cost "
            f"alone (a trivial asset: "
            f"{overhead['range_s'] / n * 1e3:.0f} ms per partition and asset in a range run) is {floor_s:.1f} s "
            f"for these {len(score_days)} days × 3 assets, a ceiling of {scored / floor_s:,.0f} claims/s at this "
            f"size; the steps run at {rate_steps:,.0f} claims/s")
        rows.append(row(f"scoring: `rcm backfill --select predictions`, {len(score_days)} days "
                        f"({scored:,} claims)",
                        f"{score_rate:,.0f} claims/s end to end ({rate_steps:,.0f}/s in steps), "
                        f"{score['peak_rss_mb']:,.0f} MB",
                        f"{bare_rate:,.0f} claims/s bare predict_denial on {bare_model['score_rows']:,} gold rows",
                        bare_rate / score_rate if scored else None, "≥ 200,000 claims/s", verdict=verdict))
        if args.year:  # the year target: the backfill as measured, plus a year of scoring at the measured rate
            year_s = backfill_wall + claims / score_rate
            rows.append(row("a year: backfill bronze → gold + a year of daily scoring (scoring extrapolated "
                            "from the rate above)",
                            f"{year_s / 60:.1f} min ({backfill_wall / 60:.1f} backfill + "
                            f"{claims / score_rate / 60:.1f} scoring)",
                            f"{(bare_wall + claims / bare_rate) / 60:.1f} min bare", year_s / (bare_wall + claims / bare_rate),
                            "≤ 10 min", verdict="met" if year_s <= YEAR_TARGET_S else
                            f"not met: {year_s / YEAR_TARGET_S:.1f}× the target; see the backfill and scoring rows"))
    else:
        print(f"  (no model week before the last of {days} days: training and scoring not measured)")
    return rows


VOLATILE_COLUMNS = ("scored_at", "dagster_run_id")  # differ between any two runs of the same code


def replicate_day(src: Path, dst: Path, times: int) -> int:
    """A lake day's Parquet file with its rows repeated `times` times, copy i under claim ids `<id>-R<i>`."""
    import pandas as pd

    frame = pd.read_parquet(src / "part-0.parquet")
    copies = [frame] + [frame.assign(claim_id=frame["claim_id"].astype(str) + f"-R{i:02d}") for i in range(1, times)]
    dst.mkdir(parents=True, exist_ok=True)
    out = pd.concat(copies, ignore_index=True)
    out.to_parquet(dst / "part-0.parquet", index=False)
    return len(out)


def scoring_world(world: Path, days: list[str], times: int) -> tuple[Path, int]:
    """The kept world's data folder for scoring, gold and silver claims of `days` replicated `times` times
    (bronze, the source and any scores left out); built once, reused."""
    folder = world / f"scoring-x{times}"
    data = folder / "data"
    if not (folder / "claims").is_file():
        shutil.rmtree(folder, ignore_errors=True)
        skip = {"bronze", "predictions", "source.db", "landing_out", "logs"}
        shutil.copytree(world / "data", data, ignore=lambda _d, names: [n for n in names if n in skip])
        claims = 0
        for day in days:
            for table in (("gold", "claim_features"), ("silver", "claims")):
                src = world / "data" / "lake" / Path(*table) / f"dt={day}"
                dst = data / "lake" / Path(*table) / f"dt={day}"
                shutil.rmtree(dst)
                rows = replicate_day(src, dst, times)
                claims += rows if table[0] == "gold" else 0
        (folder / "claims").write_text(str(claims))
    return data, int((folder / "claims").read_text())


def compare_outputs(a: Path, b: Path) -> str:
    """'identical' when the predictions tables (volatile columns aside), worklist exports and check
    evaluations of two runs agree, else what differs."""
    import pandas as pd

    diffs = []
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    if files_a != files_b:
        return f"different files: {sorted(set(map(str, files_a)) ^ set(map(str, files_b)))[:5]}"
    for rel in files_a:
        if rel.suffix == ".parquet":
            x, y = (pd.read_parquet(root / rel) for root in (a, b))
            x = x.drop(columns=[c for c in VOLATILE_COLUMNS if c in x.columns])
            y = y.drop(columns=[c for c in VOLATILE_COLUMNS if c in y.columns])
            try:
                pd.testing.assert_frame_equal(x, y, check_exact=True)
            except AssertionError as exc:
                diffs.append(f"{rel}: {str(exc).splitlines()[0:3]}")
        elif (a / rel).read_bytes() != (b / rel).read_bytes():
            diffs.append(f"{rel} differs")
    return "identical" if not diffs else "; ".join(diffs[:5])


def scoring_only(args: argparse.Namespace, world: Path) -> list[dict]:
    """Scoring alone on a kept world (`--keep DIR` of an earlier full run with the same sizes): the scored
    week's gold (and silver claims) replicated `--replicate` times, then per source tree of `--code`
    (alternating, `--repeat` rounds): `rcm backfill --select predictions/claim_denial_scores` and
    `--select predictions` (scores, shadow scores, worklist), each on a fresh copy of the instance with no
    scores written. Outputs of the trees are compared (Parquet, exports and check evaluations)."""
    horizon, min_train = (60, 56) if args.year else (14, 21)
    first, last = START, START + timedelta(days=args.days - 1)
    model_start = first_model_week(first, horizon, min_train)
    week = model_start + timedelta(days=7 * ((last - model_start).days // 7))
    days = [(week + timedelta(days=i)).isoformat() for i in range((last - week).days)]
    data, claims = scoring_world(world, days, args.replicate)
    codes = [Path(c).resolve() for c in (args.code or str(REPO)).split(",")]
    logs = world / "logs-scoring"
    logs.mkdir(exist_ok=True)
    py = [sys.executable, "-W", "ignore"]
    env = dict(os.environ, RCM_DATA_DIR=str(data), RCM_PARTITIONS_START=START.isoformat(),
               PYTHONWARNINGS="ignore", RCM_LABEL_HORIZON_DAYS=str(horizon), RCM_MIN_TRAIN_DAYS=str(min_train),
               RCM_TRAIN_WINDOW_DAYS="180", RCM_PHI_KEY=BENCH_PHI_KEY)
    for name in ("RCM_SOURCE_URL", "RCM_LAKE_URL", "MLFLOW_TRACKING_URI", "RCM_MLFLOW_ARTIFACTS", "RCM_CONFIG",
                 "RCM_LANDING_DIR", "RCM_QUARANTINE_DIR", "RCM_EXECUTOR", "PYTHONPATH"):
        env.pop(name, None)
    if args.chunk_days is not None:
        env["RCM_BACKFILL_CHUNK_DAYS"] = str(args.chunk_days)
    print(f"bench: scoring {days[0]} .. {days[-1]}, {claims:,} claims ({args.replicate}x replicated), code "
          f"{', '.join(map(str, codes))} (cpus {len(os.sched_getaffinity(0))}, load {os.getloadavg()[0]:.1f})")
    results: dict[tuple[int, str], list[dict]] = {}
    outputs: dict[tuple[int, str], Path] = {}
    for rnd in range(args.repeat):
        for n, code in enumerate(codes):
            for what, select in (("scores", ["predictions/claim_denial_scores"]), ("predictions", ["predictions"])):
                home = world / "scoring-home"
                shutil.rmtree(home, ignore_errors=True)
                shutil.copytree(world / "home", home)
                shutil.rmtree(data / "lake" / "predictions", ignore_errors=True)
                shutil.rmtree(data / "landing_out", ignore_errors=True)
                name = f"{what}_code{n}_round{rnd}"
                print(f"  {name} ...", end="", flush=True)
                run_env = {**env, "DAGSTER_HOME": str(home)}
                since = time.time()
                res = measure([*py, "-m", "rcm_assets", "backfill", "--select", *select, "--start", days[0],
                               "--end", days[-1]], run_env, logs / f"{name}.log", cwd=code)
                keep = world / "scoring-out" / name
                shutil.rmtree(keep, ignore_errors=True)
                keep.mkdir(parents=True)
                steps = measure([*py, str(Path(__file__).resolve()), "--piece", "step_seconds", "--spec",
                                 json.dumps({"checks_out": str(keep / "checks.json"), "since": since})], run_env,
                                logs / f"{name}-steps.log")
                shutil.copytree(data / "lake" / "predictions", keep / "predictions")
                if (data / "landing_out").exists():
                    shutil.copytree(data / "landing_out", keep / "landing_out")
                res.update(steps=steps["steps"], events=steps["events"], runs=steps["runs"])
                results.setdefault((n, what), []).append(res)
                outputs[(n, what)] = keep
                print(f" {res['wall_s']:.1f} s wall, {res['cpu_s']:.1f} s CPU, steps "
                      + ", ".join(f"{k} {v:.1f} s" for k, v in sorted(res["steps"].items()))
                      + f"; {res['events']} events in {res['runs']} run(s)")
    rows = []
    for (n, what), runs in sorted(results.items()):
        best = min(runs, key=lambda r: r["wall_s"])
        cpu_s = sorted(r["cpu_s"] for r in runs)[len(runs) // 2]
        step_s = min(sum(r["steps"].values()) for r in runs)
        per_step = {k: min(r["steps"].get(k, 0.0) for r in runs) for k in best["steps"]}
        same = "—" if n == 0 else compare_outputs(outputs[(0, what)], outputs[(n, what)])
        rows.append(row(f"`--select {'predictions/claim_denial_scores' if what == 'scores' else 'predictions'}` "
                        f"with {codes[n]}",
                        f"{claims / best['wall_s']:,.0f} claims/s end to end ({best['wall_s']:.1f} s wall, "
                        f"{cpu_s:.1f} s CPU), {claims / step_s:,.0f}/s in steps ({step_s:.1f} s: "
                        + ", ".join(f"{k} {v:.1f}" for k, v in sorted(per_step.items())) + f"); {best['events']} "
                        f"events, {best['runs']} run(s); outputs vs code 0: {same}",
                        f"code 0: {claims / min(r['wall_s'] for r in results[(0, what)]):,.0f} claims/s",
                        min(r["wall_s"] for r in results[(0, what)]) / best["wall_s"], "≥ 200,000 claims/s",
                        sorted(r["cpu_s"] for r in results[(0, what)])[len(runs) // 2] / cpu_s,
                        claims=claims, wall_s=round(best["wall_s"], 2), cpu_s=round(cpu_s, 2),
                        step_s=round(step_s, 2), steps={k: round(v, 2) for k, v in per_step.items()},
                        events=best["events"], runs=best["runs"], outputs_vs_code0=same))
    return rows


def memory_scaling(args: argparse.Namespace, work: Path) -> list[dict]:
    """Peak RSS of `rcm backfill --select bronze silver gold` over ranges of different lengths (same
    claims/day), in chunks of `--chunk-days` days and as one run over the range, each on a fresh lake and
    Dagster instance: chunked, the peak is bounded by a chunk; in one run it grows with the range."""
    ranges = sorted({int(x) for x in args.memory_ranges.split(",")})
    chunk = args.chunk_days or 31
    per_day = args.claims_per_day
    logs = work / "logs"
    logs.mkdir(exist_ok=True)
    db = work / "source.db"
    env = dict(os.environ, RCM_PARTITIONS_START=START.isoformat(), RCM_EXTRACT_LOOKBACK_DAYS="0",
               PYTHONWARNINGS="ignore", RCM_SOURCE_URL=f"sqlite:///{db}", RCM_PHI_KEY=BENCH_PHI_KEY)
    for name in ("RCM_LAKE_URL", "MLFLOW_TRACKING_URI", "RCM_MLFLOW_ARTIFACTS", "RCM_CONFIG", "RCM_LANDING_DIR",
                 "RCM_QUARANTINE_DIR", "RCM_EXECUTOR", "RCM_BACKFILL_CHUNK_DAYS"):
        env.pop(name, None)
    py = [sys.executable, "-W", "ignore"]
    print(f"bench: memory of bronze → gold backfills over {ranges} days x {per_day:,} claims/day, chunks of "
          f"{chunk} days vs one run (cpus {len(os.sched_getaffinity(0))}, load {os.getloadavg()[0]:.1f}); "
          f"work folder {work}")
    spec = {"start": START.isoformat(), "days": max(ranges), "claims_per_day": per_day, "seed": args.seed,
            "source_url": f"sqlite:///{db}"}
    gen = measure([*py, str(Path(__file__).resolve()), "--piece", "generate", "--spec", json.dumps(spec)], env,
                  logs / "generate.log")
    print(f"  source: {gen['claim_rows']:,} claim rows over {max(ranges)} days ({gen['wall_s']:.1f} s)")
    results: dict[tuple[int, str], dict] = {}
    for days in ranges:
        last = START + timedelta(days=days - 1)
        for how, size in (("chunked", chunk), ("one run", days)):
            name = f"backfill_{days}d_{how.replace(' ', '_')}"
            folder = work / name
            (folder / "home").mkdir(parents=True)
            print(f"  {name} ...", end="", flush=True)
            res = measure([*py, "-m", "rcm_assets", "backfill", "--select", "bronze", "silver", "gold", "--start",
                           START.isoformat(), "--end", last.isoformat(), "--chunk-days", str(size)],
                          {**env, "RCM_DATA_DIR": str(folder / "data"), "DAGSTER_HOME": str(folder / "home")},
                          logs / f"{name}.log")
            res["claims"] = layer_rows(res["output"]).get("gold", 0)
            res["runs"] = len(re.findall(r": ok in [\d.]+ s \(run ", res["output"]))
            print(f" {res['wall_s']:.1f} s wall, {res['peak_rss_mb']:,.0f} MB peak, {res['runs']} run(s)")
            results[days, how] = res
            shutil.rmtree(folder / "data" / "lake", ignore_errors=True)
    rows = []
    short, long_ = ranges[0], ranges[-1]
    for how in ("chunked", "one run"):
        a, b = results[short, how], results[long_, how]
        label = f"chunks of ≤ {chunk} days" if how == "chunked" else "one run over the range (before)"
        rows.append(row(
            f"peak RSS, `rcm backfill` bronze → gold, {long_} vs {short} days × {per_day:,} claims/day: {label}",
            f"{b['peak_rss_mb']:,.0f} MB at {long_} days ({b['claims']:,} gold rows, {b['runs']} run(s), "
            f"{b['wall_s']:.0f} s)",
            f"{a['peak_rss_mb']:,.0f} MB at {short} days ({a['claims']:,} gold rows, {a['runs']} run(s), "
            f"{a['wall_s']:.0f} s)",
            b["peak_rss_mb"] / a["peak_rss_mb"], "flat (≈ 1×) with chunks; ≤ 4 GB",
            peak_long_mb=round(b["peak_rss_mb"]), peak_short_mb=round(a["peak_rss_mb"]),
            wall_long_s=round(b["wall_s"], 1), wall_short_s=round(a["wall_s"], 1)))
    one, chunked = results[long_, "one run"], results[long_, "chunked"]
    rows.append(row(f"peak RSS at {long_} days: chunks of ≤ {chunk} days vs one run",
                    f"{chunked['peak_rss_mb']:,.0f} MB, {chunked['wall_s']:.0f} s wall, {cpu(chunked)}",
                    f"{one['peak_rss_mb']:,.0f} MB, {one['wall_s']:.0f} s wall, {cpu(one)} in one run",
                    chunked["peak_rss_mb"] / one["peak_rss_mb"], "< 1×",
                    chunked["cpu_s"] / one["cpu_s"] if one["cpu_s"] else None))
    return rows


def first_model_week(start: date, horizon: int, min_train: int) -> date:
    earliest = start + timedelta(days=horizon + min_train)
    return earliest + timedelta(days=(7 - earliest.weekday()) % 7)


if __name__ == "__main__":
    sys.exit(main())
