"""The policies the benchmark puts side by side, by label, and the job-spec policy each means."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.bench.workloads import STATIC_SIZES, BenchWorkload

STATIC_SAFE = "static-safe"
# The cheapest single size that met the seed's deadline, chosen in hindsight (suite.py).
STATIC_QOS = "static-qos"
POWER_TUNING = "power-tuning"
PARROTFISH = "parrotfish"
JOLTEON = "jolteon"
CE_SCALING = "ce-scaling"
ORACLE = "oracle"
STATIC_LABELS = (*(f"static-{size}" for size in STATIC_SIZES), STATIC_SAFE)
PEERS = (PARROTFISH, JOLTEON)
LABELS = (*STATIC_LABELS, STATIC_QOS, POWER_TUNING, *PEERS, CE_SCALING, ORACLE)


@dataclass(frozen=True)
class BenchPolicy:
    label: str
    document: dict[str, Any]  # the job spec's "policy"
    oracle: bool = False
    peer: str | None = None  # a published peer (policies/peers), swapped in by the runner

    @property
    def reads_deadline(self) -> bool:
        """static and power-tuning never look at the deadline (policies/static.py,
        policies/power_tuning.py; the loop uses it only to record ``deadline_missed``), so one
        run of theirs is measured against both deadlines of a workload. (static-qos runs are
        static runs too; which size is static-qos depends on the deadline.)"""
        return self.peer is not None or self.document["name"] not in ("static", "power-tuning")

    @property
    def memory_mb(self) -> int | None:
        return self.document.get("memory_mb") if self.document["name"] == "static" else None


def bench_policy(label: str, workload: BenchWorkload) -> BenchPolicy:
    if label == STATIC_SAFE:
        return BenchPolicy(label, {"name": "static", "memory_mb": workload.static_safe_mb()})
    if label.startswith("static-") and label != STATIC_QOS:
        return BenchPolicy(label, {"name": "static", "memory_mb": int(label.split("-")[1])})
    if label == POWER_TUNING:
        # The product's default: 128–3,008 MB candidates, 3 runs each, balanced strategy.
        return BenchPolicy(label, {"name": "power-tuning"})
    if label in PEERS:
        # The spec says ce-scaling (its policy document is not read); simulate(policy=...)
        # swaps in the peer (runner.py).
        return BenchPolicy(label, {"name": "ce-scaling"}, peer=label)
    if label == CE_SCALING:
        return BenchPolicy(label, {"name": "ce-scaling"})
    if label == ORACLE:
        # The spec says ce-scaling; simulate(oracle=True) swaps in the oracle (run.py).
        return BenchPolicy(label, {"name": "ce-scaling"}, oracle=True)
    raise ValueError(f"unknown benchmark policy {label!r}; policies: {', '.join(LABELS)}")


def static_at(memory_mb: int) -> BenchPolicy:
    """A static run at any size: what the static-qos search runs (suite.py)."""
    return BenchPolicy(f"static-{memory_mb}", {"name": "static", "memory_mb": memory_mb})
