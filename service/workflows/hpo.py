"""Hyperparameter tuning by successive halving (and, optionally, Hyperband brackets).

A bracket samples ``n`` trial configurations and runs them as *rungs*: every trial trains to
``r`` epochs, the best ``1/eta`` continue (from their checkpoints) to ``r * eta`` epochs, and so
on until the survivors reach ``max_epochs`` (Jamieson & Talwalkar 2016; Li et al. 2018). Each rung
is one stage, so a policy can give each rung — and each trial shape inside it — its own memory.

With ``hyperband`` the job runs the brackets s = s_max … 0 one after another, trading many short
trials against few long ones; ``trials`` is the size of the most exploratory bracket.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from service.domain.enums import StageKind
from service.spec import HpoSpec
from service.workflows.plan import (
    Finished,
    StageOutline,
    StagePlan,
    StageResult,
    TaskOutcome,
    TaskPlan,
)
from service.workflows.sampling import sample_trials

# Parameters that change a trial's memory footprint: trials that share them share a "shape".
SHAPE_PARAMS = ("hidden", "hidden_sizes", "layers", "batch_size")


@dataclass(frozen=True)
class Rung:
    keep: int  # trials that run in this rung
    epochs: int  # every one of them trains up to this epoch


@dataclass(frozen=True)
class Bracket:
    index: int
    first_trial: int  # global number of its first trial (task keys are unique in the job)
    configs: tuple[dict[str, Any], ...]
    rungs: tuple[Rung, ...]


def rung_schedule(trials: int, eta: int, min_epochs: int, max_epochs: int) -> tuple[Rung, ...]:
    """Rungs of one successive-halving bracket; the last always trains to ``max_epochs``."""
    by_budget = _floor_log(max_epochs / min_epochs, eta)
    by_trials = _floor_log(trials, eta)
    count = min(by_budget, by_trials) + 1
    rungs = []
    for i in range(count):
        epochs = max_epochs if i == count - 1 else min(max_epochs, min_epochs * eta**i)
        rungs.append(Rung(keep=max(1, trials // eta**i), epochs=epochs))
    return tuple(rungs)


def _floor_log(value: float, base: int) -> int:
    """floor(log_base(value)) without floating-point surprises at exact powers."""
    power = 0
    while base ** (power + 1) <= value + 1e-9:
        power += 1
    return power


def shape_of(params: dict[str, Any]) -> str:
    parts = [f"{name}={params[name]}" for name in SHAPE_PARAMS if name in params]
    return ",".join(parts) or "default"


class HpoWorkflow:
    def __init__(self, spec: HpoSpec) -> None:
        self.spec = spec
        self.brackets = self._brackets()

    @property
    def stage_count(self) -> int:
        return sum(len(b.rungs) for b in self.brackets)

    def _brackets(self) -> tuple[Bracket, ...]:
        spec = self.spec
        if not spec.hyperband:
            sizes = [(spec.trials, spec.min_epochs)]
        else:
            s_max = _floor_log(spec.max_epochs / spec.min_epochs, spec.eta)
            sizes = []
            for s in range(s_max, -1, -1):
                n = math.ceil(spec.trials * spec.eta ** (s - s_max) * (s_max + 1) / (s + 1))
                sizes.append((max(1, n), max(spec.min_epochs, spec.max_epochs // spec.eta**s)))
        brackets, first = [], 0
        for index, (n, r) in enumerate(sizes):
            configs = sample_trials(spec.search_space, n, spec.seed + index)
            rungs = rung_schedule(n, spec.eta, r, spec.max_epochs)
            brackets.append(Bracket(index, first, tuple(configs), rungs))
            first += n
        return tuple(brackets)

    def _locate(self, position: int) -> tuple[Bracket, int]:
        for bracket in self.brackets:
            if position < len(bracket.rungs):
                return bracket, position
            position -= len(bracket.rungs)
        raise IndexError(position)

    def next_stage(self, history: list[StageResult]) -> StagePlan | Finished:
        """The stage after ``history`` (all finished stages, in order), or the job's end."""
        position = len(history)
        if history and not history[-1].succeeded():
            name = history[-1].plan.name
            return Finished(False, {}, f"every trial of {name} failed")
        if position >= self.stage_count:
            return self._finish(history)
        bracket, rung_index = self._locate(position)
        rung = bracket.rungs[rung_index]
        prefix = f"b{bracket.index}-" if self.spec.hyperband else ""
        name = f"{prefix}rung-{rung_index}"
        if rung_index == 0:
            tasks = tuple(
                TaskPlan(
                    key=trial_key(bracket.first_trial + i),
                    params=config,
                    epoch_from=0,
                    epoch_to=rung.epochs,
                    shape=shape_of(config),
                )
                for i, config in enumerate(bracket.configs)
            )
        else:
            previous = history[-1]
            survivors = rank(previous.succeeded())[: rung.keep]
            by_key = {task.key: task for task in previous.plan.tasks}
            tasks = tuple(
                TaskPlan(
                    key=outcome.key,
                    params=by_key[outcome.key].params,
                    epoch_from=by_key[outcome.key].epoch_to,
                    epoch_to=rung.epochs,
                    resume=(previous.plan.position, outcome.key),
                    shape=by_key[outcome.key].shape,
                )
                for outcome in survivors
            )
        return StagePlan(position, name, StageKind.RUNG, tasks, round=rung_index)

    def outline_after(self, position: int) -> tuple[StageOutline, ...]:
        """(tasks, epochs per task) of every stage after ``position``, as scheduled now."""
        outline, index = [], 0
        for bracket in self.brackets:
            previous = 0
            for rung in bracket.rungs:
                if index > position:
                    outline.append(StageOutline(rung.keep, rung.epochs - previous))
                previous = rung.epochs
                index += 1
        return tuple(outline)

    def _finish(self, history: list[StageResult]) -> Finished:
        finals, offset = [], 0
        for bracket in self.brackets:
            offset += len(bracket.rungs)
            finals.append(history[offset - 1])
        candidates = [(o, result) for result in finals for o in result.succeeded()]
        best, result = min(candidates, key=lambda pair: _rank_key(pair[0]))
        params = next(t.params for t in result.plan.tasks if t.key == best.key)
        return Finished(
            True,
            {
                "best": {
                    "trial": best.key,
                    "params": params,
                    "score": best.score,
                    "loss": best.loss,
                    "epochs": best.epochs_done,
                    "checkpoint": best.checkpoint,
                },
                "trials": sum(len(b.configs) for b in self.brackets),
                "stages": len(history),
            },
        )


def trial_key(number: int) -> str:
    return f"trial-{number:04d}"


def rank(outcomes: list[TaskOutcome]) -> list[TaskOutcome]:
    """Best first: higher validation score, then lower loss, then key (for determinism)."""
    return sorted(outcomes, key=_rank_key)


def _rank_key(outcome: TaskOutcome) -> tuple[float, float, str]:
    score = outcome.score if outcome.score is not None else -math.inf
    loss = outcome.loss if outcome.loss is not None else math.inf
    return (-score, loss, outcome.key)
