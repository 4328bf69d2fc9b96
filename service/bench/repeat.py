"""``cescale bench --repeat``: what learning across jobs is worth — the same job run twice by one
tenant, the second starting from the curves the first measured (its priors) instead of a pilot.

Per workload and seed, the deadlines are derived as in the main suite (``deadlines.py``, from
the static sizes' runs of that seed's job); then ce-scaling and the oracle each run a *pair*:
one simulation, one tenant, the job and, an hour later (its environments cold), the same job
again (``simulate(repeat=2)``). The report puts the first and the second job's cost against
the oracle's job of the same rank side by side; the target is the second job ≤ 1.05× the
oracle. The oracle knows every curve, so it does not learn anything from its first job: its
pair measures how much two runs of a job differ by noise alone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import median
from typing import Any

from service.bench.deadlines import DEADLINES, UNREAD_S, NoReference, derive
from service.bench.policies import CE_SCALING, ORACLE, STATIC_LABELS, bench_policy
from service.bench.runner import RunTask, SimulationPool
from service.bench.workloads import BenchWorkload

TARGET = 1.05  # a repeat job costs at most this much more than the oracle
JOBS = (1, 2)


@dataclass(frozen=True)
class RepeatRow:
    workload: str
    kind: str
    seed: int
    deadline: str
    deadline_s: float
    policy: str
    job: int  # 1: the first job of the pair, 2: the repeat
    status: str
    jct_s: float | None
    cost_usd: float | None
    deadline_met: bool
    explored: bool  # a pilot or spread ran ("explore" decisions)
    from_prior: bool  # a decision planned from an earlier job's curve


def run_repeat(
    workloads: Sequence[BenchWorkload],
    seeds: int,
    jobs: int,
    on_phase: Callable[[str, int], None] = lambda name, total: None,
    on_done: Callable[[], None] = lambda: None,
) -> list[RepeatRow]:
    with SimulationPool(jobs) as pool:
        keys = [(w, seed) for w in workloads for seed in range(seeds)]
        statics = [
            RunTask(w, bench_policy(label, w), seed, UNREAD_S)
            for w, seed in keys
            for label in STATIC_LABELS
        ]
        on_phase("static sizes (deadlines)", len(statics))
        static_results = pool.run(statics, on_done=on_done)
        deadlines = {}
        for i, (w, seed) in enumerate(keys):
            runs = static_results[i * len(STATIC_LABELS) : (i + 1) * len(STATIC_LABELS)]
            jct = {
                label: float(r["jct_s"])
                for label, r in zip(STATIC_LABELS, runs, strict=True)
                if r.get("status") == "succeeded"
            }
            try:
                deadlines[(w.id, seed)] = derive(jct)
            except NoReference:
                continue
        cells = [
            (w, seed, name, label)
            for w, seed in keys
            if (w.id, seed) in deadlines
            for name in DEADLINES
            for label in (CE_SCALING, ORACLE)
        ]
        tasks = [
            RunTask(
                w, bench_policy(label, w), seed, deadlines[(w.id, seed)].of(name), repeat=len(JOBS)
            )
            for w, seed, name, label in cells
        ]
        on_phase("ce-scaling and oracle, each job twice", len(tasks))
        results = pool.run(tasks, on_done=on_done)
    rows = []
    for (w, seed, name, label), task, result in zip(cells, tasks, results, strict=True):
        # a run that raised is one error for both jobs
        pair = [*result["previous_jobs"], result] if "previous_jobs" in result else [result] * 2
        for job, run in zip(JOBS, pair, strict=True):
            rows.append(_row(w, seed, name, task.deadline_s, label, job, run))
    return rows


def _row(w, seed, deadline, deadline_s, label, job, run: dict[str, Any]) -> RepeatRow:
    changes = run.get("memory_changes", [])
    status = run.get("status", "error")
    return RepeatRow(
        workload=w.id,
        kind=w.kind,
        seed=seed,
        deadline=deadline,
        deadline_s=deadline_s,
        policy=label,
        job=job,
        status=status,
        jct_s=run.get("jct_s"),
        cost_usd=run.get("cost_usd"),
        deadline_met=status == "succeeded" and bool(run.get("deadline_met")),
        explored=any(c["rule"] == "explore" for c in changes),
        from_prior=any("earlier job" in (c.get("reason") or "") for c in changes),
    )


def summarise(rows: Sequence[RepeatRow]) -> list[dict[str, Any]]:
    """Per workload × deadline: each job's cost over the oracle's job of the same rank and
    seed (median, max), deadlines met, and how many jobs explored."""
    by: dict[tuple[str, str], dict[tuple[int, str, int], RepeatRow]] = defaultdict(dict)
    for row in rows:
        by[(row.workload, row.deadline)][(row.seed, row.policy, row.job)] = row
    table = []
    for (workload, deadline), cell in sorted(by.items()):
        seeds = sorted({seed for seed, _, _ in cell})
        entry: dict[str, Any] = {"workload": workload, "deadline": deadline, "seeds": len(seeds)}
        for job in JOBS:
            ratios, met, explored, prior, runs = [], 0, 0, 0, 0
            for seed in seeds:
                ce, oracle = cell.get((seed, CE_SCALING, job)), cell.get((seed, ORACLE, job))
                if ce is None:
                    continue
                runs += 1
                met += ce.deadline_met
                explored += ce.explored
                prior += ce.from_prior
                if ce.cost_usd and oracle is not None and oracle.cost_usd:
                    ratios.append(ce.cost_usd / oracle.cost_usd)
            entry[f"job{job}"] = {
                "runs": runs,
                "vs_oracle_median": median(ratios) if ratios else None,
                "vs_oracle_max": max(ratios) if ratios else None,
                "met": met,
                "explored": explored,
                "from_prior": prior,
            }
        table.append(entry)
    return table


def targets(table: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The repeat target over every cell: the second job's median cost ≤ TARGET × oracle."""
    cells = [c for c in table if c["job2"]["vs_oracle_median"] is not None]
    worst = max(cells, key=lambda c: c["job2"]["vs_oracle_median"], default=None)
    return {
        "target": f"repeat jobs ≤ {TARGET:.2f}× the oracle (median per cell)",
        "cells": len(cells),
        "cells_met": sum(c["job2"]["vs_oracle_median"] <= TARGET for c in cells),
        "worst": None
        if worst is None
        else {
            "workload": worst["workload"],
            "deadline": worst["deadline"],
            "vs_oracle_median": worst["job2"]["vs_oracle_median"],
        },
    }


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def markdown(rows: Sequence[RepeatRow], seeds: int) -> str:
    table = summarise(rows)
    goal = targets(table)
    lines = [
        "# Repeat jobs: the first and the second job of a tenant, against the oracle",
        "",
        f"`cescale bench --repeat`, {seeds} seed(s). Each pair is one simulation: a job, then "
        "the same job an hour later, by the same tenant; the second starts from the curves the "
        "first measured (priors) instead of a pilot. Cost ratios: ce-scaling's job over the "
        "oracle's job of the same rank and seed (median, max over seeds).",
        "",
        f"Target — {goal['target']}: met in {goal['cells_met']} of {goal['cells']} cells"
        + (
            f"; worst {goal['worst']['workload']} {goal['worst']['deadline']} "
            f"{goal['worst']['vs_oracle_median']:.3f}×."
            if goal["worst"]
            else "."
        ),
        "",
        "| workload | deadline | first job vs oracle (median, max) | second job vs oracle "
        "(median, max) | met 1st / 2nd | explored 1st / 2nd | 2nd from a prior |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in table:
        first, second = c["job1"], c["job2"]
        lines.append(
            f"| {c['workload']} | {c['deadline']} | {_ratio(first['vs_oracle_median'])} "
            f"({_ratio(first['vs_oracle_max'])}) | {_ratio(second['vs_oracle_median'])} "
            f"({_ratio(second['vs_oracle_max'])}) | {first['met']}/{first['runs']} · "
            f"{second['met']}/{second['runs']} | {first['explored']} · {second['explored']} | "
            f"{second['from_prior']}/{second['runs']} |"
        )
    return "\n".join(lines) + "\n"
