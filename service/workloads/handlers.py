"""Lambda entry points of the built-in workloads (``handler(event, context) -> dict``).

Address them as ``service.workloads.handlers:<name>`` (the registry's form) or, in a Lambda
function's Handler setting, ``service.workloads.handlers.<name>``. Trial handlers serve HPO
(``kind: "hpo"``), training workers serve data-parallel rounds (``kind: "training"``).
"""

from __future__ import annotations

from service.workloads.classifiers import LogisticRegression, MultilayerPerceptron
from service.workloads.sdk import make_handler

LOGREG = LogisticRegression()
MLP = MultilayerPerceptron()

logreg_trial = make_handler(LOGREG, kind="hpo")
mlp_trial = make_handler(MLP, kind="hpo")
logreg_training_worker = make_handler(LOGREG, kind="training")
mlp_training_worker = make_handler(MLP, kind="training")
