"""CPU seconds of `cescale simulate` for HPO jobs of growing size, side by side in one process.

    .venv/bin/python benchmarks/simulate_cpu.py [--trials 81 243 729] [--repeat 3]

Prints, per size, the best-of-N CPU seconds of one simulated job (the first run warms statement
caches and imports and is not counted) and the CPU per trial, so a control plane that stops
being linear in the job shows as a growing per-trial figure. CPU time, not wall time: the
machine may be shared.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import time
from pathlib import Path

from service.simulation.run import simulate
from service.spec import JobSpec

BASE = Path(__file__).resolve().parents[1] / "examples" / "hpo-81-trials.json"


def spec_for(trials: int) -> JobSpec:
    raw = copy.deepcopy(json.loads(BASE.read_text()))
    eta = raw["hpo"]["eta"]
    raw["hpo"]["trials"] = trials
    rungs = round(math.log(trials, eta)) + 1
    raw["hpo"]["max_epochs"] = eta ** (rungs - 1)
    raw["qos"]["deadline_s"] = 900 * max(1, trials // 81)
    raw["budget"]["max_cost_usd"] = 5.0 * max(1, trials // 81)
    return JobSpec.model_validate(raw)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, nargs="+", default=[81, 243])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    simulate(spec_for(args.trials[0]))  # warm-up, not counted
    print(f"{'trials':>7} {'status':>10} {'invocations':>12} {'cpu_s':>8} {'cpu_ms/trial':>13}")
    for trials in args.trials:
        spec, best, out = spec_for(trials), math.inf, {}
        for _ in range(args.repeat):
            started = time.process_time()
            out = simulate(spec)
            best = min(best, time.process_time() - started)
        print(
            f"{trials:>7} {out['status']:>10} {out['invocations']:>12} {best:>8.2f} "
            f"{1000 * best / trials:>13.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
