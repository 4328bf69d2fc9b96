"""The loop's learn step drives decisions: a drifting training job is planned differently with
the learn step and without it (``simulate(learn=False)``, ``cescale simulate --no-learn``).
Fails when the predictors are disconnected from the policies again (the learn step computed,
nothing reading it)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from service.bench.ablation import drifts_for
from service.bench.deadlines import derive
from service.bench.policies import bench_policy
from service.bench.runner import RunTask, execute
from service.bench.workloads import STATIC_SIZES, builtin_workloads
from service.cli.main import app
from service.simulation.run import simulate


def plan(result: dict) -> list[tuple[int, str]]:
    return [(c["to_mb"], c["rule"]) for c in result["memory_changes"]]


def drifting_runs(seed: int) -> dict[bool, dict]:
    """A cell of `cescale bench --ablate learning`, derived as the ablation derives it (so the
    test follows the workload model instead of pinning its figures): train-mlp-w4 under the
    trend (runs 60 % slower per stationary static-1769 JCT into the job), the tight deadline from
    the static sizes' runs under that drift; ce-scaling with and without the learn step."""
    workload = {w.id: w for w in builtin_workloads()}["train-mlp-w4"]
    unread = 30 * 24 * 3600.0
    reference = execute(RunTask(workload, bench_policy("static-1769", workload), seed, unread))
    drift = drifts_for(float(reference["jct_s"]))["trend"]
    static_jct = {
        f"static-{size}": float(
            execute(
                RunTask(
                    workload, bench_policy(f"static-{size}", workload), seed, unread, drift=drift
                )
            )["jct_s"]
        )
        for size in STATIC_SIZES
    }
    deadline = derive(static_jct).of("tight")
    spec = workload.spec({"name": "ce-scaling"}, deadline, seed)
    return {
        learn: simulate(spec, seed=seed, workload=workload.model(), drift=drift, learn=learn)
        for learn in (True, False)
    }


def test_a_drifting_jobs_plan_differs_with_and_without_the_learn_step():
    # The learn step's forecast of slowing rounds changes what the policy decides — at some
    # seed: where a plan has room to spare (or none at all) both may decide alike. Whether
    # learning meets more tight deadlines is measured over seeds by the ablation, not here.
    differs = []
    for seed in range(4):
        runs = drifting_runs(seed)
        assert all(r["status"] == "succeeded" for r in runs.values())
        differs.append(plan(runs[True]) != plan(runs[False]))
        if differs[-1]:
            break
    assert any(differs), "the learn step changed no decision at seeds 0-3"


def test_without_drift_the_hpo_plan_is_the_same_with_stored_or_refitted_curves():
    # the learn step's stored curve is the one the policy would have fitted from the same runs
    workload = {w.id: w for w in builtin_workloads()}["hpo-mlp-eta3"]
    spec = workload.spec({"name": "ce-scaling"}, 600.0, 1)
    with_learning = simulate(spec, seed=1, workload=workload.model())
    without = simulate(spec, seed=1, workload=workload.model(), learn=False)
    assert plan(with_learning) == plan(without)
    assert with_learning["cost_usd"] == without["cost_usd"]


@pytest.fixture
def runner(monkeypatch, tmp_path):
    monkeypatch.setenv("CESCALE_DATABASE_URL", f"sqlite:///{tmp_path / 'unused.db'}")
    return CliRunner()


def test_simulate_takes_no_learn_and_drift(runner, tmp_path):
    spec = tmp_path / "t.json"
    spec.write_text(
        json.dumps(
            {
                "name": "t",
                "kind": "training",
                "workload": {"function": "builtin:mlp", "dataset": "builtin:digits"},
                "training": {"workers": 2, "max_epochs": 4, "params": {"hidden": 16}},
                "qos": {"deadline_s": 600},
                "policy": {"name": "ce-scaling"},
            }
        )
    )
    steady = runner.invoke(app, ["simulate", str(spec), "--json", "--no-learn"])
    slowed = runner.invoke(app, ["simulate", str(spec), "--json", "--drift", "jump:0:3"])
    assert steady.exit_code == 0 and slowed.exit_code == 0, steady.output + slowed.output
    assert json.loads(slowed.output)["jct_s"] > json.loads(steady.output)["jct_s"]
    bad = runner.invoke(app, ["simulate", str(spec), "--drift", "sideways:2"])
    assert bad.exit_code == 2 and "expected jump:AT_S:FACTOR or trend:PCT" in bad.output


def test_bench_ablate_learning_writes_the_side_by_side(runner, tmp_path):
    out = tmp_path / "ablation"
    args = ["bench", "--ablate", "learning", "--only", "train-mlp-w4", "--seeds", "1"]
    result = runner.invoke(app, [*args, "--jobs", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = json.loads((out / "ablation.json").read_text())["rows"]
    # 3 drifts × 2 deadlines × with and without the learn step, one seed
    assert len(rows) == 12 and {r["learn"] for r in rows} == {True, False}
    assert {r["drift"] for r in rows} == {"none", "jump", "trend"}
    assert all(r["status"] == "succeeded" and r["cost_usd"] > 0 for r in rows)
    table = (out / "ablation.md").read_text()
    assert "| trend | tight | 1 |" in table and "met with learning" in table
    bad = runner.invoke(app, ["bench", "--ablate", "luck", "--out", str(out)])
    assert bad.exit_code == 2 and "ablations: learning" in bad.output
