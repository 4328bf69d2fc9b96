"""The guard rules, one by one and in order."""

from __future__ import annotations

from service.policies.guards import Proposal, decide


def proposal(**changes) -> Proposal:
    base = dict(
        shape="s",
        current_mb=1024,
        proposed_mb=512,
        rule="p",
        reason="cheaper",
        predicted_gain_usd=1.0,
        remaining_cost_usd=10.0,
        change_cost_usd=0.01,
    )
    return Proposal(**(base | changes))


def test_a_good_change_passes():
    decision = decide(proposal())
    assert decision.memory_mb == 512 and decision.rule == "p" and not decision.vetoes


def test_bounds_clamp_and_the_floor_raises():
    assert decide(proposal(proposed_mb=64, min_mb=256)).memory_mb == 256
    assert decide(proposal(proposed_mb=20000)).memory_mb == 10240
    raised = decide(proposal(proposed_mb=512, floor_mb=700))
    assert raised.memory_mb == 700 and raised.rule == "oom-floor"


def test_minimum_gain_veto_keeps_the_current_size():
    decision = decide(proposal(predicted_gain_usd=0.05))  # < 1 % of $10 remaining
    assert decision.memory_mb == 1024 and decision.rule == "minimum-gain"
    assert decision.vetoes[0].proposed_mb == 512


def test_low_confidence_blocks_shrinking_only():
    assert decide(proposal(relative_error=0.5)).rule == "low-confidence"
    grow = decide(proposal(proposed_mb=2048, relative_error=0.5))
    assert grow.memory_mb == 2048


def test_cooldown_then_vetoes_are_skipped_when_the_current_size_is_unsafe():
    assert decide(proposal(rounds_since_change=0)).rule == "cooldown"
    unsafe = decide(proposal(rounds_since_change=0, predicted_gain_usd=0.0, current_is_safe=False))
    assert unsafe.memory_mb == 512 and not unsafe.vetoes
