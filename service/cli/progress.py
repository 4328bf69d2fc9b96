"""Progress of long commands: a Rich progress bar on a terminal, plain lines otherwise.

Rich only redraws on a terminal, so in a log file or a pipe a bar would print nothing until
the command ends; there, each tenth of a phase and each finished phase is one line.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class Phases(Protocol):
    def phase(self, name: str, total: int) -> None: ...
    def advance(self) -> None: ...


class _Bars:
    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task: int | None = None

    def phase(self, name: str, total: int) -> None:
        self._task = self._progress.add_task(name, total=total)

    def advance(self) -> None:
        if self._task is not None:
            self._progress.advance(self._task)


class LinePhases:
    """One line when a phase starts, at each tenth of it and when it ends."""

    def __init__(self, console: Console, batches: int = 10, unit: str = "runs") -> None:
        self.console = console
        self.batches = batches
        self.unit = unit
        self.name = ""
        self.total = 0
        self.done = 0
        self.started = time.monotonic()

    def phase(self, name: str, total: int) -> None:
        self.name, self.total, self.done = name, total, 0
        self.started = time.monotonic()
        self._say(f"{name}: {total} {self.unit}")

    def advance(self) -> None:
        self.done += 1
        elapsed = time.monotonic() - self.started
        if self.done == self.total:
            self._say(f"{self.name}: done, {self.total} {self.unit} in {elapsed:.0f} s")
        elif self.done % max(1, self.total // self.batches) == 0:
            self._say(f"{self.name}: {self.done}/{self.total} {self.unit} ({elapsed:.0f} s)")

    def _say(self, line: str) -> None:
        self.console.print(line, markup=False, highlight=False)
        self.console.file.flush()


@contextmanager
def phases(console: Console, *, eta: bool = True) -> Iterator[Phases]:
    if not console.is_terminal:
        yield LinePhases(console)
        return
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()]
    if eta:
        columns += [TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=console) as progress:
        yield _Bars(progress)
