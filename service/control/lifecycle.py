"""A job over its life, as pure code: the repository hands it a frozen snapshot of a job, and it
returns typed changes — task recorded, retried or failed; stage opened or closed; memory
decided; task launched; job ended with its reason. ``JobStepper`` applies them to rows.

Every status change of a job, a stage or a task goes through the named transition rules below
(``start_job``, ``launch``, ``on_result``, ``close_stage``, ``end_job``); the control loop's
step (``step``), its failure path (``Controller._fail``) and the user's cancel
(``JobService.cancel``) all end a job through ``end_job``, so an ended job never leaves a stage
or a task open and always says whether it missed its deadline.

Pure: time comes in as ``now``, randomness as a seeded ``random.Random``; no clock, no I/O, no
SQLAlchemy. What a decision needs beyond the snapshot's rows (finished runs, learned
predictors, out-of-memory floors) comes through ``Snapshot.evidence``, which ``step`` calls at
most once and only when it decides or admits something, so a steady tick reads none of it.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from service.control.admission import Admission, CostModel
from service.control.admission import Run as AdmissionRun
from service.control.retry import GiveUp, RetryPolicy, ShapeMemory, after_failure
from service.domain.enums import InvocationOutcome, JobStatus, StageKind, WorkStatus
from service.policies.base import MemoryDecision, Observations, Policy, PolicyContext, Sample
from service.spec import JobSpec
from service.workflows.plan import (
    Finished,
    StagePlan,
    StageResult,
    TaskOutcome,
    TaskPlan,
    Workflow,
)
from service.workflows.training import round_loss

# -- the transition rules -------------------------------------------------------------------

TERMINAL_WORK = frozenset({WorkStatus.SUCCEEDED, WorkStatus.FAILED, WorkStatus.CANCELLED})
TERMINAL = tuple(status.value for status in TERMINAL_WORK)

JOB_TRANSITIONS: Mapping[JobStatus, frozenset[JobStatus]] = {
    JobStatus.PENDING: frozenset({JobStatus.RUNNING, JobStatus.FAILED, JobStatus.CANCELLED}),
    JobStatus.RUNNING: frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED}),
}
STAGE_TRANSITIONS: Mapping[WorkStatus, frozenset[WorkStatus]] = {
    WorkStatus.PENDING: frozenset({WorkStatus.RUNNING, WorkStatus.CANCELLED}),
    WorkStatus.RUNNING: frozenset(TERMINAL_WORK),
}
TASK_TRANSITIONS: Mapping[WorkStatus, frozenset[WorkStatus]] = {
    # launched; failed without a run (none today); cancelled with its job
    WorkStatus.PENDING: frozenset({WorkStatus.RUNNING, WorkStatus.FAILED, WorkStatus.CANCELLED}),
    # recorded; retried (back to pending); given up; cancelled with its job
    WorkStatus.RUNNING: frozenset({WorkStatus.PENDING, *TERMINAL_WORK}),
}


class IllegalTransition(RuntimeError):
    """A status change that the rules do not allow (a bug in the caller)."""


def _check(what: str, rules: Mapping, old: str, new: Any) -> None:
    allowed = rules.get(type(new)(old), frozenset())
    if new not in allowed:
        raise IllegalTransition(f"{what}: {old} → {new.value} is not a transition")


# -- what the repository hands over ---------------------------------------------------------


@dataclass(frozen=True)
class JobView:
    id: uuid.UUID
    status: str
    started_at: datetime | None
    deadline_s: float
    max_cost_usd: Decimal | None
    cancel_requested: bool = False


@dataclass(frozen=True)
class StageView:
    id: uuid.UUID | None  # None: opened by this step, not written yet
    position: int
    name: str
    kind: str
    status: str
    round: int | None = None
    planned_memory_mb: int | None = None


@dataclass(frozen=True)
class TaskView:
    id: uuid.UUID | None  # None: opened by this step, not written yet
    stage_position: int
    key: str
    shape: str
    status: str
    params: dict[str, Any] = field(default_factory=dict)
    memory_mb: int | None = None
    epoch_from: int | None = None
    epoch_to: int | None = None
    worker: int | None = None
    attempts: int = 0
    not_before: datetime | None = None
    checkpoint_out: str | None = None
    result: dict[str, Any] | None = None
    failure_reason: str | None = None

    @property
    def epochs(self) -> int:
        return (self.epoch_to or 0) - (self.epoch_from or 0)

    @property
    def ref(self) -> tuple[int, str]:
        return (self.stage_position, self.key)


@dataclass(frozen=True)
class OpenInvocation:
    id: uuid.UUID
    task_id: uuid.UUID
    memory_mb: int


class SampleRow(NamedTuple):
    """One finished, billed invocation with its task's shape and epochs."""

    shape: str
    stage_position: int
    memory_mb: int
    duration_ms: float
    init_ms: float | None
    peak_mb: float | None
    epoch_from: int | None
    epoch_to: int | None
    outcome: str | None
    architecture: str = "x86_64"  # the one the invocation ran on
    cpu_ms: float | None = None  # CPU time it used, when the platform reported it

    @property
    def epochs(self) -> int:
        return (self.epoch_to or 0) - (self.epoch_from or 0)

    @property
    def per_epoch_ms(self) -> float:
        """The run's duration per epoch (a run of no epochs counts as one)."""
        return self.duration_ms / max(1, self.epochs)


@dataclass(frozen=True)
class Evidence:
    samples: tuple[SampleRow, ...] = ()  # oldest first
    predictors: dict[str, dict] = field(default_factory=dict)  # name -> state, observations
    oom_floors: dict[str, int] = field(default_factory=dict)  # shape -> memory it was raised to


@dataclass(frozen=True)
class Snapshot:
    job: JobView
    stages: tuple[StageView, ...]  # by position
    tasks: tuple[TaskView, ...]
    open_invocations: tuple[OpenInvocation, ...]
    spent_usd: Decimal | None  # None: read through ``read_spend`` if a decision needs it
    evidence: Callable[[], Evidence] = Evidence  # read only when a decision is due
    # None: ``tasks`` is every task of the job; else ``tasks`` are the unfinished ones (the
    # current stage's) and this reads every task, once a stage ends or a decision is due
    every_task: Callable[[], tuple[TaskView, ...]] | None = None
    read_spend: Callable[[], Decimal] | None = None


@dataclass(frozen=True)
class StepSettings:
    spec: JobSpec
    in_flight_limit: int  # invocations this job may have open at once
    stage_overhead_s: float = 1.0  # what the loop adds between stages (for the policies)


# -- the changes ----------------------------------------------------------------------------


@dataclass(frozen=True)
class JobStarted:
    at: datetime


@dataclass(frozen=True)
class TaskRecorded:
    """The task succeeded with the handler's metrics and checkpoint."""

    result: dict[str, Any]
    checkpoint_out: str | None


@dataclass(frozen=True)
class TaskRetried:
    not_before: datetime
    memory_mb: int
    memory_change: MemoryDecision | None  # an out-of-memory retry raises the task's memory


@dataclass(frozen=True)
class TaskFailed:
    reason: str
    # the handler answered (an error it reported, or a response off the contract): the
    # invocation's outcome becomes "handled"; a contract violation is also its error
    handled: bool = False
    contract: bool = False


@dataclass(frozen=True)
class StageClosed:
    position: int
    status: WorkStatus
    at: datetime


@dataclass(frozen=True)
class StageOpened:
    plan: StagePlan
    at: datetime
    planned_memory_mb: int | None


@dataclass(frozen=True)
class TaskOpened:
    position: int
    plan: TaskPlan
    memory_mb: int | None  # None: waits for a later decision
    checkpoint_in: str | list[str] | None
    architecture: str | None = None  # the policy's choice (architecture "auto"), else None


@dataclass(frozen=True)
class MemoryDecided:
    """Memory of tasks that waited for a decision, and the stage's planned memory."""

    position: int
    memory: dict[str, int]
    planned_memory_mb: int | None
    architecture: dict[str, str] = field(default_factory=dict)  # task key -> the policy's choice


@dataclass(frozen=True)
class MemoryChange:
    """An allocation row: an intent to change a shape's memory, or a vetoed proposal."""

    position: int
    shape: str
    from_mb: int | None
    decision: MemoryDecision
    vetoed: bool = False


@dataclass(frozen=True)
class TaskLaunched:
    """An invocation intent for the task's next attempt."""

    ref: tuple[int, str]
    attempt: int
    memory_mb: int


@dataclass(frozen=True)
class WakeUp:
    """The job's next decision is due at ``at`` even if no result arrives before (tasks that
    wait for a pilot are released then): a driver that jumps its clock from one completion to
    the next stops there too. Not written anywhere."""

    at: datetime


@dataclass(frozen=True)
class JobEnded:
    status: JobStatus
    reason: str | None
    at: datetime
    started_at: datetime | None
    deadline_missed: bool | None
    result: dict[str, Any] | None = None  # the workflow's, when it finished
    cancelled_stages: tuple[int, ...] = ()  # positions
    cancelled_tasks: tuple[tuple[int, str], ...] = ()  # (stage position, key)


Change = (
    StageClosed
    | StageOpened
    | TaskOpened
    | MemoryDecided
    | MemoryChange
    | TaskLaunched
    | JobEnded
    | WakeUp
)


# -- the rules ------------------------------------------------------------------------------


def start_job(job: JobView, now: datetime) -> JobStarted | None:
    """A pending job starts running at its first tick."""
    if job.status != JobStatus.PENDING.value:
        return None
    _check("job", JOB_TRANSITIONS, job.status, JobStatus.RUNNING)
    return JobStarted(now)


def end_job(
    job: JobView,
    status: JobStatus,
    reason: str | None,
    now: datetime,
    stages: tuple[StageView, ...] | list[StageView],
    tasks: tuple[TaskView, ...] | list[TaskView],
    *,
    result: dict[str, Any] | None = None,
    started: bool = False,
) -> JobEnded:
    """The one way a job ends: every stage and task still open is cancelled, and whether the
    deadline was missed is recorded (unknown for a job that never started). ``started``: count
    the job as started now if it had not (a job the loop failed on its first tick)."""
    _check("job", JOB_TRANSITIONS, job.status, status)
    started_at = job.started_at or (now if started else None)
    missed = (now - started_at).total_seconds() > job.deadline_s if started_at else None
    return JobEnded(
        status,
        reason,
        now,
        started_at,
        missed,
        result,
        tuple(s.position for s in stages if s.status not in TERMINAL),
        tuple(t.ref for t in tasks if t.status not in TERMINAL),
    )


def launch(task: TaskView) -> WorkStatus:
    _check(f"task {task.key}", TASK_TRANSITIONS, task.status, WorkStatus.RUNNING)
    return WorkStatus.RUNNING


def close_stage(stage: StageView, tasks: list[TaskView], now: datetime) -> StageClosed:
    """A stage whose tasks have all ended succeeded if any of them did."""
    ok = any(t.status == WorkStatus.SUCCEEDED.value for t in tasks)
    status = WorkStatus.SUCCEEDED if ok else WorkStatus.FAILED
    _check(f"stage {stage.name}", STAGE_TRANSITIONS, stage.status, status)
    return StageClosed(stage.position, status, now)


def task_status(change: TaskRecorded | TaskRetried | TaskFailed) -> WorkStatus:
    if isinstance(change, TaskRecorded):
        return WorkStatus.SUCCEEDED
    if isinstance(change, TaskRetried):
        return WorkStatus.PENDING
    return WorkStatus.FAILED


def on_result(
    task: TaskView,
    outcome: InvocationOutcome,
    *,
    payload: dict[str, Any] | None,
    problem: str | None,
    invocation_memory_mb: int,
    peak_mb: float | None,
    earlier_outcomes: list[str | None],
    shape_memory: ShapeMemory | None = None,
    retry: RetryPolicy,
    rng: random.Random,
    now: datetime,
    contract: str,
    function_name: str,
) -> TaskRecorded | TaskRetried | TaskFailed:
    """What one finished invocation means for its task. ``problem``: how an OK response breaks
    the handler contract (None when it follows it); ``earlier_outcomes``: the outcomes of the
    task's invocations so far, this one included."""
    if outcome is InvocationOutcome.OK:
        assert payload is not None
        if problem is not None:
            # A contract violation does not fix itself: the task fails at once.
            reason = f"response from {function_name} does not follow {contract}: {problem}"
            change: TaskRecorded | TaskRetried | TaskFailed = TaskFailed(
                reason, handled=True, contract=True
            )
        elif "error" in payload:
            error = payload["error"]
            change = TaskFailed(f"{error['type']}: {error['message']}", handled=True)
        else:
            metrics = payload["metrics"]
            change = TaskRecorded(
                {
                    "loss": metrics.get("loss"),
                    "score": metrics.get("score"),
                    "epochs_done": payload["epochs_done"],
                    "checkpoint": payload["checkpoint"],
                    "peak_memory_mb": payload["peak_memory_mb"],
                },
                payload["checkpoint"],
            )
    else:
        decision = after_failure(
            outcome,
            attempts=task.attempts,
            timeouts=earlier_outcomes.count(InvocationOutcome.TIMEOUT.value),
            throttles=earlier_outcomes.count(InvocationOutcome.THROTTLED.value),
            memory_mb=invocation_memory_mb,
            peak_mb=peak_mb,
            policy=retry,
            rng=rng,
            ooms=earlier_outcomes.count(InvocationOutcome.OUT_OF_MEMORY.value),
            shape=shape_memory,
        )
        if isinstance(decision, GiveUp):
            change = TaskFailed(decision.reason)
        else:
            raised = decision.memory_mb != task.memory_mb
            bump = MemoryDecision(decision.memory_mb, "oom-floor", decision.reason)
            change = TaskRetried(
                now + timedelta(seconds=decision.delay_s),
                decision.memory_mb,
                bump if raised else None,
            )
    _check(f"task {task.key}", TASK_TRANSITIONS, task.status, task_status(change))
    return change


# -- one step of a job ----------------------------------------------------------------------


def step(
    snapshot: Snapshot,
    workflow: Workflow,
    policy: Policy,
    now: datetime,
    settings: StepSettings,
) -> list[Change]:
    """Move the job on: cancellation, budget cap, close the finished stage, open the next one
    with the policy's memory, decide tasks that waited, launch what may run."""
    return _Step(snapshot, workflow, policy, now, settings).run()


class _Step:
    def __init__(self, snapshot, workflow, policy, now, settings) -> None:
        self.snapshot: Snapshot = snapshot
        self.job: JobView = snapshot.job
        self.workflow: Workflow = workflow
        self.policy: Policy = policy
        self.now: datetime = now
        self.settings: StepSettings = settings
        self.stages: list[StageView] = list(snapshot.stages)
        self.tasks: list[TaskView] = list(snapshot.tasks)
        self.changes: list[Change] = []
        self._evidence: Evidence | None = None
        self._every = snapshot.every_task is None
        self._spent = snapshot.spent_usd

    def load_all(self) -> None:
        """Every task of the job, before a stage ends or a decision reads the stages before."""
        if not self._every:
            assert self.snapshot.every_task is not None
            self.tasks = list(self.snapshot.every_task())
            self._every = True

    def spent(self) -> Decimal:
        if self._spent is None:
            assert self.snapshot.read_spend is not None
            self._spent = self.snapshot.read_spend()
        return self._spent

    def evidence(self) -> Evidence:
        if self._evidence is None:
            self._evidence = self.snapshot.evidence()
        return self._evidence

    def own(self, position: int) -> list[TaskView]:
        return [t for t in self.tasks if t.stage_position == position]

    def run(self) -> list[Change]:
        job, snapshot = self.job, self.snapshot
        if job.cancel_requested:
            if not snapshot.open_invocations:
                self.end(JobStatus.CANCELLED, "cancelled by user")
            return self.changes
        if job.max_cost_usd is not None and (spent := self.spent()) >= job.max_cost_usd:
            if not snapshot.open_invocations:
                reason = f"budget cap reached: spent ${spent:.6f} of ${job.max_cost_usd:.6f}"
                self.end(JobStatus.FAILED, reason)
            return self.changes

        while True:
            current = self.stages[-1] if self.stages else None
            current_tasks = self.own(current.position) if current is not None else []
            running = current is not None and current.status not in TERMINAL
            if running and any(t.status not in TERMINAL for t in current_tasks):
                waiting = [t for t in current_tasks if t.memory_mb is None]
                decided = [t for t in current_tasks if t.memory_mb is not None]
                if waiting and (
                    self.pilots_measured(current, decided) or self.waited_enough(current, waiting)
                ):
                    self.load_all()
                    waiting = [t for t in self.own(current.position) if t.memory_mb is None]
                    self.decide_waiting(current, waiting)
                break
            self.load_all()  # a stage ends, or none is open: the stages before are read
            if running:
                current_tasks = self.own(current.position)
                closed = close_stage(current, current_tasks, self.now)
                self.changes.append(closed)
                self.stages[-1] = replace(current, status=closed.status.value)
            next_step = self.workflow.next_stage(self.history())
            if isinstance(next_step, Finished):
                self.finish(next_step)
                return self.changes
            self.open_stage(next_step)

        self.launch(current.position if current is not None else None)
        return self.changes

    # -- stages ---------------------------------------------------------------------------
    def history(self) -> list[StageResult]:
        return _history(self.stages, self.tasks)

    def open_stage(self, plan: StagePlan) -> None:
        stage = StageView(
            None,
            plan.position,
            plan.name,
            plan.kind.value,
            WorkStatus.RUNNING.value,
            round=plan.round,
        )
        self.stages.append(stage)
        memory, planned, changes, architecture = self.decide(stage, plan, must_decide_all=False)
        self.stages[-1] = replace(stage, planned_memory_mb=planned)
        self.changes.append(StageOpened(plan, self.now, planned))
        self.changes.extend(changes)
        by_ref = {t.ref: t for t in self.tasks}
        for task in plan.tasks:
            checkpoint_in: str | list[str] | None = None
            if task.resume is not None:
                checkpoint_in = by_ref[task.resume].checkpoint_out
            elif plan.resume_model is not None:
                checkpoint_in = [
                    t.checkpoint_out for t in self.own(plan.resume_model) if t.checkpoint_out
                ]
            self.changes.append(
                TaskOpened(
                    plan.position,
                    task,
                    memory.get(task.key),
                    checkpoint_in,
                    architecture.get(task.key),
                )
            )
            self.tasks.append(
                TaskView(
                    None,
                    plan.position,
                    task.key,
                    task.shape,
                    WorkStatus.PENDING.value,
                    params=task.params,
                    memory_mb=memory.get(task.key),
                    epoch_from=task.epoch_from,
                    epoch_to=task.epoch_to,
                    worker=task.worker,
                )
            )

    def pilots_measured(self, stage: StageView, decided: list[TaskView]) -> bool:
        """Have the tasks decided first (the pilots the others wait for) measured what they
        can? Each has finished — or has run out of memory and is retrying above the raised
        floor while another run of its shape in this stage has finished: that run's time and
        peak are known, and the failure gave the floor, so the waiting tasks need not wait for
        the retry as well (under a tight deadline that is a whole extra run on the stage's
        critical path). (``decided`` may hold the unfinished tasks only: what finished is read
        from the stage's runs.)"""
        unfinished = [t for t in decided if t.status not in TERMINAL]
        if not unfinished:
            return True
        evidence = self.evidence()
        measured = {
            row.shape
            for row in evidence.samples
            if row.stage_position == stage.position and row.outcome == InvocationOutcome.OK.value
        }
        floors = evidence.oom_floors
        return all(
            t.shape in measured and t.shape in floors and (t.memory_mb or 0) >= floors[t.shape]
            for t in unfinished
        )

    def waited_enough(self, stage: StageView, waiting: list[TaskView]) -> bool:
        """Have the tasks waiting for a pilot waited as long as the policy lets them
        (``Policy.release_waiting_at``; a policy without it lets them wait for the pilot)?
        If not, the time they are released at is a ``WakeUp``."""
        release_at = getattr(self.policy, "release_waiting_at", None)
        started = self.job.started_at
        if release_at is None or started is None:
            return False
        at = release_at(self.context(stage, _plan_of(stage, waiting), must_decide_all=False))
        if at is None:
            return False
        due = started + timedelta(seconds=at)
        if self.now >= due:
            return True
        self.changes.append(WakeUp(due))
        return False

    def decide_waiting(self, stage: StageView, waiting: list[TaskView]) -> None:
        """Tasks the policy left undecided when the stage opened (e.g. behind a pilot): decide
        them now that the decided ones have finished."""
        plan = _plan_of(stage, waiting)
        memory, planned, changes, architecture = self.decide(stage, plan, must_decide_all=True)
        self.changes.extend(changes)
        self.changes.append(MemoryDecided(stage.position, memory, planned, architecture))
        self.stages[-1] = replace(stage, planned_memory_mb=planned)
        self.tasks = [
            replace(t, memory_mb=memory[t.key])
            if t.stage_position == stage.position and t.key in memory and t.memory_mb is None
            else t
            for t in self.tasks
        ]

    def decide(
        self, stage: StageView, plan: StagePlan, *, must_decide_all: bool
    ) -> tuple[dict[str, int], int | None, list[MemoryChange], dict[str, str]]:
        """The policy's memory per task, the stage's planned memory (the largest), the
        memory changes to record, and the architecture of the tasks the policy chose one for."""
        context = self.context(stage, plan, must_decide_all=must_decide_all)
        observations = context.observations
        decisions = self.policy.allocate(context)
        if must_decide_all and set(decisions) != {t.key for t in plan.tasks}:
            raise RuntimeError(f"policy {self.policy.name} left tasks of {plan.name} undecided")
        memory, changes = _memory_of(plan, decisions, observations)
        planned = [m for m in (stage.planned_memory_mb, *memory.values()) if m is not None]
        architecture = {
            key: decision.architecture
            for key, decision in decisions.items()
            if decision.architecture is not None
        }
        return memory, max(planned) if planned else None, changes, architecture

    def context(self, stage: StageView, plan: StagePlan, *, must_decide_all: bool):
        """What the policy is told of ``plan`` (tasks of ``stage``) and the job so far."""
        return PolicyContext(
            spec=self.settings.spec,
            stage=plan,
            outline=self.workflow.outline_after(plan.position),
            observations=self.observations(),
            now=self.now.timestamp(),
            stage_overhead_s=self.settings.stage_overhead_s,
            must_decide_all=must_decide_all,
        )

    def observations(self) -> Observations:
        evidence = self.evidence()
        samples = tuple(
            Sample(
                shape=row.shape,
                stage=row.stage_position,
                memory_mb=row.memory_mb,
                duration_ms=row.duration_ms,
                init_ms=row.init_ms,
                peak_mb=float(row.peak_mb) if row.peak_mb is not None else None,
                epochs=row.epochs,
                ok=row.outcome == InvocationOutcome.OK.value,
                architecture=row.architecture,
                cpu_ms=row.cpu_ms,
            )
            for row in evidence.samples
            if row.outcome != InvocationOutcome.THROTTLED.value
        )
        # A shape's current memory is what most of its tasks ran at in the latest stage that
        # had it (ties: the larger); rounds_since_change counts the stages since it changed.
        current: dict[str, int] = {}
        runs: dict[str, int] = {}
        for stage in sorted(self.stages, key=lambda s: s.position):
            sizes = Counter((t.shape, t.memory_mb) for t in self.own(stage.position) if t.memory_mb)
            for shape in {shape for shape, _ in sizes}:
                majority = max(
                    ((count, memory) for (s, memory), count in sizes.items() if s == shape)
                )[1]
                if current.get(shape) == majority and stage.status in TERMINAL:
                    runs[shape] = runs.get(shape, 0) + 1
                else:
                    runs[shape] = 1 if stage.status in TERMINAL else 0
                current[shape] = majority
        done = [s for s in self.stages if s.status in TERMINAL]
        losses = tuple(
            loss
            for result in self.history()
            if result.plan.kind == StageKind.ROUND.value
            and (loss := round_loss(result)) is not None
        )
        started = self.job.started_at
        return Observations(
            elapsed_s=(self.now - started).total_seconds() if started else 0.0,
            spent_usd=float(self.spent()),
            samples=samples,
            predictors=evidence.predictors,
            oom_floors=evidence.oom_floors,
            current_mb=current,
            losses=losses,
            stages_done=len(done),
            rounds_since_change=runs.get("worker"),
        )

    # -- launching and ending ---------------------------------------------------------------
    def launch(self, position: int | None) -> None:
        if position is None:
            return
        budget = self.settings.in_flight_limit - len(self.snapshot.open_invocations)
        admission: Admission | None = None
        for task in self.own(position):
            if budget <= 0:
                return
            if task.status != WorkStatus.PENDING.value or task.memory_mb is None:
                continue
            if task.not_before is not None and task.not_before > self.now:
                continue
            if self.job.max_cost_usd is not None:
                admission = admission or self.admission()
                if not admission.admit(task.shape, task.memory_mb, task.epochs):
                    return  # the budget does not hold for it (now): a later tick may launch it
            launch(task)
            self.changes.append(TaskLaunched(task.ref, task.attempts + 1, task.memory_mb))
            budget -= 1

    def admission(self) -> Admission:
        """Budget admission for a job with a cap (``admission.py``)."""
        assert self.job.max_cost_usd is not None
        runs = [
            AdmissionRun(row.shape, row.memory_mb, row.duration_ms, row.init_ms, row.epochs)
            for row in self.evidence().samples
            if row.outcome == InvocationOutcome.OK.value and row.duration_ms
        ]
        admission = Admission(
            float(self.job.max_cost_usd),
            float(self.spent()),
            CostModel.of(runs, self.settings.spec.workload.base_architecture),
        )
        by_id = {task.id: task for task in self.tasks if task.id is not None}
        for invocation in self.snapshot.open_invocations:
            task = by_id.get(invocation.task_id)
            if task is not None:
                admission.hold(task.shape, invocation.memory_mb, task.epochs)
        return admission

    def finish(self, end: Finished) -> None:
        if end.ok:
            self.end(JobStatus.SUCCEEDED, None, result=end.result)
        else:
            reason = _with_causes(end.reason, self.stages, self.tasks)
            self.end(JobStatus.FAILED, reason, result=end.result)

    def end(self, status: JobStatus, reason: str | None, result: dict | None = None) -> None:
        self.changes.append(
            end_job(self.job, status, reason, self.now, self.stages, self.tasks, result=result)
        )


def _memory_of(
    plan: StagePlan, decisions: dict[str, MemoryDecision], observations: Observations
) -> tuple[dict[str, int], list[MemoryChange]]:
    """Each task's memory (never below its shape's out-of-memory floor), and one memory
    change per shape and size that changed (or, for an "auto" job, moved to another
    architecture) — plus one per vetoed proposal."""
    memory: dict[str, int] = {}
    changes: list[MemoryChange] = []
    # per shape, one decision per size (and architecture, for an "auto" job's pilots)
    by_shape: dict[str, dict[tuple[int, str], MemoryDecision]] = {}
    for task in plan.tasks:
        decision = decisions.get(task.key)
        if decision is None:
            continue
        floor = observations.oom_floors.get(task.shape)
        if floor is not None and floor > decision.memory_mb:
            decision = MemoryDecision(
                floor,
                "oom-floor",
                f"raised to the out-of-memory floor of {floor} MB",
                architecture=decision.architecture,
            )
        memory[task.key] = decision.memory_mb
        variant = (decision.memory_mb, decisions[task.key].architecture or "")
        by_shape.setdefault(task.shape, {}).setdefault(variant, decision)
    ran_on = {s.shape: s.architecture for s in observations.samples}  # each shape's latest
    for shape, sizes in sorted(by_shape.items()):
        previous = observations.current_mb.get(shape)
        recorded_vetoes = set()
        for (size, architecture), decision in sorted(sizes.items()):
            for veto in decision.vetoes:
                if (veto.rule, veto.proposed_mb) not in recorded_vetoes:
                    recorded_vetoes.add((veto.rule, veto.proposed_mb))
                    changes.append(
                        MemoryChange(
                            plan.position,
                            shape,
                            previous,
                            MemoryDecision(veto.proposed_mb, veto.rule, veto.reason),
                            vetoed=True,
                        )
                    )
            moved = architecture and architecture != ran_on.get(shape, architecture)
            if size != previous or len(sizes) > 1 or moved:
                changes.append(MemoryChange(plan.position, shape, previous, decision))
    return memory, changes


def _plan_of(stage: StageView, tasks: list[TaskView]) -> StagePlan:
    """``tasks`` of ``stage``, as a plan to decide."""
    return StagePlan(
        stage.position,
        stage.name,
        StageKind(stage.kind),
        tuple(_task_plan(t) for t in tasks),
        round=stage.round,
    )


def _task_plan(task: TaskView) -> TaskPlan:
    return TaskPlan(
        task.key,
        task.params,
        task.epoch_from or 0,
        task.epoch_to or 0,
        shape=task.shape,
        worker=task.worker,
    )


def _history(stages: list[StageView], tasks: list[TaskView]) -> list[StageResult]:
    """The workflow's view of the stages that ended, in order."""
    history = []
    for stage in stages:
        if stage.status not in TERMINAL:
            break
        own = [t for t in tasks if t.stage_position == stage.position]
        plan = StagePlan(
            stage.position,
            stage.name,
            StageKind(stage.kind),
            tuple(_task_plan(t) for t in own),
            round=stage.round,
        )
        outcomes = {
            t.key: TaskOutcome(
                t.key,
                t.status == WorkStatus.SUCCEEDED.value,
                loss=(t.result or {}).get("loss"),
                score=(t.result or {}).get("score"),
                epochs_done=(t.result or {}).get("epochs_done"),
                checkpoint=t.checkpoint_out,
            )
            for t in own
        }
        history.append(StageResult(plan, outcomes))
    return history


def _with_causes(reason: str | None, stages: list[StageView], tasks: list[TaskView]) -> str:
    """The workflow's reason, and why the tasks of the last stage failed (each distinct cause
    once, with how many tasks it hit): "every trial of rung-0 failed: timed out 2 times (27)"."""
    last = stages[-1].position if stages else None
    causes = Counter(
        t.failure_reason or "unknown"
        for t in tasks
        if t.stage_position == last and t.status == WorkStatus.FAILED.value
    )
    if not causes:
        return reason or "the workflow could not go on"
    listed = "; ".join(f"{cause} ({n})" for cause, n in causes.most_common(3))
    more = f"; {len(causes) - 3} more causes" if len(causes) > 3 else ""
    return f"{reason}: {listed}{more}"
