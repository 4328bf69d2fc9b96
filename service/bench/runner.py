"""Running simulations in parallel: each run is one ``simulate()`` — the real control loop and
policies, its own in-memory database and emulator — so runs are independent and spread over a
process pool, heaviest first so that the last ones to finish are short."""

from __future__ import annotations

import multiprocessing
import os
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from service.bench.policies import BenchPolicy
from service.bench.workloads import BenchWorkload
from service.simulation.drift import Drift
from service.simulation.run import simulate


@dataclass(frozen=True)
class RunTask:
    workload: BenchWorkload
    policy: BenchPolicy
    seed: int
    deadline_s: float  # the spec's; a policy that does not read it is judged on others too
    learn: bool = True  # False: the loop's learn step is off (the learning ablation)
    drift: Drift | None = None  # runs slow down as the job goes on (the learning ablation)
    # noise keyed by the task, so every policy at a seed sees the same draws (the comparison)
    common_draws: bool = False
    repeat: int = 1  # the same job this many times by one tenant (bench --repeat)

    def weight(self) -> float:
        """Rough simulation cost (invocations the job makes), to schedule the heavy ones first."""
        document = self.workload.document
        if self.workload.kind == "training":
            training = document["training"]
            rounds = -(-training["max_epochs"] // training["epochs_per_round"])
            return float(training["workers"] * rounds * self.repeat)
        hpo = document["hpo"]
        return float(hpo["trials"] * 1.5 * self.repeat)


def execute(task: RunTask) -> dict[str, Any]:
    """One simulation; an exception becomes a result with status ``error`` so that one broken
    run is reported instead of sinking the suite."""
    started = time.perf_counter()
    try:
        result = simulate(
            task.workload.spec(task.policy.document, task.deadline_s, task.seed),
            seed=task.seed,
            oracle=task.policy.oracle,
            workload=task.workload.model(),
            learn=task.learn,
            drift=task.drift,
            policy=peer_policy(task.policy.peer) if task.policy.peer else None,
            common_draws=task.common_draws,
            repeat=task.repeat,
        )
    except Exception as error:  # reported per run; the suite goes on
        result = {
            "status": "error",
            "status_reason": f"{type(error).__name__}: {error}",
            "traceback": traceback.format_exc(limit=8),
        }
    result["wall_s"] = round(time.perf_counter() - started, 3)
    return result


def peer_policy(name: str):
    """The published peer ``name`` (policies/peers), for every spec."""
    from service.policies.peers.jolteon import Jolteon
    from service.policies.peers.parrotfish import Parrotfish

    peers = {"parrotfish": Parrotfish, "jolteon": Jolteon}
    if name not in peers:
        raise ValueError(f"unknown peer {name!r}; peers: {', '.join(peers)}")
    return lambda _spec: peers[name]()


def default_jobs() -> int:
    return max(1, os.cpu_count() or 1)


class SimulationPool:
    """Runs batches of simulations on ``jobs`` worker processes (``jobs`` = 1: in this
    process). One pool serves every phase of a suite, so workers start once."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> SimulationPool:
        if self.jobs > 1:
            # spawn, not fork: the parent runs a progress-bar thread, and a forked child could
            # inherit one of its locks held.
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(max_workers=self.jobs, mp_context=context)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    def run(
        self, tasks: Sequence[RunTask], on_done: Callable[[], None] = lambda: None
    ) -> list[dict[str, Any]]:
        """Results in the order of ``tasks``, heaviest simulated first."""
        results: list[dict[str, Any] | None] = [None] * len(tasks)
        order = sorted(range(len(tasks)), key=lambda i: -tasks[i].weight())
        if self._pool is None:
            for i in order:
                results[i] = execute(tasks[i])
                on_done()
            return [r for r in results if r is not None]
        # A bounded queue in flight keeps the heaviest-first order across the workers.
        pending: dict[Future[dict[str, Any]], int] = {}
        queue = iter(order)
        for i in queue:
            pending[self._pool.submit(execute, tasks[i])] = i
            if len(pending) >= 4 * self.jobs:
                break
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                results[pending.pop(future)] = future.result()
                on_done()
                following = next(queue, None)
                if following is not None:
                    pending[self._pool.submit(execute, tasks[following])] = following
        return [r for r in results if r is not None]
