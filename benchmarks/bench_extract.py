"""Extraction throughput: SourceReader.read_changed against a bare ADBC read of the same rows.

    python benchmarks/bench_extract.py [--days 30] [--claims-per-day 20000] [--seed 7] [--repeat 3]
                                       [--table claims] [--db PATH]

Generates the synthetic source into a temporary SQLite file (or reuses --db), then for every day D
times, best of --repeat in the same process:

* bare ADBC -> Arrow: `SELECT <registry columns> FROM claims WHERE updated_at >= ? AND updated_at < ?`
  + fetch_arrow_table (the floor: no pandas at all);
* bare ADBC -> pandas: the same + `.to_pandas()` (the fair baseline: a DataFrame, but timestamps left
  as text, no schema check, no casting, no retries);
* SourceReader.read_changed: reflection + schema check + the same query (ORDER BY updated_at) + casting
  to the frame conventions (datetime64[ns], bool, ...).

Target: reader throughput >= 70% of the bare ADBC -> pandas baseline (ratio printed as PASS/FAIL).
"""
# ruff: noqa: T201

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

import adbc_driver_sqlite.dbapi as adbc_sqlite

from rcm_assets.lib.columns import source_column_names
from rcm_assets.lib.source import SourceReader
from rcm_assets.synthetic import generate, write_source

TARGET = 0.70
BATCH_OPTION = {"adbc.sqlite.query.batch_rows": str(1 << 30)}


def best_of(repeat: int, fn: Callable[[], object]) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def bare_adbc(path: Path, table: str, lo: datetime, hi: datetime, single_batch: bool):
    cols = ", ".join(source_column_names(table))
    sql = f"SELECT {cols} FROM {table} WHERE updated_at >= ? AND updated_at < ?"
    with adbc_sqlite.connect(str(path)) as conn, conn.cursor() as cur:
        if single_batch:
            cur.adbc_statement.set_options(**BATCH_OPTION)
        cur.execute(sql, (lo.strftime("%Y-%m-%d %H:%M:%S"), hi.strftime("%Y-%m-%d %H:%M:%S")))
        return cur.fetch_arrow_table()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--claims-per-day", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--table", choices=("claims", "remittances"), default="claims")
    p.add_argument("--db", type=Path, help="existing source database to reuse (skips generation)")
    args = p.parse_args(argv)
    start = date(2025, 1, 1)

    with tempfile.TemporaryDirectory(prefix="bench_extract_") as tmp:
        path = args.db or Path(tmp) / "source.db"
        if args.db is None:
            t0 = time.perf_counter()
            data = generate(start=start, days=args.days, claims_per_day=args.claims_per_day, seed=args.seed)
            t_gen = time.perf_counter() - t0
            t0 = time.perf_counter()
            write_source(data, f"sqlite:///{path}")
            print(f"source: {len(data.claims):,} claim rows, {len(data.remittances):,} remittance rows; "
                  f"generate {t_gen:.1f} s, write {time.perf_counter() - t0:.1f} s ({path.stat().st_size / 1e6:.0f} MB)")
            del data

        # The ADBC SQLite driver infers Arrow types from its first batch (1024 rows by default): a
        # nullable text column that is NULL there fails later batches. Say whether the naive bare read
        # even works on this data; the baseline then uses one batch, like the reader.
        day0 = datetime.combine(start, datetime.min.time())
        try:
            bare_adbc(path, args.table, day0, day0 + timedelta(days=1), single_batch=False)
            print("bare ADBC with default batches: works on this data")
        except Exception as exc:
            print(f"bare ADBC with default batches FAILS on this data ({type(exc).__name__}: "
                  f"{str(exc).splitlines()[0]}); baseline uses one batch like the reader")

        reader = SourceReader(f"sqlite:///{path}")
        rows = 0
        t_arrow = t_pandas = t_reader = 0.0
        for d in range(args.days):
            lo = day0 + timedelta(days=d)
            hi = lo + timedelta(days=1)
            ta, tbl = best_of(args.repeat, lambda lo=lo, hi=hi: bare_adbc(path, args.table, lo, hi, True))
            tp, df_bare = best_of(args.repeat,
                                  lambda lo=lo, hi=hi: bare_adbc(path, args.table, lo, hi, True).to_pandas())
            tr, df = best_of(args.repeat, lambda lo=lo, hi=hi: reader.read_changed(args.table, lo, hi))
            if not (len(df) == len(df_bare) == tbl.num_rows):
                print(f"MISMATCH on {lo.date()}: reader {len(df)} rows, bare {len(df_bare)} rows")
                return 1
            rows += len(df)
            t_arrow += ta
            t_pandas += tp
            t_reader += tr

    def rate(t: float) -> str:
        return f"{rows / t:>12,.0f} rows/s  ({t * 1e3 / args.days:6.1f} ms/day)"

    print(f"{args.table}: {args.days} days, {rows:,} rows, best of {args.repeat} per day")
    print(f"  bare ADBC -> Arrow         {rate(t_arrow)}")
    print(f"  bare ADBC -> pandas        {rate(t_pandas)}")
    print(f"  SourceReader.read_changed  {rate(t_reader)}   (typed, schema-checked)")
    ratio = t_pandas / t_reader
    print(f"ratio reader / bare ADBC->pandas throughput: {ratio:.2f} (target >= {TARGET:.2f}: "
          f"{'PASS' if ratio >= TARGET else 'FAIL'})")
    print(f"ratio reader / bare ADBC->Arrow  throughput: {t_arrow / t_reader:.2f} (informational)")
    return 0 if ratio >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
