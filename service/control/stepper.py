"""Advance one job by one tick, by applying ``lifecycle``'s changes to rows.

The decisions are pure code — ``lifecycle`` (every status change, by its named transition
rules), the workflow (what runs next), the policy (how much memory), ``retry.after_failure``
(what a failure means). This module reads a job's rows into a snapshot, records the ledger
figures of the invocations that finished (REPORT, bill, observations), and writes the changes
back: stages, tasks, allocation and invocation intents, the job's end.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import fmean
from typing import Any

from service.control import lifecycle, priors, responses
from service.control.learning import Run, job_scope
from service.control.lifecycle import (
    Change,
    Evidence,
    JobEnded,
    MemoryChange,
    MemoryDecided,
    OpenInvocation,
    Snapshot,
    StageClosed,
    StageOpened,
    StepSettings,
    TaskFailed,
    TaskLaunched,
    TaskOpened,
    TaskRecorded,
    TaskRetried,
    TaskView,
    WakeUp,
)
from service.control.repository import InvocationRow, LoopRepository, TaskRow
from service.control.retry import RetryPolicy, ShapeMemory, oom_floors
from service.control.rows import apply_job_end, job_view, stamp, task_view, views
from service.models import (
    Allocation,
    AllocationState,
    BillState,
    Invocation,
    InvocationOutcome,
    InvocationState,
    Job,
    JobStatus,
    Stage,
    StageKind,
    Task,
    WorkStatus,
)
from service.models.base import new_id
from service.platform import pricing
from service.platform.interface import ErrorKind, InvokeResult
from service.policies.base import MemoryDecision, Policy
from service.spec import JobSpec
from service.workflows.plan import Workflow
from service.workloads.contract import CONTRACT

TERMINAL = lifecycle.TERMINAL

_OUTCOMES = {
    ErrorKind.NONE: InvocationOutcome.OK,
    ErrorKind.HANDLED: InvocationOutcome.HANDLED,
    ErrorKind.UNHANDLED: InvocationOutcome.UNHANDLED,
    ErrorKind.TIMEOUT: InvocationOutcome.TIMEOUT,
    ErrorKind.OUT_OF_MEMORY: InvocationOutcome.OUT_OF_MEMORY,
    ErrorKind.THROTTLED: InvocationOutcome.THROTTLED,
}


@dataclass(frozen=True)
class StepContext:
    now: datetime
    results: dict[uuid.UUID, InvokeResult]  # finished invocations, by our invocation id
    to_datetime: Any  # clock seconds -> datetime
    store: str
    retry: RetryPolicy
    rng: random.Random
    in_flight_limit: int  # invocations this job may have open at once
    stage_overhead_s: float = 1.0  # what the loop adds between stages (for the policies)


class JobStepper:
    def __init__(
        self,
        repo: LoopRepository,
        job: Job,
        spec: JobSpec,
        workflow: Workflow,
        policy: Policy,
        function_name: str,
    ) -> None:
        self.repo = repo
        self.job = job
        self.spec = spec
        self.workflow = workflow
        self.policy = policy
        self.function_name = function_name
        # Loaded once per tick and shared by record and advance: loading a job's tasks is most
        # of a tick's cost (an 81-trial rung is 81 rows with JSON columns).
        self._tasks: list[Task] | None = None
        self._unfinished: list[TaskRow] | None = None
        self._objects: dict[uuid.UUID, Task] = {}  # the tasks loaded as objects this tick
        self._open: list[Invocation | InvocationRow] | None = None
        self._invocations: dict[uuid.UUID, Invocation] = {}  # loaded as objects this tick
        self._swap_open = False  # whether ``_open`` holds rows of invocations loaded since
        self.intents = 0  # invocation and memory-change intents written this tick
        self._observations: list[dict[str, Any]] = []  # this tick's, written together
        self._now: datetime | None = None
        self._written = 0
        self.wake_at: datetime | None = None  # this tick's ``WakeUp``, for the driver

    def _at(self) -> datetime:
        """The loop's clock for a row written now (never the database's or the machine's, so
        that a simulated job's timeline is in the order it ran), plus the row's rank in this
        tick in microseconds: rows written in one tick keep the order they were written in,
        which is the order the ledger and the dispatcher read them in."""
        assert self._now is not None
        self._written += 1
        return self._now + timedelta(microseconds=self._written)

    def tasks(self) -> list[Task]:
        """Every task of the job, as objects (those ``task_objects`` loaded are the same)."""
        if self._tasks is None:
            self._tasks = self.repo.tasks(self.job.id)
            self._objects.update((task.id, task) for task in self._tasks)
        return list(self._tasks)

    def unfinished_tasks(self) -> list[Task | TaskRow]:
        """The tasks that were not finished when the tick began (the current stage's): all a
        tick reads until a stage ends or a decision is due. Each is its columns as read
        (``TaskRow``, without the JSON ones), or its object once this tick loaded it to
        change it (``task_objects``), with the changes made so far."""
        if self._unfinished is None:
            self._unfinished = self.repo.unfinished_tasks(self.job.id)
        objects = self._objects
        return [objects.get(row.id, row) for row in self._unfinished]

    def task_objects(self, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Task]:
        """The objects of these tasks, to change them: those not loaded yet this tick are read
        in one statement (a tick changes a few tasks of the many it reads)."""
        ids = list(ids)
        missing = [task_id for task_id in ids if task_id not in self._objects]
        if missing:
            self._objects.update((task.id, task) for task in self.repo.tasks_by_id(missing))
        return {task_id: self._objects[task_id] for task_id in ids if task_id in self._objects}

    def open_invocations(self) -> list[Invocation | InvocationRow]:
        """Invocations without a recorded result (intents), as of now in this tick: each its
        columns as read (``InvocationRow``), or its object once this tick loaded it to record
        its result (``invocation_objects``)."""
        if self._open is None:
            self._open = self.repo.open_invocations(self.job.id)
        if self._swap_open:  # objects loaded since: they stand in for their rows
            objects = self._invocations
            self._open = [objects.get(i.id, i) for i in self._open]
            self._swap_open = False
        intent = InvocationState.INTENT.value
        self._open = [i for i in self._open if i.state == intent]
        return list(self._open)

    def invocation_objects(self, ids: Iterable[uuid.UUID]) -> None:
        """Load the objects of these open invocations and of their tasks (in one statement),
        to record their results."""
        missing = [i for i in ids if i not in self._invocations]
        for invocation, task in self.repo.invocations_by_id(missing) if missing else ():
            self._invocations[invocation.id] = invocation
            self._objects.setdefault(task.id, task)
            self._swap_open = True

    # -- the tick -------------------------------------------------------------------------
    def record(self, ctx: StepContext) -> tuple[list[Run], tuple[list[int], list[float]] | None]:
        """Record the results that arrived; return the runs for the learn step and, for a
        training job that completed rounds, their stage positions and every round's loss."""
        self._now = ctx.now
        started = lifecycle.start_job(job_view(self.job), ctx.now)
        if started is not None:
            self.job.status = JobStatus.RUNNING.value
            self.job.started_at = started.at
            stamp(self.job, started.at)
        if not ctx.results:
            return [], None
        arrived = [i for i in self.open_invocations() if i.id in ctx.results]
        self.invocation_objects(i.id for i in arrived)
        tasks = {task.id: task for task in self.unfinished_tasks()}
        tasks |= self.task_objects(i.task_id for i in arrived if i.task_id in tasks)
        runs, touched = [], set()
        for invocation in self.open_invocations():
            result = ctx.results.get(invocation.id)
            if result is None:
                continue
            task = tasks.get(invocation.task_id)
            if task is None:  # an intent of a finished task: not expected, but read them all
                tasks = {task.id: task for task in self.tasks()}
                task = tasks[invocation.task_id]
            self._record(invocation, task, result, ctx)
            # the spend read at the tick's start, plus this bill: no second sum of the ledger
            self.repo.add_spend(
                self.job.id, invocation.compute_cost_usd, invocation.request_cost_usd
            )
            touched.add(task.stage_id)
            if invocation.outcome == InvocationOutcome.OK.value and invocation.duration_ms:
                runs.append(
                    Run(
                        self.job.id,
                        task.shape,
                        invocation.memory_mb,
                        invocation.duration_ms,
                        (task.epoch_to or 0) - (task.epoch_from or 0),
                        invocation.cpu_ms,
                        invocation.init_ms is not None,
                    )
                )
        self.repo.add_observations(self._observations)
        self._observations = []
        self.repo.flush()
        if self.spec.kind != "training":
            return runs, None
        stages = self.repo.stages(self.job.id)
        if not any(
            stage.id in touched
            and all(
                t.status == WorkStatus.SUCCEEDED.value
                for t in tasks.values()
                if t.stage_id == stage.id
            )
            for stage in stages
            if stage.kind == StageKind.ROUND.value
        ):
            return runs, None  # no round can have completed: spare reading every task
        tasks = {task.id: task for task in self.tasks()}
        completed = [
            stage.position
            for stage in stages
            if stage.id in touched
            and stage.kind == StageKind.ROUND.value
            and all(
                t.status == WorkStatus.SUCCEEDED.value
                for t in tasks.values()
                if t.stage_id == stage.id
            )
        ]
        if not completed:
            return runs, None
        return runs, (completed, list(_round_losses(stages, list(tasks.values()))))

    def advance(self, ctx: StepContext) -> None:
        """Move the job on: read its snapshot, let ``lifecycle.step`` decide, write the
        changes."""
        self._now = ctx.now
        stages = self.repo.stages(self.job.id)
        open_invocations = self.open_invocations()
        stage_views, task_views = views(stages, self.unfinished_tasks(), light=True)

        def every_task() -> tuple[TaskView, ...]:
            return tuple(views(stages, self.tasks())[1])

        capped = self.job.max_cost_usd is not None
        snapshot = Snapshot(
            job_view(self.job),
            tuple(stage_views),
            tuple(task_views),
            tuple(OpenInvocation(i.id, i.task_id, i.memory_mb) for i in open_invocations),
            self.repo.spent_usd(self.job.id) if capped else None,
            lambda: self._evidence(ctx.now),
            every_task,
            lambda: self.repo.spent_usd(self.job.id),
        )
        settings = StepSettings(self.spec, ctx.in_flight_limit, ctx.stage_overhead_s)
        changes = lifecycle.step(snapshot, self.workflow, self.policy, ctx.now, settings)
        rows = self.tasks() if self._tasks is not None else self.unfinished_tasks()
        self._apply(changes, stages, rows, ctx.now)
        self.repo.flush()

    def _evidence(self, now: datetime) -> Evidence:
        predictors = {
            name: {"state": row.state, "observations": row.observations}
            for (_, name), row in self.repo.predictor_states([job_scope(self.job.id)]).items()
        }
        # what the tenant's earlier jobs measured of the same work ("prior:<shape>")
        predictors |= priors.lookup(
            self.repo.session, self.job.tenant_id, self.spec, self.job.id, now
        )
        samples = tuple(self.repo.samples(self.job.id))
        return Evidence(samples, predictors, oom_floors(_memory_runs(samples)))

    # -- writing the changes --------------------------------------------------------------
    def _apply(
        self,
        changes: list[Change],
        stages: list[Stage],
        tasks: list[Task | TaskRow],
        now: datetime,
    ) -> None:
        by_position = {stage.position: stage for stage in stages}
        positions = {stage.id: stage.position for stage in stages}
        by_ref = {(positions[t.stage_id], t.key): t for t in tasks}
        # the tasks these changes write to, as objects (the others stay rows)
        written: set[tuple[int, str]] = set()
        for change in changes:
            if isinstance(change, MemoryDecided):
                written.update((change.position, key) for key in change.memory)
            elif isinstance(change, TaskLaunched):
                written.add(change.ref)
            elif isinstance(change, JobEnded):
                written.update(change.cancelled_tasks)
        to_load = {ref: by_ref[ref].id for ref in written if isinstance(by_ref.get(ref), TaskRow)}
        if to_load:
            objects = self.task_objects(to_load.values())
            by_ref |= {ref: objects[task_id] for ref, task_id in to_load.items()}
        unflushed = False
        for change in changes:
            if isinstance(change, StageClosed):
                stage = by_position[change.position]
                stage.status = change.status.value
                stage.finished_at = change.at
            elif isinstance(change, StageOpened):
                plan = change.plan
                stage = Stage(
                    id=new_id(),
                    job_id=self.job.id,
                    position=plan.position,
                    name=plan.name,
                    kind=plan.kind.value,
                    round=plan.round,
                    status=WorkStatus.RUNNING.value,
                    planned_memory_mb=change.planned_memory_mb,
                    started_at=change.at,
                    created_at=self._at(),
                )
                self.repo.add(stage)
                self.repo.flush()
                by_position[plan.position] = stage
                stages.append(stage)
            elif isinstance(change, MemoryChange):
                state = AllocationState.VETOED if change.vetoed else AllocationState.INTENT
                stage_id = by_position[change.position].id
                self._allocate(stage_id, change.shape, change.from_mb, change.decision, state=state)
            elif isinstance(change, TaskOpened):
                plan = change.plan
                task = Task(
                    id=new_id(),
                    job_id=self.job.id,
                    stage_id=by_position[change.position].id,
                    key=plan.key,
                    shape=plan.shape,
                    worker=plan.worker,
                    status=WorkStatus.PENDING.value,
                    params=plan.params,
                    function_name=self.function_name,
                    memory_mb=change.memory_mb,
                    architecture=change.architecture,
                    epoch_from=plan.epoch_from,
                    epoch_to=plan.epoch_to,
                    checkpoint_in=change.checkpoint_in,
                    attempts=0,
                )
                task.created_at = task.updated_at = self._at()
                self.repo.add(task)
                by_ref[(change.position, plan.key)] = task
                unflushed = True
            elif isinstance(change, MemoryDecided):
                stage = by_position[change.position]
                stage.planned_memory_mb = change.planned_memory_mb
                for key, memory_mb in change.memory.items():
                    task = by_ref[(change.position, key)]
                    task.memory_mb = memory_mb
                    task.architecture = change.architecture.get(key)
                    stamp(task, self._at())
            elif isinstance(change, TaskLaunched):
                if unflushed:
                    self.repo.flush()
                    unflushed = False
                self._launch(by_ref[change.ref], change)
            elif isinstance(change, JobEnded):
                apply_job_end(self.job, change, by_position.values(), by_ref.values())
            elif isinstance(change, WakeUp):
                self.wake_at = min(self.wake_at or change.at, change.at)
            else:  # pragma: no cover - a change type without a writer is a bug
                raise TypeError(f"no writer for {change!r}")
        if unflushed:
            self.repo.flush()

    def _launch(self, task: Task, change: TaskLaunched) -> None:
        task.attempts = change.attempt
        task.status = WorkStatus.RUNNING.value
        stamp(task, self._at())
        self.intents += 1
        self.repo.add(
            Invocation(
                job_id=self.job.id,
                stage_id=task.stage_id,
                task_id=task.id,
                attempt=change.attempt,
                function_name=self.function_name,
                memory_mb=change.memory_mb,
                # the policy's choice for this task (architecture "auto"), else the spec's
                architecture=task.architecture or self.spec.workload.base_architecture,
                state=InvocationState.INTENT.value,
                created_at=self._at(),
            )
        )

    def _allocate(
        self,
        stage_id,
        shape,
        from_mb,
        decision: MemoryDecision,
        task_id=None,
        state: AllocationState = AllocationState.INTENT,
    ) -> None:
        self.intents += state is AllocationState.INTENT
        self.repo.add(
            Allocation(
                job_id=self.job.id,
                stage_id=stage_id,
                task_id=task_id,
                function_name=self.function_name,
                from_mb=from_mb,
                to_mb=decision.memory_mb,
                state=state.value,
                rule=decision.rule,
                reason=decision.reason,
                predicted_gain_usd=decision.predicted_gain_usd,
                detail={"shape": shape}
                | ({"architecture": decision.architecture} if decision.architecture else {}),
                created_at=self._at(),
            )
        )

    # -- results ------------------------------------------------------------------------
    def _record(self, invocation: Invocation, task: Task, result: InvokeResult, ctx: StepContext):
        """The invocation's ledger figures, then what it means for its task (lifecycle)."""
        report = result.report
        invocation.started_at = ctx.to_datetime(result.started_at)
        invocation.finished_at = ctx.to_datetime(result.finished_at)
        invocation.request_id = result.request_id
        invocation.error = result.error_message
        # Priced at the architecture the function really ran on; the spec's claim only when
        # the platform could not tell.
        invocation.architecture = result.architecture or invocation.architecture
        outcome = _OUTCOMES[result.error]
        if result.ambiguous:
            # The call may have run: the task is retried as a new attempt, and this one is
            # billed its request now and its duration once the reconcile step finds its REPORT.
            # It never counts as a success, so a retry cannot record the task twice.
            invocation.state = InvocationState.AMBIGUOUS.value
            outcome = InvocationOutcome.UNHANDLED
        else:
            invocation.state = InvocationState.DONE.value
        bill = pricing.bill(result, invocation.architecture)
        invocation.compute_cost_usd = bill.compute_usd
        invocation.request_cost_usd = bill.request_usd
        invocation.bill_state = (BillState.FINAL if bill.reported else BillState.PENDING).value
        invocation.outcome = outcome.value
        if report is not None:
            invocation.duration_ms = report.duration_ms
            invocation.billed_ms = report.billed_ms
            invocation.init_ms = report.init_ms
            invocation.max_memory_used_mb = report.max_memory_used_mb
            invocation.cpu_ms = report.cpu_ms
            invocation.cold_start = report.cold
            self._observe(task, invocation, report, ctx.now)

        ok = outcome is InvocationOutcome.OK
        change = lifecycle.on_result(
            task_view(task, 0, light=True),  # its status, attempts and memory: no JSON column
            outcome,
            payload=result.payload if ok else None,
            problem=responses.problem(result.payload, invocation, task) if ok else None,
            invocation_memory_mb=invocation.memory_mb,
            peak_mb=invocation.max_memory_used_mb,
            earlier_outcomes=[] if ok else self.repo.task_outcomes(task.id),
            shape_memory=ShapeMemory.of(task.shape, _memory_runs(self.repo.samples(self.job.id)))
            if outcome is InvocationOutcome.OUT_OF_MEMORY
            else None,
            retry=ctx.retry,
            rng=ctx.rng,
            now=ctx.now,
            contract=CONTRACT,
            function_name=invocation.function_name,
        )
        task.status = lifecycle.task_status(change).value
        stamp(task, self._at())
        if isinstance(change, TaskRecorded):
            task.checkpoint_out = change.checkpoint_out
            task.result = change.result
        elif isinstance(change, TaskFailed):
            task.failure_reason = change.reason
            if change.handled:
                invocation.outcome = InvocationOutcome.HANDLED.value
            if change.contract:
                invocation.error = change.reason
        elif isinstance(change, TaskRetried):
            task.not_before = change.not_before
            if change.memory_change is not None:
                self._allocate(
                    task.stage_id, task.shape, task.memory_mb, change.memory_change, task_id=task.id
                )
            task.memory_mb = change.memory_mb

    def _observe(self, task: Task, invocation: Invocation, report, now: datetime) -> None:
        """The REPORT's figures as observations, written with the tick's others at the end of
        ``record`` (``LoopRepository.add_observations``)."""
        series = f"{self.job.id}/{task.shape}"
        for metric, value in (
            ("duration_ms", report.duration_ms),
            ("max_memory_used_mb", report.max_memory_used_mb),
        ):
            self._observations.append(
                {
                    "job_id": self.job.id,
                    "series": series,
                    "metric": metric,
                    "value": float(value),
                    "memory_mb": invocation.memory_mb,
                    "source": "report",
                    "observed_at": invocation.finished_at or now,
                    "recorded_at": self._at(),
                }
            )


def _memory_runs(samples):
    """(shape, memory, peak, outcome) of every finished run: what retry.py reads."""
    return [(row.shape, row.memory_mb, row.peak_mb, row.outcome) for row in samples]


def _round_losses(stages: list[Stage], tasks: list[Task]) -> tuple[float, ...]:
    """The loss of every round so far (the mean of its workers'), up to the first one that has
    not finished."""
    rounds = []
    for stage in stages:
        if stage.kind != StageKind.ROUND.value:
            continue
        own = [t for t in tasks if t.stage_id == stage.id]
        if not own or any(t.status != WorkStatus.SUCCEEDED.value for t in own):
            break
        rounds.append(fmean((t.result or {}).get("loss") or 0.0 for t in own))
    return tuple(rounds)
