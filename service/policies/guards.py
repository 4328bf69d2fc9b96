"""Guard rules: named, ordered checks every proposed memory change passes through.

The first two adjust a proposal (bounds, out-of-memory floor) and are never skipped. The others
can *veto* a change — the function keeps its current memory — and say why; a veto is recorded on
the job's timeline like a change. A vetoing rule stands aside when the current memory would miss
the deadline or is below the floor: safety beats thrift. (The shape follows Prefect's
orchestration rules and the VPA recommender's composable estimators.)
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

from service.policies.base import MemoryDecision, Veto
from service.spec import MAX_MEMORY_MB, MIN_MEMORY_MB

MIN_GAIN_SHARE = 0.01  # a change must save at least 1 % of the remaining cost ...
LOW_CONFIDENCE = 0.25  # ... and not shrink memory on a curve this uncertain there
COOLDOWN_ROUNDS = 1  # training: run at least this many rounds at a size before changing again


@dataclass(frozen=True)
class Proposal:
    shape: str
    current_mb: int | None  # None: nothing allocated yet
    proposed_mb: int
    rule: str
    reason: str
    predicted_gain_usd: float | None = None  # remaining cost at current minus at proposed
    change_cost_usd: float = 0.0  # what the change itself costs (cold starts)
    remaining_cost_usd: float | None = None
    relative_error: float = 0.0  # of the prediction at the proposed size
    current_is_safe: bool = True  # the current memory meets the deadline and the floor
    rounds_since_change: int | None = None
    floor_mb: int = MIN_MEMORY_MB
    min_mb: int = MIN_MEMORY_MB
    max_mb: int = MAX_MEMORY_MB


class Rule(Protocol):
    name: str

    def __call__(self, proposal: Proposal) -> Proposal | Veto: ...


class Bounds:
    name = "bounds"

    def __call__(self, p: Proposal) -> Proposal | Veto:
        clamped = min(max(p.proposed_mb, p.min_mb, MIN_MEMORY_MB), p.max_mb, MAX_MEMORY_MB)
        if clamped == p.proposed_mb:
            return p
        return replace(
            p,
            proposed_mb=clamped,
            rule=self.name,
            reason=f"{p.reason}; clamped to the allowed {p.min_mb}-{p.max_mb} MB",
        )


class OomFloor:
    name = "oom-floor"

    def __call__(self, p: Proposal) -> Proposal | Veto:
        if p.proposed_mb >= p.floor_mb:
            return p
        return replace(
            p,
            proposed_mb=p.floor_mb,
            rule=self.name,
            reason=f"{p.reason}; raised to the memory floor of {p.floor_mb} MB (peak use + margin)",
        )


class Cooldown:
    name = "cooldown"

    def __call__(self, p: Proposal) -> Proposal | Veto:
        if p.rounds_since_change is not None and p.rounds_since_change < COOLDOWN_ROUNDS:
            return Veto(self.name, p.proposed_mb, "changed too recently: let a round run first")
        return p


class MinimumGain:
    name = "minimum-gain"

    def __call__(self, p: Proposal) -> Proposal | Veto:
        if p.predicted_gain_usd is None:
            return p
        threshold = p.change_cost_usd
        if p.remaining_cost_usd is not None:
            threshold = max(threshold, MIN_GAIN_SHARE * p.remaining_cost_usd)
        if p.predicted_gain_usd <= threshold:
            return Veto(
                self.name,
                p.proposed_mb,
                f"predicted saving ${p.predicted_gain_usd:.6f} does not beat the cost of "
                f"changing (${threshold:.6f}: cold starts, or 1% of what remains)",
            )
        return p


class LowConfidence:
    name = "low-confidence"

    def __call__(self, p: Proposal) -> Proposal | Veto:
        shrinking = p.current_mb is not None and p.proposed_mb < p.current_mb
        if shrinking and p.relative_error > LOW_CONFIDENCE:
            return Veto(
                self.name,
                p.proposed_mb,
                f"prediction at {p.proposed_mb} MB is ±{p.relative_error:.0%}: too uncertain "
                "to shrink memory",
            )
        return p


RULES: tuple[Rule, ...] = (Bounds(), OomFloor(), Cooldown(), MinimumGain(), LowConfidence())
ADJUSTING = ("bounds", "oom-floor")


def decide(proposal: Proposal, rules: tuple[Rule, ...] = RULES) -> MemoryDecision:
    """Run the rules in order; a veto keeps the current memory, unless that is unsafe."""
    vetoes: list[Veto] = []
    current = proposal
    for rule in rules:
        if rule.name not in ADJUSTING and (
            current.current_mb is None
            or current.proposed_mb == current.current_mb
            or not current.current_is_safe
        ):
            continue
        outcome = rule(current)
        if isinstance(outcome, Veto):
            vetoes.append(outcome)
            kept = current.current_mb
            assert kept is not None
            return MemoryDecision(
                kept, outcome.rule, f"kept {kept} MB: {outcome.reason}", 0.0, tuple(vetoes)
            )
        current = outcome
    return MemoryDecision(
        current.proposed_mb,
        current.rule,
        current.reason,
        current.predicted_gain_usd,
        tuple(vetoes),
    )
