"""How `cescale jobs` shows what the API returns: tables, and the live view of a running job.

Everything here is a pure function of the API's JSON (and, for the time left, of ``now``), so
the watch view can be tested without a terminal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

TERMINAL = ("succeeded", "failed", "cancelled")
WATCH_STAGES = 8  # the live view shows the latest stages; earlier ones are summed in a row
_STATUS_STYLE = {
    "pending": "yellow",
    "running": "cyan",
    "succeeded": "green",
    "failed": "red",
    "cancelled": "magenta",
}


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def usd(value: float | None) -> str:
    if value is None:
        return "-"
    return f"${value:,.6f}" if value < 1 else f"${value:,.2f}"


def seconds(value: float | None) -> str:
    if value is None:
        return "-"
    sign = "-" if value < 0 else ""
    value = abs(value)
    if value < 60:
        return f"{sign}{value:.1f} s"
    minutes, secs = divmod(round(value), 60)
    if minutes < 60:
        return f"{sign}{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{sign}{hours}h{minutes:02d}m"


def status_text(status: str) -> Text:
    return Text(status, style=_STATUS_STYLE.get(status, ""))


# -- tables of the plain commands ---------------------------------------------------------
def jobs_table(jobs: list[dict]) -> Table:
    table = Table(box=None, header_style="bold")
    table.add_column("ID", no_wrap=True, min_width=36)  # whole: people copy it
    for column in ("NAME", "KIND", "STATUS", "POLICY", "DEADLINE"):
        table.add_column(column, overflow="ellipsis", no_wrap=True)
    table.add_column("CREATED", no_wrap=True)
    for job in jobs:
        _add_row(
            table,
            job["id"],
            job["name"],
            job["kind"],
            status_text(job["status"]),
            job["policy"],
            seconds(job["deadline_s"]),
            job["created_at"][:19].replace("T", " "),
        )
    return table


def job_table(job: dict) -> Table:
    table = Table(box=None, show_header=False)
    table.add_column(style="bold")
    table.add_column()
    started, finished = parse_time(job.get("started_at")), parse_time(job.get("finished_at"))
    jct = (finished - started).total_seconds() if started and finished else None
    rows: list[tuple[str, Any]] = [
        ("id", job["id"]),
        ("name", job["name"]),
        ("kind", job["kind"]),
        ("status", status_text(job["status"])),
        ("reason", job.get("status_reason") or "-"),
        ("policy", job["policy"]),
        ("deadline", seconds(job["deadline_s"])),
        ("deadline missed", _yes_no(job.get("deadline_missed"))),
        ("max cost", usd(job.get("max_cost_usd"))),
        ("cancel requested", _yes_no(job.get("cancel_requested"))),
        ("created", job["created_at"]),
        ("started", job.get("started_at") or "-"),
        ("finished", job.get("finished_at") or "-"),
        ("completion time", seconds(jct)),
    ]
    rows += [(f"result.{k}", v) for k, v in result_summary(job.get("result")).items()]
    for name, value in rows:
        _add_row(table, name, value)
    return table


def result_summary(result: dict | None) -> dict[str, str]:
    """A line or two about a finished job's result (the JSON output has all of it)."""
    if not result:
        return {}
    summary: dict[str, str] = {}
    best = result.get("best")
    if isinstance(best, dict):
        score = best.get("score")
        params = best.get("params") or {}
        summary["best"] = (
            f"score {score:.4f} " if isinstance(score, int | float) else ""
        ) + ", ".join(f"{k}={v}" for k, v in params.items())
    if isinstance(result.get("trials"), list):
        summary["trials"] = str(len(result["trials"]))
    losses = result.get("losses")
    if isinstance(losses, list) and losses:
        summary["rounds"] = str(len(losses))
        summary["final loss"] = f"{losses[-1]:.4f}"
    return summary or {"keys": ", ".join(result)}


def cost_table(cost: dict) -> Table:
    table = Table(box=None, header_style="bold", show_footer=True)
    table.add_column("STAGE", footer="total")
    table.add_column("KIND")
    table.add_column("INVOCATIONS", justify="right", footer=str(cost["invocations"]))
    table.add_column("GB-S", justify="right", footer=f"{cost['gb_seconds']:.3f}")
    table.add_column("COMPUTE", justify="right", footer=usd(cost["compute_usd"]))
    table.add_column("REQUESTS", justify="right", footer=usd(cost["requests_usd"]))
    table.add_column("TOTAL", justify="right", footer=usd(cost["total_usd"]))
    for stage in cost["stages"]:
        _add_row(
            table,
            stage["name"],
            stage["kind"],
            str(stage["invocations"]),
            f"{stage['gb_seconds']:.3f}",
            usd(stage["compute_usd"]),
            usd(stage["requests_usd"]),
            usd(stage["total_usd"]),
        )
    return table


def timeline_table(timeline: dict) -> Table:
    table = Table(box=None, header_style="bold")
    for column in ("AT", "EVENT", "STAGE", "DETAIL"):
        table.add_column(column, overflow="fold")
    for event in timeline["events"]:
        _add_row(
            table,
            event["at"][11:23],
            event["type"],
            event.get("stage") or "",
            event_summary(event),
        )
    return table


def event_summary(event: dict) -> str:
    detail = event.get("detail") or {}
    kind = event["type"]
    if kind.startswith("allocation."):
        shape = f"{detail['shape']}: " if detail.get("shape") else ""
        change = f"{detail.get('from_mb') or '-'} → {detail.get('to_mb')} MB"
        rule = f" [{detail['rule']}]" if detail.get("rule") else ""
        return f"{shape}{change}{rule} {detail.get('reason', '')}".strip()
    if kind.startswith("stage."):
        tasks = detail.get("tasks") or {}
        parts = [detail.get("kind") or detail.get("status") or ""]
        if detail.get("planned_memory_mb"):
            parts.append(f"planned {detail['planned_memory_mb']} MB")
        if tasks:
            parts.append(f"{tasks.get('succeeded', 0)}/{tasks.get('total', 0)} tasks done")
        return ", ".join(p for p in parts if p)
    if detail.get("reason"):
        return str(detail["reason"])
    return ", ".join(f"{k}={v}" for k, v in detail.items() if v is not None)


def _add_row(table: Table, *cells: Any, style: str | None = None) -> None:
    """Cells are data, never Rich markup (a job name or a reason may hold '[...]')."""
    table.add_row(*(c if isinstance(c, Text) else Text(str(c)) for c in cells), style=style)


def _yes_no(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")


# -- the live view ------------------------------------------------------------------------
@dataclass
class StageProgress:
    name: str
    kind: str = ""
    status: str = "running"
    total: int = 0
    succeeded: int = 0
    failed: int = 0
    running: int = 0
    cost_usd: float = 0.0
    invocations: int = 0


@dataclass
class Progress:
    """What the watch view shows, folded from one poll of job, cost and timeline."""

    job: dict
    stages: list[StageProgress] = field(default_factory=list)
    memory: dict[str, tuple[int, str]] = field(default_factory=dict)  # shape → (MB, rule)
    cost_usd: float = 0.0
    invocations: int = 0
    elapsed_s: float | None = None
    left_s: float | None = None

    @property
    def status(self) -> str:
        return self.job["status"]

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    def units_done(self) -> str:
        """Trials (of HPO's first rung) or rounds (of training) done, with the planned total."""
        spec = self.job.get("spec") or {}
        if self.job["kind"] == "training":
            training = spec.get("training") or {}
            rounds = [s for s in self.stages if s.kind == "round"]
            done = sum(s.status == "succeeded" for s in rounds)
            epochs, per_round = training.get("max_epochs"), training.get("epochs_per_round", 1)
            most = f"/{math.ceil(epochs / per_round)}" if epochs and per_round else ""
            return f"rounds {done}{most}"
        rungs = [s for s in self.stages if s.kind == "rung"]
        trials = (spec.get("hpo") or {}).get("trials")
        done = sum(s.succeeded for s in rungs)
        first = f", first rung {rungs[0].succeeded}/{trials or rungs[0].total}" if rungs else ""
        return f"trial runs done {done}{first}"

    def line(self, clock: bool = True) -> str:
        """One plain line (for logs and non-terminal output); ``clock=False`` leaves out the
        time left, which changes on every poll."""
        stage = next((s for s in reversed(self.stages) if s.status == "running"), None)
        where = (
            f"{stage.name} {stage.succeeded}/{stage.total}"
            if stage
            else f"{len(self.stages)} stage(s)"
        )
        memory = "; ".join(f"{shape}: {mb} MB" for shape, (mb, _) in self.memory.items())
        left = f", {seconds(self.left_s)} to deadline" if clock and self.left_s is not None else ""
        return f"{self.status}: {where}, {self.units_done()}, cost {usd(self.cost_usd)}{left}" + (
            f", memory {memory}" if memory else ""
        )


def fold(job: dict, cost: dict, timeline: dict, now: datetime | None = None) -> Progress:
    now = now or datetime.now(UTC)
    progress = Progress(job, cost_usd=cost["total_usd"], invocations=cost["invocations"])
    by_name: dict[str, StageProgress] = {}
    for event in timeline["events"]:
        detail, name = event.get("detail") or {}, event.get("stage")
        if event["type"] in ("stage.started", "stage.finished") and name:
            stage = by_name.get(name)
            if stage is None:
                stage = by_name[name] = StageProgress(name)
                progress.stages.append(stage)
            stage.kind = detail.get("kind") or stage.kind
            if event["type"] == "stage.finished":
                stage.status = detail.get("status", "finished")
            tasks = detail.get("tasks") or {}
            stage.total = tasks.get("total", stage.total)
            stage.succeeded = tasks.get("succeeded", stage.succeeded)
            stage.failed = tasks.get("failed", stage.failed)
            stage.running = tasks.get("running", stage.running)
        elif event["type"] == "allocation.changed" and detail.get("state") == "applied":
            shape = detail.get("shape") or detail.get("function") or "all"
            progress.memory[shape] = (detail["to_mb"], detail.get("rule") or "")
    for line in cost.get("stages", []):
        if line["name"] in by_name:
            by_name[line["name"]].cost_usd = line["total_usd"]
            by_name[line["name"]].invocations = line["invocations"]
    started = parse_time(job.get("started_at"))
    end = parse_time(job.get("finished_at")) or now
    if started is not None:
        progress.elapsed_s = (end - started).total_seconds()
        if not progress.finished:
            progress.left_s = job["deadline_s"] - progress.elapsed_s
    return progress


def watch_view(progress: Progress) -> Panel:
    job = progress.job
    head = Text.assemble(
        (f"{job['name']} ", "bold"),
        (f"({job['id']}) ", "dim"),
        f"{job['kind']}, policy {job['policy']}, ",
        status_text(progress.status),
    )
    if job.get("cancel_requested") and not progress.finished:
        head.append(" (cancel requested)", style="magenta")
    clock = Text(
        f"elapsed {seconds(progress.elapsed_s)}"
        + (
            f", {seconds(progress.left_s)} left of the {seconds(job['deadline_s'])} deadline"
            if progress.left_s is not None
            else f", deadline {seconds(job['deadline_s'])} from start"
        )
        + f"  ·  cost so far {usd(progress.cost_usd)} over {progress.invocations} invocation(s)"
        + (f" (cap {usd(job['max_cost_usd'])})" if job.get("max_cost_usd") is not None else "")
        + f"  ·  {progress.units_done()}"
    )
    if progress.left_s is not None and progress.left_s < 0:
        clock.stylize("red")
    stages = Table(box=None, header_style="bold", expand=False)
    for column in ("STAGE", "KIND", "STATUS", "DONE", "RUNNING", "FAILED", "COST"):
        stages.add_column(column, justify="left" if column in ("STAGE", "KIND") else "right")
    earlier = progress.stages[:-WATCH_STAGES]
    if earlier:
        _add_row(
            stages,
            f"… {len(earlier)} earlier",
            "",
            "",
            f"{sum(s.succeeded for s in earlier)}/{sum(s.total for s in earlier)}",
            "",
            str(sum(s.failed for s in earlier)),
            usd(sum(s.cost_usd for s in earlier)),
            style="dim",
        )
    for stage in progress.stages[-WATCH_STAGES:]:
        _add_row(
            stages,
            stage.name,
            stage.kind,
            status_text(stage.status),
            f"{stage.succeeded}/{stage.total}",
            str(stage.running),
            str(stage.failed),
            usd(stage.cost_usd),
        )
    memory = Table(box=None, header_style="bold")
    memory.add_column("SHAPE")
    memory.add_column("MEMORY", justify="right")
    memory.add_column("DECIDED BY")
    for shape, (mb, rule) in progress.memory.items():
        _add_row(memory, shape, f"{mb} MB", rule)
    parts: list[Any] = [head, clock, Text()]
    parts.append(stages if progress.stages else Text("no stage started yet", style="dim"))
    if progress.memory:
        parts += [Text(), memory]
    return Panel(Group(*parts), title="cescale jobs watch", title_align="left")
