"""Architecture ``auto``: which architecture each task shape runs on. Pure.

A job whose spec says ``"architecture": "auto"`` runs its memory policy (ce-scaling, or the
oracle in simulation) through ``AutoArchitecture``, which adds one decision per shape: x86_64
or arm64. arm64's GB-second costs 20 % less, but how fast a workload runs there differs per
workload, so it is measured, not assumed:

1. *Pilot.* While a shape has not run on both architectures at one memory size (cold beside
   cold, or warm beside warm), one task of it runs on the other architecture at the same
   memory as its first task: a task that would have waited for the memory pilot, else one of
   the stage's decided tasks (never a probe). Before anything is measured the shapes are
   planned on x86_64; a shape with a single task in the stage waits for a stage with two.
   Training pilots only where the deadline has room for a slow worker holding up its round
   (``round_has_room``).
2. *Speed.* The shape's arm64 slowdown is the geometric mean, over the memory sizes it ran at
   on both, of the ratio of its median per-epoch durations (arm64 / x86_64), cold runs
   compared with cold runs and warm with warm (a first run in a new environment may load its
   data lazily). A shape not measured on both borrows the mean slowdown of those that are.
3. *Choice.* The policy plans the stage twice, once with every run seen as if it had run on
   x86_64 and once as if on arm64 (durations of the other architecture scaled by the
   slowdown, their cold starts left out: those environments are no use on this one). For
   each shape, the plan's predicted cost and time for the rest of the job (``predict``: this
   stage as planned; then training's remaining rounds at this size, or HPO's later rungs as
   the deadline split would size them for the shape alone) decide: the cheaper of the
   architectures whose predicted time meets the remaining deadline, else the faster. A
   shape stays on the architecture it ran on last unless the other is predicted at least
   ``SWITCH_GAIN`` cheaper (run-to-run noise must not flip it back and forth: every switch
   starts cold).

The policy's own rules (deadline split, resize, guards, probes) are unchanged: it plans on one
architecture at a time and does not know the other exists.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from statistics import median
from typing import Any, Literal

from service.domain.lambda_limits import MAX_MEMORY_MB, MIN_MEMORY_MB
from service.policies.base import MemoryDecision, Observations, Policy, PolicyContext, Sample
from service.policies.costing import grid_between, invocation_usd
from service.policies.deadline_split import fastest, split, stage_options

Architecture = Literal["x86_64", "arm64"]
ARCHITECTURES: tuple[Architecture, ...] = ("x86_64", "arm64")
# Another architecture must be predicted this much cheaper before a shape moves to it.
SWITCH_GAIN = 0.03
# Learned predictors fitted by the loop on every run of a shape, whatever its architecture:
# the views refit on their own (converted) runs instead.
_MIXED_PREDICTORS = ("memory-curve:", "duration:", "prior:")
PROBE_RULES = ("probe-above", "probe-below")


# -- what the runs say ------------------------------------------------------------------------
def arm64_slowdowns(samples: tuple[Sample, ...]) -> dict[str, float]:
    """Per shape measured on both architectures at a common size: arm64's per-epoch duration
    over x86_64's (geometric mean over the common sizes of the ratio of medians)."""
    per: dict[tuple[str, str, int, bool], list[float]] = defaultdict(list)
    for s in samples:
        if s.ok and s.duration_ms > 0:
            cold = s.init_ms is not None  # a first run may load lazily: compare like with like
            per[(s.shape, s.architecture, s.memory_mb, cold)].append(
                s.duration_ms / max(1, s.epochs)
            )
    ratios: dict[str, list[float]] = defaultdict(list)
    for (shape, arch, memory, cold), durations in per.items():
        x86 = per.get((shape, "x86_64", memory, cold))
        if arch == "arm64" and x86:
            ratios[shape].append(median(durations) / median(x86))
    return {
        shape: math.exp(sum(math.log(r) for r in found) / len(found))
        for shape, found in ratios.items()
    }


def slowdowns_for(
    shapes: list[str], measured: dict[str, float], known_speed: float | None
) -> dict[str, float] | None:
    """arm64's slowdown per shape: known (the oracle), measured, or borrowed from the shapes
    measured (their geometric mean); None while nothing is measured."""
    if known_speed is not None:
        return {shape: 1.0 / known_speed for shape in shapes}
    if not measured:
        return None
    borrowed = math.exp(sum(math.log(r) for r in measured.values()) / len(measured))
    return {shape: measured.get(shape, borrowed) for shape in shapes}


def as_if_on(
    observations: Observations, architecture: str, slowdowns: dict[str, float]
) -> Observations:
    """Every run as if it had run on ``architecture``: the other architecture's durations
    (and CPU times) scaled by the shape's slowdown, their cold starts dropped. A successful run
    of the other architecture at a size the shape has run at here, first run for first run or
    warm for warm, is left out: the slowdown was measured from such pairs (``arm64_slowdowns``
    compares like with like), so, scaled, it only repeats this architecture's own runs there,
    and a curve fitted on the copies would look surer than it is. (A warm run there that this
    architecture has no warm run to match is kept: without it a pilot's view knew only its
    first run, which holds the first-run work, and priced every later round with it.) A
    converted first run's CPU time is dropped: it holds the first-run work, and the copy no
    longer says it was a first run (``steady_cpu``). Predictors fitted on both architectures'
    runs mixed are left out too (the policy refits on these runs)."""
    if all(s.architecture == architecture for s in observations.samples):
        return observations  # all ran here: nothing to convert, the stored fits hold
    here = {
        (s.shape, s.memory_mb, s.init_ms is not None)
        for s in observations.samples
        if s.architecture == architecture
    }

    def factor(sample: Sample) -> float:
        slowdown = slowdowns.get(sample.shape, 1.0)
        return slowdown if architecture == "arm64" else 1.0 / slowdown

    def converted(s: Sample) -> Sample:
        cpu = None if s.cpu_ms is None or s.init_ms is not None else s.cpu_ms * factor(s)
        return dataclasses.replace(
            s,
            duration_ms=s.duration_ms * factor(s),
            init_ms=None,
            architecture=architecture,
            cpu_ms=cpu,
        )

    samples = tuple(
        s if s.architecture == architecture else converted(s)
        for s in observations.samples
        if s.architecture == architecture
        or not (s.ok and (s.shape, s.memory_mb, s.init_ms is not None) in here)
    )
    predictors = {
        name: state
        for name, state in observations.predictors.items()
        if not name.startswith(_MIXED_PREDICTORS)
    }
    return dataclasses.replace(observations, samples=samples, predictors=predictors)


def last_architecture(samples: tuple[Sample, ...], shape: str) -> str | None:
    """The architecture most of the shape's runs of its latest stage ran on."""
    own = [s for s in samples if s.shape == shape]
    if not own:
        return None
    latest = max(s.stage for s in own)
    counts = Counter(s.architecture for s in own if s.stage == latest)
    return max(counts, key=lambda arch: (counts[arch], arch == "x86_64"))


# -- what a plan predicts ---------------------------------------------------------------------
@dataclass(frozen=True)
class Prediction:
    """One shape's plan on one architecture: the rest of the job's predicted cost and time."""

    architecture: str
    cost_usd: float
    time_s: float
    fits: bool


def predict(
    context: PolicyContext,
    shape: str,
    decisions: dict[str, MemoryDecision],
    model: Any,
    architecture: str,
    budget_s: float,
    rounds_left: int | None,
) -> Prediction:
    """The shape's predicted cost and time for the rest of the job under ``decisions``: this
    stage's tasks at their decided sizes; for training, the rounds still needed
    (``rounds_left``) at the size most workers got now; for HPO, the shape's share of every
    later rung's tasks at the sizes the deadline split (``deadline_split``) gives them in the
    time left, as if the shape were alone (the fastest sizes when no split fits)."""
    tasks = [t for t in context.stage.tasks if t.shape == shape and t.key in decisions]
    if not tasks:
        return Prediction(architecture, 0.0, 0.0, True)
    sizes = Counter(decisions[t.key].memory_mb for t in tasks)
    kept = max(sizes, key=lambda m: (sizes[m], m))
    epochs = max(t.epoch_to - t.epoch_from for t in tasks)

    def task_cost(memory: int, task_epochs: int, cold: bool = True) -> float:
        duration = model.duration_ms(memory, task_epochs)
        return invocation_usd(memory, duration, model.init_ms if cold else 0.0, architecture)

    def stage_time(memory: int, task_epochs: int) -> float:
        upper = model.upper_ms(memory, task_epochs) + model.init_ms
        return upper / 1000 + context.stage_overhead_s

    cost = sum(task_cost(decisions[t.key].memory_mb, t.epoch_to - t.epoch_from) for t in tasks)
    time_s = max(stage_time(decisions[t.key].memory_mb, t.epoch_to - t.epoch_from) for t in tasks)
    grid = grid_between(max(model.floor_mb, MIN_MEMORY_MB), MAX_MEMORY_MB)
    if rounds_left is not None:  # training: the same workers, round after round
        later = max(0, rounds_left - 1)

        # The later rounds at the size the plan would move to on this architecture — the
        # cheapest whose rounds fit the time left — not at this round's: a guard holding the
        # workers at their warm size for a round (cooldown, low confidence) holds them on the
        # architecture they ran on only, and the comparison would be about that.
        # The workers run them in the environments they started (warm: no init), but a move
        # to another size starts each once more. (Priced with an init every round, a small
        # job's cold starts outweighed its work, and arm64's lower price for them chose arm64
        # for a job that ran twice as long there.)
        def rounds_cost(m: int) -> float:
            moved = len(tasks) * (task_cost(m, epochs) - task_cost(m, epochs, False))
            return later * len(tasks) * task_cost(m, epochs, False) + (moved if m != kept else 0)

        fitting = [m for m in grid if time_s + later * stage_time(m, epochs) <= budget_s]
        size = min(fitting, key=lambda m: (rounds_cost(m), m)) if fitting else kept
        cost += rounds_cost(size)
        time_s += later * stage_time(size, epochs)
        return Prediction(architecture, cost, time_s, time_s <= budget_s)
    # HPO: this stage as planned, then the later rungs split the time left between them as
    # ce-scaling's deadline split would (the shape's share of their tasks, as if alone)
    share = len(tasks) / len(context.stage.tasks)
    later = [
        stage_options(
            {shape: max(1, math.ceil(outline.tasks * share))},
            {shape: grid},
            lambda _, m, e=outline.epochs: stage_time(m, e) - context.stage_overhead_s,
            lambda _, m, e=outline.epochs: task_cost(m, e),
            context.stage_overhead_s,
        )
        for outline in context.outline
    ]
    if not later:
        return Prediction(architecture, cost, time_s, time_s <= budget_s)
    plan = split(later, budget_s - time_s)
    fits = plan is not None
    chosen = plan if plan is not None else fastest(later)
    cost += sum(option.cost_usd for option in chosen)
    time_s += sum(option.time_s for option in chosen)
    return Prediction(architecture, cost, time_s, fits and time_s <= budget_s)


def choose(predictions: list[Prediction], current: str | None) -> Prediction:
    """The cheapest prediction that meets the deadline (the fastest when none does), but the
    current architecture's unless another is ``SWITCH_GAIN`` cheaper."""
    fitting = [p for p in predictions if p.fits]
    if fitting:
        best = min(fitting, key=lambda p: (p.cost_usd, p.architecture != "x86_64"))
        stay = next((p for p in fitting if p.architecture == current), None)
        if stay is not None and best.cost_usd > stay.cost_usd * (1 - SWITCH_GAIN):
            return stay
        return best
    return min(predictions, key=lambda p: (p.time_s, p.cost_usd))


# -- the policy -------------------------------------------------------------------------------
@dataclass(frozen=True)
class AutoArchitecture:
    """``planner`` (ce-scaling, or the oracle) with an architecture per shape, for specs whose
    architecture is "auto"; any other spec goes to ``planner`` unchanged. ``known_arm64_speed``
    (the oracle's knowledge) skips the pilots; a planner with a ``truth`` (the oracle) then
    plans arm64 on that truth slowed down accordingly."""

    planner: Any  # CeScaling or a subclass: allocate, models, rounds_left, safety, name
    known_arm64_speed: float | None = None

    @property
    def name(self) -> str:
        return self.planner.name

    def allocate(self, context: PolicyContext) -> dict[str, MemoryDecision]:
        if context.spec.workload.architecture != "auto":
            return self.planner.allocate(context)
        shapes = sorted({task.shape for task in context.stage.tasks})
        measured = arm64_slowdowns(context.observations.samples)
        slowdowns = slowdowns_for(shapes, measured, self.known_arm64_speed)
        unmeasured = [s for s in shapes if s not in measured]
        if self.known_arm64_speed is not None:
            unmeasured = []
        if slowdowns is None:
            inner, planner = self.on(context, "x86_64", {})
            decisions = {
                key: dataclasses.replace(decision, architecture="x86_64")
                for key, decision in planner.allocate(inner).items()
            }
        else:
            decisions = self.per_shape(context, shapes, slowdowns)
        if context.spec.kind == "training":
            unmeasured = [s for s in unmeasured if self.round_has_room(context, decisions, s)]
        return self.with_pilots(context, decisions, unmeasured)

    def round_has_room(
        self, context: PolicyContext, decisions: dict[str, MemoryDecision], shape: str
    ) -> bool:
        """Training: a round waits for its slowest worker, so a pilot on a slower architecture
        holds the whole round up. It runs only when the deadline has room for that: in the
        first round, only under a loose deadline (ce-scaling's cheap-pilot rule); later, only
        when the rest of the job at its fastest on x86_64 still fits with one more round and a
        cold start (the pilot at half the speed, in a new environment): the plan can then buy
        the time back with larger sizes."""
        if not any(s.shape == shape for s in context.observations.samples):
            return self.planner.loose_for_pilot(context)
        inner, planner = self.on(context, "x86_64", {})
        models = planner.models(inner, [shape])
        if models is None:
            return False
        model = models[shape]
        budget = (context.spec.qos.deadline_s - context.observations.elapsed_s) * (
            self.planner.safety
        )
        rounds = self.planner.rounds_left(context)
        tasks = [t for t in context.stage.tasks if t.shape == shape and t.key in decisions]
        if not tasks:
            return False
        memory = decisions[tasks[0].key].memory_mb
        epochs = tasks[0].epoch_to - tasks[0].epoch_from
        grid = grid_between(max(model.floor_mb, MIN_MEMORY_MB), MAX_MEMORY_MB)
        # the fastest the rest can go: the plan fills the deadline with cheaper sizes, and
        # can buy the pilot's time back with faster ones afterwards
        fastest_s = min(
            rounds * (model.upper_ms(m, epochs) / 1000 + context.stage_overhead_s) for m in grid
        )
        extra_s = (model.upper_ms(memory, epochs) + model.init_ms) / 1000
        return fastest_s + extra_s <= budget

    def on(self, context: PolicyContext, architecture: str, slowdowns: dict[str, float]):
        """The planner's context and planner for planning on ``architecture``."""
        workload = context.spec.workload.model_copy(update={"architecture": architecture})
        spec = context.spec.model_copy(update={"workload": workload})
        observations = as_if_on(context.observations, architecture, slowdowns)
        planner = self.planner
        truth = getattr(planner, "truth", None)
        if architecture == "arm64" and truth is not None and self.known_arm64_speed is not None:
            planner = dataclasses.replace(planner, truth=_slowed(truth, self.known_arm64_speed))
        return dataclasses.replace(context, spec=spec, observations=observations), planner

    @staticmethod
    def with_pilots(
        context: PolicyContext, decisions: dict[str, MemoryDecision], unmeasured: list[str]
    ) -> dict[str, MemoryDecision]:
        """One task of each shape not yet measured on both architectures runs on the other
        architecture than the shape's first decided task, at the same memory: a task that
        would have waited (for the memory pilot), else the last decided one that is not a
        probe (and not that first task)."""
        decisions = dict(decisions)
        for shape in unmeasured:
            tasks = [t for t in context.stage.tasks if t.shape == shape]
            decided = [t for t in tasks if t.key in decisions]
            if not decided:
                continue
            waiting = [t for t in tasks if t.key not in decisions]
            plain = [t for t in decided[1:] if decisions[t.key].rule not in PROBE_RULES]
            if waiting:
                chosen = waiting[0]
            elif plain:
                chosen = plain[-1]
            else:
                continue  # a single task (or its probe): no pilot beside it this stage
            first = decisions[decided[0].key]
            other = "x86_64" if first.architecture == "arm64" else "arm64"
            decisions[chosen.key] = MemoryDecision(
                first.memory_mb,
                "architecture-pilot",
                f"{shape}: not measured on both architectures yet: this task runs on {other} "
                f"at {first.memory_mb} MB, beside the {first.architecture or 'x86_64'} runs at "
                "the same size, to measure its speed there",
                architecture=other,
            )
        return decisions

    def per_shape(
        self, context: PolicyContext, shapes: list[str], slowdowns: dict[str, float]
    ) -> dict[str, MemoryDecision]:
        """Plan on each architecture; each shape takes the plan of the one ``choose`` picks."""
        plans, models = {}, {}
        for arch in ARCHITECTURES:
            inner, planner = self.on(context, arch, slowdowns)
            plans[arch] = planner.allocate(inner)
            models[arch] = planner.models(inner, shapes)
        obs = context.observations
        budget = (context.spec.qos.deadline_s - obs.elapsed_s) * self.planner.safety
        training = context.spec.kind == "training"
        rounds_left = self.planner.rounds_left(context) if training else None
        decisions: dict[str, MemoryDecision] = {}
        for shape in shapes:
            predictions = [
                predict(context, shape, plans[arch], models[arch][shape], arch, budget, rounds_left)
                for arch in ARCHITECTURES
                if models[arch] is not None
            ]
            if len(predictions) < len(ARCHITECTURES):  # nothing to compare (not expected)
                predictions = [p for p in predictions if p.architecture == "x86_64"] or predictions
            current = last_architecture(obs.samples, shape)
            best = choose(predictions, current)
            other = next((p for p in predictions if p.architecture != best.architecture), best)
            speed = 1.0 / slowdowns[shape]
            source = "known" if self.known_arm64_speed is not None else "measured"
            why = (
                f"; on {best.architecture}: rest of the job predicted ${best.cost_usd:.6f} in "
                f"{best.time_s:.1f} s vs ${other.cost_usd:.6f} in {other.time_s:.1f} s on "
                f"{other.architecture}{'' if other.fits else ' (misses the deadline)'} "
                f"(arm64 at {speed:.2f}x x86_64's speed, {source})"
            )
            for task in context.stage.tasks:
                if task.shape != shape or task.key not in plans[best.architecture]:
                    continue
                decision = plans[best.architecture][task.key]
                decisions[task.key] = dataclasses.replace(
                    decision, reason=decision.reason + why, architecture=best.architecture
                )
        return decisions


def _slowed(truth: Callable, speed: float) -> Callable:
    """The oracle's truth on arm64: every duration 1/speed times x86_64's (init the same)."""

    def slowed(params, epochs, memory_mb):
        duration, init, peak = truth(params, epochs, memory_mb)
        return duration / speed, init, peak

    return slowed


def with_architecture(policy: Policy, known_arm64_speed: float | None = None) -> Policy:
    """``policy`` able to run specs whose architecture is "auto"."""
    return AutoArchitecture(policy, known_arm64_speed)
