"""The worklist's reason model and drivers: quality against the generator's causes, and their cost.

    python benchmarks/bench_worklist.py [--days 240] [--claims-per-day 600] [--seed 7] [--day-claims 20000]

1. Reason model, one multi-class model vs one binary model per category, trained on the denied claims of
   the same point-in-time window as the denial model: top-1 accuracy and macro AUC on the holdout's
   denied claims beside the Bayes-optimal figures (the generator's cause structure), fit and predict time.
2. Drivers (grouped occlusion): for claims with exactly one named cause, how often that cause's group is
   the top driver / among the top 3.
3. Speed: reasons + drivers for a day of 20,000 claims, against scoring alone (the denial probability).
Exit code 1 when the multi-class model's top-1 accuracy is more than 0.05 below the Bayes-optimal one,
or reasons + drivers add more than 5 s for the day.
"""
# ruff: noqa: T201

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from datetime import date

import numpy as np
import pandas as pd

from rcm_assets.lib import claim_history, settings
from rcm_assets.lib import drivers as D
from rcm_assets.lib import features as F
from rcm_assets.lib import modelling as M
from rcm_assets.lib import reasons as R
from rcm_assets.lib import transforms as T
from rcm_assets.synthetic import SyntheticData, generate
from rcm_assets.synthetic import generator as G

EXTRA_SECONDS_TARGET = 5.0  # "at most a few seconds" for 20,000 claims
CAUSE_GROUP = {"missing_prior_auth": "prior_auth", "eligibility_unverified": "eligibility",
               "timely_filing": "timely_filing", "dx_inconsistent": "coding", "high_charge": "charge"}


def silver_frames(data: SyntheticData) -> tuple[pd.DataFrame, pd.DataFrame]:
    def bronze(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(_ingested_at=frame["updated_at"], _source="bench", _run_id="bench",
                            dt=frame["updated_at"].dt.strftime("%Y-%m-%d"))
    return (T.build_silver_claims(bronze(data.claims), T.DEV_PHI_KEY).good,
            T.build_silver_remittances(bronze(data.remittances)).good)


def timed(fn: Callable[[], object], repeat: int = 3) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result


def truth_for(keys: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    return keys[["claim_id", "claim_version"]].merge(truth, on=["claim_id", "claim_version"], how="left",
                                                     validate="one_to_one")


def bayes(truth_rows: pd.DataFrame) -> pd.DataFrame:
    return R.bayes_reason_probabilities(truth_rows["true_denial_probability"], truth_rows, G.EFFECTS,
                                        G.CAUSE_CARC, G.BACKGROUND_CARCS)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--start", type=date.fromisoformat, default=date(2025, 1, 1))
    ap.add_argument("--days", type=int, default=240)
    ap.add_argument("--claims-per-day", type=int, default=600)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--train-days", type=int, default=180)
    ap.add_argument("--day-claims", type=int, default=20_000)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)

    data = generate(start=args.start, days=args.days, claims_per_day=args.claims_per_day, seed=args.seed)
    silver, outcomes = silver_frames(data)
    decisions, _ = claim_history.decision_rows(silver, None, settings.update_lookback_days())
    gold = F.compute_features(F.decision_time_view(decisions))
    start = pd.Timestamp(args.start)
    cutoff = pd.Timestamp(data.end)
    ts = M.training_frame(gold, outcomes, cutoff, start, start + pd.Timedelta(days=args.train_days))
    rs = R.reason_training_set(ts)
    train, holdout = R.reason_holdout_split(rs)
    truth = data.ground_truth
    h_truth = truth_for(holdout.claim_keys, truth)
    b = R.reason_metrics(holdout.y, bayes(h_truth))
    print(f"data: {args.days} days x {args.claims_per_day} claims/day (seed {args.seed}); cpus "
          f"{len(os.sched_getaffinity(0))}, load {os.getloadavg()[0]:.1f}, threads {args.threads}")
    print(f"reason training set: {rs.stats['denied']:,} denied of {ts.stats['labelled']:,} labelled claims; "
          f"train {len(train.y):,}, holdout {len(holdout.y):,}; categories {rs.stats['categories']}")
    print(f"  {'strategy':<12} {'top-1 acc':>9} {'macro AUC':>9} {'fit s':>7} {'predict ms':>10}")
    print(f"  {'Bayes':<12} {b['top1_accuracy']:>9.4f} {b['macro_auc']:>9.4f}")
    results = {}
    for strategy in R.STRATEGIES:
        t = time.perf_counter()
        model = R.fit_reason_model(train.X, train.y, seed=0, strategy=strategy, n_threads=args.threads)
        fit_s = time.perf_counter() - t
        predict_s, proba = timed(lambda m=model: R.predict_reasons(m, holdout.X, n_threads=args.threads))
        m = R.reason_metrics(holdout.y, proba)
        results[strategy] = (m, model)
        print(f"  {strategy:<12} {m['top1_accuracy']:>9.4f} {m['macro_auc']:>9.4f} {fit_s:>7.2f} "
              f"{predict_s * 1e3:>10.1f}")
    multi = results["multiclass"][0]
    print("  multiclass per-category AUC: "
          + ", ".join(f"{c} {v:.3f}" for c, v in multi["category_auc"].items()))
    print("  Bayes per-category AUC:      " + ", ".join(f"{c} {v:.3f}" for c, v in b["category_auc"].items()))

    # drivers against the named causes (denial model trained on the same window)
    d_train, d_holdout = M.time_holdout_split(ts)
    denial = M.fit_model(d_train.X, d_train.y, seed=0, n_threads=args.threads)
    predict = lambda frame: M.predict_denial(denial, frame, n_threads=args.threads)  # noqa: E731
    smooth = D.smooth_predict(denial, n_threads=args.threads)
    explained = D.explain(smooth, d_holdout.X)
    causes = truth_for(d_holdout.claim_keys, truth)
    cause_cols = [f"cause_{c}" for c in CAUSE_GROUP]
    single = causes[cause_cols].sum(axis=1) == 1
    print(f"drivers on {len(d_holdout.X):,} holdout claims; {int(single.sum()):,} have exactly one named cause:")
    for cause, group in CAUSE_GROUP.items():
        rows = single & causes[f"cause_{cause}"]
        if rows.sum() == 0:
            continue
        top1 = (explained.loc[rows, "driver_1"] == group).mean()
        top3 = explained.loc[rows, ["driver_1", "driver_2", "driver_3"]].eq(group).any(axis=1).mean()
        print(f"  {cause:<24} n={int(rows.sum()):>5}  top driver {top1:.3f}  in top 3 {top3:.3f}")
    clean = causes[cause_cols].sum(axis=1) == 0
    print(f"  no named cause           n={int(clean.sum()):>5}  an actionable group in top 3 "
          f"{explained.loc[clean, ['driver_1', 'driver_2', 'driver_3']].isin(list(CAUSE_GROUP.values())).any(axis=1).mean():.3f}")

    # speed: a day of `day_claims` claims
    day = pd.concat([gold] * int(np.ceil(args.day_claims / len(gold))), ignore_index=True).head(args.day_claims)
    reason_model = results["multiclass"][1]
    t_score, _ = timed(lambda: predict(day))
    t_reason, _ = timed(lambda: R.top_reasons(R.predict_reasons(reason_model, day, n_threads=args.threads)))
    t_effects, effects = timed(lambda: D.driver_effects(smooth, day))
    t_text, _ = timed(lambda: D.driver_sentences(D.top_drivers(effects), day))
    extra = t_reason + t_effects + t_text
    print(f"speed, {len(day):,} claims: scoring (predict_proba) {t_score:.2f} s; reasons {t_reason:.2f} s, "
          f"driver effects {t_effects:.2f} s, sentences {t_text:.2f} s: reasons + drivers add {extra:.2f} s "
          f"= {extra / t_score:.1f}x scoring ({'PASS' if extra <= EXTRA_SECONDS_TARGET else 'FAIL'} "
          f"<= {EXTRA_SECONDS_TARGET:.0f} s)")
    gap = b["top1_accuracy"] - multi["top1_accuracy"]
    ok = gap <= 0.05 and extra <= EXTRA_SECONDS_TARGET
    print(f"multiclass top-1 gap to Bayes {gap:.4f} (target <= 0.05): {'PASS' if gap <= 0.05 else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
