"""Running the loop on the wall clock: a small Prefect-style service around ``run_once``.

The interval is measured from the start of a tick, an overrun is logged, an exception is logged
and survived (the next tick reconciles), and ``stop()`` returns once the current tick is done.
In the API process the loop is an APScheduler 3 interval job (``max_instances=1``, so ticks never
overlap); ``cescale controller`` runs the same service in its own process. APScheduler only
schedules: the leases in the database are what keep replicas from running a job twice.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler

from service import metrics
from service.control.loop import Controller, JobEnd

log = logging.getLogger(__name__)


def log_job_end(end: JobEnd) -> None:
    """One INFO line per ended job: id, status, cost, completion time, deadline."""
    deadline = {True: "missed", False: "met", None: "n/a"}[end.deadline_missed]
    jct = f"{end.jct_s:.1f}s" if end.jct_s is not None else "n/a"
    log.info(
        "job %s (%s) %s: cost $%.6f, JCT %s, deadline %s%s",
        end.job_id,
        end.name,
        end.status,
        end.cost_usd,
        jct,
        deadline,
        f" ({end.reason})" if end.reason else "",
        extra={
            "job_id": str(end.job_id),
            "status": end.status,
            "cost_usd": float(end.cost_usd),
            "jct_s": end.jct_s,
            "deadline_missed": end.deadline_missed,
        },
    )


class LoopService:
    def __init__(self, controller: Controller, interval_s: float) -> None:
        self.controller = controller
        self.interval_s = interval_s
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    def tick(self) -> None:
        """One guarded tick: never raises, never overlaps another tick."""
        if not self._lock.acquire(blocking=False):
            return
        started = time.monotonic()
        report = None
        try:
            report = self.controller.run_once(datetime.now(UTC))
            for end in report.ended:
                log_job_end(end)
        except Exception:
            metrics.record_failed_tick(time.monotonic() - started)
            log.exception("control loop tick failed; the next tick will reconcile")
        finally:
            self._lock.release()
        took = time.monotonic() - started
        if took > self.interval_s:
            # which step it was: an operator needs that to tell the database from the platform
            steps = (
                ", ".join(
                    f"{step} {seconds:.2f}s"
                    for step, seconds in sorted(report.timings.items(), key=lambda kv: -kv[1])
                    if seconds >= 0.01
                )
                if report is not None
                else "the tick failed"
            )
            log.warning(
                "control loop tick took %.2fs, over its %.2fs interval (%s)",
                took,
                self.interval_s,
                steps,
            )

    def start(self, loops: int | None = None) -> None:
        """Run in this thread until ``stop()`` (or for ``loops`` ticks)."""
        done = 0
        while not self._stopping.is_set() and (loops is None or done < loops):
            started = time.monotonic()
            self.tick()
            done += 1
            self._stopping.wait(max(0.0, self.interval_s - (time.monotonic() - started)))

    def stop(self) -> None:
        self._stopping.set()


def start_in_background(service: LoopService) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.add_job(
        service.tick,
        "interval",
        seconds=service.interval_s,
        id="control-loop",
        max_instances=1,
        coalesce=True,
        next_run_time=datetime.now(UTC),
    )
    scheduler.start()
    return scheduler
