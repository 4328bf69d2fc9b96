"""Is the oracle a floor? ce-scaling and the oracle on chosen cells of the bench, same draws.

A cell is ``WORKLOAD:DEADLINE:SEED`` (e.g. ``hpo-image-recognition:tight:1``). As in
``cescale bench``, the seed's deadlines come from its static runs (service.bench.deadlines),
and every run keys its noise by the task (common random numbers), so ce-scaling and the oracle
run the same job with the same draws. ``--previous FILE`` adds a second oracle loaded from
another version of ``policies/oracle.py`` (old vs new side by side, one run):

    git show main:service/policies/oracle.py > /tmp/oracle_main.py
    python benchmarks/oracle_floor.py --previous /tmp/oracle_main.py \\
        hpo-image-recognition:tight:0 hpo-image-recognition:tight:1

Per cell: each policy's cost, JCT (! = deadline missed), its cost over ce-scaling's, and the
CPU seconds its simulation took.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from types import ModuleType
from typing import Any

from service.bench.deadlines import UNREAD_S, derive
from service.bench.policies import STATIC_LABELS, bench_policy
from service.bench.suite import SuiteConfig, select_workloads
from service.bench.workloads import BenchWorkload
from service.policies import oracle as current
from service.simulation.platform import rounds_to_target
from service.simulation.run import simulate, truth_for


def deadlines(workload: BenchWorkload, seed: int) -> dict[str, float]:
    jct = {}
    for label in STATIC_LABELS:
        policy = bench_policy(label, workload)
        result = simulate(
            workload.spec(policy.document, UNREAD_S, seed),
            seed=seed,
            workload=workload.model(),
            common_draws=True,
        )
        if result["status"] == "succeeded":
            jct[label] = float(result["jct_s"])
    marks = derive(jct)
    return {"tight": marks.tight_s, "loose": marks.loose_s}


def run(
    workload: BenchWorkload, seed: int, deadline_s: float, oracle: ModuleType | None
) -> dict[str, Any]:
    spec = workload.spec({"name": "ce-scaling"}, deadline_s, seed)
    model = workload.model()
    policy = None
    if oracle is not None:

        def policy(_spec):
            return oracle.Oracle(
                truth=truth_for(spec, model),
                sigma=model.sigma,
                rounds=rounds_to_target(spec, f"seed-{seed}"),
            )

    started = time.process_time()
    result = simulate(spec, seed=seed, workload=model, common_draws=True, policy=policy)
    result["cpu_s"] = time.process_time() - started
    return result


def load(path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location("previous_oracle", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cells", nargs="+", help="WORKLOAD:DEADLINE:SEED")
    parser.add_argument("--previous", help="another oracle.py to run beside the current one")
    args = parser.parse_args()
    workloads = {w.id: w for w in select_workloads(SuiteConfig(seeds=2))}
    policies: dict[str, ModuleType | None] = {"ce-scaling": None}
    if args.previous:
        policies["previous oracle"] = load(args.previous)
    policies["oracle"] = current
    print("cell | deadline s | " + " | ".join(f"{p} $, JCT s, ×ce, CPU s" for p in policies))
    marks: dict[tuple[str, int], dict[str, float]] = {}
    for cell in args.cells:
        name, which, seed_text = cell.split(":")
        workload, seed = workloads[name], int(seed_text)
        if (name, seed) not in marks:
            marks[(name, seed)] = deadlines(workload, seed)
        deadline_s = marks[(name, seed)][which]
        results = {p: run(workload, seed, deadline_s, m) for p, m in policies.items()}
        ce = results["ce-scaling"]["cost_usd"]
        parts = [
            f"{r['cost_usd']:.6f}, {r['jct_s']:.1f}{'' if r['deadline_met'] else '!'}, "
            f"{r['cost_usd'] / ce:.2f}, {r['cpu_s']:.1f}"
            for r in results.values()
        ]
        print(f"{cell} | {deadline_s:.1f} | " + " | ".join(parts), flush=True)


if __name__ == "__main__":
    main()
