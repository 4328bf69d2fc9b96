"""Architecture ``auto`` against x86_64 and arm64, side by side, in simulation.

For one HPO and one training workload of the benchmark suite (``cescale bench``'s built-ins, on
the analytic model), at several arm64 speeds (the workload model's ``arm64_speed``: 1.0 as fast
as x86_64, 0.6 at 0.6× its speed), ce-scaling runs the same job — same seed, same trials, same
noise per task (common draws) — with ``"architecture"`` x86_64, arm64 and auto, against the
suite's tight and loose deadlines (``service.bench.deadlines``: 1.2 × the fastest static
x86_64 JCT, 3 × static-1769's). It prints cost, JCT, whether the deadline held and the share of
invocations that ran on arm64, as a Markdown table, and the CPU seconds the runs took.

    PYTHONPATH=. python benchmarks/architecture_auto.py [--seeds 2]
"""

from __future__ import annotations

import argparse
import time
from statistics import fmean

from service.bench.deadlines import derive
from service.bench.workloads import builtin_workloads
from service.simulation.run import simulate
from service.simulation.work import AnalyticWorkload

WORKLOADS = ("hpo-mlp-eta3", "train-mlp-w4")
SPEEDS = (1.0, 0.85, 0.6)
ARCHITECTURES = ("x86_64", "arm64", "auto")
STATIC_SIZES = (1769, 3008)


def with_architecture(spec, architecture: str):
    workload = spec.workload.model_copy(update={"architecture": architecture})
    return spec.model_copy(update={"workload": workload})


def run(workload, policy: dict, deadline_s: float, seed: int, speed: float, architecture: str):
    spec = with_architecture(workload.spec(policy, deadline_s, seed=seed), architecture)
    result = simulate(
        spec, seed=seed, workload=AnalyticWorkload(arm64_speed=speed), common_draws=True
    )
    ran = result["architectures"]
    return {
        "cost": result["cost_usd"],
        "jct": result["jct_s"],
        "met": result["deadline_met"] and result["status"] == "succeeded",
        "arm_share": ran.get("arm64", 0) / max(1, sum(ran.values())),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2)
    args = parser.parse_args()
    workloads = {w.id: w for w in builtin_workloads()}
    started = time.process_time()
    rows = []
    for name in WORKLOADS:
        workload = workloads[name]
        for seed in range(args.seeds):
            static = {
                f"static-{m}": run(
                    workload, {"name": "static", "memory_mb": m}, 1e6, seed, 1.0, "x86_64"
                )["jct"]
                for m in STATIC_SIZES
            }
            deadlines = derive(static)
            for deadline in ("tight", "loose"):
                for speed in SPEEDS:
                    for architecture in ARCHITECTURES:
                        measured = run(
                            workload,
                            {"name": "ce-scaling"},
                            deadlines.of(deadline),
                            seed,
                            speed,
                            architecture,
                        )
                        rows.append((name, deadline, speed, architecture, seed, measured))
    cpu_s = time.process_time() - started

    print(
        "| workload | deadline | arm64 speed | architecture | cost (USD, mean) | vs x86_64 "
        "| JCT (s, mean) | deadline met | on arm64 |"
    )
    print("|---|---|---:|---|---:|---:|---:|---:|---:|")
    for name in WORKLOADS:
        for deadline in ("tight", "loose"):
            for speed in SPEEDS:
                group = {
                    a: [
                        m
                        for (n, d, s, arch, _, m) in rows
                        if (n, d, s, arch) == (name, deadline, speed, a)
                    ]
                    for a in ARCHITECTURES
                }
                base = fmean(m["cost"] for m in group["x86_64"])
                for architecture in ARCHITECTURES:
                    ms = group[architecture]
                    cost = fmean(m["cost"] for m in ms)
                    print(
                        f"| {name} | {deadline} | {speed:.2f} | {architecture} | {cost:.6f} "
                        f"| {100 * (cost / base - 1):+.1f} % | {fmean(m['jct'] for m in ms):.1f} "
                        f"| {sum(m['met'] for m in ms)}/{len(ms)} "
                        f"| {100 * fmean(m['arm_share'] for m in ms):.0f} % |"
                    )
    print(f"\n{len(rows)} ce-scaling runs, {args.seeds} seed(s), {cpu_s:.0f} CPU s in all")


if __name__ == "__main__":
    main()
