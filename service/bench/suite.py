"""The outcome benchmark end to end: pick the workloads, measure their deadlines, run every
policy × deadline × seed through the real control loop, and turn the runs into rows.

Every figure the summary shows comes from the rows of one call of ``run_suite``.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from statistics import median
from typing import Any

from service.bench.deadlines import DEADLINES, UNREAD_S, Deadlines, NoReference, derive
from service.bench.policies import (
    LABELS,
    STATIC_LABELS,
    STATIC_QOS,
    BenchPolicy,
    bench_policy,
    static_at,
)
from service.bench.runner import RunTask, SimulationPool
from service.bench.static_qos import QosSearch, best_static
from service.bench.workloads import (
    BenchWorkload,
    add_profiles,
    builtin_workloads,
    default_profiles,
    describe,
    paper_workloads,
    profile_workloads,
)

FULL_SEEDS = 20
QUICK_SEEDS = 2
# --quick: one built-in HPO and training job and one profile-driven pair, two seeds each.
QUICK_WORKLOADS = ("hpo-mlp-eta3", "train-mlp-w4", "hpo-mlp-training", "train-mlp-training")


@dataclass(frozen=True)
class SuiteConfig:
    quick: bool = False
    seeds: int | None = None  # None: FULL_SEEDS, or QUICK_SEEDS with quick
    profiles: tuple[Path, ...] = ()  # measured profiles given with --profile
    jobs: int = 1
    only: tuple[str, ...] = ()  # restrict to these workload ids (tests, reruns of one family)

    @property
    def seed_count(self) -> int:
        if self.seeds is not None:
            return self.seeds
        return QUICK_SEEDS if self.quick else FULL_SEEDS


@dataclass
class SuiteResult:
    config: SuiteConfig
    workloads: list[BenchWorkload]
    deadlines: dict[tuple[str, int], Deadlines | None]  # (workload id, seed) -> its deadlines
    rows: list[dict[str, Any]]
    wall_s: float
    started_at: str
    simulations: int
    errors: list[dict[str, Any]] = field(default_factory=list)


def select_workloads(config: SuiteConfig) -> list[BenchWorkload]:
    """The built-in families, the paper-shaped ones and the default profiles' (``--quick``: a
    subset), then one HPO and one training job per ``--profile``."""
    every = builtin_workloads() + paper_workloads()
    every += [w for p in default_profiles() for w in profile_workloads(p)]
    chosen = [w for w in every if w.id in QUICK_WORKLOADS] if config.quick else every
    chosen = add_profiles(chosen, every, config.profiles)
    if config.only:
        unknown = sorted(set(config.only) - {w.id for w in chosen})
        if unknown:
            raise ValueError(
                f"unknown workload(s) {', '.join(unknown)}; workloads: "
                + ", ".join(w.id for w in chosen)
            )
        chosen = [w for w in chosen if w.id in config.only]
    ids = [w.id for w in chosen]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"two profiles give the same workload names {duplicates}: rename one file")
    if not chosen:
        raise ValueError("no workload selected")
    return chosen


@dataclass(frozen=True)
class _Cell:
    workload: BenchWorkload
    policy: BenchPolicy
    seed: int
    deadline: str | None  # None: a deadline-blind run, judged against every deadline


def run_suite(
    config: SuiteConfig,
    *,
    on_phase: Callable[[str, int], None] = lambda name, total: None,
    on_done: Callable[[], None] = lambda: None,
) -> SuiteResult:
    """Run the benchmark. ``on_phase(name, runs)`` announces each phase, ``on_done`` ticks once
    per finished simulation (the CLI's progress bar).

    Phase 1 runs the deadline-blind policies (static sizes, power-tuning) at every seed; their
    static runs give each seed's job its deadlines (``deadlines``). Phase 2 searches, per seed
    and deadline, the cheapest static size that meets it (``static-qos``, static_qos.py).
    Phase 3 runs ce-scaling, the published peers and the oracle against both deadlines.
    """
    started = time.perf_counter()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    workloads = select_workloads(config)
    seeds = range(config.seed_count)
    pairs = [
        (w, bench_policy(label, w)) for w in workloads for label in LABELS if label != STATIC_QOS
    ]
    blind = [_Cell(w, p, seed, None) for w, p in pairs if not p.reads_deadline for seed in seeds]
    rows: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    with SimulationPool(config.jobs) as pool:
        tasks, task_of = _tasks(blind, lambda cell: UNREAD_S)
        on_phase("static and power-tuning", len(tasks))
        done = pool.run(tasks, on_done)
        blind_results = [done[i] for i in task_of]
        simulations = len(tasks)
        deadlines = _deadlines(workloads, seeds, blind, blind_results)

        qos_cells, qos_results, runs = _static_qos(
            workloads, seeds, deadlines, blind, blind_results, pool, on_phase, on_done
        )
        simulations += runs

        aware = [
            _Cell(w, p, seed, name)
            for w, p in pairs
            if p.reads_deadline
            for seed in seeds
            for name in DEADLINES
            if deadlines[(w.id, seed)] is not None
        ]

        def deadline_of(cell: _Cell) -> float:
            marks = deadlines[(cell.workload.id, cell.seed)]
            assert marks is not None and cell.deadline is not None
            return marks.of(cell.deadline)

        tasks, task_of = _tasks(aware, deadline_of)
        on_phase("ce-scaling, peers and oracle", len(tasks))
        done = pool.run(tasks, on_done)
        aware_results = [done[i] for i in task_of]
        simulations += len(tasks)

    ran = [
        *zip(blind, blind_results, strict=True),
        *zip(qos_cells, qos_results, strict=True),
        *zip(aware, aware_results, strict=True),
    ]
    for cell, result in ran:
        marks = deadlines[(cell.workload.id, cell.seed)]
        for name in DEADLINES if cell.deadline is None else (cell.deadline,):
            rows.append(make_row(cell, name, marks.of(name) if marks else None, result))
        if result.get("status") == "error":
            errors.append(_error(cell, result))
    for (workload_id, seed), marks in deadlines.items():
        if marks is None:
            errors.append(
                {
                    "workload": workload_id,
                    "policy": "static-qos, peers, ce-scaling, oracle",
                    "seed": seed,
                    "deadline": None,
                    "error": "not run: no static size finished this seed's job, so it has no "
                    "deadline",
                    "traceback": None,
                }
            )
    return SuiteResult(
        config=config,
        workloads=workloads,
        deadlines=deadlines,
        rows=rows,
        wall_s=round(time.perf_counter() - started, 1),
        started_at=started_at,
        simulations=simulations,
        errors=errors,
    )


def _static_qos(
    workloads: Sequence[BenchWorkload],
    seeds: range,
    deadlines: dict[tuple[str, int], Deadlines | None],
    blind: Sequence[_Cell],
    blind_results: Sequence[dict[str, Any]],
    pool: SimulationPool,
    on_phase: Callable[[str, int], None],
    on_done: Callable[[], None],
) -> tuple[list[_Cell], list[dict[str, Any]], int]:
    """static-qos: per workload, seed and deadline, the cheapest static size that met it,
    found by bisection on the 64 MB grid (static_qos.py) over static runs of that seed's job;
    the phase-1 static runs count as evaluated sizes. Returns its cells, their runs and how
    many simulations the search added."""
    by_key = {w.id: w for w in workloads}
    evaluated: dict[tuple[str, int], dict[int, dict[str, Any]]] = {
        (w.id, seed): {} for w in workloads for seed in seeds
    }
    for cell, result in zip(blind, blind_results, strict=True):
        if cell.policy.memory_mb is not None:
            evaluated[(cell.workload.id, cell.seed)][cell.policy.memory_mb] = result
    searches = {
        (w.id, seed, name): QosSearch.of(w.largest_peak_mb(), marks.of(name))
        for w in workloads
        for seed in seeds
        if (marks := deadlines[(w.id, seed)]) is not None
        for name in DEADLINES
    }
    simulations, round_ = 0, 0
    while True:
        wanted = sorted(
            {
                (workload_id, seed, size)
                for (workload_id, seed, _), search in searches.items()
                if (size := search.next_size(evaluated[(workload_id, seed)])) is not None
            }
        )
        if not wanted:
            break
        round_ += 1
        tasks = [
            RunTask(by_key[w], static_at(m), seed, UNREAD_S, common_draws=True)
            for w, seed, m in wanted
        ]
        on_phase(f"static-qos search, round {round_}", len(tasks))
        for (w, seed, m), result in zip(wanted, pool.run(tasks, on_done), strict=True):
            evaluated[(w, seed)][m] = result
        simulations += len(tasks)
    cells, results = [], []
    for (workload_id, seed, name), search in searches.items():
        size, result = best_static(evaluated[(workload_id, seed)], search.deadline_s)
        cells.append(
            _Cell(
                by_key[workload_id],
                BenchPolicy(STATIC_QOS, {"name": "static", "memory_mb": size}),
                seed,
                name,
            )
        )
        results.append(result | {"qos_sizes_run": len(evaluated[(workload_id, seed)])})
    return cells, results, simulations


def _deadlines(
    workloads: Sequence[BenchWorkload],
    seeds: range,
    cells: Sequence[_Cell],
    results: Sequence[dict[str, Any]],
) -> dict[tuple[str, int], Deadlines | None]:
    """Each seed's deadlines, from that seed's static runs."""
    static_jct: dict[tuple[str, int], dict[str, float]] = {
        (w.id, seed): {} for w in workloads for seed in seeds
    }
    for cell, result in zip(cells, results, strict=True):
        if cell.policy.label in STATIC_LABELS and result.get("status") == "succeeded":
            static_jct[(cell.workload.id, cell.seed)][cell.policy.label] = float(result["jct_s"])
    deadlines: dict[tuple[str, int], Deadlines | None] = {}
    for key, jct in static_jct.items():
        try:
            deadlines[key] = derive(jct)
        except NoReference:
            deadlines[key] = None
    return deadlines


def _tasks(
    cells: Sequence[_Cell], deadline_of: Callable[[_Cell], float]
) -> tuple[list[RunTask], list[int]]:
    """One simulation per distinct (workload, policy spec, seed, deadline), and the task of each
    cell: static-safe often is one of the fixed static sizes, and then both labels share the
    run."""
    tasks: list[RunTask] = []
    index_of: dict[tuple[Any, ...], int] = {}
    task_of: list[int] = []
    for cell in cells:
        key = (
            cell.workload.id,
            json.dumps(cell.policy.document, sort_keys=True),
            cell.policy.oracle,
            cell.policy.peer,
            cell.seed,
            cell.deadline,
        )
        if key not in index_of:
            index_of[key] = len(tasks)
            tasks.append(
                RunTask(cell.workload, cell.policy, cell.seed, deadline_of(cell), common_draws=True)
            )
        task_of.append(index_of[key])
    return tasks, task_of


def _error(cell: _Cell, result: dict[str, Any]) -> dict[str, Any]:
    return {
        "workload": cell.workload.id,
        "policy": cell.policy.label,
        "seed": cell.seed,
        "deadline": cell.deadline,
        "error": result.get("status_reason"),
        "traceback": result.get("traceback"),
    }


def make_row(
    cell: _Cell, deadline: str, deadline_s: float | None, result: dict[str, Any]
) -> dict[str, Any]:
    """One row of results.json: one workload × deadline × policy × seed."""
    status = result.get("status")
    jct = result.get("jct_s")
    changes = result.get("memory_changes", [])
    profiling = _offline_profiling_s(cell.policy, result)
    if jct is not None and profiling:
        jct = round(jct - profiling, 3)  # the peers profile offline: not the job's time
    return {
        "workload": cell.workload.id,
        "kind": cell.workload.kind,
        "family": cell.workload.family,
        "deadline": deadline,
        "deadline_s": deadline_s,
        "policy": cell.policy.label,
        "memory_mb": cell.policy.memory_mb,
        "seed": cell.seed,
        "status": status,
        "status_reason": result.get("status_reason"),
        "jct_s": jct,
        "cost_usd": result.get("cost_usd"),
        # A job that failed did not meet its deadline, however early it stopped.
        "deadline_met": status == "succeeded"
        and jct is not None
        and deadline_s is not None
        and jct <= deadline_s,
        "invocations": result.get("invocations"),
        "cold_starts": result.get("cold_starts"),
        "resizes": sum(
            1
            for c in changes
            if c["state"] != "vetoed" and c["from_mb"] is not None and c["from_mb"] != c["to_mb"]
        ),
        "memory_changes": changes,
        "stages": result.get("stages", []),
        "run_shared_across_deadlines": cell.deadline is None,
        # the peers: time their (billed) offline profiling took, not counted in jct_s
        "profiling_s": profiling,
        # static-qos: how many static sizes of this seed's job were run to find it
        "qos_sizes_run": result.get("qos_sizes_run"),
        "simulation_wall_s": result.get("wall_s"),
    }


def _offline_profiling_s(policy: BenchPolicy, result: dict[str, Any]) -> float | None:
    """A peer's profiling stages run first, in the job; they end when its first own stage
    starts."""
    if policy.peer is None:
        return None
    own = [
        s["started_s"]
        for s in result.get("stages", [])
        if not s["name"].startswith(policy.peer) and s.get("started_s") is not None
    ]
    return min(own) if own else None


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def results_document(result: SuiteResult, definitions: dict[str, str]) -> dict[str, Any]:
    config = result.config
    return {
        "schema": "cescale.bench/1",
        "suite": {
            "quick": config.quick,
            "seeds": config.seed_count,
            "jobs": config.jobs,
            "profiles": [str(p) for p in config.profiles],
            "started_at": result.started_at,
            "wall_s": result.wall_s,
            "simulations": result.simulations,
            "machine": machine(),
        },
        "definitions": definitions,
        "workloads": [describe(w) | _deadline_summary(result, w) for w in result.workloads],
        "errors": result.errors,
        "runs": result.rows,
    }


def _deadline_summary(result: SuiteResult, workload: BenchWorkload) -> dict[str, Any]:
    """Per seed (index = seed; null: no static run finished) and the median."""
    marks = [result.deadlines[(workload.id, seed)] for seed in range(result.config.seed_count)]
    summary: dict[str, Any] = {}
    for name in DEADLINES:
        values = [m.of(name) if m is not None else None for m in marks]
        known = [v for v in values if v is not None]
        summary[name] = {"median": median(known) if known else None, "by_seed": values}
    return {"deadlines_s": summary}
