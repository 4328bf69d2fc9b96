"""ce-scaling of this tree on fresh seeds of a bench run's cells: deadlines met and mean cost.

`benchmarks/rerun.py` replays the seeds a bench run recorded; this draws new ones (seeds 100 and
up, noise per invocation), each at one of the cell's recorded deadlines in turn, so a change is
judged on runs nobody tuned it on. Run it from two trees (the code before in a worktree) to
compare:

    .venv/bin/python benchmarks/fresh_draws.py DIR/results.json hpo-s3-etl train-s3-etl \
        [--deadline tight] [--seeds 20] [--jobs 2]
    PYTHONPATH=WORKTREE .venv/bin/python WORKTREE/benchmarks/fresh_draws.py …

Not a policy: a measurement.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FIRST_SEED = 100


def run(task: tuple[str, int, float]) -> dict:
    """One ce-scaling job of ``workload`` at ``seed`` against ``deadline_s``."""
    workload_id, seed, deadline_s = task
    from rerun import workloads  # benchmarks/rerun.py: every workload a bench run can name

    from service.simulation.run import simulate

    workload = workloads([])[workload_id]
    spec = workload.spec({"name": "ce-scaling"}, deadline_s, seed)
    return simulate(spec, seed=seed, workload=workload.model())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("workloads", nargs="+")
    parser.add_argument("--deadline", choices=("tight", "loose"), default="tight")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=2)
    options = parser.parse_args()
    runs = json.loads(options.results.read_text())["runs"]
    tasks = []
    for workload in options.workloads:
        deadlines = sorted(
            r["deadline_s"]
            for r in runs
            if r["workload"] == workload
            and r["policy"] == "ce-scaling"
            and r["deadline"] == options.deadline
        )
        if not deadlines:
            parser.error(f"{workload}: no {options.deadline} ce-scaling run in the results file")
        for i in range(options.seeds):
            tasks.append((workload, FIRST_SEED + i, deadlines[i % len(deadlines)]))
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(options.jobs, mp_context=context) as pool:
        results = []
        for done, result in enumerate(pool.map(run, tasks), 1):
            results.append(result)
            print(f"\r{done}/{len(tasks)} runs", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    for workload in options.workloads:
        rows = [(t, r) for t, r in zip(tasks, results, strict=True) if t[0] == workload]
        met = [r.get("status") == "succeeded" and (r.get("jct_s") or 1e18) <= t[2] for t, r in rows]
        cost = statistics.fmean(r.get("cost_usd") or 0.0 for _, r in rows)
        misses = ", ".join(
            f"seed {t[1]} {r.get('jct_s')}/{t[2]:.1f} s"
            for (t, r), ok in zip(rows, met, strict=True)
            if not ok
        )
        print(
            f"{workload} / {options.deadline}: met {sum(met)}/{len(rows)}, mean cost "
            f"${cost:.6f}" + (f"; missed: {misses}" if misses else "")
        )


if __name__ == "__main__":
    main()
