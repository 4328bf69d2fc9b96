"""The wall-clock loop service: an overrun names the steps that took the time."""

from __future__ import annotations

import logging

from service.control.loop import TickReport
from service.control.service import LoopService


class SlowDatabaseController:
    def run_once(self, now):
        return TickReport(timings={"claim": 0.001, "record": 12.5, "dispatch": 3.25})


def test_an_overrun_is_logged_with_its_slowest_steps(caplog):
    service = LoopService(SlowDatabaseController(), interval_s=1e-9)  # every tick overruns
    with caplog.at_level(logging.WARNING, logger="service.control.service"):
        service.tick()
    (line,) = [r.getMessage() for r in caplog.records if "over its" in r.getMessage()]
    assert line.endswith("(record 12.50s, dispatch 3.25s)")  # slowest first, noise left out
