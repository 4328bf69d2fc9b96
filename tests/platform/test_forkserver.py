"""The emulator's workers forked from a template process: what a cold start measures is
unchanged, crashes and a lost template are survived, and nothing outlives the pool."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from service.platform.emulator.runner import Task, WorkerPool

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the fork server is Linux only"
)

HANDLERS = "tests.platform.handlers"


def _task(handler: str, event: dict, n: int, *, cold: bool = True, memory_mb: int = 512) -> Task:
    return Task(
        handler=f"{HANDLERS}:{handler}",
        event=event,
        function_name="f",
        memory_mb=memory_mb,
        timeout_s=30.0,
        request_id=f"r{n}",
        environment=n,
        cold=cold,
    )


def _parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def test_cold_starts_are_forked_and_each_runs_the_handlers_first_use_work() -> None:
    with WorkerPool(1) as pool:
        assert pool._server is not None
        server_pid = pool._server.process.pid
        outcomes = [pool.run(_task("first_use", {"load_cpu_ms": 60}, n)) for n in range(4)]
        worker = pool._idle.get()
        assert _parent_of(worker.pid) == server_pid  # forked, not a new interpreter
        pool._idle.put(worker)
    for outcome in outcomes:
        assert outcome.status == "ok"
        # the template never runs the handler: every new environment loads for itself
        assert outcome.payload["first"] is True
        assert outcome.cpu_ms >= 50
        assert outcome.payload["blas_threads"] == "1"
    # the import measured in the first worker stands for every later cold start
    assert outcomes[0].import_ms is not None
    assert {o.import_ms for o in outcomes} == {outcomes[0].import_ms}


def test_a_forked_worker_that_exits_is_a_crash_with_its_exit_status_and_is_replaced() -> None:
    with WorkerPool(1) as pool:
        crashed = pool.run(_task("exit_now", {"code": 3}, 0))
        assert crashed.status == "crash"
        assert crashed.error_message == "Error: Runtime exited with error: exit status 3"
        assert pool.replaced == 1
        after = pool.run(_task("echo", {"x": 1}, 1))
        assert after.status == "ok" and after.payload["echo"] == {"x": 1}


def test_the_pool_starts_plain_processes_when_its_template_is_gone() -> None:
    with WorkerPool(1) as pool:
        assert pool.run(_task("echo", {}, 0)).status == "ok"
        assert pool._server is not None
        os.kill(pool._server.process.pid, signal.SIGKILL)
        pool._server.process.wait()
        outcome = pool.run(_task("echo", {"y": 2}, 1))
        assert outcome.status == "ok" and outcome.payload["echo"] == {"y": 2}
        assert pool._server is None
        worker = pool._idle.get()
        assert _parent_of(worker.pid) == os.getpid()  # a plain child of this process
        pool._idle.put(worker)


def test_closing_the_pool_ends_the_template_and_every_worker() -> None:
    pool = WorkerPool(2)
    assert pool._server is not None
    server_pid = pool._server.process.pid
    for n in range(3):
        assert pool.run(_task("echo", {}, n)).status == "ok"
    workers = []
    while not pool._idle.empty():
        workers.append(pool._idle.get())
    for worker in workers:
        pool._idle.put(worker)
    assert workers
    pool.close()
    assert not _alive(server_pid)
    assert not any(_alive(worker.pid) for worker in workers)
