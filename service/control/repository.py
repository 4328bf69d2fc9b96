"""SQL the control loop needs, per job."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    String,
    and_,
    bindparam,
    case,
    func,
    insert,
    select,
    type_coerce,
    update,
)
from sqlalchemy.orm import Session, defer
from sqlalchemy.orm.attributes import set_committed_value

from service.control.lifecycle import SampleRow
from service.models import (
    Allocation,
    AllocationState,
    Invocation,
    InvocationOutcome,
    InvocationState,
    Job,
    Observation,
    PredictorState,
    Stage,
    Task,
    WorkStatus,
)
from service.models.base import Money

PRELOAD_CHUNK = 500  # job ids per IN (...) list
DISPATCH_BATCH = 1000  # rows fetched at a time when every open intent is sent again
UNFINISHED = (WorkStatus.PENDING.value, WorkStatus.RUNNING.value)
# A task's JSON columns, read only when a stage ends or a decision is made (then by the query of
# every task, which fills them in on the objects already loaded)
_TASK_JSON = (defer(Task.params), defer(Task.checkpoint_in), defer(Task.result))


@dataclass(frozen=True, slots=True)
class TaskRow:
    """An unfinished task's columns as a tick first reads them: what its light view
    (``rows.task_view``) and the launch read, without building (and tracking) an ORM object
    per task. A tick that changes a task loads its object (``JobStepper.task_objects``);
    frozen, so that no write can go to a row instead."""

    id: uuid.UUID
    job_id: uuid.UUID
    stage_id: uuid.UUID
    key: str
    shape: str
    worker: int | None
    status: str
    memory_mb: int | None
    epoch_from: int | None
    epoch_to: int | None
    attempts: int
    not_before: datetime | None
    checkpoint_out: str | None
    failure_reason: str | None


@dataclass(frozen=True, slots=True)
class InvocationRow:
    """An open intent's columns as a tick first reads them (its result not recorded yet);
    the tick that records its result loads its object (``JobStepper.invocation_objects``)."""

    id: uuid.UUID
    job_id: uuid.UUID
    task_id: uuid.UUID
    memory_mb: int
    state: str


class LoopRepository:
    def __init__(self, session: Session) -> None:
        self.session = session
        # what ``preload`` read, by kind then job; each value is handed out once
        self._preloaded: dict[str, dict[uuid.UUID, object]] = {}

    def add(self, row: object) -> None:
        self.session.add(row)

    def flush(self) -> None:
        self.session.flush()

    def add_observations(self, rows: list[dict]) -> None:
        """Insert observations (column values) in one statement, in the order given (their
        ids follow it), instead of one INSERT per ORM object."""
        if rows:
            self.session.execute(insert(Observation), rows)

    # -- a tick's first reads, for every claimed job at once --------------------------------
    def waiting_jobs(self, job_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
        """Of these jobs, those that can only wait: every unfinished task is running (none
        pending a launch or a decision) and an intent is open. Two grouped counts for the
        whole batch, no rows: a steady pass over thousands of running functions reads nothing
        else for such a job (the loop decides, with what it knows itself, whether one that
        waits may be skipped this tick)."""
        ids = list(job_ids)
        running: set[uuid.UUID] = set()
        opened: set[uuid.UUID] = set()
        pending = case((Task.status == WorkStatus.PENDING.value, 1), else_=0)
        for chunk in _chunks(ids):
            for job_id, unfinished, launchable in self.session.execute(
                select(Task.job_id, func.count(), func.sum(pending))
                .where(
                    Task.job_id.in_(chunk),
                    Task.status.in_([WorkStatus.PENDING.value, WorkStatus.RUNNING.value]),
                )
                .group_by(Task.job_id)
            ):
                if unfinished and not launchable:
                    running.add(job_id)
            opened.update(
                self.session.scalars(
                    select(Invocation.job_id)
                    .where(
                        Invocation.job_id.in_(chunk),
                        Invocation.state == InvocationState.INTENT.value,
                    )
                    .group_by(Invocation.job_id)
                )
            )
        return running & opened

    def load_specs(self, jobs: Iterable[Job]) -> None:
        """Read the specs of these jobs (which ``leases.claim`` leaves unread) in one query
        per chunk instead of one per job."""
        by_id = {job.id: job for job in jobs}
        ids = list(by_id)
        for chunk in _chunks(ids):
            for job_id, spec in self.session.execute(
                select(Job.id, Job.spec).where(Job.id.in_(chunk))
            ):
                set_committed_value(by_id[job_id], "spec", spec)

    def preload(self, job_ids: Iterable[uuid.UUID]) -> None:
        """Read what each claimed job's first step needs — its stages, unfinished tasks
        (without their JSON columns), open invocations, and the spend of jobs with a budget
        cap — in four queries for the whole batch instead of four per job (a reconcile pass
        over 1,000 jobs was mostly these round trips). Finished tasks are not read: a tick
        needs them only when a stage ends or a decision is made. Each preloaded value
        is handed out once, to the first read of it this tick; a later read asks the database
        and sees what the tick has written since. The spend is a running total: the bills the
        tick records are added to it (``add_spend``) instead of summing the job's invoices
        again; ``forget_spend`` drops it."""
        ids = list(job_ids)
        stages: dict[uuid.UUID, list] = {job_id: [] for job_id in ids}
        tasks: dict[uuid.UUID, list] = {job_id: [] for job_id in ids}
        opened: dict[uuid.UUID, list] = {job_id: [] for job_id in ids}
        spend: dict[uuid.UUID, Decimal] = {}  # capped jobs only; others read it when needed
        for chunk in _chunks(ids):
            for stage in self.session.scalars(_STAGES, {"ids": chunk}):
                stages[stage.job_id].append(stage)
            for task in _task_rows(self.session.execute(_UNFINISHED_ROWS, {"ids": chunk})):
                tasks[task.job_id].append(task)
            for row in self.session.execute(_OPEN_ROWS, {"ids": chunk}):
                invocation = _invocation_row(row)
                opened[invocation.job_id].append(invocation)
            for job_id, spent_compute, spent_requests in self.session.execute(
                _CAPPED_SPEND, {"ids": chunk}
            ):
                spend[job_id] = spent_compute + spent_requests
        self._preloaded = {"stages": stages, "unfinished": tasks, "open": opened, "spend": spend}

    def _take(self, kind: str, job_id: uuid.UUID):
        return self._preloaded.get(kind, {}).pop(job_id, None)

    def forget_spend(self, job_id: uuid.UUID) -> None:
        self._take("spend", job_id)

    def add_spend(self, job_id: uuid.UUID, *charges: Decimal | None) -> None:
        """Add a bill recorded this tick to the job's preloaded spend, rounded as the ledger
        stores it (so the total equals the ledger's sum); nothing if it was not preloaded."""
        spend = self._preloaded.get("spend", {})
        if job_id in spend:
            spend[job_id] += sum((_as_stored(c) for c in charges if c is not None), Decimal(0))

    def stages(self, job_id: uuid.UUID) -> list[Stage]:
        preloaded = self._take("stages", job_id)
        if preloaded is not None:
            return preloaded
        return list(self.session.scalars(_STAGES, {"ids": [job_id]}))

    def unfinished_tasks(self, job_id: uuid.UUID) -> list[TaskRow]:
        """Tasks pending or running (the current stage's), as column values (``TaskRow``)."""
        preloaded = self._take("unfinished", job_id)
        if preloaded is not None:
            return preloaded
        return list(_task_rows(self.session.execute(_UNFINISHED_ROWS, {"ids": [job_id]})))

    def tasks_by_id(self, ids: Iterable[uuid.UUID]) -> list[Task]:
        """The objects of these tasks, without their JSON columns (as ``tasks`` fills them
        in if it runs later in the tick)."""
        ids = list(ids)
        found: list[Task] = []
        for chunk in _chunks(ids):
            found += self.session.scalars(_TASKS_BY_ID, {"ids": chunk})
        return found

    def tasks(self, job_id: uuid.UUID) -> list[Task]:
        return list(
            self.session.scalars(select(Task).where(Task.job_id == job_id).order_by(Task.key))
        )

    def open_invocations(self, job_id: uuid.UUID) -> list[InvocationRow]:
        """Invocations whose result is not recorded yet (intents), as column values."""
        preloaded = self._take("open", job_id)
        if preloaded is not None:
            return preloaded
        return [_invocation_row(row) for row in self.session.execute(_OPEN_ROWS, {"ids": [job_id]})]

    def invocations_by_id(self, ids: Iterable[uuid.UUID]) -> list[tuple[Invocation, Task]]:
        """The objects of these invocations, each with its task's (without the task's JSON
        columns): what recording a result changes, in one statement."""
        ids = list(ids)
        found: list[tuple[Invocation, Task]] = []
        for chunk in _chunks(ids):
            found += (
                (invocation, task)
                for invocation, task in self.session.execute(_INVOCATIONS_BY_ID, {"ids": chunk})
            )
        return found

    def task_outcomes(self, task_id: uuid.UUID) -> list[str | None]:
        return list(
            self.session.scalars(select(Invocation.outcome).where(Invocation.task_id == task_id))
        )

    def spent_usd(self, job_id: uuid.UUID) -> Decimal:
        preloaded = self._take("spend", job_id)
        if preloaded is not None:
            return preloaded
        compute, requests = _spend_columns()
        spent_compute, spent_requests = self.session.execute(
            select(compute, requests).where(Invocation.job_id == job_id)
        ).one()
        return spent_compute + spent_requests

    def last_allocation(self, job_id: uuid.UUID, function_name: str, shape: str) -> int | None:
        """The memory most recently allocated to a shape (applied or about to be)."""
        return self.session.scalar(
            select(Allocation.to_mb)
            .where(
                Allocation.job_id == job_id,
                Allocation.function_name == function_name,
                Allocation.state.in_([AllocationState.INTENT.value, AllocationState.APPLIED.value]),
                Allocation.detail["shape"].as_string() == shape,
            )
            .order_by(Allocation.created_at.desc(), Allocation.id.desc())
            .limit(1)
        )

    def samples(self, job_id: uuid.UUID, stages: Iterable[int] | None = None) -> list[SampleRow]:
        """Finished, billed runs: (shape, stage position, memory, duration, init, peak, epochs,
        outcome, architecture, CPU time), oldest first; of the stages at these positions only,
        if given."""
        query = (
            select(
                Task.shape,
                Stage.position,
                Invocation.memory_mb,
                Invocation.duration_ms,
                Invocation.init_ms,
                Invocation.max_memory_used_mb,
                Task.epoch_from,
                Task.epoch_to,
                Invocation.outcome,
                Invocation.architecture,
                Invocation.cpu_ms,
            )
            .join(Task, Task.id == Invocation.task_id)
            .join(Stage, Stage.id == Invocation.stage_id)
            .where(
                Invocation.job_id == job_id,
                Invocation.state == InvocationState.DONE.value,
                Invocation.duration_ms.is_not(None),
            )
            .order_by(Invocation.finished_at, Invocation.id)
        )
        if stages is not None:
            query = query.where(Stage.position.in_(list(stages)))
        return [SampleRow(*row) for row in self.session.execute(query)]

    def current_allocations(self, job_id: uuid.UUID) -> list[tuple[str, int, uuid.UUID | None]]:
        """(shape, memory, stage) of every change made, oldest first (vetoes excluded)."""
        shape = Allocation.detail["shape"].as_string()
        rows = self.session.execute(
            select(shape, Allocation.to_mb, Allocation.stage_id)
            .where(
                Allocation.job_id == job_id,
                Allocation.state != AllocationState.VETOED.value,
            )
            .order_by(Allocation.created_at, Allocation.id)
        )
        return [tuple(row) for row in rows]

    def oom_floors(self, job_id: uuid.UUID) -> dict[str, int]:
        """Per shape, the highest memory an out-of-memory retry raised it to."""
        shape = Allocation.detail["shape"].as_string()
        rows = self.session.execute(
            select(shape, func.max(Allocation.to_mb))
            .where(Allocation.job_id == job_id, Allocation.rule == "oom-floor")
            .group_by(shape)
        )
        return {name: int(floor) for name, floor in rows}

    def predictor_states(self, scopes: Iterable[str]) -> dict[tuple[str, str], PredictorState]:
        scopes = list(scopes)
        if not scopes:
            return {}
        rows = self.session.scalars(_PREDICTOR_STATES, {"scopes": scopes})
        return {(row.scope, row.name): row for row in rows}

    def last_observed(self, series: str) -> datetime | None:
        return self.session.scalar(
            select(func.max(Observation.observed_at)).where(Observation.series == series)
        )

    def cloudwatch_points(
        self, series: str, since: datetime
    ) -> dict[tuple[str, datetime], Observation]:
        """A function's stored CloudWatch datapoints from ``since`` on, by (metric, minute)."""
        rows = self.session.scalars(
            select(Observation).where(
                Observation.series == series,
                Observation.source == "cloudwatch",
                Observation.observed_at >= since,
            )
        )
        return {(row.metric, row.observed_at): row for row in rows}

    def open_invocations_before(self, function: str, end: datetime) -> bool:
        """Whether an invocation of ``function`` created before ``end`` has no result yet."""
        return (
            self.session.scalar(
                select(Invocation.id)
                .where(
                    Invocation.function_name == function,
                    Invocation.state != InvocationState.DONE.value,
                    Invocation.created_at < end,
                )
                .limit(1)
            )
            is not None
        )

    def invocations_per_minute(
        self, function: str, start: datetime, end: datetime, period_s: int
    ) -> dict[datetime, int]:
        """The ledger's invocations of ``function`` that ran (not throttled), by the minute
        they started in, for [start, end)."""
        rows = self.session.scalars(
            select(Invocation.started_at).where(
                Invocation.function_name == function,
                Invocation.state == InvocationState.DONE.value,
                Invocation.outcome != "throttled",
                Invocation.started_at >= start,
                Invocation.started_at < end,
            )
        )
        counts: dict[datetime, int] = {}
        for started in rows:
            seconds = int(started.timestamp() // period_s * period_s)
            minute = datetime.fromtimestamp(seconds, start.tzinfo)
            counts[minute] = counts.get(minute, 0) + 1
        return counts

    def fill_peak_memory(self, function: str, start: datetime, end: datetime, peak: int) -> int:
        """Give invocations of ``function`` started in [start, end) that were recorded without
        their peak memory the minute's maximum; returns how many."""
        rows = self.session.scalars(
            select(Invocation).where(
                Invocation.function_name == function,
                Invocation.state == InvocationState.DONE.value,
                Invocation.max_memory_used_mb.is_(None),
                Invocation.started_at >= start,
                Invocation.started_at < end,
            )
        ).all()
        for row in rows:
            row.max_memory_used_mb = peak
        return len(rows)

    def cpu_missing(
        self,
        functions: list[str],
        start: datetime,
        end: datetime,
        jobs: Iterable[uuid.UUID] | None = None,
    ) -> dict[str, dict[str, datetime]]:
        """Per function of ``functions``: the request ids (with when each finished) of its
        invocations that finished in [start, end] and ran (throttled ones did not) but were
        recorded without their CPU time; of ``jobs`` only, if given. One statement."""
        if not functions:
            return {}
        query = select(
            Invocation.function_name, Invocation.request_id, Invocation.finished_at
        ).where(
            Invocation.function_name.in_(functions),
            Invocation.state == InvocationState.DONE.value,
            Invocation.outcome != InvocationOutcome.THROTTLED.value,
            Invocation.request_id.is_not(None),
            Invocation.cpu_ms.is_(None),
            Invocation.finished_at >= start,
            Invocation.finished_at <= end,
        )
        if jobs is not None:
            jobs = list(jobs)
            if not jobs:
                return {}
            query = query.where(Invocation.job_id.in_(jobs))
        missing: dict[str, dict[str, datetime]] = {}
        for function, request_id, finished in self.session.execute(query):
            missing.setdefault(function, {})[request_id] = finished
        return missing

    def fill_cpu_times(self, function: str, cpu_ms: dict[str, float]) -> list[uuid.UUID]:
        """Give the invocations of ``function`` with these request ids that have no CPU time
        yet their figure, in one statement (rows already loaded see it too); returns the job
        of each invocation filled."""
        if not cpu_ms:
            return []
        filled = self.session.execute(
            update(Invocation)
            .where(
                Invocation.function_name == function,
                Invocation.state == InvocationState.DONE.value,
                Invocation.request_id.in_(list(cpu_ms)),
                Invocation.cpu_ms.is_(None),
            )
            .values(cpu_ms=case(cpu_ms, value=Invocation.request_id))
            .returning(Invocation.job_id),
            execution_options={"synchronize_session": "fetch"},
        )
        return list(filled.scalars())

    def observations(self, job_id: uuid.UUID) -> list[Observation]:
        return list(
            self.session.scalars(
                select(Observation)
                .where(Observation.job_id == job_id)
                .order_by(Observation.observed_at, Observation.id)
            )
        )

    # -- what the dispatcher acts on, after the tick's commit ------------------------------
    def pending_dispatch(
        self, owner: str, now: datetime, skip: Iterable[uuid.UUID] = ()
    ) -> Iterator[tuple[Invocation, Task, Stage, Job]]:
        """Open intents of the jobs this owner holds at ``now`` (its name on an expired lease
        is not enough: another replica may be taking the job over), but those in ``skip``
        (already sent): their ids first, then the rows of the rest only, so a pass over
        thousands of running invocations does not load them all again. With nothing to skip (a
        takeover or a restart, when every intent is sent again): the rows in one statement,
        fetched ``DISPATCH_BATCH`` at a time as they are sent, and the jobs in another, each
        job read once rather than once per intent."""
        held = {"owner": owner, "now": now}
        skip = set(skip)
        if not skip:
            jobs = {job.id: job for job in self.session.scalars(_HELD_JOBS, held)}
            for invocation, task, stage in self.session.execute(_DISPATCH_ROWS, held):
                if invocation.job_id in jobs:
                    yield invocation, task, stage, jobs[invocation.job_id]
            return
        ids = [
            invocation_id
            for invocation_id in self.session.scalars(_DISPATCH_IDS, held)
            if invocation_id not in skip
        ]
        rows = {}
        for chunk in _chunks(ids):
            for invocation, task, stage, job in self.session.execute(_INTENTS, {"ids": chunk}):
                rows[invocation.id] = (invocation, task, stage, job)
        yield from (rows[i] for i in ids if i in rows)

    def pending_allocations(self, owner: str, now: datetime) -> list[tuple[Allocation, Job]]:
        """Memory changes to carry out, of the jobs this owner holds at ``now``."""
        return [
            (allocation, job)
            for allocation, job in self.session.execute(
                _PENDING_ALLOCATIONS, {"owner": owner, "now": now}
            )
        ]

    def allocations_by_id(self, ids: Iterable[uuid.UUID]) -> list[Allocation]:
        ids = list(ids)
        if not ids:
            return []
        return list(self.session.scalars(select(Allocation).where(Allocation.id.in_(ids))))


_MONEY = Money()


def _as_stored(usd: Decimal) -> Decimal:
    """``usd`` as a Money column stores it (whole picodollars)."""
    return _MONEY.process_result_value(_MONEY.process_bind_param(usd, None), None) or Decimal(0)


def _spend_columns():
    """Sums of an invocation set's compute and request costs, 0 when there is none."""
    compute = type_coerce(func.coalesce(func.sum(Invocation.compute_cost_usd), 0), Money)
    requests = type_coerce(func.coalesce(func.sum(Invocation.request_cost_usd), 0), Money)
    return compute, requests


def _ids(name: str = "ids"):
    """An ``IN (...)`` list given at execution: one statement for any number of values."""
    return bindparam(name, expanding=True)


# the jobs whose lease ``:owner`` holds at ``:now``
_HELD = and_(Job.lease_owner == bindparam("owner"), Job.lease_expires_at > bindparam("now"))


def _with_dispatch_rows(query):
    """``query`` over the open intents of the jobs held (``_HELD``), joined to their task,
    stage and job, in the order they are sent."""
    return (
        query.join(Task, Task.id == Invocation.task_id)
        .join(Stage, Stage.id == Invocation.stage_id)
        .join(Job, Job.id == Invocation.job_id)
        .where(_HELD, Invocation.state == InvocationState.INTENT.value)
        # a stable order (not ids, which are random): the same run dispatches the same way, so
        # a seeded simulation gives the same result every time
        .order_by(Job.created_at, Stage.position, Task.key, Invocation.attempt)
    )


# The statements a tick runs for every job it steps, built once (building and keying a
# statement costs about as much as running it on SQLite): only their parameters change.
_STAGES = select(Stage).where(Stage.job_id.in_(_ids())).order_by(Stage.position)
# the columns of ``TaskRow``, its ids as stored (``_uuid`` turns them into UUIDs)
_UNFINISHED_ROWS = (
    select(
        type_coerce(Task.id, String),
        type_coerce(Task.job_id, String),
        type_coerce(Task.stage_id, String),
        Task.key,
        Task.shape,
        Task.worker,
        Task.status,
        Task.memory_mb,
        Task.epoch_from,
        Task.epoch_to,
        Task.attempts,
        Task.not_before,
        Task.checkpoint_out,
        Task.failure_reason,
    )
    .where(Task.job_id.in_(_ids()), Task.status.in_(UNFINISHED))
    .order_by(Task.key)
)
_TASKS_BY_ID = select(Task).where(Task.id.in_(_ids())).options(*_TASK_JSON)
# the columns of ``InvocationRow`` (the same statement as for the objects, so the same order)
_OPEN_ROWS = select(
    type_coerce(Invocation.id, String),
    type_coerce(Invocation.job_id, String),
    type_coerce(Invocation.task_id, String),
    Invocation.memory_mb,
    Invocation.state,
).where(Invocation.job_id.in_(_ids()), Invocation.state == InvocationState.INTENT.value)
_INVOCATIONS_BY_ID = (
    select(Invocation, Task)
    .join(Task, Task.id == Invocation.task_id)
    .where(Invocation.id.in_(_ids()))
    .options(*_TASK_JSON)
)
_CAPPED_SPEND = (
    select(Invocation.job_id, *_spend_columns())
    .join(Job, Job.id == Invocation.job_id)
    .where(Invocation.job_id.in_(_ids()), Job.max_cost_usd.is_not(None))
    .group_by(Invocation.job_id)
)
_PREDICTOR_STATES = select(PredictorState).where(PredictorState.scope.in_(_ids("scopes")))
_DISPATCH_IDS = _with_dispatch_rows(select(Invocation.id))
# what an invocation's event is made of (not the task's result, nor the job's)
_DISPATCH_ROWS = (
    _with_dispatch_rows(select(Invocation, Task, Stage))
    .options(defer(Task.result))
    .execution_options(yield_per=DISPATCH_BATCH)
)
_HELD_JOBS = select(Job).where(_HELD).options(defer(Job.result))
_INTENTS = (
    select(Invocation, Task, Stage, Job)
    .join(Task, Task.id == Invocation.task_id)
    .join(Stage, Stage.id == Invocation.stage_id)
    .join(Job, Job.id == Invocation.job_id)
    .where(Invocation.id.in_(_ids()))
    .options(defer(Task.result), defer(Job.result))
)
_PENDING_ALLOCATIONS = (
    select(Allocation, Job)
    .join(Job, Job.id == Allocation.job_id)
    .where(_HELD, Allocation.state == AllocationState.INTENT.value)
    .order_by(Allocation.created_at, Allocation.id)
)


def _chunks(ids: list[uuid.UUID]) -> Iterator[list[uuid.UUID]]:
    """``ids`` in lists of at most ``PRELOAD_CHUNK``, one ``IN (...)`` list each."""
    for start in range(0, len(ids), PRELOAD_CHUNK):
        yield ids[start : start + PRELOAD_CHUNK]


# A tick reads the same tasks' ids again and again (every unfinished task, every tick): parsing
# each 32-digit id anew was a tenth of a large job's CPU. Bounded: emptied when it grows large.
_UUIDS: dict[str, uuid.UUID] = {}
_UUIDS_MAX = 200_000


def _uuid(value: str | uuid.UUID) -> uuid.UUID:
    """An id as the driver returned it (SQLite: its hex text; Postgres: a UUID already)."""
    if isinstance(value, uuid.UUID):
        return value
    found = _UUIDS.get(value)
    if found is None:
        if len(_UUIDS) >= _UUIDS_MAX:
            _UUIDS.clear()
        found = _UUIDS[value] = uuid.UUID(value)
    return found


def _task_rows(result) -> Iterator[TaskRow]:
    for id_, job_id, stage_id, *rest in result:
        yield TaskRow(_uuid(id_), _uuid(job_id), _uuid(stage_id), *rest)


def _invocation_row(row) -> InvocationRow:
    id_, job_id, task_id, memory_mb, state = row
    return InvocationRow(_uuid(id_), _uuid(job_id), _uuid(task_id), memory_mb, state)
