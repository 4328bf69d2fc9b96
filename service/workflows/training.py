"""Data-parallel training in synchronous rounds (local SGD / model averaging).

Round r runs W workers; each starts from the model averaged at the end of round r-1, trains
``epochs_per_round`` epochs on its shard and writes its update. The job stops when the round's
loss reaches ``target_loss`` or the epochs run out.
"""

from __future__ import annotations

import math
from statistics import fmean

from service.domain.enums import StageKind
from service.spec import TrainingSpec
from service.workflows.plan import Finished, StageOutline, StagePlan, StageResult, TaskPlan


class TrainingWorkflow:
    def __init__(self, spec: TrainingSpec) -> None:
        self.spec = spec

    @property
    def max_rounds(self) -> int:
        return math.ceil(self.spec.max_epochs / self.spec.epochs_per_round)

    def next_stage(self, history: list[StageResult]) -> StagePlan | Finished:
        spec = self.spec
        losses = [round_loss(result) for result in history]
        if history:
            last = history[-1]
            failed = [o.key for o in last.outcomes.values() if not o.ok]
            if failed:
                return Finished(
                    False,
                    self._summary(history, losses),
                    f"{last.plan.name}: worker(s) {', '.join(sorted(failed))} failed",
                )
            loss = losses[-1]
            if spec.target_loss is not None and loss is not None and loss <= spec.target_loss:
                return Finished(True, self._summary(history, losses) | {"target_reached": True})
            if len(history) >= self.max_rounds:
                return Finished(True, self._summary(history, losses) | {"target_reached": False})
        # Worker w of round r is task ``worker_key(w)`` of stage r; the event carries both.
        r = len(history)
        epoch_from = r * spec.epochs_per_round
        epoch_to = min(spec.max_epochs, epoch_from + spec.epochs_per_round)
        tasks = tuple(
            TaskPlan(
                key=worker_key(w),
                params=dict(spec.params),
                epoch_from=epoch_from,
                epoch_to=epoch_to,
                shape="worker",
                worker=w,
            )
            for w in range(spec.workers)
        )
        return StagePlan(r, f"round-{r}", StageKind.ROUND, tasks, r - 1 if r else None, round=r)

    def outline_after(self, position: int) -> tuple[StageOutline, ...]:
        """The rounds after ``position`` that the epoch budget allows (the target may end the
        job sooner)."""
        spec = self.spec
        return tuple(
            StageOutline(
                spec.workers,
                min(spec.max_epochs, (r + 1) * spec.epochs_per_round) - r * spec.epochs_per_round,
            )
            for r in range(position + 1, self.max_rounds)
        )

    def _summary(self, history: list[StageResult], losses: list[float | None]) -> dict:
        """``checkpoint`` is where the trained model is: the last round's worker updates, whose
        sample-weighted average is the model — what a handler takes as ``checkpoint_in`` (a
        list means "average these"), and what ``average_checkpoints`` writes as one file."""
        last = history[-1]
        return {
            "final_loss": losses[-1],
            "losses": losses,
            "rounds": len(history),
            "epochs": max(t.epoch_to for t in last.plan.tasks),
            "model_round": last.plan.position,
            "checkpoint": [
                last.outcomes[key].checkpoint
                for key in sorted(last.outcomes)
                if last.outcomes[key].ok and last.outcomes[key].checkpoint
            ],
        }


def round_loss(result: StageResult) -> float | None:
    """The round's loss: the mean of its workers' losses (equal shards, equal weight)."""
    losses = [o.loss for o in result.succeeded() if o.loss is not None]
    return fmean(losses) if losses else None


def worker_key(worker: int) -> str:
    return f"worker-{worker:03d}"
