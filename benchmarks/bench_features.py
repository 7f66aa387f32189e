"""Gold feature computation for one day of claims: milliseconds, rows per second, ratio to the budget.

    python benchmarks/bench_features.py [--claims 20000] [--seed 7] [--repeat 7]

Generates one day of synthetic claims, builds silver claims with the real silver transform and times
`decision_time_view` + `compute_features` (best of --repeat runs, after one warm-up that also computes
the cached feature_version). Budget: a day of 20,000 claims well under 1 s.
"""
# ruff: noqa: T201

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import date

from bench_model import best_of, silver_frames

from rcm_assets.lib import features as F
from rcm_assets.synthetic import generate

BUDGET_S = 1.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--claims", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args(argv)

    data = generate(start=date(2025, 3, 3), days=1, claims_per_day=args.claims, seed=args.seed)
    silver, _ = silver_frames(data)

    t = time.perf_counter()
    F.feature_version.cache_clear()
    out = F.compute_features(F.decision_time_view(silver))
    t_first = time.perf_counter() - t
    t_view = best_of(lambda: F.decision_time_view(silver), args.repeat)
    view = F.decision_time_view(silver)
    t_compute = best_of(lambda: F.compute_features(view), args.repeat)
    t_total = best_of(lambda: F.compute_features(F.decision_time_view(silver)), args.repeat)

    n = len(silver)
    print(f"{n:,} silver claim rows -> {out.shape[0]:,} x {out.shape[1]} gold columns "
          f"(cpus {len(os.sched_getaffinity(0))}, load {os.getloadavg()[0]:.1f})")
    print(f"first call (incl. feature_version hash): {t_first * 1e3:.1f} ms")
    print(f"decision_time_view {t_view * 1e3:.1f} ms, compute_features {t_compute * 1e3:.1f} ms, "
          f"both {t_total * 1e3:.1f} ms = {n / t_total:,.0f} rows/s")
    print(f"budget {BUDGET_S:.0f} s for the day: {t_total / BUDGET_S:.3f} of budget "
          f"({BUDGET_S / t_total:,.0f}x headroom)")
    return 0 if t_total < BUDGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
