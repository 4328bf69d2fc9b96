"""ce-scaling of this tree against an earlier bench run, on the same deadlines and noise draws.

A bench run (``cescale bench --out DIR``) records every run's workload, seed and deadline. This
reruns ce-scaling — the code of the tree this script is in — on the ce-scaling runs of that file
and prints, per run and per cell, the recorded and the new cost over that seed's static-qos, and
whether each met its deadline. Runs are deterministic, so a change to the policy is measured side
by side with the code before it; the bench's common draws are kept unless ``--independent``
(noise drawn per invocation, as the repeat bench does: another sample of the same cells, where
the recorded column is not the same draws and only the new one is meaningful).

    .venv/bin/cescale bench --seeds 5 --out DIR [--profile P.json …]
    .venv/bin/python benchmarks/rerun.py DIR/results.json [--only hpo-…] [--kind hpo] [--jobs 2]

Not a policy: a measurement.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def workloads(profiles: list[str]):
    """Every workload a bench run can name: built-in, paper-shaped, default and given profiles."""
    import service.bench.workloads as W

    every = {w.id: w for w in W.builtin_workloads() + W.paper_workloads()}
    paths = [W.PROFILES_DIR / f"{p}.json" for p in W.DEFAULT_PROFILES] + [Path(p) for p in profiles]
    for path in paths:
        for workload in W.profile_workloads(path):
            every[workload.id] = workload
    return every


def rerun(args: tuple[str, float, int, bool, list[str]]) -> dict:
    """ce-scaling (this tree) on one recorded run."""
    workload_id, deadline_s, seed, independent, profiles = args
    from service.simulation.run import simulate

    workload = workloads(profiles)[workload_id]
    return simulate(
        workload.spec({"name": "ce-scaling"}, deadline_s, seed),
        seed=seed,
        workload=workload.model(),
        common_draws=not independent,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--only", action="append", default=[], help="workload id (repeatable)")
    parser.add_argument("--kind", choices=("hpo", "training"))
    parser.add_argument("--deadline", choices=("tight", "loose"))
    parser.add_argument("--independent", action="store_true", help="noise drawn per invocation")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, help="write the new runs here (JSON)")
    options = parser.parse_args()
    document = json.loads(options.results.read_text())
    profiles = list(document["suite"].get("profiles", []) or [])
    runs = {(r["workload"], r["deadline"], r["seed"], r["policy"]): r for r in document["runs"]}
    keys = sorted(
        (w, d, s)
        for (w, d, s, policy), r in runs.items()
        if policy == "ce-scaling"
        and r.get("status") != "error"
        and (not options.only or w in options.only)
        and (options.kind is None or r["kind"] == options.kind)
        and (options.deadline is None or d == options.deadline)
    )
    if not keys:
        parser.error("no ce-scaling run of the results file matches")
    tasks = [
        (w, runs[(w, d, s, "ce-scaling")]["deadline_s"], s, options.independent, profiles)
        for w, d, s in keys
    ]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(options.jobs, mp_context=context) as pool:
        results = []
        for done, result in enumerate(pool.map(rerun, tasks), 1):
            results.append(result)
            print(f"\r{done}/{len(tasks)} runs", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)

    def met(result: dict, deadline_s: float) -> bool:
        jct = result.get("jct_s")
        return result.get("status") == "succeeded" and jct is not None and jct <= deadline_s

    print(f"{'workload / deadline':34} seed  old/qos  new/qos  old met  new met  new jct/deadline")
    cells: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    old_met = new_met = 0
    for (w, d, s), task, result in zip(keys, tasks, results, strict=True):
        old = runs[(w, d, s, "ce-scaling")]
        qos = runs[(w, d, s, "static-qos")]["cost_usd"]
        old_ratio = old["cost_usd"] / qos
        new_ratio = (result.get("cost_usd") or float("nan")) / qos
        ok_old, ok_new = met(old, task[1]), met(result, task[1])
        old_met += ok_old
        new_met += ok_new
        cells[(w, d)].append((old_ratio, new_ratio))
        jct = result.get("jct_s") or float("nan")
        if result.get("status") == "error":
            print(f"{w} / {d} seed {s}: {result.get('status_reason')}", file=sys.stderr)
        print(
            f"{w + ' / ' + d:34} {s:4} {old_ratio:8.3f} {new_ratio:8.3f} {ok_old!s:>8} "
            f"{ok_new!s:>8}  {jct:.1f}/{task[1]:.1f}"
        )
    print("\ncell medians (cost / static-qos)")
    old_medians, new_medians = [], []
    for (w, d), pairs in sorted(cells.items()):
        old_medians.append(statistics.median(p[0] for p in pairs))
        new_medians.append(statistics.median(p[1] for p in pairs))
        print(f"{w + ' / ' + d:34} {old_medians[-1]:8.3f} {new_medians[-1]:8.3f}")
    print(
        f"\nmean of cell medians: recorded {statistics.fmean(old_medians):.3f}, "
        f"new {statistics.fmean(new_medians):.3f}; deadlines met: recorded "
        f"{old_met}/{len(keys)}, new {new_met}/{len(keys)}"
        + (" (independent draws: the recorded runs drew other noise)" * options.independent)
    )
    if options.out:
        rows = [
            {"workload": w, "deadline": d, "seed": s, "deadline_s": t[1], **r}
            for (w, d, s), t, r in zip(keys, tasks, results, strict=True)
        ]
        options.out.write_text(json.dumps(rows, indent=1, default=str))


if __name__ == "__main__":
    main()
