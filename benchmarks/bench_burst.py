"""A drop folder under load, against a live `dagster-daemon` (sensors, automation, run queue).

A clearinghouse drops claims files for `days` days, `files_per_day` a day (by default 200 files over 20
days: 170 plain files, 10 overlapping half of two others, 20 byte-identical re-sends), in `bursts` bursts
`gap` seconds apart. The source database holds none of those days' rows, so the files are the only
delivery. Measured from the first drop: the bronze runs the landing sensor requested, the time until every
bronze partition has landed (target: 2 minutes on 2 cores) and until silver and gold follow, the rows in
bronze against the distinct rows delivered (lost, duplicated), the alerts posted and the Beta/Preview lines
in the daemon's log.

    python benchmarks/run.py --burst [--burst-days 20] [--burst-files-per-day 10] [--claims-per-day 1200]
"""
# ruff: noqa: T201

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
START = date(2025, 1, 6)
BRONZE_TARGET_S = 120.0
SETTLE_S = 180.0  # how long silver and gold may take after bronze before the bench gives up
POLL_S = 3.0


def day_files(lines: list[str], day: date, n: int, overlap: bool) -> list[tuple[str, str]]:
    """(name, text) of one day's files: plain chunks of the day's rows, one byte-identical re-send of the
    first chunk and, on `overlap` days, a file repeating the second half of chunk 0 and first of chunk 1."""
    header, rows = lines[0], lines[1:]
    plain_n = n - 1 - int(overlap)
    size = -(-len(rows) // plain_n)
    chunks = [rows[i * size:(i + 1) * size] for i in range(plain_n)]
    files = [(f"claims_{day}_p{i:02d}.csv", header + "".join(c)) for i, c in enumerate(chunks)]
    files.append((f"claims_{day}_p00_resent.csv", files[0][1]))
    if overlap:
        both = chunks[0][len(chunks[0]) // 2:] + chunks[1][: len(chunks[1]) // 2]
        files.append((f"claims_{day}_overlap.csv", header + "".join(both)))
    return files


def plan_bursts(data, days: list[date], files_per_day: int, bursts: int, scratch: Path) -> list[list[tuple[str, str]]]:
    """The files in drop order (day by day, as a clearinghouse sends them; a re-send arrives one burst
    later), cut into `bursts` bursts of equal size."""
    from rcm_assets.synthetic import write_landing_file

    ordered, resent = [], []
    for i, day in enumerate(days):
        whole = write_landing_file(data, day, scratch)
        files = day_files(whole.read_text().splitlines(keepends=True), day, files_per_day, overlap=i % 2 == 0)
        ordered += [f for f in files if "_resent" not in f[0]]
        resent += [f for f in files if "_resent" in f[0]]
    per = -(-(len(ordered) + len(resent)) // bursts)
    out: list[list[tuple[str, str]]] = [[] for _ in range(bursts)]
    for index, item in enumerate(ordered):
        out[min(index * bursts // len(ordered), bursts - 1)].append(item)
    for index, item in enumerate(resent):  # each re-send one burst after its day's files
        b = min(index * bursts // len(resent) + 1, bursts - 1)
        out[b].append(item)
    assert sum(len(b) for b in out) == len(ordered) + len(resent) and max(len(b) for b in out) <= per + len(resent)
    return out


def drop(landing: Path, files: list[tuple[str, str]]) -> None:
    """Write each file atomically (hidden temp, then rename), as an upload tool does."""
    for name, text in files:
        tmp = landing / f".{name}.part"
        tmp.write_text(text)
        os.replace(tmp, landing / name)


def materialized(instance, key, days: list[str]) -> int:
    return len(set(days) & set(instance.get_materialized_partitions(key)))


def burst(args, work: Path) -> list[dict]:
    import dagster as dg
    import pandas as pd

    days_n, per_day, bursts_n = args.burst_days, args.burst_files_per_day, args.burst_count
    root = work / "burst"
    data_dir = root / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, RCM_DATA_DIR=str(data_dir), RCM_ENV="dev", RCM_PHI_KEY="bench-phi-key-0123456789",
               PYTHONUNBUFFERED="1", RCM_PARTITIONS_START=START.isoformat())
    for name in ("DAGSTER_HOME", "RCM_SOURCE_URL", "RCM_LAKE_URL", "RCM_LANDING_DIR", "RCM_QUARANTINE_DIR",
                 "MLFLOW_TRACKING_URI", "RCM_MLFLOW_ARTIFACTS", "RCM_CONFIG", "PYTHONWARNINGS", "RCM_ALERT_LOG",
                 "RCM_ALERT_WEBHOOK_URL"):
        env.pop(name, None)
    os.environ.update({k: env[k] for k in ("RCM_DATA_DIR", "RCM_ENV", "RCM_PARTITIONS_START")})
    for name in ("DAGSTER_HOME", "RCM_SOURCE_URL", "RCM_LAKE_URL", "RCM_LANDING_DIR"):
        os.environ.pop(name, None)

    from rcm_assets.lib import settings
    from rcm_assets.platform.instance import prepare_instance
    from rcm_assets.synthetic import generate, write_source

    home = prepare_instance(root / "dagster_home")
    env["DAGSTER_HOME"] = str(home)
    days = [START + timedelta(days=i) for i in range(days_n)]
    keys = [d.isoformat() for d in days]
    data = generate(start=START, days=days_n, claims_per_day=args.claims_per_day, seed=args.seed)
    write_source(data, settings.source_url())
    db = Path(settings.source_url().removeprefix("sqlite:///"))
    with closing(sqlite3.connect(db)) as conn, conn:  # the files are the only delivery of these days
        for table in ("claims", "remittances"):
            conn.execute(f"DELETE FROM {table} WHERE updated_at >= ? AND updated_at < ?",  # noqa: S608
                         (keys[0], (days[-1] + timedelta(days=1)).isoformat()))
    plan = plan_bursts(data, days, per_day, bursts_n, root / "whole")
    landing = settings.landing_dir()
    landing.mkdir(parents=True, exist_ok=True)

    log = root / "daemon.log"
    with open(log, "wb") as out:
        daemon = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-w", str(REPO / "workspace.yaml")],
                                  cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  start_new_session=True)
    bronze, silver, gold = (dg.AssetKey(["bronze", "claims"]), dg.AssetKey(["silver", "claims"]),
                            dg.AssetKey(["gold", "claim_features"]))
    try:
        instance = dg.DagsterInstance.from_config(str(home))
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not instance.get_daemon_heartbeats():
            time.sleep(1)
        time.sleep(15)  # the code server loaded and the sensors ticked once
        started = time.monotonic()
        for index, files in enumerate(plan):
            if index:
                time.sleep(max(0.0, started + index * args.burst_gap - time.monotonic()))
            drop(landing, files)
        print(f"  dropped {sum(len(b) for b in plan)} files in {bursts_n} bursts")
        marks: dict[str, float | None] = {"bronze": None, "silver": None, "gold": None}
        limit = started + bursts_n * args.burst_gap + BRONZE_TARGET_S * 4 + SETTLE_S
        while time.monotonic() < limit and marks["gold"] is None:
            for name, key in (("bronze", bronze), ("silver", silver), ("gold", gold)):
                if marks[name] is None and materialized(instance, key, keys) == len(keys):
                    marks[name] = time.monotonic() - started
            if daemon.poll() is not None:
                raise SystemExit(f"dagster-daemon exited with {daemon.returncode}; see {log}")
            time.sleep(POLL_S)
        runs = instance.get_runs(dg.RunsFilter(tags={"rcm/trigger": "landing_file_sensor"}))
        all_runs = instance.get_runs(dg.RunsFilter())
    finally:
        try:
            os.killpg(daemon.pid, signal.SIGTERM)
            daemon.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(daemon.pid, signal.SIGKILL)

    lake = data_dir / "lake" / "bronze" / "claims"
    stored = [pd.read_parquet(p) for k in keys if (p := lake / f"dt={k}" / "part-0.parquet").exists()]
    stored_rows = sum(len(f) for f in stored)
    columns = [c for c in data.claims.columns if c in (stored[0].columns if stored else [])]
    delivered = pd.concat([pd.read_csv(root / "whole" / f"claims_{k}.csv", dtype=str) for k in keys])
    distinct = len(delivered.drop_duplicates())
    distinct_stored = len(pd.concat(stored)[columns].drop_duplicates()) if stored else 0
    alerts = data_dir / "logs" / "alerts.jsonl"
    posted = len(alerts.read_text().splitlines()) if alerts.exists() else 0
    text = log.read_text(errors="replace")
    notices = text.count("BetaWarning") + text.count("PreviewWarning")

    def minutes(name: str) -> str:
        return "not within the wait" if marks[name] is None else f"{marks[name] / 60:.1f} min"

    scale = (f"{sum(len(b) for b in plan)} files over {days_n} days ({args.claims_per_day} claims/day), "
             f"{bursts_n} bursts {args.burst_gap:.0f} s apart")
    met = marks["bronze"] is not None and marks["bronze"] <= BRONZE_TARGET_S
    return [{
        "what": f"drop-folder burst: every bronze partition landed ({scale})",
        "measured": f"{minutes('bronze')}; silver {minutes('silver')}, gold {minutes('gold')} from the first drop",
        "lower_bound": "—", "ratio": None, "cpu_ratio": None, "target": "≤ 2 min to the last bronze partition",
        "verdict": ("met" if met else "not met") + f" (load average {os.getloadavg()[0]:.1f} on "
                   f"{len(os.sched_getaffinity(0))} CPUs)",
        "bronze_runs_requested": len(runs), "runs_total": len(all_runs),
        "bronze_rows": stored_rows, "distinct_rows_delivered": distinct,
        "rows_lost": distinct - distinct_stored, "rows_duplicated": stored_rows - distinct_stored,
        "alerts_posted": posted, "beta_preview_log_lines": notices,
        "seconds": {k: None if v is None else round(v, 1) for k, v in marks.items()},
    }]
