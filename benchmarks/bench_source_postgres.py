"""PostgreSQL source read: SourceReader.read_changed against `psql \\copy (SELECT ...) TO STDOUT` of the same rows.

    python benchmarks/bench_source_postgres.py [--days 3] [--claims-per-day 20000] [--seed 7] [--repeat 3]
                                               [--url postgresql://postgres@127.0.0.1:5432/test]

Loads the generator's source into a scratch schema it creates (and drops at the end), then times, best of
--repeat per day, each in this process except psql:

* `psql -c "\\copy (SELECT <registry columns> ... one day) TO STDOUT"` into /dev/null: the server's
  fastest export, the floor (a separate process: its start is included, a few ms);
* SourceReader.read_changed (reflection + schema check + the read path it uses for PostgreSQL + casting
  to the frame conventions): typed pandas frames, what bronze gets;
* the previous read path (SQLAlchemy row fetches + the pandas casts), for the before/after ratio.

Prints the rows/s of each and the ratios to psql \\copy.
"""
# ruff: noqa: T201

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
import uuid
from datetime import date, datetime, timedelta
from urllib.parse import quote

import sqlalchemy as sa

from rcm_assets.lib import source as src
from rcm_assets.lib.columns import source_column_names
from rcm_assets.synthetic import generate, write_source


def best(repeat: int, fn) -> tuple[float, object]:
    out, t_best = None, float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        t_best = min(t_best, time.perf_counter() - t)
    return t_best, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=3)
    ap.add_argument("--claims-per-day", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--url", default=os.environ.get("RCM_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    args = ap.parse_args(argv)
    if shutil.which("psql") is None:
        print("psql not found")
        return 1
    start = date(2025, 1, 1)
    schema = f"rcm_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(src.resolve_driver(args.url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in args.url else "?"
    url = f"{args.url}{sep}options={quote(f'-csearch_path={schema}')}"
    try:
        data = generate(start=start, days=args.days, claims_per_day=args.claims_per_day, seed=args.seed)
        t = time.perf_counter()
        write_source(data, src.resolve_driver(url).render_as_string(hide_password=False))
        print(f"source: {len(data.claims):,} claim rows, {len(data.remittances):,} remittance rows in schema "
              f"{schema} (loaded in {time.perf_counter() - t:.1f} s); cpus {len(os.sched_getaffinity(0))}, "
              f"load {os.getloadavg()[0]:.1f}")
        del data
        reader = src.SourceReader(url)
        previous = src.SourceReader(url)
        previous.use_adbc = False  # the row-fetch path this replaced (ignored before the change)
        plain = sa.make_url(args.url).set(query={}).render_as_string(hide_password=False)
        totals = {"psql": 0.0, "reader": 0.0, "previous": 0.0}
        rows = 0
        for table in ("claims", "remittances"):
            cols = ", ".join(source_column_names(table))
            for d in range(args.days):
                lo = datetime.combine(start + timedelta(days=d), datetime.min.time())
                hi = lo + timedelta(days=1)
                sql = (f"\\copy (SELECT {cols} FROM \"{schema}\".{table} WHERE updated_at >= '{lo}' "
                       f"AND updated_at < '{hi}' ORDER BY updated_at) TO STDOUT")
                t_psql, _ = best(args.repeat, lambda sql=sql: subprocess.run(
                    ["psql", plain, "-X", "-q", "-c", "SET TIME ZONE 'UTC'", "-c", sql],
                    stdout=subprocess.DEVNULL, check=True))
                t_reader, frame = best(args.repeat, lambda lo=lo, hi=hi, t=table: reader.read_changed(t, lo, hi))
                t_prev, before = best(args.repeat, lambda lo=lo, hi=hi, t=table: previous.read_changed(t, lo, hi))
                if not frame.equals(before):
                    print(f"MISMATCH {table} {lo.date()}: the two read paths differ")
                    return 1
                rows += len(frame)
                totals["psql"] += t_psql
                totals["reader"] += t_reader
                totals["previous"] += t_prev
        for name, label in (("psql", "psql \\copy TO STDOUT (floor)"), ("reader", "SourceReader.read_changed"),
                            ("previous", "previous path (SQLAlchemy rows)")):
            print(f"  {label:<34} {totals[name]:7.2f} s  {rows / totals[name]:>12,.0f} rows/s  "
                  f"{totals[name] / totals['psql']:5.2f}x psql")
        print(f"speed-up of the reader over the previous path: {totals['previous'] / totals['reader']:.1f}x "
              f"({rows:,} rows, best of {args.repeat} per day and table)")
        return 0
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


if __name__ == "__main__":
    sys.exit(main())
