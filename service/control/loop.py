"""The reconcile loop: ``run_once(now)`` is one tick.

1. Collect the results of invocations that finished since the last tick.
2. In one transaction: claim jobs (lease), record results, advance each job's state machine, and
   write *intents* — invocation rows and memory changes — for what must happen next. Commit once.
3. After the commit, carry the intents out on the platform (ensure the memory variant, start the
   invocation). Their results are recorded by a later tick.
4. At most every ``reconcile_interval_s``, complete from CloudWatch Logs the bills of invocations
   recorded without a REPORT line (``service.control.reconcile``), in a transaction of its own.

Because an intent is durable before its side effect, a controller that dies anywhere leaves rows
a successor can finish: an intent with no result is simply sent again under the same
(job, task, attempt), and handlers are idempotent per attempt, so nothing trains or is recorded
twice. The same code runs under the real-time driver (wall clock) and the simulation driver
(virtual clock).
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from pydantic import ValidationError
from sqlalchemy.exc import OperationalError

from service import metrics
from service.control import functions, leases, lifecycle, priors, rows
from service.control.learning import Learner
from service.control.reconcile import Reconciler
from service.control.repository import LoopRepository
from service.control.retry import RetryPolicy
from service.control.stepper import JobStepper, StepContext
from service.database import Database, commit
from service.models import AllocationState, Job, JobStatus
from service.platform.interface import InvocationHandle, InvokeResult, Platform, PlatformError
from service.policies.base import Policy, workflow_under
from service.policies.registry import UnavailablePolicy, policy_for
from service.settings import Settings
from service.spec import JobSpec
from service.workflows import workflow_for
from service.workflows.plan import Workflow

log = logging.getLogger(__name__)


MAX_DISPATCH_FAILURES = 3


class PlatformGaveUp(Exception):
    """The platform kept refusing a job's calls (no such function, no permission, ...)."""


def to_datetime(clock_seconds: float) -> datetime:
    return datetime.fromtimestamp(clock_seconds, UTC)


@dataclass(frozen=True)
class JobEnd:
    """A job that ended in this tick, as the operator's log line tells it."""

    job_id: uuid.UUID
    name: str
    status: str
    reason: str | None
    cost_usd: Decimal
    jct_s: float | None  # started → finished; None if it never started
    deadline_missed: bool | None


@dataclass
class TickReport:
    jobs: int = 0
    recorded: int = 0
    dispatched: int = 0
    reconciled: int = 0  # bills completed from CloudWatch Logs this tick
    finished_jobs: list[uuid.UUID] = field(default_factory=list)
    ended: list[JobEnd] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per step


class _Stopwatch:
    def __init__(self, timings: dict[str, float]) -> None:
        self.timings = timings

    @contextmanager
    def __call__(self, step: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.timings[step] = self.timings.get(step, 0.0) + time.perf_counter() - started


class Controller:
    def __init__(
        self,
        database: Database,
        platform: Platform,
        settings: Settings,
        *,
        owner: str | None = None,
        seed: int | None = None,
        policy_for: Callable[[JobSpec], Policy] = policy_for,
        stage_overhead_s: float | None = None,
        learn: bool = True,
    ) -> None:
        self.database = database
        self.platform = platform
        self.settings = settings
        self.owner = owner or leases.new_owner_id()
        self.rng = random.Random(seed)
        self.policy_for = policy_for
        # What the loop adds between two stages, for the policies' plans: one tick.
        self.stage_overhead_s = (
            settings.controller_interval_s if stage_overhead_s is None else stage_overhead_s
        )
        self.retry = RetryPolicy(max_attempts=settings.max_attempts)
        self.learner = Learner(
            refits_per_tick=settings.learn_refits_per_tick,
            metrics_interval_s=settings.metrics_interval_s,
        )
        # False: no learn step (an ablation): nothing is learned or stored, and the policies
        # fit what they need from the raw runs at every decision, with a fixed margin.
        self.learn = learn
        self.reconciler = Reconciler(
            platform,
            interval_s=settings.reconcile_interval_s,
            horizon_s=settings.reconcile_horizon_s,
        )
        self.in_flight: dict[uuid.UUID, InvocationHandle] = {}
        self.finished: dict[uuid.UUID, InvokeResult] = {}
        self._job_of: dict[uuid.UUID, uuid.UUID] = {}  # invocation -> job, for pruning
        self.applied: set[uuid.UUID] = set()  # allocations done on the platform, not yet recorded
        self.dispatch_failures: dict[uuid.UUID, tuple[int, str]] = {}
        self._functions: set[str] = set()
        self._variants: set[tuple[str, int, str | None]] = set()
        self._workflows: dict[uuid.UUID, Workflow] = {}
        self._specs: dict[uuid.UUID, JobSpec] = {}  # a job's spec never changes once submitted
        # Whether the dispatcher may find intents: after a start or restart (a dead replica's,
        # or our own from before), when this tick wrote some, when it took jobs over, or when
        # a platform call failed. Otherwise the dispatch step skips its queries.
        self._dispatch_due = True
        self._held: set[uuid.UUID] = set()
        # job -> when its next decision is due without a result (``lifecycle.WakeUp``): the
        # simulation driver's clock stops there too (``next_event``)
        self._wake: dict[uuid.UUID, datetime] = {}
        self._results_for: set[uuid.UUID | None] = set()  # jobs with a result to record

    # -- one tick ---------------------------------------------------------------------------
    def run_once(self, now: datetime) -> TickReport:
        """One tick, as named steps: collect → claim → load → record → learn → advance →
        commit → dispatch (VPA's loop of timed steps; the step timings are on the report)."""
        report = TickReport()
        started = time.perf_counter()
        clock = _Stopwatch(report.timings)
        with clock("collect"):
            self._collect()
        consumed: set[uuid.UUID] = set()
        self._results_for = {self._job_of.get(i) for i in self.finished}
        with self.database.session() as session:
            repo = LoopRepository(session)
            with clock("claim"):
                jobs = leases.claim(
                    session,
                    self.owner,
                    now,
                    self.settings.controller_lease_s,
                    self.settings.controller_batch,
                )
                self._record_applied(repo, now)
            with clock("load"):
                repo.load_specs(job for job in jobs if job.id not in self._specs)
                waiting = repo.waiting_jobs(j.id for j in jobs if self._may_wait(j))
                repo.preload(job.id for job in jobs if job.id not in waiting)
            steppers = {}
            with clock("record"):
                runs, rounds = [], {}
                for job in jobs:
                    if job.id in waiting:
                        continue
                    outcome = self._guarded(repo, job, now, self._record, steppers)
                    if outcome is not None:
                        recorded, job_runs, job_rounds = outcome
                        consumed |= recorded
                        runs += job_runs
                        if job_rounds is not None:
                            rounds[job.id] = job_rounds
            with clock("learn"):
                # the poll first: runs that got their CPU time late are refitted this tick
                running = {s.function_name for s in steppers.values()}
                running |= {functions.function_name(self._specs[job_id]) for job_id in waiting}
                held = {job.id for job in jobs}
                self.learner.poll_metrics(repo, self.platform, running, now, held)
                if self.learn:
                    self.learner.learn(repo, runs, rounds)
            with clock("advance"):
                for job in jobs:
                    if job.id in steppers:
                        self._guarded(repo, job, now, self._advance, steppers)
                    report.jobs += 1
                    if JobStatus(job.status).is_terminal:
                        if self.learn:
                            self._remember(repo, job, now)
                        report.finished_jobs.append(job.id)
                        report.ended.append(_job_end(repo, job))
                        self._workflows.pop(job.id, None)
                        self._specs.pop(job.id, None)
            with clock("commit"):
                commit(session)
        report.recorded = len(consumed)
        claimed = {job.id for job in jobs}
        if claimed - self._held or any(s.intents for s in steppers.values()):
            self._dispatch_due = True
        self._held = claimed
        self._wake = {job: at for job, at in self._wake.items() if job in claimed and at > now}
        self.learner.retain(claimed)
        for invocation_id in list(self.finished):
            # recorded, or of a job this replica no longer holds (its new owner sends the
            # attempt again; the handler replays it)
            if invocation_id in consumed or self._job_of.get(invocation_id) not in claimed:
                self.finished.pop(invocation_id, None)
                self._job_of.pop(invocation_id, None)
        self.applied.clear()
        if self._dispatch_due:
            with clock("dispatch"):
                report.dispatched = self._dispatch(now)
            self._dispatch_due = bool(self.dispatch_failures)
        if self.reconciler.due(now):
            with clock("reconcile"):
                report.reconciled = self._reconcile(now)
        metrics.record_tick(time.perf_counter() - started, report.timings, report.dispatched)
        return report

    def _remember(self, repo: LoopRepository, job: Job, now: datetime) -> None:
        """Keep what an ended job measured for the tenant's next jobs (``priors``); a job
        whose spec no longer validates has nothing to keep."""
        spec = self._specs.get(job.id)
        if spec is None:
            return
        savepoint = repo.session.begin_nested()
        try:
            priors.remember(repo.session, job, spec, repo.samples(job.id), now)
            savepoint.commit()
        except OperationalError:
            savepoint.rollback()
            raise
        except Exception:
            log.exception("job %s: its curves were not kept as priors", job.id)
            savepoint.rollback()

    def _reconcile(self, now: datetime) -> int:
        """Bills without a REPORT line: look their REPORT up in the logs (see reconcile.py)."""
        with self.database.session() as session:
            outcome = self.reconciler.run(session, now)
            commit(session)
        return outcome.reconciled

    def _collect(self) -> None:
        for invocation_id, handle in list(self.in_flight.items()):
            result = self.platform.poll(handle)
            if result is not None:
                self.finished[invocation_id] = result
                del self.in_flight[invocation_id]

    def _record_applied(self, repo: LoopRepository, now: datetime) -> None:
        for allocation in repo.allocations_by_id(self.applied):
            if allocation.state == AllocationState.INTENT.value:
                allocation.state = AllocationState.APPLIED.value
                allocation.applied_at = now

    def _may_wait(self, job: Job) -> bool:
        """Whether this job may sit this tick out if it only waits on running invocations
        (``LoopRepository.waiting_jobs``): it runs, its spec is valid and this backend can run
        it, no result or platform failure of it is to be recorded, and no cancellation is asked
        for. Its tick would change nothing: skipping it spares reading the job's tasks and
        invocations. That holds on a takeover too (this controller's first pass, or a job
        taken from a replica whose lease ran out): the open intents of a job that only waits
        are sent again by the dispatcher, which reads them by themselves."""
        return (
            job.status == JobStatus.RUNNING.value
            and job.cancel_requested_at is None
            and job.id not in self.dispatch_failures
            and job.id not in self._results_for
            and self._runnable(job)
        )

    def _runnable(self, job: Job) -> bool:
        """Whether the job's spec validates and this backend can run it, checked once per job
        (the spec never changes); a job that fails either is stepped, and its step fails it
        with the reason."""
        if job.id in self._specs:
            return True
        try:
            functions.function_spec(self._spec(job), self.settings.backend)
        except Exception:  # whatever it is, the job's step meets it again and says so
            self._specs.pop(job.id, None)
            return False
        return True

    def _context(self, now: datetime, results: dict) -> StepContext:
        return StepContext(
            now=now,
            results=results,
            to_datetime=to_datetime,
            store=self.settings.resolved_store_url,
            retry=self.retry,
            rng=self.rng,
            in_flight_limit=max(1, self.platform.concurrency_limit()),
            stage_overhead_s=self.stage_overhead_s,
        )

    def _record(self, repo: LoopRepository, job: Job, now: datetime, steppers: dict):
        spec = self._spec(job)
        functions.function_spec(spec, self.settings.backend)  # can this backend run it at all?
        failures, reason = self.dispatch_failures.get(job.id, (0, ""))
        if failures >= MAX_DISPATCH_FAILURES:
            del self.dispatch_failures[job.id]
            raise PlatformGaveUp(reason)
        policy = self.policy_for(spec)
        stepper = JobStepper(
            repo,
            job,
            spec,
            self._workflow(job, spec, policy),
            policy,
            functions.function_name(spec),
        )
        results = {
            inv.id: self.finished[inv.id]
            for inv in stepper.open_invocations()
            if inv.id in self.finished
        }
        runs, rounds = stepper.record(self._context(now, results))
        steppers[job.id] = stepper
        return set(results), runs, rounds

    def _advance(self, repo: LoopRepository, job: Job, now: datetime, steppers: dict) -> None:
        stepper = steppers[job.id]
        stepper.advance(self._context(now, {}))
        if stepper.wake_at is None:
            self._wake.pop(job.id, None)
        else:
            self._wake[job.id] = stepper.wake_at

    def _guarded(self, repo: LoopRepository, job: Job, now: datetime, step, steppers: dict):
        """Run one step of one job inside a savepoint: a bug in one job does not stop the
        others, and the job says what happened."""
        savepoint = repo.session.begin_nested()
        try:
            outcome = step(repo, job, now, steppers)
            savepoint.commit()
            return outcome
        except OperationalError:
            savepoint.rollback()
            raise
        except (
            ValidationError,
            UnavailablePolicy,
            functions.UnrunnableWorkload,
            PlatformGaveUp,
        ) as error:
            savepoint.rollback()
            self._fail(repo, job, now, str(error))
        except Exception as error:
            log.exception("job %s failed in the control loop", job.id)
            savepoint.rollback()
            self._fail(repo, job, now, f"internal error in the control loop: {error!r}")
        steppers.pop(job.id, None)
        self._dispatch_due = True  # whatever the failed step wrote, dispatch looks again
        return None

    def _fail(self, repo: LoopRepository, job: Job, now: datetime, reason: str) -> None:
        """End a job the loop could not step, through the lifecycle's one ending rule: its
        open stages and tasks are cancelled and ``deadline_missed`` is filled, as for any
        other end."""
        repo.session.refresh(job)
        if JobStatus(job.status).is_terminal:
            return
        stages, tasks = repo.stages(job.id), repo.tasks(job.id)
        stage_views, task_views = rows.views(stages, tasks)
        end = lifecycle.end_job(
            rows.job_view(job), JobStatus.FAILED, reason, now, stage_views, task_views, started=True
        )
        rows.apply_job_end(job, end, stages, tasks)

    def _spec(self, job: Job) -> JobSpec:
        spec = self._specs.get(job.id)
        if spec is None:
            spec = self._specs[job.id] = JobSpec.model_validate(job.spec)
        return spec

    def _workflow(self, job: Job, spec: JobSpec, policy: Policy) -> Workflow:
        workflow = self._workflows.get(job.id)
        if workflow is None:
            workflow = self._workflows[job.id] = workflow_under(policy, workflow_for(spec))
        return workflow

    # -- acting on the platform, after the commit --------------------------------------------
    def _dispatch(self, now: datetime) -> int:
        dispatched = 0
        with self.database.session() as session:
            repo = LoopRepository(session)
            for allocation, job in repo.pending_allocations(self.owner, now):
                spec = self._spec(job)
                if spec.workload.architecture == "auto":
                    # a shape's size comes without its architecture: made at dispatch instead
                    self.applied.add(allocation.id)
                    continue
                try:
                    self._ensure_variant(spec, allocation.to_mb)
                except (PlatformError, ValueError) as error:
                    self._dispatch_failed(job.id, f"memory change to {allocation.to_mb} MB", error)
                    continue
                self.applied.add(allocation.id)
            sent = self.in_flight.keys() | self.finished.keys()
            for invocation, task, stage, job in repo.pending_dispatch(self.owner, now, skip=sent):
                spec = self._spec(job)
                # an "auto" job's task on the other architecture than the function's own runs
                # that architecture's variant (``mem-<MB>-arm64``); on its own, the plain one
                where = (
                    {"architecture": invocation.architecture}
                    if spec.workload.architecture == "auto"
                    and invocation.architecture != spec.workload.base_architecture
                    else {}
                )
                try:
                    self._ensure_variant(spec, invocation.memory_mb, **where)
                    payload = functions.event(
                        job, stage, task, invocation, self.settings.resolved_store_url
                    )
                    self.in_flight[invocation.id] = self.platform.start_invoke(
                        invocation.function_name, payload, memory_mb=invocation.memory_mb, **where
                    )
                    self._job_of[invocation.id] = job.id
                except (PlatformError, ValueError) as error:
                    self._dispatch_failed(job.id, f"invocation of {task.key}", error)
                    continue
                self.dispatch_failures.pop(job.id, None)
                dispatched += 1
        return dispatched

    def _dispatch_failed(self, job_id: uuid.UUID, what: str, error: Exception) -> None:
        """A platform call that failed after the commit: the intent stays and is tried again
        next tick; after ``MAX_DISPATCH_FAILURES`` in a row the job fails with the reason."""
        log.warning("job %s: %s failed on the platform: %s", job_id, what, error)
        metrics.DISPATCH_ERRORS.inc()
        count, _ = self.dispatch_failures.get(job_id, (0, ""))
        self.dispatch_failures[job_id] = (count + 1, f"{what} failed on the platform: {error}")

    def _ensure_variant(self, spec: JobSpec, memory_mb: int, **architecture: str) -> None:
        """``architecture`` (``auto`` jobs only): the variant on that architecture."""
        name = functions.function_name(spec)
        if name not in self._functions:
            function_spec = functions.function_spec(spec, self.settings.backend)
            if function_spec is not None:
                self.platform.ensure_function(function_spec)
            self._functions.add(name)
        key = (name, memory_mb, architecture.get("architecture"))
        if key not in self._variants:
            self.platform.ensure_variant(name, memory_mb, **architecture)
            self._variants.add(key)

    # -- for the drivers ----------------------------------------------------------------------
    def next_event(self) -> float | None:
        """Clock time of the earliest in-flight completion, or of a job's next decision due
        without one (``lifecycle.WakeUp``), if that is sooner (simulation driver only)."""
        completion = getattr(self.platform, "completion_time", None)
        if completion is None or not self.in_flight:
            return None
        upcoming = min(completion(handle) for handle in self.in_flight.values())
        wakes = [at.timestamp() for at in self._wake.values()]  # all after the last tick
        return min([upcoming, *wakes])

    def close(self) -> None:
        self.in_flight.clear()


def _job_end(repo: LoopRepository, job: Job) -> JobEnd:
    repo.forget_spend(job.id)  # the tick-start figure misses this tick's bills
    jct = (
        (job.finished_at - job.started_at).total_seconds()
        if job.started_at and job.finished_at
        else None
    )
    return JobEnd(
        job.id,
        job.name,
        job.status,
        job.status_reason,
        repo.spent_usd(job.id),
        jct,
        job.deadline_missed,
    )
