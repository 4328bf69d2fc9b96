"""How much of ce-scaling's training cost over static-qos comes from not knowing the rounds.

A training job's rounds depend on its loss curve, which is the same at every memory size; the
plan does not know them before three losses have been seen (``CeScaling.rounds_left``: until then
every round the epoch budget allows, then the loss-curve fit's upper end plus one). static-qos
and the oracle are chosen knowing how the job ends. This reruns ce-scaling on every training
run of a bench results file — same workload, seed, deadline and noise draws (common draws, as
the bench) — with ``rounds_left`` told the rounds the bench's ce-scaling run took, and prints
both runs' cost over that seed's static-qos side by side.

    .venv/bin/python -m service.cli.main bench --out DIR [--only train-…]
    .venv/bin/python benchmarks/known_rounds.py DIR/results.json [--jobs 2]

Not a policy: a measurement. The told count is the one ce-scaling's own run took.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rerun import workloads  # noqa: E402  (benchmarks/ is on the path as the script's own)


def told(args: tuple[str, float, int, int, list[str]]) -> tuple[str, float | None, float | None]:
    """ce-scaling on one run, ``rounds_left`` told the job's ``rounds``."""
    workload_id, deadline_s, seed, rounds, profiles = args
    from service.policies.ce_scaling import CeScaling
    from service.simulation.run import simulate

    workload = workloads(profiles)[workload_id]

    @dataclass(frozen=True)
    class KnownRounds(CeScaling):
        def rounds_left(self, context) -> int:
            return max(1, rounds - context.stage.position)

        def rounds_before_fit(self, context) -> int:
            return 0  # told the rounds: nothing to recover from

    result = simulate(
        workload.spec({"name": "ce-scaling"}, deadline_s, seed),
        seed=seed,
        workload=workload.model(),
        policy=lambda spec: KnownRounds(),
        common_draws=True,
    )
    return result["status"], result.get("cost_usd"), result.get("jct_s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--jobs", type=int, default=2)
    options = parser.parse_args()
    document = json.loads(options.results.read_text())
    profiles = [p for p in document["suite"].get("profiles", []) or []]
    runs = {(r["workload"], r["deadline"], r["seed"], r["policy"]): r for r in document["runs"]}
    cells = sorted(
        (w, d, s)
        for (w, d, s, policy), r in runs.items()
        if policy == "ce-scaling" and r["kind"] == "training" and r["status"] == "succeeded"
    )
    tasks = [
        (
            w,
            runs[(w, d, s, "ce-scaling")]["deadline_s"],
            s,
            len(runs[(w, d, s, "ce-scaling")]["stages"]),
            profiles,
        )
        for w, d, s in cells
    ]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(options.jobs, mp_context=context) as pool:
        results = list(pool.map(told, tasks))
    print(f"{'workload / deadline':34} seed rounds  ce/qos  told/qos  told met")
    plain, known, met = [], [], 0
    for (w, d, s), task, (status, cost, jct) in zip(cells, tasks, results, strict=True):
        qos = runs[(w, d, s, "static-qos")]["cost_usd"]
        ce = runs[(w, d, s, "ce-scaling")]["cost_usd"]
        ok = status == "succeeded" and jct is not None and jct <= task[1]
        met += ok
        plain.append(ce / qos)
        known.append((cost or float("nan")) / qos)
        print(f"{w + ' / ' + d:34} {s:4} {task[3]:6} {ce / qos:7.3f} {known[-1]:9.3f}  {ok}")
    print(
        f"mean cost / static-qos: ce-scaling {statistics.fmean(plain):.3f}, told the rounds "
        f"{statistics.fmean(known):.3f}; told-rounds runs met {met}/{len(cells)}"
    )


if __name__ == "__main__":
    main()
