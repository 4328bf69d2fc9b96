"""Writing a benchmark run: ``results.json`` (every row), ``summary.md`` (medians, ratios,
targets — all computed from those rows) and the plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.table import Table

from service.bench import summary as s
from service.bench.deadlines import LOOSE_FACTOR, TIGHT_FACTOR
from service.bench.plots import write_plots
from service.bench.suite import SuiteResult, results_document
from service.bench.workloads import SAFE_HEADROOM, SAFE_STEP_MB, STATIC_SIZES

DEFINITIONS = {
    "cell": "one workload at one deadline (tight or loose); every policy runs every seed in it",
    "static-safe": (
        f"static at the size the largest trial shape needs: ceil(peak × {SAFE_HEADROOM} / "
        f"{SAFE_STEP_MB}) × {SAFE_STEP_MB} MB, at least 128 MB, where peak is the workload "
        "model's peak memory of the largest shape (analytic model: runtime + dataset shard + "
        "3 × weights; measured profile: the largest Max Memory Used measured)"
    ),
    "static-N": f"static at N MB for every task, N in {', '.join(map(str, STATIC_SIZES))}",
    "static-qos": (
        "per seed and deadline, the cheapest static size that met that seed's deadline without "
        "an out-of-memory retry, chosen in hindsight: bisection on 64 MB steps from the "
        "smallest size above the workload's peak memory to 10,240 MB (a static job is never "
        "slower with more memory), with the fixed static sizes as known points; the cheapest of "
        "all sizes run that met the deadline. The strongest static method possible; its search "
        "runs are not billed to it (qos MB: its median size in the cell)"
    ),
    "parrotfish": (
        "Parrotfish (Moghimi et al., SoCC 2023), policies/peers/parrotfish.py: billed profiling "
        "(offline: its time is not in the JCT, reported as profiling_s) runs one task of every "
        "trial shape 4× at 128, 3,520 and 10,240 MB, then at two adaptive sizes (lowest "
        "predicted cost × knowledge), fits d(m) = a0 + a1·exp(−m/a2) per shape (its cost model "
        "÷ m), then one size for the whole job: the lowest weighted predicted cost whose "
        "predicted job time fits the deadline"
    ),
    "jolteon": (
        "Jolteon (Zhang et al., NSDI 2024), policies/peers/jolteon.py: billed profiling "
        "(offline: its time is not in the JCT) runs one task of every trial shape 3× at 1,024, "
        "1,792, 3,584, 5,120 and 7,168 MB, fits a/k + b·log(k)/k + c/k² + d (k = MB/1,792) with "
        "the parameters' covariance, then per-stage sizes on its space of 0.5–4 vCPUs "
        "(896–7,168 MB) at least expected cost whose 95th-percentile sampled time meets the "
        "deadline; it never measures the job's own runs"
    ),
    "capture": (
        "(static-qos − ce-scaling) / (static-qos − oracle) on the cell's costs summed over the "
        "seeds where all three succeeded: the share of the saving below the best static size "
        "that ce-scaling takes (1 = all of it, 0 = none, < 0 = dearer than static-qos). "
        "'no room' where the oracle saves < 2 % of static-qos's cost ('oracle ≥ qos': it costs "
        "more than the hindsight static size, whose choice knew every noise draw): there is "
        "nothing to take, and the cell is judged on cost/qos"
    ),
    "power-tuning": (
        "the product's default power tuning: a billed profiling stage runs the first task 3× at "
        "128, 256, 512, 1024, 1769 and 3008 MB, then static at the balanced choice; profiling "
        "runs count in its cost"
    ),
    "oracle": (
        "ce-scaling's optimiser handed the simulator's noise-free truth of every task shape "
        "(duration at every size, init, footprint), the noise level and, for training, the "
        "number of rounds the loss needs. It does not know each invocation's noise draw (it "
        "plans at a high quantile of the noise), nor which HPO trials survive, and it goes "
        "through ce-scaling's guards; a policy can cost less than it where the draws are kind"
    ),
    "noise draws": (
        "common random numbers: an invocation's noise comes from (seed, its task's parameters, "
        "epochs, worker and attempt), so every policy at one seed sees the same draw for the "
        "same task, whatever its size or the order it runs in"
    ),
    "deadlines": (
        "per seed, from the static runs of that seed's job (same trials, same learning curve): "
        f"loose = {LOOSE_FACTOR:g} × JCT of static-1769, tight = {TIGHT_FACTOR:g} × JCT of the "
        "fastest static size; ce-scaling and the oracle then run the job against each. Tables "
        "show the median deadline of the cell"
    ),
    "seed": (
        "drives the emulator's noise, the sampling of HPO trials (hpo.seed) and the simulated "
        "loss noise, so every policy at one seed runs the same trials and learning curve"
    ),
    "deadline_met": "the job succeeded and its JCT was within the deadline",
    "attainment": "share of a cell's runs with deadline_met",
    "median": (
        "over the cell's seeds, failed runs included (the cost and time spent until they stopped)"
    ),
    "ratio": (
        "ce-scaling / baseline: the median over seeds of the per-seed ratio, over the seeds where "
        "both runs succeeded (a ratio of 0.60 is 40 % less)"
    ),
    "oracle cost/safe": (
        "the oracle's median cost ÷ static-safe's median cost in the cell: the least any policy "
        "could pay relative to static-safe. On Lambda a task's cost never falls as memory rises "
        "(duration falls at most in proportion to memory), so where every shape's cost-optimal "
        "size is at or below static-safe this is ~1: static-safe is already the floor and no "
        "policy can cut its cost, only its time"
    ),
    "shared runs": (
        "static and power-tuning never read the deadline, so each of their runs is judged "
        "against both deadlines of its workload (run_shared_across_deadlines)"
    ),
    "resizes": "memory changes applied from one size to another (first allocations excluded)",
}


def write_outputs(result: SuiteResult, out: Path) -> tuple[dict[str, Any], list[s.Cell], list]:
    """Write results.json, summary.md and the plots into ``out``; return what the terminal
    shows."""
    out.mkdir(parents=True, exist_ok=True)
    document = results_document(result, DEFINITIONS)
    # one row per line would be easier to diff, but the full suite's rows are ~7 MB compact
    (out / "results.json").write_text(json.dumps(document) + "\n", encoding="utf-8")
    cells = s.summarize(document["runs"], document["workloads"])
    targets = s.evaluate_targets(cells, document["runs"])
    plots = write_plots(document, out)
    (out / "summary.md").write_text(
        render_markdown(document, cells, targets, [p.name for p in plots]), encoding="utf-8"
    )
    return document, cells, targets


def render_markdown(
    document: dict[str, Any], cells: list[s.Cell], targets: list[s.Target], plots: list[str]
) -> str:
    suite = document["suite"]
    mode = "quick" if suite["quick"] else "full"
    lines = [
        "# cescale outcome benchmark",
        "",
        f"{mode} suite, {suite['seeds']} seed(s) per cell, {len(cells)} cells, "
        f"{suite['simulations']} simulations on {suite['jobs']} process(es); "
        f"wall time **{suite['wall_s']:.0f} s**; started {suite['started_at']} "
        f"({suite['machine']['cpus']} CPUs, Python {suite['machine']['python']}).",
        "Every run is the real control loop and policies on the emulator with a virtual clock "
        "(`service.simulation.run.simulate`). Every figure below comes from this run's "
        "`results.json`.",
        "",
        "## ce-scaling relative to the baselines",
        "",
        "Ratios are ce-scaling ÷ baseline, median over seeds of the per-seed ratio (seeds where "
        "both succeeded); below 1 is better for ce-scaling. *met* = deadline attainment.",
        "",
        s.markdown_table(*s.ratio_rows(cells)),
        "",
        "## Where ce-scaling loses",
        "",
        *([f"- {line}" for line in s.losses(cells)] or ["- nowhere in this run"]),
        "",
        "## Targets",
        "",
        "| target | goal | measured | met |",
        "|---|---|---|---|",
    ]
    for target in targets:
        verdict = {True: "yes", False: "**no**", None: "n/a"}[target.met]
        lines.append(f"| {target.name} | {target.goal} | {target.measured} | {verdict} |")
    lines += [
        "",
        "## Median cost per policy (USD; n✗ = failed runs)",
        "",
        s.markdown_table(*s.policy_table(cells, "cost")),
        "",
        "## Median JCT per policy (s)",
        "",
        s.markdown_table(*s.policy_table(cells, "jct")),
        "",
        "## Deadline attainment per policy",
        "",
        s.markdown_table(*s.policy_table(cells, "attainment")),
        "",
        "## Workloads",
        "",
        "| workload | kind | family | static-safe MB | tight s (median) | loose s (median) "
        "| description |",
        "|---|---|---|---|---|---|---|",
    ]
    for w in document["workloads"]:
        lines.append(
            f"| {w['id']} | {w['kind']} | {w['family']} | {w['static_safe_mb']} "
            f"(peak {w['largest_peak_mb']:.0f}) | {_seconds(w['deadlines_s']['tight']['median'])} "
            f"| {_seconds(w['deadlines_s']['loose']['median'])} | {w['description']} |"
        )
    if document["errors"]:
        lines += ["", "## Runs that raised", ""]
        for error in document["errors"]:
            lines.append(
                f"- {error['workload']} {error['policy']} seed {error['seed']}: {error['error']}"
            )
    lines += ["", "## Plots", ""]
    lines += [f"- [{name}]({name})" for name in plots]
    lines += ["", "## Definitions", ""]
    lines += [f"- **{term}**: {meaning}" for term, meaning in document["definitions"].items()]
    return "\n".join(lines) + "\n"


TERMINAL_COLUMNS = {
    "workload": "workload",
    "deadline": "deadline",
    "ce cost $": "ce $",
    "ce met": "ce met",
    "cost/qos": "$/qos",
    "JCT/qos": "s/qos",
    "capture": "capture",
    "cost/parrotfish": "$/parrot",
    "cost/jolteon": "$/jolteon",
    "cost/PT": "$/PT",
    "cost/oracle": "$/oracle",
}


def _seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}"


def terminal_table(cells: list[s.Cell]) -> Table:
    """The headline table, narrowed to what fits a terminal (summary.md has every column)."""
    header, body = s.ratio_rows(cells)
    keep = [header.index(name) for name in TERMINAL_COLUMNS]
    table = Table(
        title="ce-scaling vs baselines: medians; ratios = ce-scaling ÷ baseline (median of "
        "per-seed ratios)",
        title_justify="left",
    )
    for name in TERMINAL_COLUMNS.values():
        table.add_column(name, justify="left" if name in ("workload", "deadline") else "right")
    for row in body:
        table.add_row(*(row[i] for i in keep))
    return table


def targets_table(targets: list[s.Target]) -> Table:
    table = Table(title="Targets", title_justify="left")
    for name in ("target", "measured", "met"):
        table.add_column(name)
    for target in targets:
        verdict = {True: "[green]yes", False: "[red]no", None: "n/a"}[target.met]
        table.add_row(target.goal, target.measured, verdict)
    return table
