"""From the rows of one benchmark run to medians, ratios, attainment and the targets.

Conventions (written into summary.md as well):

- A *cell* is one workload at one deadline (tight or loose); each policy runs every seed in it.
- Medians are over the cell's seeds, failed runs included (their cost and JCT are what was spent
  until the job stopped); failures are counted separately.
- A *ratio* of ce-scaling to a baseline is the **median over seeds of the per-seed ratio**
  (ce-scaling's run at seed s divided by the baseline's run at seed s), over the seeds where both
  runs succeeded. Runs at the same seed see the same emulator noise stream.
- *Deadline attainment* is the share of runs that succeeded and finished within the deadline.
- *best static* is the cheapest (median cost) static size of those run whose attainment in the
  cell is at least 99 %.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from statistics import median
from typing import Any

from service.bench.policies import (
    CE_SCALING,
    LABELS,
    ORACLE,
    POWER_TUNING,
    STATIC_LABELS,
    STATIC_SAFE,
)

BASELINES = (STATIC_SAFE, POWER_TUNING, ORACLE)
ATTAINED = 0.99


@dataclass(frozen=True)
class PolicyStats:
    runs: int
    failed: int
    attainment: float
    cost_usd: float | None
    jct_s: float | None
    cold_starts: float | None
    resizes: float | None


@dataclass(frozen=True)
class Ratio:
    cost: float | None
    jct: float | None
    seeds: int  # seeds where both runs succeeded


@dataclass
class Cell:
    workload: str
    kind: str
    family: str
    deadline: str
    deadline_s: float | None  # median over the cell's seeds
    static_safe_mb: int | None
    stats: dict[str, PolicyStats] = field(default_factory=dict)
    ratios: dict[str, Ratio] = field(default_factory=dict)  # baseline -> ce-scaling / baseline
    best_static: str | None = None

    @property
    def name(self) -> str:
        return f"{self.workload} / {self.deadline}"


@dataclass(frozen=True)
class Target:
    name: str
    goal: str
    measured: str
    met: bool | None  # None: nothing to judge it on


def summarize(rows: list[dict[str, Any]], workloads: list[dict[str, Any]]) -> list[Cell]:
    safe_mb = {w["id"]: w.get("static_safe_mb") for w in workloads}
    grouped: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    first: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        key = (row["workload"], row["deadline"])
        grouped[key][row["policy"]].append(row)
        first.setdefault(key, row)
    order = {w["id"]: i for i, w in enumerate(workloads)}
    cells = []
    for key in sorted(grouped, key=lambda k: (order.get(k[0], len(order)), k[1] != "tight")):
        sample = first[key]
        cell = Cell(
            workload=key[0],
            kind=sample["kind"],
            family=sample["family"],
            deadline=key[1],
            deadline_s=_median([r["deadline_s"] for r in _all(grouped[key])]),
            static_safe_mb=safe_mb.get(key[0]),
        )
        by_policy = grouped[key]
        for label in LABELS:
            if by_policy.get(label):
                cell.stats[label] = _stats(by_policy[label])
        for baseline in BASELINES:
            if by_policy.get(CE_SCALING) and by_policy.get(baseline):
                cell.ratios[baseline] = _ratio(by_policy[CE_SCALING], by_policy[baseline])
        cell.best_static = _best_static(cell)
        cells.append(cell)
    return cells


def _all(by_policy: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [row for rows in by_policy.values() for row in rows]


def _median(values: list[float | None]) -> float | None:
    values = [v for v in values if v is not None and math.isfinite(v)]
    return median(values) if values else None


def _stats(rows: list[dict[str, Any]]) -> PolicyStats:
    return PolicyStats(
        runs=len(rows),
        failed=sum(1 for r in rows if r["status"] != "succeeded"),
        attainment=sum(1 for r in rows if r["deadline_met"]) / len(rows),
        cost_usd=_median([r["cost_usd"] for r in rows]),
        jct_s=_median([r["jct_s"] for r in rows]),
        cold_starts=_median([r["cold_starts"] for r in rows]),
        resizes=_median([r["resizes"] for r in rows]),
    )


def _ratio(ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> Ratio:
    by_seed = {r["seed"]: r for r in theirs if r["status"] == "succeeded"}
    pairs = [(r, by_seed[r["seed"]]) for r in ours if r["status"] == "succeeded"]
    pairs = [(a, b) for a, b in pairs if b["seed"] in by_seed]
    cost = [a["cost_usd"] / b["cost_usd"] for a, b in pairs if b["cost_usd"]]
    jct = [a["jct_s"] / b["jct_s"] for a, b in pairs if b["jct_s"]]
    return Ratio(_median(cost), _median(jct), len(pairs))


def _best_static(cell: Cell) -> str | None:
    meeting = [
        (stats.cost_usd, label)
        for label in STATIC_LABELS
        if (stats := cell.stats.get(label)) is not None
        and stats.attainment >= ATTAINED
        and stats.cost_usd is not None
    ]
    return min(meeting)[1] if meeting else None


# -- targets --------------------------------------------------------------------------------
def evaluate_targets(cells: list[Cell], rows: list[dict[str, Any]]) -> list[Target]:
    targets = []
    ce_rows = [r for r in rows if r["policy"] == CE_SCALING]
    if ce_rows:
        share = sum(1 for r in ce_rows if r["deadline_met"]) / len(ce_rows)
        missed = sorted(
            {f"{c.name} ({c.stats[CE_SCALING].attainment:.0%})" for c in cells if _ce_misses(c)}
        )
        targets.append(
            Target(
                "deadline",
                "ce-scaling meets the deadline in ≥ 99 % of runs",
                f"{share:.1%} of {len(ce_rows)} runs"
                + (f"; below 99 % in: {', '.join(missed)}" if missed else ""),
                share >= ATTAINED,
            )
        )
    targets.append(_ratio_target(cells, ORACLE, "cost", "≤ 1.05 × oracle", 1.05))
    for kind, cut in (("hpo", 0.41), ("training", 0.38)):
        targets.append(_cut_target(cells, kind, cut))
    targets.append(_jct_target(cells))
    targets.append(_ratio_target(cells, POWER_TUNING, "cost", "< power-tuning (cell median)", 1.0))
    return targets


def _ce_misses(cell: Cell) -> bool:
    stats = cell.stats.get(CE_SCALING)
    return stats is not None and stats.attainment < ATTAINED


def _ratio_target(cells: list[Cell], baseline: str, what: str, goal: str, limit: float) -> Target:
    values = [
        (getattr(c.ratios[baseline], what), c.name)
        for c in cells
        if baseline in c.ratios and getattr(c.ratios[baseline], what) is not None
    ]
    if not values:
        return Target(f"{what} vs {baseline}", f"ce-scaling {what} {goal}", "no data", None)
    within = (
        [v for v in values if v[0] <= limit] if limit != 1.0 else [v for v in values if v[0] < 1]
    )
    worst = max(values)
    return Target(
        f"{what} vs {baseline}",
        f"ce-scaling {what} {goal} in every cell",
        f"{len(within)} of {len(values)} cells; median ratio {median(v for v, _ in values):.2f}, "
        f"worst {worst[0]:.2f} ({worst[1]})",
        len(within) == len(values),
    )


def _cut_target(cells: list[Cell], kind: str, cut: float) -> Target:
    values = [
        (1 - c.ratios[STATIC_SAFE].cost, c.name)
        for c in cells
        if c.kind == kind and STATIC_SAFE in c.ratios and c.ratios[STATIC_SAFE].cost is not None
    ]
    name = f"{kind} cost cut vs static-safe"
    goal = f"ce-scaling costs ≥ {cut:.0%} less than static-safe on {kind} (paper's best figure)"
    if not values:
        return Target(name, goal, "no data", None)
    best = max(values)
    reaching = [v for v in values if v[0] >= cut]
    return Target(
        name,
        goal,
        f"best {best[0]:+.0%} ({best[1]}), median {median(v for v, _ in values):+.0%}; "
        f"{len(reaching)} of {len(values)} cells reach it" + _attainable(cells, kind, cut),
        best[0] >= cut,
    )


def oracle_cut(cell: Cell) -> float | None:
    """How much less than static-safe the oracle — the cost floor — pays in a cell (medians):
    the most any policy could cut there."""
    safe, oracle = cell.stats.get(STATIC_SAFE), cell.stats.get(ORACLE)
    if safe is None or oracle is None or not safe.cost_usd or oracle.cost_usd is None:
        return None
    return 1 - oracle.cost_usd / safe.cost_usd


def _attainable(cells: list[Cell], kind: str, cut: float) -> str:
    """Where even the oracle cannot reach the cut, no policy can: say how many cells allow it."""
    floors = [(v, c.name) for c in cells if c.kind == kind and (v := oracle_cut(c)) is not None]
    if not floors:
        return ""
    best = max(floors)
    possible = sum(1 for v, _ in floors if v >= cut)
    return (
        f"; the oracle (cost floor) cuts at most {best[0]:+.0%} ({best[1]}): "
        f"{possible} of {len(floors)} cells allow the cut at all"
    )


def _jct_target(cells: list[Cell]) -> Target:
    eligible = [
        c
        for c in cells
        if (safe := c.stats.get(STATIC_SAFE)) is not None
        and safe.attainment >= ATTAINED
        and STATIC_SAFE in c.ratios
        and c.ratios[STATIC_SAFE].jct is not None
    ]
    goal = "ce-scaling JCT ≥ 50 % lower than static-safe where static-safe meets the deadline"
    if not eligible:
        return Target(
            "jct cut vs static-safe",
            goal,
            "no cell: static-safe misses the deadline (< 99 % attainment) in every cell",
            None,
        )
    cuts = [(1 - c.ratios[STATIC_SAFE].jct, c.name) for c in eligible]
    reaching = [v for v in cuts if v[0] >= 0.5]
    return Target(
        "jct cut vs static-safe",
        goal,
        f"{len(reaching)} of {len(cuts)} eligible cells; "
        + ", ".join(f"{name}: cut {cut:+.0%}" for cut, name in cuts),
        len(reaching) == len(cuts),
    )


# -- rendering ------------------------------------------------------------------------------
def fmt_usd(value: float | None) -> str:
    return "–" if value is None else f"{value:.5f}"


def fmt_s(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def fmt_ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def fmt_share(value: float) -> str:
    return f"{value:.0%}"


def _ratio_text(cell: Cell, baseline: str, what: str) -> str:
    ratio = cell.ratios.get(baseline)
    return fmt_ratio(getattr(ratio, what)) if ratio is not None else "–"


def _met_text(cell: Cell, label: str) -> str:
    stats = cell.stats.get(label)
    return fmt_share(stats.attainment) if stats is not None else "–"


RATIO_HEADER = (
    "workload",
    "deadline",
    "deadline s",
    "safe MB",
    "ce cost $",
    "ce JCT s",
    "ce met",
    "cost/safe",
    "JCT/safe",
    "oracle cost/safe",
    "cost/PT",
    "JCT/PT",
    "cost/oracle",
    "JCT/oracle",
    "safe met",
    "PT met",
    "oracle met",
    "best static",
)


def ratio_rows(cells: list[Cell]) -> tuple[list[str], list[list[str]]]:
    """The headline table: ce-scaling's medians, its ratios to each baseline and attainment."""
    body = []
    for c in cells:
        ce = c.stats.get(CE_SCALING)
        body.append(
            [
                c.workload,
                c.deadline,
                "–" if c.deadline_s is None else f"{c.deadline_s:.0f}",
                str(c.static_safe_mb or "–"),
                fmt_usd(ce.cost_usd if ce else None),
                fmt_s(ce.jct_s if ce else None),
                _met_text(c, CE_SCALING),
                _ratio_text(c, STATIC_SAFE, "cost"),
                _ratio_text(c, STATIC_SAFE, "jct"),
                fmt_ratio(None if (cut := oracle_cut(c)) is None else 1 - cut),
                _ratio_text(c, POWER_TUNING, "cost"),
                _ratio_text(c, POWER_TUNING, "jct"),
                _ratio_text(c, ORACLE, "cost"),
                _ratio_text(c, ORACLE, "jct"),
                _met_text(c, STATIC_SAFE),
                _met_text(c, POWER_TUNING),
                _met_text(c, ORACLE),
                c.best_static or "none",
            ]
        )
    return list(RATIO_HEADER), body


def policy_table(cells: list[Cell], value: str) -> tuple[list[str], list[list[str]]]:
    """One row per cell, one column per policy: median cost, median JCT or attainment."""
    header = ["workload", "deadline", *LABELS]
    body = []
    for c in cells:
        line = [c.workload, c.deadline]
        for label in LABELS:
            stats = c.stats.get(label)
            if stats is None:
                line.append("–")
            elif value == "cost":
                line.append(
                    fmt_usd(stats.cost_usd) + (f" ({stats.failed}✗)" if stats.failed else "")
                )
            elif value == "jct":
                line.append(fmt_s(stats.jct_s))
            else:
                line.append(fmt_share(stats.attainment))
        body.append(line)
    return header, body


def markdown_table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)
