"""How fast `rcm status` answers on the demo instance, against the way it answered before (issue 15.7).

Before: `rcm status` imported the code location (pandas, scikit-learn, MLflow, every asset module) and
asked the instance asset by asset. Now it reads a cached asset catalog and asks in batches. Both are
measured here in one run, each as a fresh process (what a user waits for), on the same instance:

    python benchmarks/bench_status.py                      # the instance at DAGSTER_HOME / RCM_DATA_DIR,
                                                           # or a new demo instance if that one has no runs
    python benchmarks/bench_status.py --days 60 --repeat 5

The target is under 4 s for the warm answer on the default demo instance (`make demo`).
"""
# ruff: noqa: T201

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# The previous `rcm status` (commit db62164): the whole code location, then one query per asset and check.
LEGACY = """
from datetime import UTC, datetime
from rcm_assets.definitions import defs
from rcm_assets.platform.instance import get_instance
instance = get_instance()
graph = defs.resolve_asset_graph()
rows = []
for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
    node = graph.get(key)
    materialized = sorted(instance.get_materialized_partitions(key)) if node.partitions_def else []
    latest_event = instance.get_latest_materialization_event(key)
    checks = {c.name: instance.get_latest_asset_check_evaluation_record(c) for c in node.check_keys}
    failed = instance.fetch_failed_materializations(key, limit=1).records
    rows.append((key, materialized[-1:] , latest_event, checks, failed))
print(len(rows))
"""


CPU: list[float] = []  # CPU seconds (user + system) of each timed process, in order


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    """Wall seconds of one fresh process (its CPU seconds go to CPU: on a shared, loaded machine they are
    what the wall time would be on an idle one, the command being single-threaded)."""
    cpu, started = cpu_of_children(), time.perf_counter()
    done = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - started
    CPU.append(cpu_of_children() - cpu)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return seconds, done.stdout + done.stderr


def has_runs(env: dict[str, str]) -> bool:
    home = Path(env.get("DAGSTER_HOME", ".dagster_home"))
    return (home / "history" / "runs.db").is_file() or (home / "storage").is_dir()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=200, help="demo days when a demo instance must be built")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    env = dict(os.environ)
    if not has_runs(env):
        folder = Path(tempfile.mkdtemp(prefix="bench-status-"))
        env.update(RCM_DATA_DIR=str(folder / "data"), DAGSTER_HOME=str(folder / "home"))
        print(f"building a demo instance ({args.days} days) in {folder} ...", flush=True)
        timed([sys.executable, "-m", "rcm_assets", "demo", "--days", str(args.days)], env)
    home = Path(env.get("DAGSTER_HOME", ".dagster_home")).resolve()
    print(f"instance: {home}")

    python = [sys.executable, "-W", "ignore"]
    load = os.getloadavg()[0]
    legacy = [timed([*python, "-c", LEGACY], env)[0] for _ in range(args.repeat)]
    legacy_cpu = CPU[-args.repeat:]
    (home / "rcm_status_catalog.json").unlink(missing_ok=True)
    cold, _ = timed([sys.executable, "-m", "rcm_assets", "status"], env)
    cold_cpu = CPU[-1]
    warm, out = [], ""
    for _ in range(args.repeat):
        seconds, out = timed([sys.executable, "-m", "rcm_assets", "status"], env)
        warm.append(seconds)
    warm_cpu = CPU[-args.repeat:]
    noise = [line for line in out.splitlines() if "Warning" in line]
    before, after = statistics.median(legacy), statistics.median(warm)
    before_cpu, after_cpu = statistics.median(legacy_cpu), statistics.median(warm_cpu)
    print(f"load average at start: {load:.1f} on {os.cpu_count()} cores (wall times grow with it; CPU times do not)")
    print(f"before (code location + per-asset queries): median wall {before:.2f} s, CPU {before_cpu:.2f} s")
    print(f"after, first answer (catalog built):        wall {cold:.2f} s, CPU {cold_cpu:.2f} s")
    print(f"after, warm (cached catalog, batched):       median wall {after:.2f} s, CPU {after_cpu:.2f} s")
    print(f"speed-up (before / warm after): wall {before / after:.1f}x, CPU {before_cpu / after_cpu:.1f}x; "
          f"under 4 s: wall {'yes' if after < 4 else 'no'}, CPU {'yes' if after_cpu < 4 else 'no'}; "
          f"warning lines in the output: {len(noise)}")


if __name__ == "__main__":
    main()
