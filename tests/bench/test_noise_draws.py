"""Common random numbers: a task draws the same noise under every policy at one seed."""

from __future__ import annotations

from service.platform.clock import VirtualClock
from service.platform.emulator.backend import EmulatorPlatform
from service.platform.interface import FunctionSpec, Traits
from service.simulation.platform import noise_key


def durations(order: list[str], *, keyed: bool) -> dict[str, float]:
    emulator = EmulatorPlatform(
        VirtualClock(0.0), seed=7, noise_key=(lambda p: p["task"]) if keyed else None
    )
    try:
        for memory in (512, 1024):
            emulator.ensure_function(
                FunctionSpec(
                    name=f"f{memory}",
                    memory_mb=memory,
                    traits=Traits(cpu_ms=2000.0, peak_memory_mb=50.0, init_ms=300.0, io_ms=0.0),
                )
            )
        out = {}
        for task in order:
            memory = 512 if task.startswith("small") else 1024
            result = emulator.invoke(f"f{memory}", {"task": task})
            out[task] = result.report.duration_ms
        return out
    finally:
        emulator.close()


def test_a_tasks_draw_does_not_depend_on_the_order_or_on_other_tasks() -> None:
    first = durations(["small-a", "big-b", "small-c"], keyed=True)
    second = durations(["big-b", "small-c", "small-x", "small-a"], keyed=True)
    for task in ("small-a", "big-b", "small-c"):
        assert first[task] == second[task]
    # the old single stream gives a task whatever draw its turn brings
    assert (
        durations(["small-a", "big-b"], keyed=False)["small-a"]
        != durations(["big-b", "small-a"], keyed=False)["small-a"]
    )


def test_repeated_runs_of_one_task_draw_afresh() -> None:
    runs = durations(["small-a"], keyed=True)
    emulator = EmulatorPlatform(VirtualClock(0.0), seed=7, noise_key=lambda p: p["task"])
    try:
        emulator.ensure_function(
            FunctionSpec(
                name="f",
                memory_mb=512,
                traits=Traits(cpu_ms=2000.0, peak_memory_mb=50.0, init_ms=300.0, io_ms=0.0),
            )
        )
        seen = [emulator.invoke("f", {"task": "small-a"}).report.duration_ms for _ in range(3)]
    finally:
        emulator.close()
    assert seen[0] == runs["small-a"]
    assert len(set(seen)) == 3


def test_the_key_is_the_task_and_attempt_not_the_job() -> None:
    event = {"job_id": "j1", "task_id": "t1", "params": {"lr": 0.1}, "epoch_from": 0}
    event |= {"epoch_to": 3, "attempt": 1, "worker": 2}
    same = event | {"job_id": "j2", "task_id": "t9"}
    assert noise_key(event) == noise_key(same)
    assert noise_key(event) != noise_key(event | {"attempt": 2})
    assert noise_key(event) != noise_key(event | {"worker": 3})
