"""Driving the loop on a virtual clock: tick, then jump to the next thing that can happen.

Used by the simulation driver and by tests; the real-time driver ticks on the wall clock instead
(``service.control.service``). The code that decides is the same.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from service.control.loop import Controller, to_datetime
from service.platform.clock import VirtualClock

IDLE_STEP_S = 1.0  # how far to move the clock when nothing is in flight (back-off waits)


@dataclass
class DriveReport:
    ticks: int
    finished: set[uuid.UUID]


def drive(
    controller: Controller,
    clock: VirtualClock,
    jobs: Iterable[uuid.UUID],
    *,
    max_ticks: int = 100_000,
    idle_step_s: float = IDLE_STEP_S,
    tick_s: float = 0.0,
) -> DriveReport:
    """Run the loop until every job in ``jobs`` has ended (as the loop reports it).

    With ``tick_s`` the loop only runs on multiples of it, as the real-time driver does every
    ``controller_interval_s``: a result is noticed at the first tick after it arrives, and all
    results of that interval are handled together.
    """
    waiting = set(jobs)
    finished: set[uuid.UUID] = set()
    for tick in range(1, max_ticks + 1):
        report = controller.run_once(to_datetime(clock.now()))
        finished.update(report.finished_jobs)
        if waiting <= finished:
            return DriveReport(tick, finished)
        upcoming = controller.next_event()
        if upcoming is None or upcoming <= clock.now():
            clock.advance(idle_step_s if upcoming is None else 0.0)
        else:
            if tick_s > 0:
                upcoming = math.ceil(upcoming / tick_s - 1e-9) * tick_s
            clock.set(upcoming)
    raise RuntimeError(f"jobs did not finish within {max_ticks} ticks")
