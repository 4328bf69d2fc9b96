"""Between rows and the lifecycle core: a job's rows as the frozen views ``lifecycle`` reads,
and the job-ending change written back — shared by the stepper, the loop's failure path and
the user's cancel, so that every way a job ends writes the same columns."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.orm.attributes import flag_modified

from service.control import leases
from service.control.lifecycle import JobEnded, JobView, StageView, TaskView
from service.domain.enums import WorkStatus
from service.models import Job, Stage, Task


def stamp(row: Job | Task, at: datetime) -> None:
    """Stamp a row's ``updated_at`` with the loop's clock. Flagged as modified even when the
    value equals the loaded one (the lease claim stamps jobs with the same ``now``): otherwise
    the column's wall-clock ``onupdate`` default would win."""
    row.updated_at = at
    flag_modified(row, "updated_at")


def job_view(job: Job) -> JobView:
    return JobView(
        job.id,
        job.status,
        job.started_at,
        job.deadline_s,
        job.max_cost_usd,
        job.cancel_requested_at is not None,
    )


def stage_view(stage: Stage) -> StageView:
    return StageView(
        stage.id,
        stage.position,
        stage.name,
        stage.kind,
        stage.status,
        stage.round,
        stage.planned_memory_mb,
    )


def task_view(task: Task, position: int, *, light: bool = False) -> TaskView:
    """``light``: without the JSON columns (params, result), which a tick reads only for the
    tasks of stages that ended or a decision (``LoopRepository.unfinished_tasks`` defers them)."""
    return TaskView(
        task.id,
        position,
        task.key,
        task.shape,
        task.status,
        {} if light else task.params,
        task.memory_mb,
        task.epoch_from,
        task.epoch_to,
        task.worker,
        task.attempts,
        task.not_before,
        task.checkpoint_out,
        None if light else task.result,
        task.failure_reason,
    )


def views(
    stages: Iterable[Stage], tasks: Iterable[Task], *, light: bool = False
) -> tuple[list[StageView], list[TaskView]]:
    stages = list(stages)
    positions = {stage.id: stage.position for stage in stages}
    return (
        [stage_view(stage) for stage in stages],
        [task_view(task, positions[task.stage_id], light=light) for task in tasks],
    )


def apply_job_end(job: Job, end: JobEnded, stages: Iterable[Stage], tasks: Iterable[Task]) -> None:
    """Write ``lifecycle.end_job``'s change: the job's status, reason and times, whether it
    missed its deadline, the workflow's result, every open stage and task cancelled; the job's
    lease is given up."""
    job.status = end.status.value
    job.status_reason = end.reason
    job.started_at = end.started_at
    job.finished_at = end.at
    stamp(job, end.at)
    job.deadline_missed = end.deadline_missed
    if end.result is not None:
        job.result = end.result
    stages = list(stages)
    positions = {stage.id: stage.position for stage in stages}
    cancelled_stages = set(end.cancelled_stages)
    cancelled_tasks = set(end.cancelled_tasks)
    for stage in stages:
        if stage.position in cancelled_stages:
            stage.status = WorkStatus.CANCELLED.value
            stage.finished_at = end.at
    for task in tasks:
        if (positions.get(task.stage_id), task.key) in cancelled_tasks:
            task.status = WorkStatus.CANCELLED.value
            stamp(task, end.at)
    leases.release(job)
