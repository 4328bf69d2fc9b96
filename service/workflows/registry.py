"""The workflow of a job spec: one per kind of job."""

from __future__ import annotations

from service.spec import JobSpec
from service.workflows.hpo import HpoWorkflow
from service.workflows.plan import Workflow
from service.workflows.training import TrainingWorkflow


def workflow_for(spec: JobSpec) -> Workflow:
    """Successive halving / Hyperband for an HPO spec, synchronous rounds for a training one.
    (A policy may wrap it with stages of its own: ``policies.base.workflow_under``.)"""
    if spec.hpo is not None:
        return HpoWorkflow(spec.hpo)
    if spec.training is not None:
        return TrainingWorkflow(spec.training)
    raise ValueError(f"a {spec.kind} spec names no workflow")
