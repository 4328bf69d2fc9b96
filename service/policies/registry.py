"""The policy a job spec asks for."""

from __future__ import annotations

from service.policies.base import Policy
from service.policies.static import Static
from service.spec import JobSpec, StaticPolicy


class UnavailablePolicy(Exception):
    """The spec names a policy this build cannot run."""


def policy_for(spec: JobSpec) -> Policy:
    if isinstance(spec.policy, StaticPolicy):
        return Static(spec.policy.memory_mb)
    raise UnavailablePolicy(f"policy {spec.policy.name!r} is not available yet")
