"""Repeat jobs in simulation: the second job of a tenant starts from the first one's curves, so
it explores nothing and costs no more than the first; ``cescale bench --repeat`` reports both
against the oracle."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from service.bench.workloads import builtin_workloads
from service.cli.main import app
from service.simulation.run import simulate


def rules(result: dict) -> set[str]:
    return {c["rule"] for c in result["memory_changes"]}


@pytest.mark.parametrize(
    ("workload_id", "deadline_s"), [("hpo-mlp-eta3", 600.0), ("train-mlp-w4", 300.0)]
)
def test_the_repeat_job_costs_no_more_than_the_first(workload_id, deadline_s):
    workload = {w.id: w for w in builtin_workloads()}[workload_id]
    spec = workload.spec({"name": "ce-scaling"}, deadline_s, 0)
    second = simulate(spec, seed=0, workload=workload.model(), repeat=2)
    (first,) = second["previous_jobs"]
    assert first["status"] == second["status"] == "succeeded"
    assert "explore" in rules(first) and "explore" not in rules(second)
    assert any("earlier job" in c["reason"] for c in second["memory_changes"])
    assert second["deadline_met"]
    assert second["cost_usd"] <= first["cost_usd"]


def test_without_the_learn_step_nothing_carries_over():
    workload = {w.id: w for w in builtin_workloads()}["train-mlp-w4"]
    spec = workload.spec({"name": "ce-scaling"}, 300.0, 0)
    second = simulate(spec, seed=0, workload=workload.model(), repeat=2, learn=False)
    assert "explore" in rules(second)


@pytest.fixture
def runner(monkeypatch, tmp_path):
    monkeypatch.setenv("CESCALE_DATABASE_URL", f"sqlite:///{tmp_path / 'unused.db'}")
    return CliRunner()


def test_bench_repeat_puts_both_jobs_against_the_oracle(runner, tmp_path):
    out = tmp_path / "repeat"
    args = ["bench", "--repeat", "--only", "train-mlp-w4", "--seeds", "1", "--jobs", "1"]
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    document = json.loads((out / "repeat.json").read_text())
    rows = document["rows"]
    # 2 deadlines × (ce-scaling, oracle) × 2 jobs, one seed
    assert len(rows) == 8 and {(r["policy"], r["job"]) for r in rows} == {
        ("ce-scaling", 1),
        ("ce-scaling", 2),
        ("oracle", 1),
        ("oracle", 2),
    }
    assert all(r["status"] == "succeeded" and r["cost_usd"] > 0 for r in rows)
    ce = {(r["deadline"], r["job"]): r for r in rows if r["policy"] == "ce-scaling"}
    assert ce[("loose", 1)]["explored"] and not ce[("loose", 2)]["explored"]
    assert ce[("loose", 2)]["from_prior"]
    assert document["targets"]["cells"] == 2
    table = (out / "repeat.md").read_text()
    assert "| train-mlp-w4 | tight |" in table and "second job vs oracle" in table
    bad = runner.invoke(app, ["bench", "--repeat", "--only", "nope", "--out", str(out)])
    assert bad.exit_code == 2 and "unknown workload" in bad.output


def test_simulate_repeat_prints_every_job(runner):
    args = ["simulate", "examples/hpo-digits.json", "--repeat", "2"]
    text = runner.invoke(app, args)
    assert text.exit_code == 0, text.output
    assert "job 1: succeeded" in text.output and "job 2: succeeded" in text.output
    document = json.loads(runner.invoke(app, [*args, "--json"]).output)
    (first,) = document["previous_jobs"]
    assert "explore" in rules(first) and "explore" not in rules(document)
    bad = runner.invoke(app, [*args[:2], "--repeat", "0"])
    assert bad.exit_code == 2
