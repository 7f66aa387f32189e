"""The weekly review's error rates, simulated (issue 26.4): how often the rollback test retires a healthy
champion, how fast it catches a broken one, and what the point-estimate rule it replaced did.

Each review sees fresh matured claims (default 1,000 with 50 denials, floor 0.70); scores are binormal
with the stated true AUC (`lib.lifecycle.simulate_reviews`, the review's own DeLong bound). Prints one
markdown table. About 0.5 ms a review: the defaults (20,000 reviews per row) take ~1 min on one core.

    .venv/bin/python benchmarks/bench_lifecycle.py [--reviews 20000] [--claims 1000] [--denied 50]
"""

# ruff: noqa: T201
from __future__ import annotations

import argparse
import time

from rcm_assets.lib import lifecycle as L


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reviews", type=int, default=20_000)
    ap.add_argument("--claims", type=int, default=1_000)
    ap.add_argument("--denied", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    started = time.perf_counter()
    policy, point = L.ReviewPolicy(), L.ReviewPolicy(rollback_confidence=0.5)
    print(f"{args.claims:,} matured claims, {args.denied} denials a review, floor {policy.floor:.2f}, "
          f"{args.reviews:,} simulated reviews a row; power minimum "
          f"{policy.denials_needed((args.claims - args.denied) / args.denied)} denials")
    print("| true AUC | rule | retired at a review | within two reviews | a year (52 reviews) |")
    print("|---|---|---|---|---|")
    for auc in (0.76, 0.72, 0.70, 0.65, 0.60):
        for name, rule in ((f"upper {policy.rollback_confidence:.0%} bound < floor", policy),
                           ("point estimate < floor (before)", point)):
            hits = L.simulate_reviews(auc, args.reviews - args.reviews % 2, args.claims, args.denied, rule,
                                      seed=args.seed + int(auc * 1000))
            once = hits.mean()
            two = hits.reshape(-1, 2).any(axis=1).mean()
            print(f"| {auc:.2f} | {name} | {once:.2%} | {two:.1%} | {1 - (1 - once) ** 52:.0%} |")
    print(f"({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
