"""The pure layers import without SQLAlchemy: decision code takes plain data, so loading a
workflow, a policy, a predictor or the loop's lifecycle core must not load the ORM."""

from __future__ import annotations

import subprocess
import sys

import pytest

PURE = [
    "service.domain.enums",
    "service.domain.lambda_limits",
    "service.workflows.hpo",
    "service.workflows.training",
    "service.workflows.plan",
    "service.policies.base",
    "service.policies.registry",
    "service.policies.power_tuning",
    "service.policies.ce_scaling",
    "service.policies.oracle",
    "service.policies.warm_split",
    "service.policies.architecture",
    "service.prediction.memory_curve",
    "service.prediction.loss_curve",
    "service.control.retry",
    "service.control.lifecycle",
    "service.workflows",
]


@pytest.mark.parametrize("module", PURE)
def test_pure_module_imports_without_sqlalchemy(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'sqlalchemy'"
        " or m.startswith('service.models'))\n"
        "print(','.join(loaded))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "", f"{module} loads {out}"


def test_models_enums_still_re_exports_the_domain_enums() -> None:
    from service.domain import enums as domain
    from service.models import enums as models

    assert models.JobStatus is domain.JobStatus
    assert models.check_in is domain.check_in
