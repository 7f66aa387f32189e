"""Synthetic generation throughput: generate() and write_source() in claims per second.

    python benchmarks/bench_generate.py [--days 50] [--claims-per-day 20000] [--seed 7] [--write]
                                        [--url sqlite:///...] [--year]

--year is the full-size case (365 days x 20,000 claims/day = 7.3M claims). --write also loads the
source into a temporary SQLite file (or --url). Reports wall and CPU seconds (the CPU figure is the
one to compare on a shared machine) and the ratio to the target: a year at 20k/day generated and
written within 5 minutes, i.e. >= 24,333 claims/s end to end.
"""
# ruff: noqa: T201

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from rcm_assets.synthetic import generate, write_source

TARGET_CLAIMS_PER_S = 365 * 20_000 / 300


def timed(fn):
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - w0, time.process_time() - c0, out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--days", type=int, default=50)
    p.add_argument("--claims-per-day", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--write", action="store_true", help="also time write_source")
    p.add_argument("--url", default=None, help="source URL for --write (default: a temporary SQLite file)")
    p.add_argument("--year", action="store_true", help="365 days x 20,000 claims/day")
    args = p.parse_args(argv)
    if args.year:
        args.days, args.claims_per_day = 365, 20_000
    n = args.days * args.claims_per_day

    wall, cpu, data = timed(lambda: generate(date(2025, 1, 1), args.days, args.claims_per_day, args.seed))
    rows = len(data.claims) + len(data.remittances)
    print(f"generate: {n:,} claims ({len(data.claims):,} claim rows, {len(data.remittances):,} remittance "
          f"rows) in {wall:.1f}s wall / {cpu:.1f}s CPU -> {n / wall:,.0f} claims/s wall, "
          f"{n / cpu:,.0f} claims/s CPU; denial rate {data.summary['denial_rate']:.3f}")
    total_wall, total_cpu = wall, cpu
    if args.write:
        with tempfile.TemporaryDirectory() as tmp:
            url = args.url or f"sqlite:///{Path(tmp) / 'source.db'}"
            wall, cpu, _ = timed(lambda: write_source(data, url))
            size = Path(tmp, "source.db").stat().st_size / 1e6 if args.url is None else float("nan")
        print(f"write_source: {rows:,} rows in {wall:.1f}s wall / {cpu:.1f}s CPU -> {rows / wall:,.0f} rows/s "
              f"wall ({n / wall:,.0f} claims/s); {size:,.0f} MB")
        total_wall, total_cpu = total_wall + wall, total_cpu + cpu
    ratio = (n / total_wall) / TARGET_CLAIMS_PER_S
    print(f"end to end: {n / total_wall:,.0f} claims/s wall, {n / total_cpu:,.0f} claims/s CPU; "
          f"ratio to target ({TARGET_CLAIMS_PER_S:,.0f}/s) {ratio:.2f} {'PASS' if ratio >= 1 else 'FAIL'}; "
          f"projected year at 20k/day: {365 * 20_000 / (n / total_wall):.0f}s")
    return 0 if ratio >= 1 else 1


if __name__ == "__main__":
    sys.exit(main())
