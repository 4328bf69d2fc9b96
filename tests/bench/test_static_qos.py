"""static-qos: the cheapest static size that met a seed's deadline, found by bisection."""

from __future__ import annotations

import itertools
from typing import Any

from service.bench.static_qos import STEP_MB, QosSearch, best_static, grid, meets


def run_at(memory_mb: int, *, work_s: float = 100.0, raised_to: int | None = None) -> dict:
    """A static job whose time falls with memory up to one vCPU (1,769 MB) and is flat above,
    and whose cost is flat below it and grows above (Lambda's CPU share)."""
    vcpu = min(memory_mb / 1769, 1.0)
    jct = work_s / vcpu
    ran = raised_to or memory_mb
    return {
        "status": "succeeded",
        "jct_s": jct,
        "cost_usd": ran / 1024 * jct * 1.6e-5,
        "stages": [{"memory_by_shape": {"default": {str(ran): 3}}}],
    }


def search(deadline_s: float, known: dict[int, dict[str, Any]] | None = None, **kw):
    runs = dict(known or {})
    query = QosSearch.of(150.0, deadline_s)
    made = 0
    while (size := query.next_size(runs)) is not None:
        assert size not in runs, "never runs a size twice"
        runs[size] = run_at(size, **kw)
        made += 1
    return best_static(runs, deadline_s), made


def test_the_grid_starts_above_the_peak_and_ends_at_the_largest_size() -> None:
    sizes = grid(150.0)
    assert sizes[0] == 192 and sizes[-1] == 10_240
    assert all(b - a == STEP_MB for a, b in itertools.pairwise(sizes))
    assert grid(10.0)[0] == 128


def test_finds_the_smallest_size_that_meets_the_deadline() -> None:
    deadline = 100 / (1000 / 1769)  # met from 1,000 MB up: the first grid size is 1,024
    (size, result), made = search(deadline)
    assert size == 1024
    assert meets(result, 1024, deadline)
    assert not meets(run_at(1024 - STEP_MB), 1024 - STEP_MB, deadline)
    assert made <= 9  # bisection over 159 sizes, not a sweep


def test_known_static_runs_narrow_the_search_and_can_be_the_answer() -> None:
    deadline = 100.0  # only one vCPU (1,769 MB) or more meets it
    known = {m: run_at(m) for m in (512, 1024, 1769, 3008)}
    (size, _), made = search(deadline, known)
    # 1,769 met it and the grid sizes between 1,024 and 1,769 do not: it is the cheapest
    assert size == 1769
    assert made <= 4


def test_a_run_raised_by_an_out_of_memory_retry_does_not_count_at_its_size() -> None:
    raised = run_at(512, raised_to=768)
    assert not meets(raised, 512, 1e9)
    assert meets(run_at(512), 512, 1e9)


def test_the_cheapest_run_that_met_wins_even_if_not_the_smallest() -> None:
    runs = {1024: run_at(1024), 1536: run_at(1536)}
    runs[1536] = runs[1536] | {"cost_usd": runs[1024]["cost_usd"] / 2}
    size, _ = best_static(runs, 1e9)
    assert size == 1536


def test_when_no_size_meets_the_deadline_the_fastest_run_stands_in() -> None:
    (size, result), made = search(1.0)
    assert not meets(result, size, 1.0)
    assert result["jct_s"] == min(run_at(m)["jct_s"] for m in grid(150.0))
    assert made == 1  # the largest size missed: nothing smaller can meet it
