"""Allocation policies: pure functions of (job spec, stage, observations, now) → memory."""
