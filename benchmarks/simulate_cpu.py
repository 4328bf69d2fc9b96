"""CPU seconds of `cescale simulate` for HPO jobs of growing size, side by side in one process.

    .venv/bin/python benchmarks/simulate_cpu.py [--trials 243 729] [--repeat 3]

Prints, per size, the best-of-N CPU seconds of one simulated job (the first run warms statement
caches and imports and is not counted) and the CPU per trial, so a control plane that stops
being linear in the job shows as a growing per-trial figure; then the ratio of the largest size
to the smallest against the ratio of their trials (target: 729 trials ≤ 3.3× the CPU of 243),
and the CPU of `examples/hpo-81-trials.json` as `cescale simulate` runs it (target ≤ 1 s; the
command's imports, ~1 s, are not counted). CPU time, not wall time: the machine may be shared.
It measures the source tree it is in, not whichever one is installed, so two checkouts can be
compared side by side.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.simulation.run import simulate  # noqa: E402
from service.spec import JobSpec  # noqa: E402

EXAMPLE = ROOT / "examples" / "hpo-81-trials.json"
LINEAR_TARGET = 3.3  # 729 trials ≤ 3.3× the CPU of 243 (3× the work)
EXAMPLE_TARGET_S = 1.0


def spec_for(trials: int) -> JobSpec:
    """The example with ``trials`` trials: the same rungs (1 … 27 epochs), so every rung holds
    trials / 81 times the example's tasks and the work grows with the trials alone. (Deepening
    the tree with the trials instead made the 243-trial job's 243-epoch rung time out and fail,
    so its cost was not that of a job that ran.)"""
    raw = copy.deepcopy(json.loads(EXAMPLE.read_text()))
    raw["hpo"]["trials"] = trials
    raw["qos"]["deadline_s"] = 900 * max(1, trials // 81)
    raw["budget"]["max_cost_usd"] = 5.0 * max(1, trials // 81)
    return JobSpec.model_validate(raw)


def best_cpu(spec: JobSpec, repeat: int) -> tuple[float, dict]:
    best, out = math.inf, {}
    for _ in range(repeat):
        started = time.process_time()
        out = simulate(spec)
        best = min(best, time.process_time() - started)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, nargs="+", default=[243, 729])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    simulate(spec_for(81))  # warm-up, not counted
    print(f"source: {ROOT}")
    print(
        f"{'trials':>7} {'status':>10} {'invocations':>12} {'cpu_s':>8} {'cpu_ms/trial':>13}",
        flush=True,
    )
    cpu = {}
    for trials in args.trials:
        cpu[trials], out = best_cpu(spec_for(trials), args.repeat)
        print(
            f"{trials:>7} {out['status']:>10} {out['invocations']:>12} {cpu[trials]:>8.2f} "
            f"{1000 * cpu[trials] / trials:>13.2f}",
            flush=True,
        )
    small, large = min(cpu), max(cpu)
    if large > small:
        ratio, work = cpu[large] / cpu[small], large / small
        limit = LINEAR_TARGET * work / 3
        verdict = "met" if ratio <= limit else "NOT met"
        print(f"{large} / {small} trials: {ratio:.2f}× the CPU for {work:g}× the trials ", end="")
        print(f"(target ≤ {limit:.1f}×: {verdict})")
    example, out = best_cpu(JobSpec.model_validate(json.loads(EXAMPLE.read_text())), args.repeat)
    verdict = "met" if example <= EXAMPLE_TARGET_S else "NOT met"
    print(
        f"{EXAMPLE.relative_to(ROOT)}: {example:.2f} s CPU, {out['status']}, "
        f"{out['invocations']} invocations (target ≤ {EXAMPLE_TARGET_S:g} s: {verdict})"
    )


if __name__ == "__main__":
    main()
