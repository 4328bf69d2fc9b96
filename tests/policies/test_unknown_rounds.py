"""Training before the loss curve can be fitted (fewer than three losses): the rounds are
unknown, and the plan is recoverable instead of sized for every round the budget allows."""

from __future__ import annotations

from service.models.enums import StageKind
from service.policies.base import Sample
from service.policies.ce_scaling import CeScaling
from service.spec import JobSpec
from tests.policies.helpers import context, stage

EPOCHS = 3
ROUND_1 = stage(1, {"worker": 4}, epochs=EPOCHS, kind=StageKind.ROUND)


def spec(deadline_s: float, target_loss: float | None) -> JobSpec:
    training = {"workers": 4, "max_epochs": 10 * EPOCHS, "epochs_per_round": EPOCHS}
    if target_loss is not None:
        training["target_loss"] = target_loss
    return JobSpec.model_validate(
        {
            "name": "t",
            "kind": "training",
            "workload": {"function": "builtin:mlp"},
            "training": training,
            "qos": {"deadline_s": deadline_s},
            "policy": {"name": "ce-scaling"},
        }
    )


# Round 0: three workers at 1,769 MB, the first round's probe at 3,584 MB (multi-threaded work:
# about twice as fast there).
SEEN = tuple(
    Sample("worker", 0, m, per_epoch_ms * EPOCHS, 400.0, 300.0, EPOCHS, True)
    for m, per_epoch_ms in [(1769, 1000.0)] * 3 + [(3584, 520.0)]
)


def sizes(target_loss: float | None, losses: tuple[float, ...]) -> list[int]:
    decisions = CeScaling().allocate(
        context(
            spec(30.0, target_loss),
            ROUND_1,
            [(4, EPOCHS)] * 8,
            samples=SEEN,
            current_mb={"worker": 1769},
            rounds_since_change=1,
            elapsed_s=3.5,
            losses=losses,
        )
    )
    return sorted(d.memory_mb for d in decisions.values())


def test_while_the_rounds_are_unknown_the_workers_need_not_be_sized_for_every_round():
    # Nine rounds left fit only above 1,769 MB: planned for all of them (no target loss, so
    # every round runs), three workers move to 2,304 MB, each a cold start (the fourth probes
    # below). With a target
    # loss and one loss in, the job may end well before: two more rounds at the warm 1,769 MB
    # still leave time for every worker to move to 3,584 MB (measured) and run all nine, so the
    # workers stay warm until the loss curve can say how many rounds there are.
    every_round = sizes(None, (0.6,))
    assert every_round[1:] == [2304] * 3  # sized for all nine
    assert sizes(0.15, (0.6,)) == [1769, 1769, 1769, 3584]
    # once three losses are in and they say every round is needed, the plan is as before
    assert sizes(0.15, (0.6, 0.6, 0.6)) == every_round


def test_the_expected_rounds_read_the_last_two_losses_as_a_power_law():
    # 0.586 and 0.370 after rounds 1 and 2 (train-mlp-w4's curve): L = b t^-0.66 reaches 0.15
    # after round 7.8, so 6 more; the job took 7 more (its loss flattens towards a floor the
    # power law through the origin does not have: the estimate is the optimistic one)
    def expected(losses: tuple[float, ...]) -> int:
        observed = context(spec(30.0, 0.15), ROUND_1, losses=losses)
        return CeScaling.expected_rounds(observed, 8)

    assert expected((0.586, 0.370)) == 6
    assert expected((0.586,)) == 8  # one loss: no rate, every round
    assert expected((0.5, 0.6)) == 8  # not falling: every round
    assert expected((0.3, 0.1)) == 1  # reached
