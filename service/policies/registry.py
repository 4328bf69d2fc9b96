"""The policy a job spec asks for."""

from __future__ import annotations

from service.policies.architecture import AutoArchitecture
from service.policies.base import Policy
from service.policies.ce_scaling import CeScaling
from service.policies.power_tuning import PowerTuning
from service.policies.static import Static
from service.spec import CeScalingPolicy, JobSpec, PowerTuningPolicy, StaticPolicy


class UnavailablePolicy(Exception):
    """The spec names a policy this build cannot run."""


def policy_for(spec: JobSpec) -> Policy:
    if isinstance(spec.policy, StaticPolicy):
        return Static(spec.policy.memory_mb)
    if isinstance(spec.policy, CeScalingPolicy):
        if spec.workload.architecture == "auto":
            return AutoArchitecture(CeScaling.of(spec.policy))
        return CeScaling.of(spec.policy)
    if isinstance(spec.policy, PowerTuningPolicy):
        return PowerTuning.of(spec.policy)
    raise UnavailablePolicy(f"policy {spec.policy.name!r} is not available")
