"""``cescale bench`` end to end on a small profile-driven suite: the rows, the summary, the
plots, and the conventions the summary states."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from service.bench.policies import LABELS
from service.bench.summary import RATIO_HEADER
from service.bench.workloads import profile_workloads
from service.cli.bench import register
from service.simulation.run import simulate
from tests.bench.test_workload_models import PROFILE

SEEDS = 2
ROW_KEYS = {
    "workload",
    "kind",
    "deadline",
    "deadline_s",
    "policy",
    "seed",
    "status",
    "jct_s",
    "cost_usd",
    "deadline_met",
    "invocations",
    "cold_starts",
    "resizes",
    "memory_changes",
    "stages",
}


@pytest.fixture(scope="module")
def bench_out(tmp_path_factory) -> Path:
    scratch = tmp_path_factory.mktemp("bench")
    profile = scratch / "tiny.json"
    profile.write_text(json.dumps(PROFILE))
    out = scratch / "out"
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(
        app,
        [
            "bench",
            "--out",
            str(out),
            "--profile",
            str(profile),
            "--only",
            "hpo-tiny",
            "--only",
            "train-tiny",
            "--seeds",
            str(SEEDS),
            "--jobs",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "ce-scaling vs baselines" in result.output
    # not a terminal: progress as plain lines, one per tenth of a phase and one per phase end
    lines = result.output.splitlines()
    for phase in ("static and power-tuning", "ce-scaling, peers and oracle"):
        started = lines.index(next(line for line in lines if line.startswith(f"{phase}: ")))
        assert lines[started].endswith(" runs")
        assert any(line.startswith(f"{phase}: done, ") for line in lines[started:])
    assert lines.index(next(line for line in lines if "done, " in line)) < lines.index(
        next(line for line in lines if "ce-scaling vs baselines" in line)
    )
    return out


def test_one_row_per_workload_deadline_policy_and_seed(bench_out: Path) -> None:
    document = json.loads((bench_out / "results.json").read_text())
    rows = document["runs"]
    keys = [(r["workload"], r["deadline"], r["policy"], r["seed"]) for r in rows]
    assert len(keys) == len(set(keys))
    expected = {
        (w, d, p, s)
        for w in ("hpo-tiny", "train-tiny")
        for d in ("tight", "loose")
        for p in LABELS
        for s in range(SEEDS)
    }
    assert set(keys) == expected
    for row in rows:
        assert ROW_KEYS.issubset(row)
        assert row["status"] == "succeeded", row["status_reason"]
        assert row["deadline_met"] == (row["jct_s"] <= row["deadline_s"])
    assert document["errors"] == []


def test_deadlines_come_from_the_same_seeds_static_runs(bench_out: Path) -> None:
    rows = json.loads((bench_out / "results.json").read_text())["runs"]
    for workload in ("hpo-tiny", "train-tiny"):
        for seed in range(SEEDS):
            own = [r for r in rows if r["workload"] == workload and r["seed"] == seed]
            static = {
                r["policy"]: r["jct_s"]
                for r in own
                if r["policy"].startswith("static") and r["deadline"] == "tight"
            }
            tight = {r["deadline_s"] for r in own if r["deadline"] == "tight"}
            loose = {r["deadline_s"] for r in own if r["deadline"] == "loose"}
            assert tight == {round(1.2 * min(static.values()), 1)}
            assert loose == {round(3 * static["static-1769"], 1)}


def test_static_safe_runs_at_the_documented_size(bench_out: Path) -> None:
    document = json.loads((bench_out / "results.json").read_text())
    safe = {w["id"]: w["static_safe_mb"] for w in document["workloads"]}
    assert safe == {"hpo-tiny": 256, "train-tiny": 256}  # ceil(200 × 1.1 / 64) × 64
    for row in document["runs"]:
        if row["policy"] == "static-safe":
            assert row["memory_mb"] == 256
            ran = {
                int(m)
                for s in row["stages"]
                for sizes in s["memory_by_shape"].values()
                for m in sizes
            }
            assert ran == {256}


def test_summary_has_the_ratio_table_and_targets(bench_out: Path) -> None:
    summary = (bench_out / "summary.md").read_text()
    assert "| " + " | ".join(RATIO_HEADER) + " |" in summary
    for row in ("| hpo-tiny | tight |", "| train-tiny | loose |"):
        assert row in summary
    assert "## Targets" in summary
    assert "median over seeds of the per-seed ratio" in summary
    assert "ceil(peak × 1.1 / 64) × 64" in summary


def test_plots_are_pngs(bench_out: Path) -> None:
    for name in ("cost_vs_jct.png", "allocation_training.png", "memory_per_stage_hpo.png"):
        data = (bench_out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n", name
        assert len(data) > 5_000


def test_static_and_power_tuning_do_not_read_the_deadline(tmp_path: Path) -> None:
    """Why one static or power-tuning run may be judged against both deadlines."""
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(PROFILE))
    workload = profile_workloads(path)[0]
    for policy in ({"name": "static", "memory_mb": 512}, {"name": "power-tuning"}):
        short, long = (
            simulate(workload.spec(policy, deadline, 1), seed=1, workload=workload.model())
            for deadline in (5.0, 5000.0)
        )
        for key in ("jct_s", "cost_usd", "invocations", "cold_starts"):
            assert short[key] == long[key], (policy, key)


def test_cut_targets_say_how_much_the_oracle_could_cut(bench_out: Path) -> None:
    """The paper's cut is judged against what the cost floor allows in each cell."""
    from statistics import median

    from service.bench.summary import evaluate_targets, oracle_cut, summarize

    document = json.loads((bench_out / "results.json").read_text())
    cells = summarize(document["runs"], document["workloads"])
    for cell in cells:
        costs = {
            policy: median(
                r["cost_usd"]
                for r in document["runs"]
                if r["workload"] == cell.workload
                and r["deadline"] == cell.deadline
                and r["policy"] == policy
            )
            for policy in ("static-safe", "oracle")
        }
        assert oracle_cut(cell) == pytest.approx(1 - costs["oracle"] / costs["static-safe"])
    targets = {t.name: t for t in evaluate_targets(cells, document["runs"])}
    for kind in ("hpo", "training"):
        measured = targets[f"{kind} cost cut vs static-safe"].measured
        assert "the oracle (cost floor) cuts at most" in measured
    assert "oracle cost/safe" in (bench_out / "summary.md").read_text()


def _rows(bench_out: Path) -> list[dict]:
    return json.loads((bench_out / "results.json").read_text())["runs"]


def test_static_qos_is_the_cheapest_static_size_that_met_the_deadline(bench_out: Path) -> None:
    from service.bench.static_qos import grid, meets

    document = json.loads((bench_out / "results.json").read_text())
    peaks = {w["id"]: w["largest_peak_mb"] for w in document["workloads"]}
    rows = document["runs"]
    qos_rows = [r for r in rows if r["policy"] == "static-qos"]
    assert len(qos_rows) == 2 * 2 * SEEDS  # workloads × deadlines × seeds
    for qos in qos_rows:
        assert not qos["run_shared_across_deadlines"]
        others = [
            r
            for r in rows
            if r["workload"] == qos["workload"]
            and r["seed"] == qos["seed"]
            and r["deadline"] == qos["deadline"]
            and r["memory_mb"] is not None
            and r["policy"] != "static-qos"
        ]
        met = [r for r in others if meets(r, r["memory_mb"], qos["deadline_s"])]
        # the tight deadline is 1.2 × the fastest static run: some static size always meets it
        assert met and qos["deadline_met"]
        assert meets(qos, qos["memory_mb"], qos["deadline_s"])
        assert qos["cost_usd"] <= min(r["cost_usd"] for r in met)
        assert qos["memory_mb"] in grid(peaks[qos["workload"]]) or qos["memory_mb"] in {
            r["memory_mb"] for r in others
        }
        assert qos["qos_sizes_run"] <= len(others) + 9


def test_the_size_below_static_qos_misses_the_deadline(bench_out: Path) -> None:
    """static-qos is the smallest size that met it: one grid step below misses (checked on
    one seed's tight job)."""
    from service.bench.static_qos import STEP_MB, grid, meets

    document = json.loads((bench_out / "results.json").read_text())
    qos = next(
        r
        for r in document["runs"]
        if r["policy"] == "static-qos" and r["deadline"] == "tight" and r["workload"] == "hpo-tiny"
    )
    peak = next(w["largest_peak_mb"] for w in document["workloads"] if w["id"] == "hpo-tiny")
    below = max([m for m in grid(peak) if m < qos["memory_mb"]], default=None)
    if below is None:
        return  # the smallest size that fits the memory met it
    path = Path(document["workloads"][0]["profile"])
    workload = next(w for w in profile_workloads(path) if w.id == "hpo-tiny")
    run = simulate(
        workload.spec({"name": "static", "memory_mb": below}, 1e6, qos["seed"]),
        seed=qos["seed"],
        workload=workload.model(),
        common_draws=True,  # the bench's draws
    )
    assert qos["memory_mb"] - below <= STEP_MB or qos["memory_mb"] == 1769
    assert not meets(run, below, qos["deadline_s"])


def test_the_peers_bill_their_profiling(bench_out: Path) -> None:
    rows = _rows(bench_out)
    for peer in ("parrotfish", "jolteon"):
        own = [r for r in rows if r["policy"] == peer]
        assert own
        for row in own:
            profiling = [s for s in row["stages"] if s["name"].startswith(peer)]
            assert profiling, row["stages"][0]["name"]
            assert all(s["cost_usd"] > 0 for s in profiling)
            assert row["cost_usd"] == pytest.approx(sum(s["cost_usd"] for s in row["stages"]))
            assert row["stages"][0]["started_s"] == 0.0  # the profiling runs first
            # offline: billed, but its time is reported apart and not in the JCT
            own = [s for s in row["stages"] if not s["name"].startswith(peer)]
            assert row["profiling_s"] == pytest.approx(own[0]["started_s"])
            assert row["deadline_met"] == (row["jct_s"] <= row["deadline_s"])


# The oracle plans for 95 % of draws; ce-scaling, keeping a rung at the size of its warm
# environments, can plan nearer the median and, lucky with the draws, pay a hair less
# (hpo-tiny / tight seed 1: 0.991× the oracle at 1,664 MB, 6.6 s of 7.0 s, where the oracle ran
# 1,769 MB in 5.8 s).
ORACLE_MARGIN = 1.01


def test_the_oracle_is_a_floor_on_the_same_draws(bench_out: Path) -> None:
    rows = _rows(bench_out)
    for oracle in (r for r in rows if r["policy"] == "oracle"):
        assert oracle["status"] == "succeeded"
        same = [
            r
            for r in rows
            if (r["workload"], r["deadline"], r["seed"])
            == (oracle["workload"], oracle["deadline"], oracle["seed"])
            and r["policy"] in ("ce-scaling", "parrotfish", "jolteon", "power-tuning")
            and r["deadline_met"]
        ]
        for row in same:
            # The oracle knows every shape's true curve and cold start at every size, the noise's
            # distribution and which rungs find their environments warm (docs/benchmarks.md,
            # "The oracle as a floor"): a policy that meets the deadline pays at least as much.
            margin = ORACLE_MARGIN if row["policy"] == "ce-scaling" else 1.0001
            assert oracle["cost_usd"] <= row["cost_usd"] * margin, (row["policy"], oracle)


def test_the_summary_shows_capture_and_the_peers(bench_out: Path) -> None:
    from service.bench.summary import MIN_ROOM, summarize

    document = json.loads((bench_out / "results.json").read_text())
    rows = document["runs"]
    for cell in summarize(rows, document["workloads"]):
        assert cell.capture is not None
        sums = {
            p: sum(
                r["cost_usd"]
                for r in rows
                if (r["workload"], r["deadline"], r["policy"]) == (cell.workload, cell.deadline, p)
            )
            for p in ("static-qos", "ce-scaling", "oracle")
        }
        room = (sums["static-qos"] - sums["oracle"]) / sums["static-qos"]
        assert cell.capture.room == pytest.approx(room)
        if room >= MIN_ROOM:
            expected = (sums["static-qos"] - sums["ce-scaling"]) / (
                sums["static-qos"] - sums["oracle"]
            )
            assert cell.capture.value == pytest.approx(expected)
        else:
            assert cell.capture.value is None
    summary = (bench_out / "summary.md").read_text()
    for text in ("capture", "cost/parrotfish", "cost/jolteon", "cost/qos", "## Where ce-scaling"):
        assert text in summary
