"""The control loop on the AWS backend (moto server, real Postgres): what it records and bills.

Moto's Lambda runs no code and writes no log tail, which is exactly the case under test: a
canned answer must fail the task with a contract violation, and an invocation without a REPORT
line must be billed its request at once and its duration once the loop's reconcile step finds
the REPORT in CloudWatch Logs (written here into moto's CloudWatch Logs, as Lambda would).

Moto has no GetAccountSettings; the concurrency limit is given by a subclass here (the fallback
for a missing account-settings call is not what these tests are about).
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.exceptions import ReadTimeoutError
from sqlalchemy import select

from service.control.loop import Controller
from service.control.reconcile import Reconciler
from service.database import Database, commit
from service.jobs.service import JobService
from service.models import Invocation, Job, Task, Tenant
from service.platform import pricing
from service.platform.aws.clients import make_clients
from service.platform.aws.lambda_backend import AwsPlatform
from service.platform.interface import Report
from service.platform.report import billed_ms, format_text
from tests.conftest import truncate_all
from tests.control.helpers import SMALL_DATA, submit
from tests.platform.conftest import REGION, MotoServer
from tests.platform.harness import _ZIP

ARM64_GB_S = Decimal("0.0000133334")


class MotoPlatform(AwsPlatform):
    def concurrency_limit(self) -> int:
        return 8


@dataclass
class AwsLoop:
    database: Database
    platform: MotoPlatform
    controller: Controller
    moto: MotoServer
    function: str
    logs: Any

    def spec(self, trials: int = 3, timeout_s: int = 30) -> dict:
        return {
            "name": "byo-on-aws",
            "kind": "hpo",
            # the spec claims x86_64; the function is arm64, and arm64 is what is billed
            "workload": {
                "function": self.function,
                "dataset": SMALL_DATA,
                "architecture": "x86_64",
                "timeout_s": timeout_s,
            },
            "hpo": {
                "search_space": {"lr": {"log_uniform": [0.001, 0.5]}},
                "trials": trials,
                "eta": 3,
                "min_epochs": 1,
                "max_epochs": 1,
            },
            "qos": {"deadline_s": 600},
            "policy": {"name": "static", "memory_mb": 512},
        }

    def answer(self, *payloads: Any) -> None:
        """Queue what the function answers (moto's lambda-simple responses)."""
        self.moto.post(
            "/moto-api/static/lambda-simple/response",
            {"results": [json.dumps(p) for p in payloads], "region": REGION},
        )

    def run(self, job_id: uuid.UUID, timeout_s: float = 60.0) -> Job:
        """Tick on the wall clock until the job has ended (waits on progress, not on time)."""
        deadline = time.monotonic() + timeout_s
        while True:
            report = self.controller.run_once(datetime.now(UTC))
            if job_id in report.finished_jobs:
                break
            assert time.monotonic() < deadline, "the job did not end"
            time.sleep(0.02)
        with self.database.session() as session:
            job = session.get(Job, job_id)
            session.expunge(job)
            return job

    def reconcile(self, now: datetime) -> int:
        """A loop tick at `now` (its reconcile step is due: `now` is past the interval)."""
        return self.controller.run_once(now).reconciled

    def reconcile_pass(self, now: datetime) -> int:
        """One reconcile pass at `now`, whatever the loop's schedule."""
        with self.database.session() as session:
            reconciler = Reconciler(self.platform, interval_s=60, horizon_s=3600)
            done = reconciler.run(session, now).reconciled
            commit(session)
        return done

    def invocations(self, job_id: uuid.UUID) -> list[Invocation]:
        with self.database.session() as session:
            rows = list(
                session.scalars(
                    select(Invocation)
                    .where(Invocation.job_id == job_id)
                    .order_by(Invocation.created_at, Invocation.attempt)
                )
            )
            session.expunge_all()
            return rows

    def cost(self, job_id: uuid.UUID):
        with self.database.session() as session:
            job = session.get(Job, job_id)
            return JobService(session).cost(session.get(Tenant, job.tenant_id), job_id)

    def log_report(self, request_id: str, at: datetime, memory_mb: int = 512) -> Report:
        """Write the REPORT line Lambda writes for one invocation into its log group."""
        report = Report(request_id, 999.5, billed_ms(999.5, 200.0), memory_mb, 96, 200.0)
        group = f"/aws/lambda/{self.function}"
        with contextlib.suppress(self.logs.exceptions.ResourceAlreadyExistsException):
            self.logs.create_log_group(logGroupName=group)
        stream = uuid.uuid4().hex
        self.logs.create_log_stream(logGroupName=group, logStreamName=stream)
        self.logs.put_log_events(
            logGroupName=group,
            logStreamName=stream,
            logEvents=[{"timestamp": int(at.timestamp() * 1000), "message": format_text(report)}],
        )
        return report


def valid_response(loss: float = 0.4, score: float = 0.8) -> dict:
    return {
        "contract": "cescale.handler/1",
        "metrics": {"loss": loss, "score": score},
        "epochs_done": 1,
        "checkpoint": "s3://cescale-test/store/checkpoints/model.npz",
        "peak_memory_mb": 90.5,
        "replayed": False,
    }


@pytest.fixture
def aws_loop(moto_server: MotoServer, pg_engine, settings) -> Iterator[AwsLoop]:
    settings = settings.model_copy(
        update={
            "backend": "aws",
            "aws_endpoint_url": moto_server.endpoint,
            "store_url": "s3://cescale-test/store",
            "reconcile_interval_s": 60.0,
            "reconcile_horizon_s": 3600.0,
        }
    )
    client = boto3.client("lambda", region_name=REGION, endpoint_url=moto_server.endpoint)
    iam = boto3.client("iam", region_name=REGION, endpoint_url=moto_server.endpoint)
    try:
        role = iam.create_role(RoleName="cescale-billing", AssumeRolePolicyDocument="{}")
    except iam.exceptions.EntityAlreadyExistsException:
        role = iam.get_role(RoleName="cescale-billing")
    function = f"byo-{uuid.uuid4().hex[:8]}"
    client.create_function(
        FunctionName=function,
        Runtime="python3.11",
        Role=role["Role"]["Arn"],
        Handler="handler.handler",
        Code={"ZipFile": _ZIP},
        MemorySize=1024,
        Timeout=30,
        Architectures=["arm64"],
    )
    platform = MotoPlatform(
        make_clients(REGION, moto_server.endpoint), sleep=lambda _: None, update_poll_s=0.01
    )
    database = Database(settings, engine=pg_engine)
    controller = Controller(database, platform, settings, seed=0)
    logs = boto3.client("logs", region_name=REGION, endpoint_url=moto_server.endpoint)
    yield AwsLoop(database, platform, controller, moto_server, function, logs)
    platform.close()
    truncate_all(pg_engine)


def test_a_canned_answer_fails_the_task_and_the_job_with_the_contract_violation(aws_loop):
    (job_id,) = submit(aws_loop.database, aws_loop.spec())
    job = aws_loop.run(job_id)  # moto answers each invocation with its own event
    reason = f"response from {aws_loop.function} does not follow cescale.handler/1: $"
    assert job.status == "failed"
    assert job.result in (None, {}) or not job.result.get("best")
    assert job.status_reason.startswith("every trial of rung-0 failed: " + reason)
    assert "is a required property (3)" in job.status_reason
    with aws_loop.database.session() as session:
        tasks = session.scalars(select(Task).where(Task.job_id == job_id)).all()
        assert {t.status for t in tasks} == {"failed"}
        assert all(t.failure_reason.startswith(reason) for t in tasks)
        assert all(t.attempts == 1 for t in tasks), "a contract violation is not retried"
    invocations = aws_loop.invocations(job_id)
    assert len(invocations) == 3 and {i.outcome for i in invocations} == {"handled"}
    # never $0: each reached Lambda, so each is billed its request
    assert all(i.request_cost_usd == pricing.REQUEST_USD for i in invocations)


def test_reportless_invocations_bill_their_request_then_are_reconciled_at_arm64_prices(aws_loop):
    aws_loop.answer(valid_response(0.5, 0.7), valid_response(0.3, 0.9), valid_response(0.4, 0.8))
    (job_id,) = submit(aws_loop.database, aws_loop.spec())
    job = aws_loop.run(job_id)
    assert job.status == "succeeded", job.status_reason
    assert job.result["best"]["score"] == 0.9 and job.result["best"]["loss"] == 0.3

    invocations = aws_loop.invocations(job_id)
    assert len(invocations) == 3
    for invocation in invocations:
        assert invocation.state == "done" and invocation.outcome == "ok"
        assert invocation.architecture == "arm64"  # the function's, not the spec's x86_64
        assert invocation.bill_state == "pending" and invocation.request_id
        assert invocation.request_cost_usd == pricing.REQUEST_USD
        assert invocation.compute_cost_usd == 0 and invocation.billed_ms is None
    cost = aws_loop.cost(job_id)
    assert cost.total.requests_usd == 3 * pricing.REQUEST_USD
    assert cost.total.unreconciled_invocations == 3
    assert [s.cost.unreconciled_invocations for s in cost.stages] == [3]

    # Lambda writes the REPORT lines to CloudWatch Logs; the next reconcile pass reads them.
    finished = max(i.finished_at for i in invocations)
    reports = {
        i.request_id: aws_loop.log_report(i.request_id, finished + timedelta(seconds=1))
        for i in invocations
    }
    assert aws_loop.reconcile(datetime.now(UTC) + timedelta(seconds=120)) == 3

    cost = aws_loop.cost(job_id)
    assert cost.total.unreconciled_invocations == 0
    assert [s.cost.unreconciled_invocations for s in cost.stages] == [0]
    ledger = Decimal(0)
    for invocation in aws_loop.invocations(job_id):
        report = reports[invocation.request_id]
        assert invocation.bill_state == "final"
        assert (invocation.duration_ms, invocation.billed_ms) == (999.5, 1200)
        assert (invocation.init_ms, invocation.max_memory_used_mb) == (200.0, 96)
        assert invocation.cold_start is True
        # 0.5 GB x 1.2 s at the arm64 rate
        assert invocation.compute_cost_usd == Decimal("0.5") * Decimal("1.2") * ARM64_GB_S
        assert invocation.compute_cost_usd == pricing.compute_usd(report, "arm64")
        ledger += invocation.compute_cost_usd + invocation.request_cost_usd
    assert cost.total.total_usd == ledger
    assert cost.total.compute_usd == 3 * Decimal("0.5") * Decimal("1.2") * ARM64_GB_S
    assert cost.total.gb_seconds == Decimal("1.8")


def test_an_ambiguous_invoke_is_retried_once_and_its_bill_reconciled_from_the_logs(aws_loop):
    timed_out: list[str] = []

    def time_out_once(request: Any, **_: Any) -> None:
        if not timed_out:
            timed_out.append(request.url)
            raise ReadTimeoutError(endpoint_url=request.url)

    aws_loop.platform.clients.lambda_invoke.meta.events.register(
        "before-send.lambda.Invoke", time_out_once
    )
    aws_loop.answer(valid_response())
    (job_id,) = submit(aws_loop.database, aws_loop.spec(trials=1, timeout_s=5))
    job = aws_loop.run(job_id)
    assert job.status == "succeeded", job.status_reason

    first, retry = aws_loop.invocations(job_id)
    assert (first.attempt, first.state, first.outcome) == (1, "ambiguous", "unhandled")
    assert first.request_id is None and first.bill_state == "pending"
    assert first.request_cost_usd == pricing.REQUEST_USD  # the request was sent
    assert (retry.attempt, retry.state, retry.outcome) == (2, "done", "ok")
    assert aws_loop.cost(job_id).total.unreconciled_invocations == 2

    # The first attempt did run: Lambda logged its REPORT under an id we never saw.
    lost = str(uuid.uuid4())
    aws_loop.log_report(lost, first.started_at + timedelta(seconds=2))
    aws_loop.log_report(retry.request_id, retry.finished_at)
    # Before the first attempt's window has closed (its timeout), only the retry is matched.
    assert aws_loop.reconcile_pass(first.started_at + timedelta(seconds=10)) == 1
    assert aws_loop.cost(job_id).total.unreconciled_invocations == 1
    assert aws_loop.reconcile(datetime.now(UTC) + timedelta(seconds=300)) == 1

    first, retry = aws_loop.invocations(job_id)
    assert first.bill_state == "final" and first.request_id == lost
    assert first.compute_cost_usd == Decimal("0.5") * Decimal("1.2") * ARM64_GB_S
    assert (first.state, first.outcome) == ("ambiguous", "unhandled")  # billed, not a success
    assert retry.bill_state == "final"
    with aws_loop.database.session() as session:
        (task,) = session.scalars(select(Task).where(Task.job_id == job_id)).all()
        assert task.status == "succeeded" and task.attempts == 2
    oks = [i for i in aws_loop.invocations(job_id) if i.outcome == "ok"]
    assert len(oks) == 1, "the task's success is recorded once"
    assert aws_loop.cost(job_id).total.unreconciled_invocations == 0


def test_a_report_never_found_is_missing_after_the_horizon_and_still_reported(aws_loop):
    aws_loop.answer(valid_response())
    (job_id,) = submit(aws_loop.database, aws_loop.spec(trials=1))
    assert aws_loop.run(job_id).status == "succeeded"
    (invocation,) = aws_loop.invocations(job_id)
    assert aws_loop.reconcile(datetime.now(UTC) + timedelta(seconds=120)) == 0
    assert aws_loop.invocations(job_id)[0].bill_state == "pending"

    assert aws_loop.reconcile(invocation.finished_at + timedelta(seconds=3601)) == 0
    (invocation,) = aws_loop.invocations(job_id)
    assert invocation.bill_state == "missing"
    assert "no REPORT line found in CloudWatch Logs within 3600 s" in invocation.error
    cost = aws_loop.cost(job_id)
    assert cost.total.unreconciled_invocations == 1  # reported, never silently $0
    assert cost.total.requests_usd == pricing.REQUEST_USD


def test_two_ambiguous_invokes_in_one_window_are_never_guessed(aws_loop):
    """Without request ids, one REPORT for two overlapping attempts could be either's: both stay
    unreconciled rather than one being billed with the other's run."""
    timed_out: list[str] = []

    def time_out_twice(request: Any, **_: Any) -> None:
        if len(timed_out) < 2:
            timed_out.append(request.url)
            raise ReadTimeoutError(endpoint_url=request.url)

    aws_loop.platform.clients.lambda_invoke.meta.events.register(
        "before-send.lambda.Invoke", time_out_twice
    )
    aws_loop.answer(valid_response(), valid_response())
    spec = aws_loop.spec(trials=2, timeout_s=5)
    spec["hpo"] |= {"eta": 2}
    (job_id,) = submit(aws_loop.database, spec)
    assert aws_loop.run(job_id).status == "succeeded"
    ambiguous = [i for i in aws_loop.invocations(job_id) if i.state == "ambiguous"]
    assert len(ambiguous) == 2
    aws_loop.log_report(str(uuid.uuid4()), ambiguous[0].started_at + timedelta(seconds=1))
    aws_loop.reconcile_pass(datetime.now(UTC) + timedelta(seconds=300))
    after = [i for i in aws_loop.invocations(job_id) if i.state == "ambiguous"]
    assert [i.bill_state for i in after] == ["pending", "pending"]
    assert all(i.request_id is None and i.compute_cost_usd == 0 for i in after)


def test_the_reconcile_step_runs_at_most_once_per_interval(aws_loop):
    reconciler = aws_loop.controller.reconciler
    start = datetime.now(UTC) + timedelta(days=1)
    assert reconciler.due(start)
    aws_loop.controller.run_once(start)
    assert not reconciler.due(start + timedelta(seconds=59))
    assert reconciler.due(start + timedelta(seconds=60))
