"""``cescale bench --ablate learning``: what the loop's learn step is worth.

The same ce-scaling jobs run twice at every seed — with the learn step (stored memory curves,
ARIMA/EWMA forecasts of each round's duration setting the planning margin, the stored
loss-curve fit) and without it (the policy fits curves and the loss curve from the raw runs at
each decision and plans durations with a fixed margin of at most 30 % above the curve) — on
stationary workloads and on the same workloads with drift:

- ``jump`` — from a third of the job on (a third of static-1769's stationary JCT at seed 0),
  every run takes 1.6× as long: a slower data source;
- ``trend`` — every run takes 60 % longer per static-1769 JCT into the job, linearly: a
  degrading neighbour.

Deadlines are derived as in the main suite (``deadlines.py``) but from the static sizes' runs
*under the same drift*, so a tight deadline is one the fastest static size meets with 20 %
to spare even though the job slows down. The training workloads are the ones measured: the
forecasts set the margin of training rounds; an HPO rung is not a time series, so HPO plans
are the same with and without the learn step (its stored curves equal a refit on the same
runs), which ``tests/control/test_learning.py`` checks.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import fmean
from typing import Any

from service.bench.deadlines import DEADLINES, NoReference, derive
from service.bench.policies import bench_policy
from service.bench.runner import RunTask, SimulationPool
from service.bench.workloads import (
    STATIC_SIZES,
    BenchWorkload,
    builtin_workloads,
    default_profiles,
    profile_workloads,
)
from service.simulation.drift import Drift

DRIFTS = ("none", "jump", "trend")
JUMP_AT, JUMP_FACTOR = 1 / 3, 1.6
TREND_PER_JCT = 0.6
QUICK_WORKLOADS = ("train-mlp-w4", "train-mlp-training")


@dataclass(frozen=True)
class AblationRow:
    workload: str
    drift: str
    seed: int
    deadline: str
    deadline_s: float
    learn: bool
    status: str
    jct_s: float | None
    cost_usd: float | None
    deadline_met: bool


def ablation_workloads(quick: bool, only: Sequence[str] = ()) -> list[BenchWorkload]:
    every = [w for w in builtin_workloads() if w.kind == "training"]
    every += [w for p in default_profiles() for w in profile_workloads(p) if w.kind == "training"]
    if only:
        unknown = set(only) - {w.id for w in every}
        if unknown:
            raise ValueError(
                f"unknown training workload(s) {', '.join(sorted(unknown))}; the ablation runs "
                f"{', '.join(w.id for w in every)}"
            )
        return [w for w in every if w.id in only]
    return [w for w in every if w.id in QUICK_WORKLOADS] if quick else every


def drifts_for(stationary_jct_s: float) -> dict[str, Drift | None]:
    return {
        "none": None,
        "jump": Drift("jump", at_s=round(JUMP_AT * stationary_jct_s, 1), factor=JUMP_FACTOR),
        "trend": Drift("trend", pct_per_min=round(TREND_PER_JCT * 100 * 60 / stationary_jct_s, 2)),
    }


def run_ablation(
    workloads: Sequence[BenchWorkload],
    seeds: int,
    jobs: int,
    on_phase: Callable[[str, int], None] = lambda name, total: None,
    on_done: Callable[[], None] = lambda: None,
) -> tuple[list[AblationRow], dict[str, dict[str, str]]]:
    """Rows of every ce-scaling run, and each workload's drifts (labels) by name."""
    static = {size: bench_policy(f"static-{size}", workloads[0]) for size in STATIC_SIZES}
    ce = bench_policy("ce-scaling", workloads[0])
    unread = 30 * 24 * 3600.0
    with SimulationPool(jobs) as pool:
        on_phase("stationary reference (static-1769)", len(workloads))
        references = pool.run(
            [RunTask(w, static[1769], 0, unread) for w in workloads], on_done=on_done
        )
        drifts = {
            w.id: drifts_for(float(r["jct_s"]))
            for w, r in zip(workloads, references, strict=True)
            if r.get("status") == "succeeded"
        }
        keys = [
            (w, d, seed)
            for w in workloads
            if w.id in drifts
            for d in DRIFTS
            for seed in range(seeds)
        ]
        statics = [
            RunTask(w, static[size], seed, unread, drift=drifts[w.id][d])
            for w, d, seed in keys
            for size in STATIC_SIZES
        ]
        on_phase("static sizes under each drift (deadlines)", len(statics))
        static_results = pool.run(statics, on_done=on_done)
        deadlines = {}
        for i, (w, d, seed) in enumerate(keys):
            runs = static_results[i * len(STATIC_SIZES) : (i + 1) * len(STATIC_SIZES)]
            jct = {
                f"static-{size}": float(r["jct_s"])
                for size, r in zip(STATIC_SIZES, runs, strict=True)
                if r.get("status") == "succeeded"
            }
            try:
                deadlines[(w.id, d, seed)] = derive(jct)
            except NoReference:
                continue
        cells = [
            (w, d, seed, name, learn)
            for w, d, seed in keys
            if (w.id, d, seed) in deadlines
            for name in DEADLINES
            for learn in (True, False)
        ]
        tasks = [
            RunTask(
                w,
                ce,
                seed,
                deadlines[(w.id, d, seed)].of(name),
                learn=learn,
                drift=drifts[w.id][d],
            )
            for w, d, seed, name, learn in cells
        ]
        on_phase("ce-scaling with and without the learn step", len(tasks))
        results = pool.run(tasks, on_done=on_done)
    rows = [
        AblationRow(
            workload=w.id,
            drift=d,
            seed=seed,
            deadline=name,
            deadline_s=task.deadline_s,
            learn=learn,
            status=r.get("status", "error"),
            jct_s=r.get("jct_s"),
            cost_usd=r.get("cost_usd"),
            deadline_met=bool(r.get("deadline_met")) and r.get("status") == "succeeded",
        )
        for (w, d, seed, name, learn), task, r in zip(cells, tasks, results, strict=True)
    ]
    labels = {
        wid: {d: (drift.label if drift is not None else "none") for d, drift in by.items()}
        for wid, by in drifts.items()
    }
    return rows, labels


def summarise(rows: Sequence[AblationRow]) -> list[dict[str, Any]]:
    """Per drift × deadline: deadlines met with and without learning, and the paired cost
    ratio (with / without, mean over workloads and seeds)."""
    paired: dict[tuple[str, str], dict[tuple[str, int], dict[bool, AblationRow]]] = defaultdict(
        lambda: defaultdict(dict)
    )
    for row in rows:
        paired[(row.drift, row.deadline)][(row.workload, row.seed)][row.learn] = row
    table = []
    for drift in DRIFTS:
        for deadline in DEADLINES:
            pairs = [p for p in paired[(drift, deadline)].values() if len(p) == 2]
            if not pairs:
                continue
            ratios = [
                p[True].cost_usd / p[False].cost_usd
                for p in pairs
                if p[True].cost_usd and p[False].cost_usd
            ]
            table.append(
                {
                    "drift": drift,
                    "deadline": deadline,
                    "runs": len(pairs),
                    "met_with": sum(p[True].deadline_met for p in pairs) / len(pairs),
                    "met_without": sum(p[False].deadline_met for p in pairs) / len(pairs),
                    "cost_ratio": fmean(ratios) if ratios else None,
                    "cost_ratio_max": max(ratios) if ratios else None,
                    "cost_ratio_min": min(ratios) if ratios else None,
                }
            )
    return table


def per_workload(rows: Sequence[AblationRow]) -> list[dict[str, Any]]:
    """The same, per workload: where learning wins and where it loses."""
    by: dict[tuple[str, str, str], list[AblationRow]] = defaultdict(list)
    for row in rows:
        by[(row.workload, row.drift, row.deadline)].append(row)
    out = []
    for (workload, drift, deadline), group in sorted(by.items()):
        with_, without = (
            [r for r in group if r.learn],
            [r for r in group if not r.learn],
        )
        cost_with = fmean(r.cost_usd for r in with_ if r.cost_usd) if with_ else None
        cost_without = fmean(r.cost_usd for r in without if r.cost_usd) if without else None
        out.append(
            {
                "workload": workload,
                "drift": drift,
                "deadline": deadline,
                "met_with": f"{sum(r.deadline_met for r in with_)}/{len(with_)}",
                "met_without": f"{sum(r.deadline_met for r in without)}/{len(without)}",
                "cost_ratio": cost_with / cost_without if cost_with and cost_without else None,
            }
        )
    return out


def markdown(rows: Sequence[AblationRow], labels: dict[str, dict[str, str]], seeds: int) -> str:
    lines = [
        "# Learning ablation: ce-scaling with and without the learn step",
        "",
        f"`cescale bench --ablate learning`, {seeds} seed(s); cost ratio = with / without, "
        "paired by seed (< 1: learning is cheaper).",
        "",
        "| drift | deadline | runs | met with learning | met without | cost ratio (mean, "
        "min–max) |",
        "|---|---|---:|---:|---:|---|",
    ]
    for cell in summarise(rows):
        ratio = (
            f"{cell['cost_ratio']:.3f} ({cell['cost_ratio_min']:.3f}–{cell['cost_ratio_max']:.3f})"
            if cell["cost_ratio"] is not None
            else "-"
        )
        lines.append(
            f"| {cell['drift']} | {cell['deadline']} | {cell['runs']} | "
            f"{100 * cell['met_with']:.0f} % | {100 * cell['met_without']:.0f} % | {ratio} |"
        )
    lines += [
        "",
        "## Per workload",
        "",
        "| workload | drift | deadline | met with | met without | cost ratio |",
        "|---|---|---|---:|---:|---:|",
    ]
    for cell in per_workload(rows):
        ratio = f"{cell['cost_ratio']:.3f}" if cell["cost_ratio"] is not None else "-"
        drift = labels.get(cell["workload"], {}).get(cell["drift"], cell["drift"])
        lines.append(
            f"| {cell['workload']} | {drift} | {cell['deadline']} | {cell['met_with']} | "
            f"{cell['met_without']} | {ratio} |"
        )
    return "\n".join(lines) + "\n"
