"""The benchmark's figures (matplotlib, Agg backend: files only, no display needed).

- ``cost_vs_jct.png``: every run of every cell, cost against JCT (relative to its seed's
  deadline, so 1 is the deadline), one colour per policy — where each policy sits on the
  time/cost trade-off.
- ``allocation_training.png``: memory over time of one training job under each policy.
- ``memory_per_stage_hpo.png``: memory per stage and trial shape of one HPO job, ce-scaling
  and the oracle, against static-safe.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.ticker import FuncFormatter, NullFormatter

from service.bench.policies import (
    CE_SCALING,
    JOLTEON,
    LABELS,
    ORACLE,
    PARROTFISH,
    POWER_TUNING,
    STATIC_QOS,
    STATIC_SAFE,
)

COLOURS = {
    "static-512": "#c6dbef",
    "static-1024": "#9ecae1",
    "static-1769": "#6baed6",
    "static-3008": "#3182bd",
    STATIC_SAFE: "#08519c",
    STATIC_QOS: "#6a51a3",
    POWER_TUNING: "#fd8d3c",
    PARROTFISH: "#e7298a",
    JOLTEON: "#a6761d",
    CE_SCALING: "#31a354",
    ORACLE: "#000000",
}
MARKERS = {
    STATIC_QOS: "D",
    POWER_TUNING: "s",
    PARROTFISH: "^",
    JOLTEON: "v",
    CE_SCALING: "o",
    ORACLE: "x",
}


def write_plots(document: dict[str, Any], out: Path) -> list[Path]:
    rows = document["runs"]
    written = [cost_vs_jct(rows, out / "cost_vs_jct.png")]
    training = _example(rows, "training")
    if training is not None:
        written.append(allocation_over_time(rows, training, out / "allocation_training.png"))
    hpo = _example(rows, "hpo")
    if hpo is not None:
        written.append(memory_per_stage(rows, hpo, document, out / "memory_per_stage_hpo.png"))
    return written


def _example(rows: list[dict[str, Any]], kind: str) -> tuple[str, str, int] | None:
    """The job the detail plots show: the first workload of ``kind`` at its tight deadline (the
    deadline that makes policies work), seed 0 — or whatever there is of it."""
    for row in rows:
        if row["kind"] == kind and row["policy"] == CE_SCALING and row["deadline"] == "tight":
            return (
                row["workload"],
                row["deadline"],
                min(r["seed"] for r in rows if r["workload"] == row["workload"]),
            )
    return None


def cost_vs_jct(rows: list[dict[str, Any]], path: Path) -> Path:
    cells = sorted({(r["workload"], r["deadline"]) for r in rows}, key=_cell_order(rows))
    columns = 4
    lines = math.ceil(len(cells) / columns)
    figure, axes = plt.subplots(lines, columns, figsize=(4.2 * columns, 3.4 * lines), squeeze=False)
    for ax in axes.flat[len(cells) :]:
        ax.set_visible(False)
    for ax, (workload, deadline) in zip(axes.flat, cells, strict=False):
        own = [r for r in rows if r["workload"] == workload and r["deadline"] == deadline]
        for label in LABELS:
            points = [r for r in own if r["policy"] == label and r["jct_s"] and r["deadline_s"]]
            if not points:
                continue
            ok = [r for r in points if r["status"] == "succeeded"]
            failed = [r for r in points if r["status"] != "succeeded"]
            ax.scatter(
                [r["jct_s"] / r["deadline_s"] for r in ok],
                [r["cost_usd"] * 1000 for r in ok],
                s=14,
                alpha=0.75,
                color=COLOURS[label],
                marker=MARKERS.get(label, "."),
                label=label,
            )
            if failed:  # the job failed: what it spent until it stopped
                ax.scatter(
                    [r["jct_s"] / r["deadline_s"] for r in failed],
                    [r["cost_usd"] * 1000 for r in failed],
                    s=30,
                    facecolors="none",
                    edgecolors=COLOURS[label],
                    marker="o",
                    linewidths=1.2,
                )
        ax.axvline(1.0, color="#d62728", linestyle="--", linewidth=1)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(f"{workload} ({deadline})", fontsize=9)
        ax.set_xlabel("JCT ÷ deadline (log)", fontsize=8)
        ax.set_ylabel("cost (m$)", fontsize=8)
        ax.tick_params(labelsize=7)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    figure.suptitle(
        "Cost vs JCT per policy, every seed (JCT relative to the seed's deadline; red line: "
        "deadline; hollow circles: failed jobs)",
        y=0.995,
        fontsize=11,
    )
    figure.legend(
        handles,
        labels,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.985),
        ncol=len(labels),
        fontsize=8,
    )
    figure.tight_layout(rect=(0, 0, 1, 0.965))
    figure.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(figure)
    return path


def _cell_order(rows: list[dict[str, Any]]):
    first = {}
    for i, row in enumerate(rows):
        first.setdefault(row["workload"], i)
    return lambda cell: (first[cell[0]], cell[1] != "tight")


def allocation_over_time(rows: list[dict[str, Any]], job: tuple[str, str, int], path: Path) -> Path:
    """The job at both deadlines, side by side: memory per worker, round by round."""
    workload, _, seed = job
    figure, axes = plt.subplots(1, 2, figsize=(14, 4.8), sharey=True)
    for ax, deadline in zip(axes, ("tight", "loose"), strict=True):
        deadline_s = None
        for label in (STATIC_SAFE, POWER_TUNING, CE_SCALING, ORACLE):
            row = _row(rows, workload, deadline, label, seed)
            if row is None or not row["stages"] or row["jct_s"] is None:
                continue
            deadline_s = row["deadline_s"]
            times, memory = [], []
            for stage in row["stages"]:
                if stage["started_s"] is None:
                    continue
                if _is_profiling(stage):
                    end = stage["started_s"] + (stage["duration_s"] or 0)
                    ax.axvspan(stage["started_s"], end, color=COLOURS[label], alpha=0.12)
                    continue
                times.append(stage["started_s"])
                memory.append(_main_memory(stage))
            if not memory:
                continue
            times.append(row["jct_s"])
            memory.append(memory[-1])
            ax.step(
                times,
                memory,
                where="post",
                color=COLOURS[label],
                linewidth=2 if label == CE_SCALING else 1.4,
                label=f"{label}: {row['jct_s']:.0f} s, ${row['cost_usd']:.4f}",
            )
        if deadline_s is not None:
            ax.axvline(deadline_s, color="#d62728", linestyle="--", linewidth=1, label="deadline")
        ax.set_yscale("log")
        ax.set_xlabel("time since the job started (s)")
        ax.set_title(f"{deadline} deadline", fontsize=10)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("memory per worker (MB, log)")
    figure.suptitle(
        f"Allocation over time: {workload}, seed {seed} (shaded: power-tuning's profiling stage)"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def _is_profiling(stage: dict[str, Any]) -> bool:
    return any(shape.startswith("profile-") for shape in stage["memory_by_shape"])


def memory_per_stage(
    rows: list[dict[str, Any]],
    job: tuple[str, str, int],
    document: dict[str, Any],
    path: Path,
) -> Path:
    workload, deadline, seed = job
    policies = [
        (label, row)
        for label in (CE_SCALING, ORACLE)
        if (row := _row(rows, workload, deadline, label, seed)) is not None
    ]
    figure, axes = plt.subplots(
        1, len(policies), figsize=(6.5 * len(policies), 4.5), squeeze=False, sharey=True
    )
    safe = next(
        (w.get("static_safe_mb") for w in document["workloads"] if w["id"] == workload), None
    )
    for ax, (label, row) in zip(axes.flat, policies, strict=True):
        stages = row["stages"]
        shapes = sorted({shape for s in stages for shape in s["memory_by_shape"]})
        width = 0.8 / max(1, len(shapes))
        for k, shape in enumerate(shapes):
            xs, heights = [], []
            for i, stage in enumerate(stages):
                sizes = stage["memory_by_shape"].get(shape)
                if sizes:
                    xs.append(i + (k - (len(shapes) - 1) / 2) * width)
                    heights.append(_majority(sizes))
            ax.bar(xs, heights, width=width, label=shape)
        if safe:
            ax.axhline(
                safe, color=COLOURS[STATIC_SAFE], linestyle="--", label=f"static-safe {safe}"
            )
        ax.set_xticks(range(len(stages)), [s["name"] for s in stages], rotation=30, fontsize=8)
        ax.set_ylabel("memory (MB; most tasks of the shape)")
        ax.set_title(f"{label}: {row['jct_s']:.0f} s, ${row['cost_usd']:.4f}", fontsize=10)
        ax.legend(fontsize=7)
    figure.suptitle(f"Memory per stage: {workload}, {deadline} deadline, seed {seed}")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def _row(rows, workload: str, deadline: str, policy: str, seed: int) -> dict[str, Any] | None:
    for row in rows:
        if (
            row["workload"] == workload
            and row["deadline"] == deadline
            and row["policy"] == policy
            and row["seed"] == seed
        ):
            return row
    return None


def _majority(sizes: dict[str, int]) -> int:
    """The memory most invocations of a shape ran at (ties: the larger)."""
    return max((count, int(memory)) for memory, count in sizes.items())[1]


def _main_memory(stage: dict[str, Any]) -> int:
    merged: dict[str, int] = {}
    for sizes in stage["memory_by_shape"].values():
        for memory, count in sizes.items():
            merged[str(memory)] = merged.get(str(memory), 0) + count
    return _majority(merged) if merged else (stage.get("memory_mb") or 0)
