"""The scoring service's latency budget, measured: `rcm serve` started as an operator starts it, then a bounded
open-loop load generator.

    python benchmarks/bench_serve.py --data-dir DIR [--day D] [--rate 50] [--seconds 60] [--out DIR]
    make bench ARGS="--serve --keep DIR"      (DIR: a world an earlier `make bench ARGS=--keep DIR` or
                                              `rcm demo` left; its data folder is DIR/data)

Budget (issue 25): single-claim requests at 50/s for 60 s on 2 cores: P95 <= 50 ms, P99 <= 100 ms, 0 errors;
a 1,000-claim batch in <= 1 s; start-up to ready in <= 10 s.

1. publishes `serving/bundle` for the day when missing (`rcm backfill --select serving/bundle`);
2. starts `rcm serve --day D` on a free port and times start-up to the first 200 of /readyz;
3. sends single-claim requests open loop: request i leaves at t0 + i / rate whatever the answers (a slow
   service does not slow the generator: no coordinated omission), from a bounded pool of threads; the
   latency counts from the planned send time; a request not answered within 10 s is an error;
4. posts the 1,000-claim batch `--batches` times (the day's claims, repeated under new claim ids);
5. writes the figures (JSON) and a latency histogram (PNG) to --out, prints a Markdown table.
The machine is shared: the load average at start and end is recorded beside the figures.
"""
# ruff: noqa: T201

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import requests

from rcm_assets.serving.schemas import claims_as_sent

BUDGET = {"p95_ms": 50.0, "p99_ms": 100.0, "errors": 0, "batch_s": 1.0, "startup_s": 10.0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def day_claims(data_dir: Path, day: str) -> list[dict]:
    """The first state of each claim version that reached bronze on `day`, as a billing system sends it."""
    frame = pd.read_parquet(data_dir / "lake" / "bronze" / "claims" / f"dt={day}" / "part-0.parquet")
    frame = frame.sort_values("updated_at", kind="stable").drop_duplicates(["claim_id", "claim_version"])
    return claims_as_sent(frame)


def latest_gold_day(data_dir: Path) -> str:
    days = sorted(p.name[3:] for p in (data_dir / "lake" / "gold" / "claim_features").glob("dt=*"))
    if not days:
        raise SystemExit(f"no gold days under {data_dir}/lake: run `rcm demo` (or make bench ARGS=--keep DIR) first")
    return days[-1]


def ensure_bundle(data_dir: Path, day: str, env: dict[str, str]) -> None:
    if (data_dir / "lake" / "serving" / "bundle" / f"dt={day}" / "part-0.parquet").exists():
        return
    subprocess.run([sys.executable, "-m", "rcm_assets", "backfill", "--start", day, "--end", day,
                    "--select", "serving/bundle"], env=env, check=True, stdout=subprocess.DEVNULL)


def start_service(env: dict[str, str], day: str, port: int, timeout: float = 300.0) -> tuple[subprocess.Popen, float]:
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "rcm_assets", "serve", "--day", day, "--port", str(port),
                             "--reload-seconds", "0"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"rcm serve exited with {proc.returncode}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc, time.monotonic() - started
        except requests.RequestException:
            pass
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGTERM)
    raise SystemExit(f"rcm serve not ready after {timeout:.0f} s")


def load(url: str, claims: list[dict], rate: float, seconds: float, headers: dict) -> pd.DataFrame:
    """Open-loop single-claim requests: planned send times fixed in advance; latency from the plan."""
    n = int(rate * seconds)
    local = threading.local()
    t0 = time.perf_counter() + 0.5
    rows: list[tuple[int, float, float, int]] = []

    def one(i: int) -> None:
        planned = t0 + i / rate
        pause = planned - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        sent = time.perf_counter()
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        try:
            status = session.post(url, json=claims[i % len(claims)], headers=headers, timeout=10).status_code
        except requests.RequestException:
            status = -1
        done = time.perf_counter()
        rows.append((i, done - planned, done - sent, status))

    with ThreadPoolExecutor(max_workers=64) as pool:  # bounded: at most 64 requests in flight
        list(pool.map(one, range(n)))
    return pd.DataFrame(rows, columns=["i", "latency_s", "service_s", "status"]).sort_values("i")


def batch_times(url: str, claims: list[dict], batches: int, headers: dict) -> list[float]:
    times = []
    for b in range(batches):
        body = [{**c, "claim_id": f"BENCH{b}-{k:05d}"} for k, c in
                enumerate((claims * (1000 // len(claims) + 1))[:1000])]
        started = time.perf_counter()
        answer = requests.post(url, json={"claims": body}, headers=headers, timeout=60)
        times.append(time.perf_counter() - started)
        if answer.status_code != 200:
            raise SystemExit(f"batch answered {answer.status_code}: {answer.text[:300]}")
    return times


def plot(frame: pd.DataFrame, path: Path, figures: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ms = frame.loc[frame["status"] == 200, "latency_s"] * 1000
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.hist(ms, bins=np.logspace(np.log10(max(ms.min(), 1)), np.log10(ms.max() + 1), 60), color="#4878a8")
    ax.set_xscale("log")
    for name, value, color in (("P50", figures["p50_ms"], "green"), ("P95", figures["p95_ms"], "orange"),
                               ("P99", figures["p99_ms"], "red")):
        ax.axvline(value, color=color, linestyle="--", label=f"{name} {value:.0f} ms")
    ax.axvline(BUDGET["p95_ms"], color="black", linewidth=1, label="budget P95 50 ms")
    ax.set_xlabel("latency from planned send (ms, log scale)")
    ax.set_ylabel("requests")
    ax.set_title(f"rcm serve: {figures['requests']} single-claim requests at {figures['rate']:.0f}/s, "
                 f"{figures['errors']} errors")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def run(data_dir: Path, day: str | None, rate: float, seconds: float, batches: int, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    day = day or latest_gold_day(data_dir)
    env = {**os.environ, "RCM_DATA_DIR": str(data_dir), "RCM_API_TOKEN": "bench-token",
           "RCM_SERVE_SPOOL_DIR": str(out / "spool")}
    env.setdefault("DAGSTER_HOME", str(data_dir.parent / "home"))
    Path(env["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    ensure_bundle(data_dir, day, env)
    claims = day_claims(data_dir, day)
    load_start = os.getloadavg()[0]
    port = free_port()
    proc, startup = start_service(env, day, port)
    headers = {"authorization": "Bearer bench-token"}
    url = f"http://127.0.0.1:{port}/v1/score"
    try:
        requests.post(url, json=claims[0], headers=headers, timeout=30)  # first request: lazy imports
        frame = load(url, claims, rate, seconds, headers)
        batch = batch_times(url, claims, batches, headers)
        metrics = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    ok = frame[frame["status"] == 200]
    ms = ok["latency_s"].to_numpy() * 1000
    figures = {
        "day": day, "rate": rate, "seconds": seconds, "requests": int(len(frame)),
        "errors": int((frame["status"] != 200).sum()),
        "p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
        "p99_ms": float(np.percentile(ms, 99)), "max_ms": float(ms.max()),
        "service_p95_ms": float(np.percentile(ok["service_s"] * 1000, 95)),
        "batch_s": [round(t, 3) for t in batch], "batch_median_s": float(np.median(batch)),
        "startup_s": round(startup, 2), "cpus": len(os.sched_getaffinity(0)),
        "load_avg_start": load_start, "load_avg_end": os.getloadavg()[0],
        "claims_scored_metric": [line for line in metrics.splitlines()
                                 if line.startswith("rcm_serve_claims_scored_total")],
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    plot(frame, out / "serve_latency.png", figures)
    frame.to_csv(out / "serve_latency.csv", index=False)
    (out / "serve_bench.json").write_text(json.dumps(figures, indent=2))
    return figures


def markdown(f: dict) -> str:
    rows = [("P50 single claim (ms)", f"{f['p50_ms']:.1f}", "-"),
            ("P95 single claim (ms)", f"{f['p95_ms']:.1f}", f"<= {BUDGET['p95_ms']:.0f}"),
            ("P99 single claim (ms)", f"{f['p99_ms']:.1f}", f"<= {BUDGET['p99_ms']:.0f}"),
            ("errors", f"{f['errors']} of {f['requests']}", "0"),
            ("1,000-claim batch (s, median)", f"{f['batch_median_s']:.2f} {f['batch_s']}", "<= 1"),
            ("start-up to ready (s)", f"{f['startup_s']:.1f}", "<= 10")]
    lines = ["| figure | measured | budget |", "|---|---|---|", *(f"| {a} | {b} | {c} |" for a, b, c in rows)]
    lines.append(f"\n{f['cpus']} CPUs, load average {f['load_avg_start']:.1f} at start, {f['load_avg_end']:.1f} "
                 "at end (shared machine)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, required=True, help="RCM_DATA_DIR of a materialized world")
    ap.add_argument("--day", default=None, help="serving day (default: the latest gold day)")
    ap.add_argument("--rate", type=float, default=50.0)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--batches", type=int, default=5)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    args = ap.parse_args(argv)
    figures = run(args.data_dir.resolve(), args.day, args.rate, args.seconds, args.batches, args.out)
    print(markdown(figures))
    print(f"\nfigures: {args.out / 'serve_bench.json'}, histogram: {args.out / 'serve_latency.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
