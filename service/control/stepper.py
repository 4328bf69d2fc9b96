"""Advance one job by one tick: record results, retry or fail tasks, move through stages, and
write the intents (invocations, memory changes) that the dispatcher carries out after the commit.

Decisions come from pure code — the workflow (what runs next), the policy (how much memory),
``retry.after_failure`` (what a failure means) — and this module only moves rows.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from statistics import fmean
from typing import Any

from service.control import leases, priors, responses
from service.control.admission import Admission, CostModel
from service.control.admission import Run as AdmissionRun
from service.control.learning import Run, job_scope
from service.control.repository import LoopRepository
from service.control.retry import GiveUp, RetryPolicy, ShapeMemory, after_failure, oom_floors
from service.models import (
    Allocation,
    AllocationState,
    BillState,
    Invocation,
    InvocationOutcome,
    InvocationState,
    Job,
    JobStatus,
    Observation,
    Stage,
    StageKind,
    Task,
    WorkStatus,
)
from service.platform import pricing
from service.platform.interface import ErrorKind, InvokeResult
from service.policies.base import MemoryDecision, Observations, Policy, PolicyContext, Sample
from service.spec import JobSpec
from service.workflows.plan import Finished, StagePlan, StageResult, TaskOutcome, TaskPlan
from service.workflows.training import round_loss
from service.workloads.contract import CONTRACT

TERMINAL = (WorkStatus.SUCCEEDED.value, WorkStatus.FAILED.value, WorkStatus.CANCELLED.value)

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
        workflow,
        policy: Policy,
        function_name: str,
    ) -> None:
        self.repo = repo
        self.job = job
        self.spec = spec
        self.workflow = workflow
        self.policy = policy
        self.function_name = function_name
        # Loaded once per tick and shared by record and advance. A tick reads the job's
        # unfinished tasks (the current stage's) and reads every task only when it needs the
        # stages before (a stage ends, a decision): loading a job's tasks was most of a tick's
        # cost, growing with the job (an 81-trial rung is 81 rows with JSON columns).
        self._tasks: list[Task] | None = None
        self._unfinished: list[Task] | None = None
        self._open: list[Invocation] | None = None
        self._spent: Decimal | None = None
        self.intents = 0  # invocation and memory-change intents written this tick

    def tasks(self) -> list[Task]:
        """Every task of the job (the same objects as ``unfinished_tasks``)."""
        if self._tasks is None:
            self._tasks = self.repo.tasks(self.job.id)
        return list(self._tasks)

    def unfinished_tasks(self) -> list[Task]:
        """The tasks that were not finished when the tick began: the current stage's."""
        if self._unfinished is None:
            self._unfinished = self.repo.unfinished_tasks(self.job.id)
        return list(self._unfinished)

    def spent(self) -> Decimal:
        """What the job has been billed, this tick's results included (read once, after
        them)."""
        if self._spent is None:
            self._spent = self.repo.spent_usd(self.job.id)
        return self._spent

    def open_invocations(self) -> list[Invocation]:
        """Invocations without a recorded result (intents), as of now in this tick."""
        if self._open is None:
            self._open = self.repo.open_invocations(self.job.id)
        self._open = [i for i in self._open if i.state == InvocationState.INTENT.value]
        return list(self._open)

    # -- the tick -------------------------------------------------------------------------
    def record(self, ctx: StepContext) -> tuple[list[Run], tuple[list[int], list[float]] | None]:
        """Record the results that arrived; return the runs for the learn step and, for a
        training job that completed rounds, their stage positions and every round's loss."""
        if self.job.status == JobStatus.PENDING.value:
            self.job.status = JobStatus.RUNNING.value
            self.job.started_at = ctx.now
        if not ctx.results:
            return [], None
        tasks = {task.id: task for task in self.unfinished_tasks()}
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
                    )
                )
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
        return runs, (completed, list(self._round_losses(stages, list(tasks.values()))))

    def _round_losses(self, stages: list[Stage], tasks: list[Task]) -> tuple[float, ...]:
        """The loss of every round so far (the mean of its workers'), up to the first one
        that has not finished."""
        rounds = []
        for stage in stages:
            if stage.kind != StageKind.ROUND.value:
                continue
            own = [t for t in tasks if t.stage_id == stage.id]
            if not own or any(t.status != WorkStatus.SUCCEEDED.value for t in own):
                break
            rounds.append(fmean((t.result or {}).get("loss") or 0.0 for t in own))
        return tuple(rounds)

    def advance(self, ctx: StepContext) -> None:
        """Move the job on: cancellation, budget, stages, decisions, launches."""
        job = self.job
        stages = self.repo.stages(job.id)
        # The unfinished tasks are all a tick needs until a stage ends or a decision is due;
        # then it reads every task (the workflow and the policy read the stages before).
        tasks, every = self.unfinished_tasks(), False
        open_invocations = self.open_invocations()

        if job.cancel_requested_at is not None:
            if not open_invocations:
                self._end(JobStatus.CANCELLED, "cancelled by user", stages, tasks, ctx.now)
            return
        spent = self.spent() if job.max_cost_usd is not None else None  # else read if decided
        if spent is not None and job.max_cost_usd is not None and spent >= job.max_cost_usd:
            if not open_invocations:
                self._end(
                    JobStatus.FAILED,
                    f"budget cap reached: spent ${spent:.6f} of ${job.max_cost_usd:.6f}",
                    stages,
                    tasks,
                    ctx.now,
                )
            return

        while True:
            current = stages[-1] if stages else None
            current_tasks = [t for t in tasks if current is not None and t.stage_id == current.id]
            running = current is not None and current.status not in TERMINAL
            if running and any(t.status not in TERMINAL for t in current_tasks):
                waiting = [t for t in current_tasks if t.memory_mb is None]
                decided = [t for t in current_tasks if t.memory_mb is not None]
                if waiting and all(t.status in TERMINAL for t in decided):
                    if not every:
                        tasks, every = self.tasks(), True
                    self._decide_waiting(current, waiting, stages, tasks, spent, ctx)
                break
            if not every:  # the stage ends, or none is open: every stage is read from here
                tasks, every = self.tasks(), True
                current_tasks = [t for t in tasks if running and t.stage_id == current.id]
            if running:
                ok = any(t.status == WorkStatus.SUCCEEDED.value for t in current_tasks)
                current.status = (WorkStatus.SUCCEEDED if ok else WorkStatus.FAILED).value
                current.finished_at = ctx.now
            step = self.workflow.next_stage(self._history(stages, tasks))
            if isinstance(step, Finished):
                self._finish(step, stages, tasks, ctx.now)
                return
            stage, new_tasks = self._open_stage(step, stages, tasks, spent, ctx)
            stages.append(stage)
            tasks.extend(new_tasks)

        self._launch(current_tasks, open_invocations, spent, tasks, ctx)
        self.repo.flush()

    # -- results ------------------------------------------------------------------------
    def _record(self, invocation: Invocation, task: Task, result: InvokeResult, ctx: StepContext):
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
            invocation.cold_start = report.cold
            self._observe(task, invocation, report, ctx.now)

        if outcome is InvocationOutcome.OK:
            problem = responses.problem(result.payload, invocation, task)
            if problem is not None:
                # A contract violation does not fix itself: the task fails at once.
                reason = f"response from {invocation.function_name} does not follow {CONTRACT}: "
                task.status = WorkStatus.FAILED.value
                task.failure_reason = reason + problem
                invocation.outcome = InvocationOutcome.HANDLED.value
                invocation.error = task.failure_reason
                return
            payload = result.payload
            if "error" in payload:
                error = payload["error"]
                task.status = WorkStatus.FAILED.value
                task.failure_reason = f"{error['type']}: {error['message']}"
                invocation.outcome = InvocationOutcome.HANDLED.value
                return
            metrics = payload["metrics"]
            task.status = WorkStatus.SUCCEEDED.value
            task.checkpoint_out = payload["checkpoint"]
            task.result = {
                "loss": metrics.get("loss"),
                "score": metrics.get("score"),
                "epochs_done": payload["epochs_done"],
                "checkpoint": task.checkpoint_out,
                "peak_memory_mb": payload["peak_memory_mb"],
            }
            return
        self._retry_or_fail(task, invocation, outcome, ctx)

    def _retry_or_fail(self, task, invocation, outcome: InvocationOutcome, ctx: StepContext):
        history = self.repo.task_outcomes(task.id)
        decision = after_failure(
            outcome,
            attempts=task.attempts,
            timeouts=history.count(InvocationOutcome.TIMEOUT.value),
            throttles=history.count(InvocationOutcome.THROTTLED.value),
            memory_mb=invocation.memory_mb,
            peak_mb=invocation.max_memory_used_mb,
            policy=ctx.retry,
            rng=ctx.rng,
            ooms=history.count(InvocationOutcome.OUT_OF_MEMORY.value),
            shape=ShapeMemory.of(task.shape, self._memory_runs())
            if outcome is InvocationOutcome.OUT_OF_MEMORY
            else None,
        )
        if isinstance(decision, GiveUp):
            task.status = WorkStatus.FAILED.value
            task.failure_reason = decision.reason
            return
        task.status = WorkStatus.PENDING.value
        task.not_before = ctx.now + timedelta(seconds=decision.delay_s)
        if decision.memory_mb != task.memory_mb:
            self._allocate(
                task.stage_id,
                task.shape,
                task.memory_mb,
                MemoryDecision(decision.memory_mb, "oom-floor", decision.reason),
                task_id=task.id,
            )
            task.memory_mb = decision.memory_mb

    def _memory_runs(self):
        """(shape, memory, peak, outcome) of every finished run: what retry.py reads."""
        return [(row[0], row[2], row[5], row[8]) for row in self.repo.samples(self.job.id)]

    def _observe(self, task: Task, invocation: Invocation, report, now: datetime) -> None:
        series = f"{self.job.id}/{task.shape}"
        for metric, value in (
            ("duration_ms", report.duration_ms),
            ("max_memory_used_mb", report.max_memory_used_mb),
        ):
            self.repo.add(
                Observation(
                    job_id=self.job.id,
                    series=series,
                    metric=metric,
                    value=float(value),
                    memory_mb=invocation.memory_mb,
                    source="report",
                    observed_at=invocation.finished_at or now,
                )
            )

    # -- stages -------------------------------------------------------------------------
    def _history(self, stages: list[Stage], tasks: list[Task]) -> list[StageResult]:
        history = []
        for stage in stages:
            if stage.status not in TERMINAL:
                break
            own = [t for t in tasks if t.stage_id == stage.id]
            plan = StagePlan(
                stage.position,
                stage.name,
                stage.kind,
                tuple(
                    TaskPlan(t.key, t.params, t.epoch_from or 0, t.epoch_to or 0, shape=t.shape)
                    for t in own
                ),
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

    def _open_stage(
        self,
        step: StagePlan,
        stages: list[Stage],
        tasks: list[Task],
        spent: Decimal | None,
        ctx: StepContext,
    ) -> tuple[Stage, list[Task]]:
        stage = Stage(
            job_id=self.job.id,
            position=step.position,
            name=step.name,
            kind=step.kind.value,
            status=WorkStatus.RUNNING.value,
            started_at=ctx.now,
        )
        self.repo.add(stage)
        self.repo.flush()
        memory = self._decide(stage, step, stages, tasks, spent, ctx, must_decide_all=False)
        by_key = {(t.stage_id, t.key): t for t in tasks}
        stage_ids = {s.position: s.id for s in stages}
        new_tasks = []
        for plan in step.tasks:
            checkpoint_in: str | list[str] | None = None
            if plan.resume is not None:
                source = by_key[(stage_ids[plan.resume[0]], plan.resume[1])]
                checkpoint_in = source.checkpoint_out
            elif step.resume_model is not None:
                checkpoint_in = [
                    t.checkpoint_out
                    for t in tasks
                    if t.stage_id == stage_ids[step.resume_model] and t.checkpoint_out
                ]
            task = Task(
                job_id=self.job.id,
                stage_id=stage.id,
                key=plan.key,
                shape=plan.shape,
                status=WorkStatus.PENDING.value,
                params=plan.params,
                function_name=self.function_name,
                memory_mb=memory.get(plan.key),  # None: waits for a later decision
                epoch_from=plan.epoch_from,
                epoch_to=plan.epoch_to,
                checkpoint_in=checkpoint_in,
                attempts=0,
            )
            self.repo.add(task)
            new_tasks.append(task)
        self.repo.flush()
        return stage, new_tasks

    def _decide_waiting(self, stage: Stage, waiting: list[Task], stages, tasks, spent, ctx):
        """Tasks the policy left undecided when the stage opened (e.g. behind a pilot): decide
        them now that the decided ones have finished."""
        step = StagePlan(
            stage.position,
            stage.name,
            StageKind(stage.kind),
            tuple(
                TaskPlan(t.key, t.params, t.epoch_from or 0, t.epoch_to or 0, shape=t.shape)
                for t in waiting
            ),
        )
        memory = self._decide(stage, step, stages, tasks, spent, ctx, must_decide_all=True)
        for task in waiting:
            task.memory_mb = memory[task.key]

    def _decide(self, stage, step, stages, tasks, spent, ctx, *, must_decide_all: bool):
        observations = self._observations(stages, tasks, spent, ctx.now)
        decisions = self.policy.allocate(
            PolicyContext(
                spec=self.spec,
                stage=step,
                outline=self.workflow.outline_after(step.position),
                observations=observations,
                now=ctx.now.timestamp(),
                stage_overhead_s=ctx.stage_overhead_s,
                must_decide_all=must_decide_all,
            )
        )
        if must_decide_all and set(decisions) != {t.key for t in step.tasks}:
            raise RuntimeError(f"policy {self.policy.name} left tasks of {step.name} undecided")
        memory = self._record_decisions(stage, step, decisions, observations)
        planned = [m for m in (stage.planned_memory_mb, *memory.values()) if m is not None]
        stage.planned_memory_mb = max(planned) if planned else None
        return memory

    def _record_decisions(
        self,
        stage: Stage,
        step: StagePlan,
        decisions: dict[str, MemoryDecision],
        observations: Observations,
    ) -> dict[str, int]:
        """Each task's memory (never below its shape's out-of-memory floor), and one allocation
        row per shape and size that changed — plus one per vetoed proposal."""
        memory: dict[str, int] = {}
        by_shape: dict[str, dict[int, MemoryDecision]] = {}
        for plan in step.tasks:
            decision = decisions.get(plan.key)
            if decision is None:
                continue
            floor = observations.oom_floors.get(plan.shape)
            if floor is not None and floor > decision.memory_mb:
                decision = MemoryDecision(
                    floor, "oom-floor", f"raised to the out-of-memory floor of {floor} MB"
                )
            memory[plan.key] = decision.memory_mb
            by_shape.setdefault(plan.shape, {}).setdefault(decision.memory_mb, decision)
        for shape, sizes in sorted(by_shape.items()):
            previous = observations.current_mb.get(shape)
            recorded_vetoes = set()
            for size, decision in sorted(sizes.items()):
                for veto in decision.vetoes:
                    if (veto.rule, veto.proposed_mb) not in recorded_vetoes:
                        recorded_vetoes.add((veto.rule, veto.proposed_mb))
                        self._allocate(
                            stage.id,
                            shape,
                            previous,
                            MemoryDecision(veto.proposed_mb, veto.rule, veto.reason),
                            state=AllocationState.VETOED,
                        )
                if size != previous or len(sizes) > 1:
                    self._allocate(stage.id, shape, previous, decision)
        return memory

    def _observations(self, stages, tasks, spent: Decimal | None, now: datetime) -> Observations:
        samples = tuple(
            Sample(
                shape=row[0],
                stage=row[1],
                memory_mb=row[2],
                duration_ms=row[3],
                init_ms=row[4],
                peak_mb=float(row[5]) if row[5] is not None else None,
                epochs=(row[7] or 0) - (row[6] or 0),
                ok=row[8] == InvocationOutcome.OK.value,
            )
            for row in self.repo.samples(self.job.id)
            if row[8] != InvocationOutcome.THROTTLED.value
        )
        # A shape's current memory is what most of its tasks ran at in the latest stage that
        # had it (ties: the larger); rounds_since_change counts the stages since it changed.
        current: dict[str, int] = {}
        runs: dict[str, int] = {}
        for stage in sorted(stages, key=lambda s: s.position):
            sizes = Counter(
                (t.shape, t.memory_mb) for t in tasks if t.stage_id == stage.id and t.memory_mb
            )
            for shape in {shape for shape, _ in sizes}:
                majority = max(
                    ((count, memory) for (s, memory), count in sizes.items() if s == shape)
                )[1]
                if current.get(shape) == majority and stage.status in TERMINAL:
                    runs[shape] = runs.get(shape, 0) + 1
                else:
                    runs[shape] = 1 if stage.status in TERMINAL else 0
                current[shape] = majority
        done = [s for s in stages if s.status in TERMINAL]
        rounds_since_change = runs.get("worker")
        losses = tuple(
            loss
            for result in self._history(stages, tasks)
            if result.plan.kind == StageKind.ROUND.value
            and (loss := round_loss(result)) is not None
        )
        elapsed = (now - self.job.started_at).total_seconds() if self.job.started_at else 0.0
        scope = job_scope(self.job.id)
        predictors = {
            name: {"state": row.state, "observations": row.observations}
            for (_, name), row in self.repo.predictor_states([scope]).items()
        }
        # what the tenant's earlier jobs measured of the same work ("prior:<shape>")
        predictors |= priors.lookup(
            self.repo.session, self.job.tenant_id, self.spec, self.job.id, now
        )
        return Observations(
            elapsed_s=elapsed,
            spent_usd=float(self.spent() if spent is None else spent),
            samples=samples,
            predictors=predictors,
            oom_floors=oom_floors(self._memory_runs()),
            current_mb=current,
            losses=losses,
            stages_done=len(done),
            rounds_since_change=rounds_since_change,
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
                detail={"shape": shape},
            )
        )

    # -- launching and ending -----------------------------------------------------------
    def _launch(
        self, tasks: list[Task], open_invocations, spent: Decimal | None, every_task, ctx
    ) -> None:
        budget = ctx.in_flight_limit - len(open_invocations)
        admission, admission_read = None, False
        for task in tasks:
            if budget <= 0:
                return
            if task.status != WorkStatus.PENDING.value or task.memory_mb is None:
                continue
            if task.not_before is not None and task.not_before > ctx.now:
                continue
            epochs = (task.epoch_to or 0) - (task.epoch_from or 0)
            if not admission_read:  # read the job's runs only when something may launch
                admission = self._admission(open_invocations, spent, every_task)
                admission_read = True
            if admission is not None and not admission.admit(task.shape, task.memory_mb, epochs):
                return  # the budget does not hold for it (now): a later tick may launch it
            task.attempts += 1
            task.status = WorkStatus.RUNNING.value
            self.intents += 1
            self.repo.add(
                Invocation(
                    job_id=self.job.id,
                    stage_id=task.stage_id,
                    task_id=task.id,
                    attempt=task.attempts,
                    function_name=self.function_name,
                    memory_mb=task.memory_mb,
                    architecture=self.spec.workload.architecture,
                    state=InvocationState.INTENT.value,
                )
            )
            budget -= 1

    def _admission(self, open_invocations, spent: Decimal | None, tasks) -> Admission | None:
        """Budget admission for a job with a cap (``admission.py``); None without one."""
        if self.job.max_cost_usd is None or spent is None:
            return None
        runs = [
            AdmissionRun(row[0], row[2], row[3], row[4], (row[7] or 0) - (row[6] or 0))
            for row in self.repo.samples(self.job.id)
            if row[8] == InvocationOutcome.OK.value and row[3]
        ]
        admission = Admission(
            float(self.job.max_cost_usd),
            float(spent),
            CostModel.of(runs, self.spec.workload.architecture),
        )
        by_id = {task.id: task for task in tasks}
        for invocation in open_invocations:
            task = by_id.get(invocation.task_id)
            if task is not None:
                epochs = (task.epoch_to or 0) - (task.epoch_from or 0)
                admission.hold(task.shape, invocation.memory_mb, epochs)
        return admission

    def _finish(self, end: Finished, stages, tasks, now: datetime) -> None:
        self.job.result = end.result
        if end.ok:
            self._end(JobStatus.SUCCEEDED, None, stages, tasks, now)
        else:
            self._end(JobStatus.FAILED, _with_causes(end.reason, stages, tasks), stages, tasks, now)

    def _end(self, status: JobStatus, reason: str | None, stages, tasks, now: datetime) -> None:
        job = self.job
        job.status = status.value
        job.status_reason = reason
        job.finished_at = now
        if job.started_at is not None:
            job.deadline_missed = (now - job.started_at).total_seconds() > job.deadline_s
        for row in [*stages, *tasks]:
            if row.status not in TERMINAL:
                row.status = WorkStatus.CANCELLED.value
                if isinstance(row, Stage):
                    row.finished_at = now
        leases.release(job)


def _with_causes(reason: str | None, stages: list[Stage], tasks: list[Task]) -> str:
    """The workflow's reason, and why the tasks of the last stage failed (each distinct cause
    once, with how many tasks it hit): "every trial of rung-0 failed: timed out 2 times (27)"."""
    last = stages[-1].id if stages else None
    causes = Counter(
        t.failure_reason or "unknown"
        for t in tasks
        if t.stage_id == last and t.status == WorkStatus.FAILED.value
    )
    if not causes:
        return reason or "the workflow could not go on"
    listed = "; ".join(f"{cause} ({n})" for cause, n in causes.most_common(3))
    more = f"; {len(causes) - 3} more causes" if len(causes) > 3 else ""
    return f"{reason}: {listed}{more}"
