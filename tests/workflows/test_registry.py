"""workflow_for picks a job's workflow; a policy with stages of its own wraps it through its
workflow_under hook; stage and task identity travel in the plans, not in names."""

from __future__ import annotations

from service.domain.enums import StageKind
from service.policies.base import workflow_under
from service.policies.power_tuning import PowerTuning, ProfiledWorkflow
from service.policies.static import Static
from service.spec import JobSpec
from service.workflows import workflow_for
from service.workflows.hpo import HpoWorkflow
from service.workflows.training import TrainingWorkflow

TRAINING = JobSpec.model_validate(
    {
        "name": "t",
        "kind": "training",
        "workload": {"function": "builtin:mlp"},
        "training": {"workers": 3, "max_epochs": 4, "params": {"lr": 0.05, "hidden": 16}},
        "qos": {"deadline_s": 600},
        "policy": {"name": "static", "memory_mb": 512},
    }
)
HPO = JobSpec.model_validate(
    {
        "name": "h",
        "kind": "hpo",
        "workload": {"function": "builtin:logreg"},
        "hpo": {
            "search_space": {"lr": {"log_uniform": [0.001, 0.5]}},
            "trials": 9,
            "eta": 3,
            "min_epochs": 1,
            "max_epochs": 3,
        },
        "qos": {"deadline_s": 600},
        "policy": {"name": "static", "memory_mb": 512},
    }
)


def test_workflow_for_picks_the_spec_kind():
    assert isinstance(workflow_for(HPO), HpoWorkflow)
    assert isinstance(workflow_for(TRAINING), TrainingWorkflow)


def test_a_policy_without_stages_of_its_own_keeps_the_workflow():
    workflow = workflow_for(HPO)
    assert workflow_under(Static(512), workflow) is workflow


def test_power_tuning_puts_its_profiling_stage_in_front_and_keeps_identity():
    workflow = workflow_under(PowerTuning((512, 1024), "cost", 1), workflow_for(TRAINING))
    assert isinstance(workflow, ProfiledWorkflow)
    profiling = workflow.next_stage([])
    assert profiling.kind is StageKind.PROFILING and profiling.round is None
    assert {t.worker for t in profiling.tasks} == {None}


def test_training_plans_carry_round_and_worker_numbers():
    first = workflow_for(TRAINING).next_stage([])
    assert first.round == 0
    assert [t.worker for t in first.tasks] == [0, 1, 2]
    assert [t.key for t in first.tasks] == ["worker-000", "worker-001", "worker-002"]
