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
- *static-qos* is, per seed, the cheapest static size that met that seed's deadline, chosen in
  hindsight (static_qos.py); *capture* is the share of the saving available below it that
  ce-scaling takes: (static-qos − ce-scaling) / (static-qos − oracle), on the cell's costs
  summed over the seeds where the three runs succeeded. Where the oracle saves less than
  ``MIN_ROOM`` of static-qos's cost there is no saving to take and capture is not computed
  (shown as "no room"; the cell is judged on cost/static-qos alone).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from statistics import median
from typing import Any

from service.bench.policies import (
    CE_SCALING,
    JOLTEON,
    LABELS,
    ORACLE,
    PARROTFISH,
    PEERS,
    POWER_TUNING,
    STATIC_LABELS,
    STATIC_QOS,
    STATIC_SAFE,
)

BASELINES = (STATIC_QOS, STATIC_SAFE, POWER_TUNING, PARROTFISH, JOLTEON, ORACLE)
ATTAINED = 0.99
MIN_ROOM = 0.02  # below this share of static-qos's cost, the oracle leaves no saving to take
CAPTURE_MEDIAN = 0.9
CAPTURE_EVERY = 0.7


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


@dataclass(frozen=True)
class Capture:
    """ce-scaling's share of the saving available below static-qos (None: no room)."""

    value: float | None
    room: float  # (static-qos − oracle) / static-qos, summed over the seeds used
    seeds: int
    # seeds where ce-scaling met the deadline and cost less than the oracle (a run that misses
    # the deadline can always cost less: the slowest size is the cheapest)
    beats_oracle: int


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
    capture: Capture | None = None
    qos_mb: float | None = None  # static-qos's median size over the cell's seeds

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
        cell.capture = capture(by_policy)
        cell.qos_mb = _median([r["memory_mb"] for r in by_policy.get(STATIC_QOS, [])])
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


def capture(by_policy: dict[str, list[dict[str, Any]]]) -> Capture | None:
    """(static-qos − ce) / (static-qos − oracle) on costs summed over the seeds where all
    three runs succeeded; value None when the oracle saves less than ``MIN_ROOM``."""
    ok = {
        label: {r["seed"]: r["cost_usd"] for r in by_policy.get(label, []) if _ok(r)}
        for label in (STATIC_QOS, CE_SCALING, ORACLE)
    }
    seeds = sorted(set(ok[STATIC_QOS]) & set(ok[CE_SCALING]) & set(ok[ORACLE]))
    if not seeds:
        return None
    qos, ce, oracle = (
        sum(ok[label][s] for s in seeds) for label in (STATIC_QOS, CE_SCALING, ORACLE)
    )
    room = (qos - oracle) / qos if qos else 0.0
    value = (qos - ce) / (qos - oracle) if room >= MIN_ROOM else None
    met = {r["seed"] for r in by_policy.get(CE_SCALING, []) if _ok(r) and r["deadline_met"]}
    beats = sum(1 for s in seeds if s in met and ok[CE_SCALING][s] < ok[ORACLE][s])
    return Capture(value, room, len(seeds), beats)


def _ok(row: dict[str, Any]) -> bool:
    return row["status"] == "succeeded" and row["cost_usd"] is not None


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
    targets.append(_ratio_target(cells, STATIC_QOS, "cost", "≤ static-qos", 1.0, strict=False))
    targets.append(_capture_target(cells))
    for peer in PEERS:
        targets.append(_ratio_target(cells, peer, "cost", f"< {peer}", 1.0))
    targets.append(_floor_target(cells))
    targets.append(_ratio_target(cells, ORACLE, "cost", "≤ 1.05 × oracle", 1.05))
    for kind, cut in (("hpo", 0.41), ("training", 0.38)):
        targets.append(_cut_target(cells, kind, cut))
    targets.append(_jct_target(cells))
    targets.append(_ratio_target(cells, POWER_TUNING, "cost", "< power-tuning (cell median)", 1.0))
    return targets


def _ce_misses(cell: Cell) -> bool:
    stats = cell.stats.get(CE_SCALING)
    return stats is not None and stats.attainment < ATTAINED


def _capture_target(cells: list[Cell]) -> Target:
    goal = (
        f"capture ≥ {CAPTURE_MEDIAN} median and ≥ {CAPTURE_EVERY} in every cell with room "
        f"(the oracle saves ≥ {MIN_ROOM:.0%} of static-qos)"
    )
    values = [(c.capture.value, c.name) for c in cells if c.capture and c.capture.value is not None]
    no_room = [c.name for c in cells if c.capture and c.capture.value is None]
    tail = f"; no room in {len(no_room)} cell(s): {', '.join(no_room)}" if no_room else ""
    if not values:
        return Target("capture", goal, "no cell with room" + tail, None)
    middle = median(v for v, _ in values)
    low = [v for v in values if v[0] < CAPTURE_EVERY]
    worst = min(values)
    return Target(
        "capture",
        goal,
        f"median {middle:.2f} over {len(values)} cell(s); worst {worst[0]:.2f} ({worst[1]}); "
        f"{len(low)} below {CAPTURE_EVERY}" + tail,
        middle >= CAPTURE_MEDIAN and not low,
    )


def _floor_target(cells: list[Cell]) -> Target:
    """The oracle must be a floor: on the same noise draws, ce-scaling should never cost less."""
    seen = [c for c in cells if c.capture is not None]
    beaten = [
        (c.capture.beats_oracle, c.capture.seeds, c.name) for c in seen if c.capture.beats_oracle
    ]
    total = sum(c.capture.seeds for c in seen)
    goal = (
        "the oracle is a floor: ce-scaling meets the deadline for less than it at no seed "
        "(same noise draws)"
    )
    if not seen:
        return Target("oracle floor", goal, "no data", None)
    return Target(
        "oracle floor",
        goal,
        f"ce-scaling met the deadline for less at {sum(b for b, _, _ in beaten)} of {total} seeds"
        + (": " + ", ".join(f"{name} ({b}/{n})" for b, n, name in beaten) if beaten else ""),
        not beaten,
    )


def _ratio_target(
    cells: list[Cell], baseline: str, what: str, goal: str, limit: float, strict: bool = True
) -> Target:
    values = [
        (getattr(c.ratios[baseline], what), c.name)
        for c in cells
        if baseline in c.ratios and getattr(c.ratios[baseline], what) is not None
    ]
    if not values:
        return Target(f"{what} vs {baseline}", f"ce-scaling {what} {goal}", "no data", None)
    within = (
        [v for v in values if v[0] < limit]
        if strict and limit == 1.0
        else [v for v in values if v[0] <= limit]
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
    "qos MB",
    "ce cost $",
    "ce JCT s",
    "ce met",
    "cost/qos",
    "JCT/qos",
    "capture",
    "cost/parrotfish",
    "JCT/parrotfish",
    "cost/jolteon",
    "JCT/jolteon",
    "cost/PT",
    "JCT/PT",
    "cost/oracle",
    "JCT/oracle",
    "cost/safe",
    "oracle cost/safe",
    "qos met",
    "parrotfish met",
    "jolteon met",
    "PT met",
    "oracle met",
)


def capture_text(cell: Cell) -> str:
    if cell.capture is None:
        return "–"
    if cell.capture.value is None:
        return "no room (oracle ≥ qos)" if cell.capture.room <= 0 else "no room"
    return fmt_ratio(cell.capture.value)


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
                "–" if c.qos_mb is None else f"{c.qos_mb:.0f}",
                fmt_usd(ce.cost_usd if ce else None),
                fmt_s(ce.jct_s if ce else None),
                _met_text(c, CE_SCALING),
                _ratio_text(c, STATIC_QOS, "cost"),
                _ratio_text(c, STATIC_QOS, "jct"),
                capture_text(c),
                _ratio_text(c, PARROTFISH, "cost"),
                _ratio_text(c, PARROTFISH, "jct"),
                _ratio_text(c, JOLTEON, "cost"),
                _ratio_text(c, JOLTEON, "jct"),
                _ratio_text(c, POWER_TUNING, "cost"),
                _ratio_text(c, POWER_TUNING, "jct"),
                _ratio_text(c, ORACLE, "cost"),
                _ratio_text(c, ORACLE, "jct"),
                _ratio_text(c, STATIC_SAFE, "cost"),
                fmt_ratio(None if (cut := oracle_cut(c)) is None else 1 - cut),
                _met_text(c, STATIC_QOS),
                _met_text(c, PARROTFISH),
                _met_text(c, JOLTEON),
                _met_text(c, POWER_TUNING),
                _met_text(c, ORACLE),
            ]
        )
    return list(RATIO_HEADER), body


def losses(cells: list[Cell]) -> list[str]:
    """Where ce-scaling loses, one line per cell: the baselines that cost less (median of the
    per-seed ratios above 1) while meeting the deadline as often, and those that met it more
    often."""
    lines = []
    for c in cells:
        ce = c.stats.get(CE_SCALING)
        if ce is None:
            continue
        # dearer than a baseline that met the deadline at least as often (the oracle aside: it
        # is the floor; a cheaper policy that misses deadlines does not beat it)
        dearer = [
            f"{b} (×{c.ratios[b].cost:.2f}; it met {_met_text(c, b)})"
            for b in BASELINES
            if b != ORACLE
            and b in c.ratios
            and c.ratios[b].cost is not None
            and c.ratios[b].cost > 1.0
            and c.stats[b].attainment >= ce.attainment
        ]
        later = [
            f"{b} ({c.stats[b].attainment:.0%} vs {ce.attainment:.0%})"
            for b in BASELINES
            if b in c.stats and c.stats[b].attainment > ce.attainment
        ]
        parts = []
        if dearer:
            parts.append("costs more than " + ", ".join(dearer))
        if later:
            parts.append("meets the deadline less often than " + ", ".join(later))
        if ce.failed:
            parts.append(f"{ce.failed} failed run(s)")
        if parts:
            lines.append(f"{c.name}: " + "; ".join(parts))
    return lines


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
