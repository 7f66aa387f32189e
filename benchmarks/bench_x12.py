"""X12 ingestion speed: a day of claims (837) and remittances (835) read and mapped, beside a bare read.

    python benchmarks/bench_x12.py [--claims-per-day 20000] [--seed 7]

Generates a world, writes one day's 837 and 835 files (the realistic generator, America/New_York), then
for each file measures in a fresh process: `lib.x12.read_x12` (read, map to registry columns, cast)
and the bare pyx12 segment read of the same file (the lower bound: tokenizing only). Reports rows/s,
the ratio to the bare read, and the peak resident memory of each process. Target: a day of 20,000 claims
and 20,000 remittances read in well under the nightly window (a minute is plenty of room).
"""
# ruff: noqa: T201

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

TZ = "America/New_York"


def _mapped(path: str, queue: mp.Queue) -> None:
    from rcm_assets.lib import x12

    t = time.perf_counter()
    batch = x12.read_x12(path, facility_tz=TZ)
    seconds = time.perf_counter() - t
    queue.put((seconds, len(batch.claims) + len(batch.remittances), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))


def _bare(path: str, queue: mp.Queue) -> None:
    from pyx12.x12file import X12Reader

    t = time.perf_counter()
    with open(path, encoding="ascii") as handle:
        segments = sum(1 for _ in X12Reader(handle))
    seconds = time.perf_counter() - t
    queue.put((seconds, segments, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))


def _write(folder: str, claims_per_day: int, seed: int, queue: mp.Queue) -> None:
    from rcm_assets.synthetic import generate, write_x12_files

    start = date(2025, 1, 1)
    data = generate(start=start, days=40, claims_per_day=claims_per_day, seed=seed, facility_tz=TZ)
    day = start + timedelta(days=35)  # claims and remittances both arrive on this day
    queue.put([str(p) for p in write_x12_files(data, [day], Path(folder), TZ)])


def measure(target, path: Path) -> tuple[float, int, int]:
    ctx = mp.get_context("spawn")  # a fresh interpreter: its peak memory is this measurement's alone
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(str(path), queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--claims-per-day", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as folder:
        # generated in another process: Linux keeps a process's peak RSS across fork and exec, so a parent
        # that held the generated world would report its peak for every measurement
        ctx = mp.get_context("spawn")
        queue = ctx.Queue()
        proc = ctx.Process(target=_write, args=(folder, args.claims_per_day, args.seed, queue))
        proc.start()
        files = [Path(p) for p in queue.get()]
        proc.join()
        ok = True
        for path in sorted(files):
            mapped_s, rows, mapped_kb = measure(_mapped, path)
            bare_s, segments, bare_kb = measure(_bare, path)
            kind = "claims (837)" if path.suffix == ".837" else "remittances (835)"
            print(f"{kind:<18} {path.stat().st_size / 1e6:6.1f} MB, {rows:,} rows: read+map {mapped_s:5.2f} s "
                  f"= {rows / mapped_s:,.0f} rows/s, peak {mapped_kb / 1024:,.0f} MB | bare pyx12 read "
                  f"{bare_s:5.2f} s ({segments:,} segments), peak {bare_kb / 1024:,.0f} MB | "
                  f"ratio read+map / bare {mapped_s / bare_s:.2f}x")
            ok &= mapped_s < 60
    print(f"a day of {args.claims_per_day:,} claims fits the nightly window: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
