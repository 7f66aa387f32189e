"""Weekly training at production scale: `rcm train` on a 180-day window of 20,000 claims a day.

    python benchmarks/bench_train_scale.py [--claims-per-day 20000] [--window-days 180] [--horizon-days 60]

A full bronze → gold backfill of that volume takes longer than the training it prepares, so the lake is
written directly: the generator's claims and remittances go through the real silver transforms and the
real gold path (`claim_history.decision_rows` + `compute_features`) day by day, and the partitions are
written in the lake's Hive layout. Then the real CLI trains the week (`rcm train --date W`: denial model,
fallback, reason model, allowed ratios, review) as a child process, timed by `run.measure` (wall, CPU, peak RSS).
Targets (issue 16): ≤ 90 s and ≤ 4 GB. Prints one table; exit code 1 when a target is missed.
"""
# ruff: noqa: T201

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from run import measure  # benchmarks/run.py: one child-process timer (wall, CPU, peak RSS via wait4)

from rcm_assets.lib import claim_history, settings
from rcm_assets.lib import features as F
from rcm_assets.lib import transforms as T
from rcm_assets.synthetic import generate

TARGET_SECONDS, TARGET_GB = 90.0, 4.0


def write_partition(lake: Path, key: list[str], day: str, frame) -> None:
    folder = lake.joinpath(*key, f"dt={day}")
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(frame.drop(columns=["dt"], errors="ignore"), preserve_index=False),
                   folder / "part-0.parquet")


def build_lake(lake: Path, start: date, days: int, claims_per_day: int, seed: int) -> dict[str, float]:
    """Silver remittances and gold features of every day, through the real transforms (whole range at
    once for silver, as the bench of the model does; gold day by day with its lookback)."""
    t = time.perf_counter()
    data = generate(start=start, days=days, claims_per_day=claims_per_day, seed=seed)
    t_gen = time.perf_counter() - t

    def bronze(frame):
        return frame.assign(_ingested_at=frame["updated_at"], _source="bench", _run_id="bench",
                            dt=frame["updated_at"].dt.strftime("%Y-%m-%d"))

    t = time.perf_counter()
    claims = T.build_silver_claims(bronze(data.claims), T.DEV_PHI_KEY).good
    remittances = T.build_silver_remittances(bronze(data.remittances)).good
    del data
    decisions, _ = claim_history.decision_rows(claims, None, settings.update_lookback_days())
    del claims
    gold = F.compute_features(F.decision_time_view(decisions))
    del decisions
    for day, rows in gold.groupby("dt", sort=True):
        write_partition(lake, ["gold", "claim_features"], str(day), rows)
    for day, rows in remittances.groupby("dt", sort=True):
        write_partition(lake, ["silver", "remittances"], str(day), rows)
    return {"generate_s": t_gen, "lake_s": time.perf_counter() - t, "gold_rows": float(len(gold)),
            "remittance_rows": float(len(remittances))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--claims-per-day", type=int, default=20_000)
    ap.add_argument("--window-days", type=int, default=180)
    ap.add_argument("--horizon-days", type=int, default=60)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--keep", type=Path, default=None, help="build the lake here and keep it (default: a temp dir)")
    args = ap.parse_args(argv)

    week = date(2025, 1, 6) + timedelta(weeks=(args.window_days + args.horizon_days) // 7 + 1)  # a Monday
    start = week - timedelta(days=args.window_days + args.horizon_days + 7)
    days = (week - start).days
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-train-"))
    lake = root / "lake"
    built = build_lake(lake, start, days, args.claims_per_day, args.seed) if not lake.exists() else {}
    env = {**os.environ, "RCM_DATA_DIR": str(root), "DAGSTER_HOME": str(root / "dagster_home"),
           "RCM_LABEL_HORIZON_DAYS": str(args.horizon_days), "RCM_TRAIN_WINDOW_DAYS": str(args.window_days),
           "RCM_PHI_KEY": os.environ.get("RCM_PHI_KEY", "bench-phi-key-0123456789abcdef")}
    for state in ("dagster_home", "mlflow"):  # a kept lake is trained again from scratch
        shutil.rmtree(root / state, ignore_errors=True)
    (root / "dagster_home").mkdir()
    rcm = str(Path(sys.executable).with_name("rcm"))
    timed = measure([rcm, "train", "--date", week.isoformat()], env, root / "rcm_train.log")  # exits on failure
    wall, cpu, peak = timed["wall_s"], timed["cpu_s"], timed["peak_rss_mb"] / 1024
    print(f"lake: {days} days x {args.claims_per_day:,} claims ({built.get('gold_rows', 0):,.0f} gold rows, "
          f"{built.get('remittance_rows', 0):,.0f} remittance rows; generated in {built.get('generate_s', 0):.0f} s, "
          f"silver + gold in {built.get('lake_s', 0):.0f} s) at {root}")
    print(f"| what | measured | target |\n|---|---|---|\n| `rcm train --date {week}` "
          f"(window {args.window_days} d, horizon {args.horizon_days} d) | {wall:.1f} s wall, {cpu:.1f} s CPU, "
          f"peak RSS {peak:.2f} GB | ≤ {TARGET_SECONDS:.0f} s, ≤ {TARGET_GB:.0f} GB |")
    return 0 if wall <= TARGET_SECONDS and peak <= TARGET_GB else 1


if __name__ == "__main__":
    sys.exit(main())
