"""``ce-scaling``: memory from exact usage, and as much CPU as the deadline needs — no more.

HPO (mechanism 1 of CE-scaling). Every stage, and every trial shape inside it, gets its own
memory. A shape never runs below its observed peak plus a margin; above that, memory buys CPU
(docs/platform.md), and the remaining deadline is split across the remaining stages by
``DeadlineSplit`` so that the total predicted cost is lowest. The plan is made again when each
stage opens, with the curves refitted on everything seen so far; durations are planned at the
upper end of their prediction interval, so the deadline holds when the predictions are a little
off. Before anything is known, the first stage *explores*: a pilot per shape runs first (at
one vCPU, or at a small size under a loose deadline) and the shape's other tasks wait for its
measurements. When the deadline pushes a shape to the largest size it has run at, one task
probes twice that size: a curve measured at one vCPU cannot tell multi-threaded work (faster
above it) from single-threaded (no faster, only dearer).

Training (mechanism 2). Between rounds, the memory for the next rounds is the one with the
lowest predicted remaining cost whose predicted remaining time — the upper bound of the rounds
still needed (loss-curve fit) times the upper bound of a round's time — meets the remaining
deadline. Before the loss curve can be fitted (three losses) the rounds are unknown, and the
plan is *recoverable* instead: the cheapest size, at the rounds expected, from which every
worker could still move to the fastest size run and meet the deadline were every round the
budget allows needed (every round the fastest size could still run, at the predicted times,
when the upper bounds leave no room for them all). A change costs cold starts, so it is made
only when the predicted saving beats that cost (the minimum-gain guard) and not twice in a row
(cooldown). When no size meets the deadline, the cheapest of the (near-)fastest sizes run so
far, and every worker moves above the largest size measured when that could still save the
deadline; when the workers have run at one size only and the deadline leaves room, one worker
probes a smaller size (a one-point curve cannot tell CPU-bound work from I/O-bound). A new size
costs a cold start *and* the first run's own work there (loading the data:
``ShapeModel.init_at``), and a warm environment at least as large as the decided size is as
good as one of that size.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import cache
from statistics import fmean

from service.domain.lambda_limits import MAX_MEMORY_MB, MB_PER_VCPU, MIN_MEMORY_MB
from service.policies import guards
from service.policies.base import MemoryDecision, Observations, PolicyContext
from service.policies.costing import cold_start_usd, grid_between, invocation_usd
from service.policies.deadline_split import StageOption, fastest, split, stage_options
from service.policies.shape_model import DurationModel, fit_all, floor_mb, provenance
from service.prediction.loss_curve import MIN_POINTS, LossCurve
from service.spec import CeScalingPolicy

# The pilot runs at one vCPU (docs/platform.md): the fastest a single-threaded task can go, so the
# rest of the stage waits as little as possible and a tight deadline is not spent exploring,
# while CPU-bound work costs about the same per task as at any smaller size. The sizes the rest
# of the stage then runs at give the curve its further points.
PROBE_MB = (MB_PER_VCPU,)
# An HPO shape's pilot under a deadline that is not loose: two tasks at once, at one vCPU and at
# twice that. The stage waits for the pilot, and a plan made from one size cannot tell
# multi-threaded work (twice as fast at twice the size) from single-threaded (no faster): a
# later stage that needs more speed would then have to probe above on its own critical path,
# or, with one task left, could not probe at all. A footprint above one vCPU's memory fits the
# upper pilot, whose peak then sets the retry of the lower one.
PILOT_MB = (MB_PER_VCPU, 3584)
PILOT_SHARE = 2  # a shape with at least 2 tasks per probe size sends a pilot first
# The pilot holds the rest of its stage for at most this share of the deadline: a pilot still
# running then is slow (a long cold start, slow epochs), and the tasks it holds would start one
# pilot's time late, each with a cold start of its own. Exploration may delay a job by a tenth
# of its deadline, no more.
PILOT_WAIT_SHARE = 0.1
SAFETY = 0.9  # plan to finish with 10 % of the remaining deadline to spare
# A deadline that leaves at least this much per epoch still to run (one after another) is
# loose: the pilot then runs at a small size instead, where a cold start costs a seventh as
# much. Even an epoch that takes this long at one vCPU runs a pilot epoch at 256 MB within
# ~7× that, a few epochs' worth of such a deadline. (A prior, not a measurement: the pilot is
# what measures.)
CHEAP_PILOT_MB = 256
CHEAP_PILOT_S_PER_EPOCH = 10.0
# A plan pushed to the largest size measured so far — the curve above it is extrapolated, and
# a one-point curve cannot tell multi-threaded work from single-threaded — sends one task (HPO)
# or the next round (training) to twice that size, to learn whether more memory is faster.
PROBE_ABOVE_FACTOR = 2
PROBE_SPEEDUP = 0.9  # probe further up only if the last doubling cut the time by ≥ 10 %
ONE_VCPU_MB = MB_PER_VCPU
# Exploration a job pays for up front (the first round's probe above) may cost at most this share
# of the job's expected cost: a short job, a few rounds of few workers, does not explore.
EXPLORE_SHARE = 0.05
TIMEOUT_SHARE = 0.9  # plan invocations to end within 90 % of the function's timeout
ROUND_MARGIN = 1  # training: rounds planned beyond the loss curve's upper estimate
FASTEST_TOLERANCE = 1.03  # within 3 % (about the run-to-run noise) of the fastest is fastest
# HPO plans made at the predicted times (no plan fits at the upper bounds) keep this many
# standard deviations of the run-to-run noise of the job's remaining time (one-sided 95 %);
# the noise is measured among runs alike, and assumed at least NOISE_SIGMA (Lambda's typical
# spread) before they are.
NOISE_Z = 1.645
NOISE_SIGMA = 0.05


@dataclass(frozen=True)
class CeScaling:
    min_memory_mb: int = MIN_MEMORY_MB
    max_memory_mb: int = MAX_MEMORY_MB
    name: str = "ce-scaling"
    safety: float = SAFETY

    @classmethod
    def of(cls, policy: CeScalingPolicy) -> CeScaling:
        return cls(policy.min_memory_mb, policy.max_memory_mb)

    def allocate(self, context: PolicyContext) -> dict[str, MemoryDecision]:
        shapes = sorted({task.shape for task in context.stage.tasks})
        models = self.models(context, shapes)
        if models is None:
            return self.explore(context)
        if context.spec.kind == "training":
            return self.resize_training(context, models["worker"])
        return self.split_hpo(context, models)

    def models(self, context: PolicyContext, shapes: list[str]) -> dict[str, DurationModel] | None:
        """What the policy knows of each shape: curves fitted on what has been observed
        (training: with the work a worker's first run does in a new environment measured too,
        and charged to every new size, ``fit_shape``)."""
        return fit_all(context.observations, shapes, first_runs=context.spec.kind == "training")

    # -- before anything is known -------------------------------------------------------------
    def explore(self, context: PolicyContext) -> dict[str, MemoryDecision]:
        """Nothing measured yet. A shape with many tasks sends a *pilot* — one task per probe
        size — and its other tasks wait for the pilot's measurements (then the stage is planned
        like any other); a shape with few tasks spreads them over the probe sizes. Under a loose
        deadline the probe size is small (``CHEAP_PILOT_MB``)."""
        cheap = self.loose_for_pilot(context)
        training = context.spec.kind == "training"
        sizes = PROBE_MB if training else (CHEAP_PILOT_MB,) if cheap else PILOT_MB
        probes = sorted({min(max(p, self.min_memory_mb), self.max_memory_mb) for p in sizes})
        counts = Counter(task.shape for task in context.stage.tasks)
        # asked for every task while nothing is measured: these waited for a pilot that is
        # late (``release_waiting_at``)
        released = context.must_decide_all and not training
        decisions, seen = {}, Counter()
        for task in context.stage.tasks:
            index = seen[task.shape]
            seen[task.shape] += 1
            pilot = (
                not context.must_decide_all
                and not training
                and counts[task.shape] >= PILOT_SHARE * len(probes)
            )
            if pilot and index >= len(probes):
                continue  # waits for the pilot
            floor = floor_mb(context.observations, task.shape, self.min_memory_mb)
            if released:
                decisions[task.key] = MemoryDecision(
                    max(probes[0], floor),
                    "explore",
                    f"released: {task.shape}'s pilot has not reported within this stage's "
                    "share of the deadline, so the tasks that waited for it run at the pilot's "
                    "size",
                )
                continue
            memory = max(probes[index % len(probes)], floor)
            what = "pilot" if pilot else "spread"
            decisions[task.key] = MemoryDecision(
                memory,
                "explore",
                f"nothing measured yet: {task.shape} {what} over {probes} MB to fit its "
                "memory curve",
            )
        if training and not cheap and len(decisions) > 1:
            rounds = 1 + len(context.outline)
            # the probe costs one extra worker-round (at twice the size): against the job's
            if EXPLORE_SHARE * len(decisions) * rounds >= PROBE_ABOVE_FACTOR - 1:
                self.probe_above_in_first_round(context, decisions)
        return decisions

    def probe_above_in_first_round(self, context: PolicyContext, decisions) -> None:
        """Training under a deadline that is not loose: the first round runs every worker at
        once, and the round waits for its slowest worker, so one worker at twice the probe size
        costs no time. It tells multi-threaded work (faster above one vCPU) from single-threaded
        before the plan needs to know: a probe in a later round starts cold on the round's
        critical path, and a tight deadline has no time for a cold start spent exploring."""
        last = context.stage.tasks[-1].key
        base = decisions[last].memory_mb
        larger = [
            m for m in grid_between(base, self.max_memory_mb) if m >= PROBE_ABOVE_FACTOR * base
        ]
        probe = larger[0] if larger else self.max_memory_mb
        if probe <= base:
            return
        decisions[last] = MemoryDecision(
            probe,
            "probe-above",
            f"first round: one worker runs at {probe} MB beside the others at {base} MB (the "
            "round waits for the slowest anyway) to learn whether more memory is faster",
        )

    @staticmethod
    def release_waiting_at(context: PolicyContext) -> float | None:
        """When the tasks that wait for an HPO pilot stop waiting (seconds since the job
        started): after ``PILOT_WAIT_SHARE`` of the deadline. A pilot that has not reported
        by then is slow, and waiting for it puts two cold starts back to back on the
        critical path (a 4.2 s cold start missed a tight deadline by 0.5 s that way). The
        tasks run at the pilot's size, one vCPU, the fastest a single-threaded task can go;
        the pilot still measures for the later stages. Only while no run of the job has
        succeeded: once one shape's pilot has reported, the shapes still out are slow by
        their work (a large footprint, say), and their tasks need their pilot's peak — at the
        pilot's size they ran out of memory. None for training, whose first round waits for
        nothing."""
        if context.spec.kind == "training" or any(x.ok for x in context.observations.samples):
            return None
        return PILOT_WAIT_SHARE * context.spec.qos.deadline_s

    @staticmethod
    def loose_for_pilot(context: PolicyContext) -> bool:
        """Does the deadline leave ``CHEAP_PILOT_S_PER_EPOCH`` for every epoch still to run
        one after another (this stage's, then each later stage's)?"""
        epochs = max(t.epoch_to - t.epoch_from for t in context.stage.tasks)
        epochs += sum(outline.epochs for outline in context.outline)
        left = context.spec.qos.deadline_s - context.observations.elapsed_s
        return left >= CHEAP_PILOT_S_PER_EPOCH * max(1, epochs)

    def probe_above(self, model: DurationModel, planned_mb: int) -> int | None:
        """A larger size to try, when the plan wants the largest size measured so far and the
        curve above it is a guess: always at one vCPU or below (a curve measured there cannot
        tell multi-threaded work from single-threaded), and above that only while the measured
        top still speeds up (``PROBE_SPEEDUP``). None otherwise, and for models that know
        every size (the oracle's)."""
        measured = getattr(model, "measured_max_mb", None)
        if measured is None or planned_mb < measured or measured >= self.max_memory_mb:
            return None
        if measured > ONE_VCPU_MB:
            below = max(ONE_VCPU_MB, measured // PROBE_ABOVE_FACTOR)
            if model.duration_ms(measured, 1) > PROBE_SPEEDUP * model.duration_ms(below, 1):
                return None  # the last doubling bought (almost) nothing: no more above
        target = PROBE_ABOVE_FACTOR * measured
        larger = [m for m in grid_between(measured, self.max_memory_mb) if m >= target]
        probe = larger[0] if larger else self.max_memory_mb
        # A plan already above the measured top goes there with every task: that is the probe.
        return probe if probe > planned_mb else None

    @staticmethod
    def above_can_rescue(
        model: DurationModel,
        epochs: int,
        rounds: int,
        remaining_s: float,
        cold_s: float,
        overhead_s: float,
    ) -> bool:
        """Would the remaining ``rounds`` fit at twice the largest size measured (every worker
        cold there once, ``cold_s``) if that cut the time as much as the last doubling did — the
        optimistic reading (a doubling buys less than the one before)? Below one vCPU nothing
        tells the slope above it: a halving is assumed (the multi-threaded best case)."""
        measured = getattr(model, "measured_max_mb", None)
        if measured is None:
            return True
        top = model.duration_ms(measured, epochs)
        below = max(ONE_VCPU_MB, measured // PROBE_ABOVE_FACTOR)
        ratio = model.duration_ms(below, epochs) / top if measured > ONE_VCPU_MB else 2.0
        best_s = top / max(ratio, 1.0) / 1000 + overhead_s
        return rounds * best_s + cold_s <= remaining_s

    @staticmethod
    def probe_below(model: DurationModel, grid: list[int], fits) -> int | None:
        """A smaller size for one training worker to try, when the workers have run at one
        size only: a one-point curve is read as CPU-bound work (slower below, at the same
        cost), so keeping the warm size always looks cheaper than a change, yet I/O-bound work
        runs as fast below and costs a fraction. (An HPO stage needs no such probe: every
        stage starts cold, so its plan already takes the smallest size that fits.) The smallest
        size of ``grid`` at which a task still ``fits`` its time as the curve predicts it (the
        CPU-bound reading, the slow one): the probe costs nothing the plan did not expect,
        and the next plan knows the shape's slope. None for models that know every size.
        Sizes measured at or above one vCPU only (the first round's worker that probed above)
        tell no more below one vCPU than one size does."""
        sizes = getattr(model, "measured_sizes", None)
        curve = getattr(model, "curve", None)
        if sizes is None or curve is None:
            return None
        lowest = int(curve.observed_min_mb)
        if sizes != 1 and lowest < ONE_VCPU_MB:
            return None
        lower = [m for m in grid if m < lowest and fits(m)]
        return min(lower) if lower else None

    @staticmethod
    def within_timeout(model: DurationModel, grid: list[int], epochs: int, spec) -> list[int]:
        """Sizes at which an invocation of ``epochs`` is predicted (upper end) to finish
        within the function's timeout, with ``TIMEOUT_SHARE`` to spare; at least the largest
        size, when none is."""
        limit_ms = spec.workload.timeout_s * 1000 * TIMEOUT_SHARE
        fitting = [m for m in grid if model.upper_ms(m, epochs) + model.init_ms <= limit_ms]
        return fitting or grid[-1:]

    # -- HPO: split the deadline across the stages --------------------------------------------
    def split_hpo(self, context: PolicyContext, models: dict[str, DurationModel]):
        spec, obs = context.spec, context.observations
        arch = spec.workload.architecture
        counts = Counter(task.shape for task in context.stage.tasks)
        epochs_now = max(t.epoch_to - t.epoch_from for t in context.stage.tasks)
        mix = {shape: n / sum(counts.values()) for shape, n in counts.items()}
        grids = {
            s: grid_between(max(models[s].floor_mb, self.min_memory_mb), self.max_memory_mb)
            for s in counts
        }
        # Environments started so far, by size (every shape runs the job's one function): this
        # stage's tasks at a size the stages before ran at find them idle and warm, and start
        # without a cold start. Later stages are priced cold (the plan is made again when each
        # opens). Without this, noise in the curves moved each rung to another near-fastest
        # size, and every move paid a cold start on the critical path.
        warm = Counter(x.memory_mb for x in obs.samples if x.ok and x.init_ms)
        noise = {s: run_noise(obs, s) for s in counts}

        def options(
            stage_counts: dict[str, int], epochs: int, upper=True, now=False
        ) -> list[StageOption]:
            def cold_share(s: str, m: int) -> float:
                n = stage_counts[s]
                return max(0, n - warm[m]) / n if now else 1.0

            def time_s(s: str, m: int) -> float:
                model = models[s]
                ms = model.upper_ms(m, epochs) if upper else model.duration_ms(m, epochs)
                return (ms + (model.init_ms if cold_share(s, m) > 0 else 0.0)) / 1000

            return stage_options(
                stage_counts,
                {s: self.within_timeout(models[s], grids[s], epochs, spec) for s in stage_counts},
                time_s,
                # priced at the upper end of the interval: the size that is cheap even if
                # the curve is off there, not the one cheapest only if it is right
                lambda s, m: invocation_usd(
                    m, models[s].upper_ms(m, epochs), models[s].init_ms * cold_share(s, m), arch
                ),
                context.stage_overhead_s,
            )

        def plan_stages(upper: bool) -> list[list[StageOption]]:
            stages = [options(dict(counts), epochs_now, upper, now=True)]
            for outline in context.outline:
                future = {s: max(1, math.ceil(outline.tasks * share)) for s, share in mix.items()}
                stages.append(options(future, outline.epochs, upper))
            return stages

        stages = plan_stages(upper=True)
        left = spec.qos.deadline_s - obs.elapsed_s
        budget = left * self.safety
        plan = split(stages, budget)
        # The upper bounds of curves fitted on a few sizes are wide: a plan that fits at the
        # predicted times is still the best guess, and far cheaper than the fastest sizes of
        # every stage (re-planned at the next stage, with more points). But the predicted
        # times leave only the spare of SAFETY for the run-to-run noise, and a rung of one long
        # trial is one draw of it: when the measured noise needs more (``noise_margin``), the
        # plan keeps that much instead, else fastest sizes.
        expected, margin = None, 0.0
        if plan is None:
            likely = plan_stages(upper=False)
            expected = split(likely, budget)
            if expected is not None:
                margin = max(left - budget, noise_margin(expected, max(noise.values())))
                if left - margin < budget:
                    expected = split(likely, left - margin)
        out_of_time = plan is None and expected is None
        if plan is not None:
            chosen = plan[0]
            predicted = sum(o.cost_usd for o in plan)
            why = (
                f"deadline split: this stage {chosen.time_s:.1f} s of the {budget:.1f} s left "
                f"for {len(stages)} stage(s); predicted job cost ${predicted:.6f}"
            )
        elif expected is not None:
            chosen = expected[0]
            why = (
                f"no plan meets the deadline at the upper end of the predictions; at the "
                f"predicted times this stage {chosen.time_s:.1f} s of the {left - margin:.1f} s "
                f"left once {margin:.1f} s is kept for the run-to-run noise"
            )
        else:
            # options that tie on time within the run-to-run noise (a single-threaded curve
            # is flat above one vCPU, and a pilot pair's noise can tilt it): the cheapest
            chosen = fastest(stages, FASTEST_TOLERANCE)[0]
            why = "no plan meets the deadline: fastest sizes"
        decisions_by_shape = {}
        for shape in counts:
            proposed = chosen.memory[shape]
            current = obs.current_mb.get(shape)
            per_task = lambda m, s=shape: invocation_usd(  # noqa: E731
                m, models[s].duration_ms(m, epochs_now), models[s].init_ms, arch
            )
            gain = (
                counts[shape] * (per_task(current) - per_task(proposed))
                if current is not None
                else None
            )
            decisions_by_shape[shape] = guards.decide(
                guards.Proposal(
                    shape=shape,
                    current_mb=current,
                    proposed_mb=proposed,
                    rule="deadline-split",
                    reason=f"{shape}: {why}{provenance(models[shape])}",
                    predicted_gain_usd=gain,
                    relative_error=models[shape].relative_error(proposed),
                    # the plan weighs what keeping the size saves (warm environments) itself
                    current_is_safe=False,
                    floor_mb=models[shape].floor_mb,
                    min_mb=self.min_memory_mb,
                    max_mb=self.max_memory_mb,
                )
            )
        if out_of_time:
            self.all_above(
                models,
                decisions_by_shape,
                epochs_now,
                warm={s: warm[d.memory_mb] >= counts[s] for s, d in decisions_by_shape.items()},
            )
        decisions = {task.key: decisions_by_shape[task.shape] for task in context.stage.tasks}

        @cache
        def cold_plan() -> list[StageOption] | None:
            """The plan made as if every task of this stage started cold (once, for all shapes)."""
            return split([options(dict(counts), epochs_now), *stages[1:]], budget)

        def cold_choice(shape: str) -> int:
            """This stage's size of ``shape`` in ``cold_plan``."""
            cold = cold_plan()
            return cold[0].memory[shape] if cold is not None else self.max_memory_mb

        for shape, n in counts.items():
            planned = decisions_by_shape[shape].memory_mb
            probe = self.probe_above(models[shape], planned)
            if n < 2 or probe is None:
                continue
            if plan is not None and warm[planned] and cold_choice(shape) < planned:
                # The plan fits at the upper bounds and takes that size because environments
                # are warm there, not for its speed (priced cold, it takes a smaller one): a
                # probe would only start cold above it.
                continue
            last = [t for t in context.stage.tasks if t.shape == shape][-1]
            decisions[last.key] = MemoryDecision(
                probe,
                "probe-above",
                f"{shape}: the plan wants the largest size measured so far "
                f"({planned} MB); one task runs at {probe} MB to learn whether more memory is "
                "faster",
            )
        return decisions

    def all_above(
        self,
        models: dict[str, DurationModel],
        decisions: dict[str, MemoryDecision],
        epochs: int = 1,
        warm: dict[str, bool] | None = None,
    ) -> None:
        """No plan meets the deadline even at the fastest sizes the curves know. A shape whose
        curve stops at the largest size it has run at (above it is a guess: flat, the slow
        reading) runs every task of this stage at the size a probe would try: more memory is
        never slower on Lambda, and the deadline is at stake. Changes ``decisions``.

        Except where the shape's tasks would start warm at the decided size (``warm``) and the
        move could not win back its cold start: the next doubling cuts at most half what the
        last one did (only the parallel part still shrinks, and by half), so when that is less
        than a cold start the tasks stay warm. (A single task moved to a new size started cold
        on the last, longest rung and missed the deadline by less than its cold start.)"""
        for shape, decision in list(decisions.items()):
            model = models[shape]
            probe = self.probe_above(model, decision.memory_mb)
            if probe is None:
                continue
            if warm is not None and warm.get(shape):
                measured = getattr(model, "measured_max_mb", None) or decision.memory_mb
                below = max(ONE_VCPU_MB, measured // PROBE_ABOVE_FACTOR)
                # below one vCPU a doubling may halve the time: the best case is unbounded
                best_ms = (
                    (model.duration_ms(below, epochs) - model.duration_ms(measured, epochs)) / 2
                    if measured > ONE_VCPU_MB
                    else model.duration_ms(measured, epochs) / 2
                )
                if best_ms <= model.init_ms:
                    continue
            decisions[shape] = MemoryDecision(
                probe,
                "probe-above",
                f"{shape}: no plan meets the deadline at the sizes measured so far (up to "
                f"{decision.memory_mb} MB): every task runs at {probe} MB, which is never "
                "slower, and measures whether it is faster",
            )

    # -- training: resize between rounds ------------------------------------------------------
    def resize_training(self, context: PolicyContext, model: DurationModel):
        spec, obs = context.spec, context.observations
        training = spec.training
        assert training is not None
        arch = spec.workload.architecture
        workers = training.workers
        rounds_left = self.rounds_left(context)
        epochs = training.epochs_per_round
        remaining_s = (spec.qos.deadline_s - obs.elapsed_s) * self.safety
        # Tasks that waited for a pilot start in new environments whatever their size: there
        # is nothing warm to keep, so no hysteresis for them.
        current = None if context.must_decide_all else obs.current_mb.get("worker")
        floor = max(model.floor_mb, self.min_memory_mb)

        def round_time(m: int) -> float:
            return model.upper_ms(m, epochs) / 1000 + context.stage_overhead_s

        def expected_round_time(m: int) -> float:
            return model.duration_ms(m, epochs) / 1000 + context.stage_overhead_s

        def rounds_cost(m: int, cold: bool, rounds: int) -> float:
            """Every worker runs ``rounds`` rounds at ``m``, the first in a new environment
            when ``cold``."""
            if rounds <= 0:
                return 0.0
            per = invocation_usd(m, model.duration_ms(m, epochs), 0.0, arch)
            first = invocation_usd(
                m, model.duration_ms(m, epochs), model.init_at(m) if cold else 0, arch
            )
            return workers * (first + per * (rounds - 1))

        # Warm environments per size: a size with fewer than one per worker starts some of them
        # cold, and the round waits for them (the current size too, after a probe took one).
        warm = self.environments(context) if current is not None else Counter()

        def starts_cold(m: int) -> bool:
            # a new size starts cold once, in its first round; the current one does unless
            # every worker finds a warm environment at least as large (``keep_warm`` gives a
            # worker a larger warm environment when a cold start would not fit: never slower)
            at_least = sum(n for size, n in warm.items() if size >= m)
            return m != current or at_least < len(context.stage.tasks)

        grid = self.within_timeout(model, grid_between(floor, self.max_memory_mb), epochs, spec)
        # While the rounds are unknown (fewer than three losses: no loss curve yet), the plan is
        # *recoverable* instead of sized for every round the budget allows: ``before_fit``
        # rounds at a size, then — should the fit say every round is needed — every worker
        # moves to ``fast`` (the fastest size run, cold there: init and first-run work) and the
        # job still meets the deadline (at the upper bounds; when those cannot fit every round
        # even at ``fast``, every round ``fast`` could still run, at the predicted times). Sizes
        # are compared at the rounds expected (``expected_rounds``), not the most the budget
        # allows. Otherwise (the curve is fitted, or no size recovers) the plan is made for
        # ``rounds_left``, as below.
        before_fit = self.rounds_before_fit(context)
        measured_top = getattr(model, "measured_max_mb", None)
        known = [m for m in grid if not measured_top or m <= measured_top] or grid
        quickest_round = min(round_time(m) for m in known)
        fast = min(m for m in known if round_time(m) <= quickest_round * FASTEST_TOLERANCE)
        # what the plan protects: ``cap`` rounds, at round times ``per`` (upper or predicted)
        recovering, cap, per = False, rounds_left, round_time
        planned_rounds = rounds_left

        def after_s(m: int, per_round=None) -> float:
            """The rest of the job once the next ``planned_rounds`` have run at ``m``: in a
            recoverable plan, the rest of ``cap`` rounds at ``m`` or after a move to ``fast``,
            whichever is quicker; else nothing."""
            if not recovering:
                return 0.0
            per_round = per_round or per
            rest = cap - before_fit
            move = model.init_at(fast) / 1000 if m != fast else 0.0
            return min(rest * per_round(m), move + rest * per_round(fast))

        def remaining_time(m: int, per_round=None) -> float:
            per_round = per_round or per
            cold = model.init_at(m) / 1000 if starts_cold(m) else 0.0
            return planned_rounds * per_round(m) + cold + after_s(m, per_round)

        if 0 < before_fit < rounds_left:
            recovering, planned_rounds = True, before_fit
            for per in (round_time, expected_round_time):
                # The rounds a move to ``fast`` now could still run: a job that needs more
                # misses its deadline whatever the plan, so the plan protects these. At the
                # upper bounds only when that is every round (else the predicted times, like
                # the plan below once the upper bounds are out of reach).
                cold_fast = model.init_at(fast) / 1000 if starts_cold(fast) else 0.0
                cap = min(rounds_left, int((remaining_s - cold_fast) // per(fast)))
                if per is round_time and cap < rounds_left:
                    continue
                if cap > before_fit and any(remaining_time(m) <= remaining_s for m in grid):
                    break
            else:
                recovering, cap, per, planned_rounds = False, rounds_left, round_time, rounds_left
        expected = min(self.expected_rounds(context, rounds_left), cap) if recovering else cap

        @cache
        def remaining_cost(m: int, cold: bool) -> float:
            if not recovering:
                return rounds_cost(m, cold, rounds_left)
            # The expected rounds: the ones before the fit at m, the rest at the size the plan
            # would then take for them (m itself, or the cheapest that still meets the deadline
            # after a move, its cold start included; ``fast`` at worst). Judged at the upper
            # bounds even in a plan protected at the predicted times: that is how the plan
            # after the fit judges them, so a size that only the predicted times keep is
            # priced with the move it will need (a second job planned from a prior took 1,664
            # MB for a saving of $0.000002 and then moved twice, 1.6x the oracle's cost).
            first_n = min(before_fit, expected)
            rest_n = expected - first_n
            spent = first_n * round_time(m) + (model.init_at(m) / 1000 if cold else 0.0)
            then = [
                rounds_cost(g, g != m, rest_n)
                for g in grid
                if spent + (model.init_at(g) / 1000 if g != m else 0.0) + rest_n * round_time(g)
                <= remaining_s
            ]
            later = min(then) if then else rounds_cost(fast, fast != m, rest_n)
            return rounds_cost(m, cold, first_n) + later

        feasible = [m for m in grid if remaining_time(m) <= remaining_s]
        if recovering and per is expected_round_time:
            # Protected at the predicted times only: no time to spend on slower rounds (the
            # rounds are not known yet, and each second lost is bought back later at a larger
            # size: a ResNet job that moved to 1,280 MB here, its I/O share read from its CPU
            # time, ran its last rounds at 3,008 MB and cost 7 % more)
            quick = expected_round_time(fast) * FASTEST_TOLERANCE
            feasible = [m for m in feasible if expected_round_time(m) <= quick]
        # (never below a warm current size: the upper bound already says the deadline is at
        # risk, and a smaller size is slower and starts cold)
        # (nor above twice the largest size measured: the curve there is a guess, not a
        # prediction — the fastest-size branch below probes up instead)
        guessed_above = PROBE_ABOVE_FACTOR * measured_top if measured_top else self.max_memory_mb
        likely = (
            []
            if feasible
            else [
                m
                for m in grid
                if remaining_time(m, expected_round_time) <= remaining_s
                and (current is None or m >= current)
                and m <= guessed_above
            ]
        )
        if feasible:
            proposed = min(feasible, key=lambda m: (remaining_cost(m, m != current), m))
            why = (
                f"cheapest size whose {rounds_left} remaining round(s) fit the "
                f"{remaining_s:.1f} s left"
            )
            if recovering:
                why = (
                    f"rounds unknown until {MIN_POINTS} losses are in: cheapest size at "
                    f"{expected} expected round(s) for the next {before_fit}, after which every "
                    f"worker can still move to {fast} MB and run {cap} round(s) within the "
                    f"{remaining_s:.1f} s left"
                    + (" at the predicted times" if per is expected_round_time else "")
                )
        elif likely:
            # The upper bounds of a curve fitted on a round or two are wide, and the round
            # count is its upper end too: the cheapest size that meets the deadline at the
            # predicted times is still the best guess, far cheaper than the fastest size (the
            # plan is made again after every round, with the bounds narrowing).
            proposed = min(likely, key=lambda m: (remaining_cost(m, m != current), m))
            why = (
                f"no size meets the deadline at the upper end of the predictions with "
                f"{rounds_left} round(s) left: the cheapest that meets it at the predicted times"
            )
        else:
            # Sizes that tie on time (a single-threaded curve is flat above one vCPU) differ
            # in cost: the cheapest of the (near-)fastest.
            # among the sizes run so far and below: above them the curve is a guess, and the
            # probe above (next) is what goes there, when the last doubling paid
            known = [m for m in grid if not measured_top or m <= measured_top] or grid
            quickest = min(remaining_time(m) for m in known)
            near = [m for m in known if remaining_time(m) <= quickest * FASTEST_TOLERANCE]
            proposed = min(near, key=lambda m: (remaining_cost(m, m != current), m))
            why = f"no size meets the deadline with {rounds_left} round(s) left: fastest size"
            # Above the largest size measured the curve is a guess (flat: the slow reading).
            # The deadline is at stake, and more memory is never slower on Lambda: every
            # worker moves up to where a probe would go, and the next rounds know the curve
            # there. (One worker alone would learn it as well, but the rounds until the plan
            # can act on it are rounds the deadline does not have.)
            above = self.probe_above(model, proposed)
            if above is not None and not self.above_can_rescue(
                model,
                epochs,
                rounds_left,
                remaining_s,
                model.init_at(above) / 1000,
                context.stage_overhead_s,
            ):
                # Even if the next doubling cut the time as much as the last one did, the
                # deadline would not hold: doubling every worker's size for the rest of the
                # job buys a miss at twice the price (the fastest size measured is as good).
                above = None
            if above is not None:
                why = (
                    f"no size measured so far (up to {proposed} MB) meets the deadline with "
                    f"{rounds_left} round(s) left: every worker moves to {above} MB, never "
                    "slower, to learn whether more memory is faster"
                )
                proposed = above
        if (
            (not feasible or per is expected_round_time)
            and current is not None
            and current in grid
            and proposed != current
            and not self.warm_measured(context)
            and (measured_top or 0) > current
            and remaining_time(current, expected_round_time) * PROBE_SPEEDUP
            <= remaining_time(proposed, expected_round_time)
        ):
            # Only first runs measured so far, at this size and above: their times hold the
            # first run's own work (loading the data, …), which a new size does again and a
            # warm environment does not. A size less than 10 % faster on first runs is no
            # faster than the warm current size in the next round: keep it, and the round
            # measures the warm time and the first-run work (the next plan knows both). (So
            # too in a recoverable plan judged at the predicted times: no plan fits at the
            # upper bounds there either.)
            plan = (
                f"the recoverable plan at the predicted times ({cap} round(s) protected) "
                f"wants {proposed} MB"
                if recovering
                else f"no size meets the deadline with {rounds_left} round(s) left"
            )
            proposed = current
            why = (
                f"{plan}, and none is clearly faster than the warm {current} MB environments "
                "(only first runs measured): they run the next round"
            )
        current_ok = (
            current is not None
            and current >= floor
            and planned_rounds * per(current) + after_s(current) <= remaining_s
        )
        gain = None
        if current is not None:
            gain = remaining_cost(current, False) - remaining_cost(proposed, True)
        change_cost = workers * cold_start_usd(proposed, model.init_at(proposed), arch)
        decision = guards.decide(
            guards.Proposal(
                shape="worker",
                current_mb=current,
                proposed_mb=proposed,
                rule="ce-resize",
                reason=why + provenance(model),
                predicted_gain_usd=gain,
                change_cost_usd=change_cost,
                remaining_cost_usd=remaining_cost(current, False) if current else None,
                relative_error=model.relative_error(proposed),
                current_is_safe=current_ok,
                rounds_since_change=obs.rounds_since_change,
                floor_mb=floor,
                min_mb=self.min_memory_mb,
                max_mb=self.max_memory_mb,
            )
        )
        decisions = {task.key: decision for task in context.stage.tasks}
        probe, probe_why = None, ""
        if rounds_left >= 2:
            # one round with one worker at the smaller size, the rest at the decided one (every
            # round the budget allows, at the upper bounds, even in a recoverable plan: a
            # deadline that holds only with fewer rounds or at the predicted times has no time
            # to spend exploring; a probe at 911 MB under a tight deadline, its cold start and
            # data loading at half a vCPU, made a round 9 s longer and missed it)
            kept = decision.memory_mb
            rest_s = (rounds_left - 1) * round_time(kept) + model.init_at(kept) / 1000

            def probe_fits(m: int) -> bool:
                return round_time(m) + model.init_at(m) / 1000 + rest_s <= remaining_s

            probe = self.probe_below(model, grid, probe_fits)
            probe = probe if probe is not None and probe < kept else None
            if probe is not None:
                # if the work is CPU-bound this round is slower (still within the deadline)
                # at the same cost
                where = (
                    f"{model.measured_max_mb} MB"
                    if model.measured_sizes == 1
                    else f"{int(model.curve.observed_min_mb)} MB and above"
                )
                implied = getattr(model.curve, "implied_min_mb", None) is not None
                probe_why = f"measured at {where} only: one worker probes {probe} MB " + (
                    "to check the runs' CPU time there (less memory can be slower than "
                    "it implies; the deadline holds if it is)"
                    if implied
                    else "to learn whether less memory is as fast (the deadline holds if it is not)"
                )
            uncertain = next((v for v in decision.vetoes if v.rule == "low-confidence"), None)
            if (
                probe is None
                and uncertain is not None
                # once: a run there is what it needs
                and not any(
                    x.ok and x.shape == "worker" and x.memory_mb == uncertain.proposed_mb
                    for x in obs.samples
                )
                and uncertain.proposed_mb < kept
                and uncertain.proposed_mb >= floor
                and probe_fits(uncertain.proposed_mb)
            ):
                # The plan wants a smaller size the curve is too unsure of to move every
                # worker there: measure it with one worker, where the uncertainty is, so
                # that the next plan can act on it (else the workers stay at the larger size
                # for good: nothing else measures the smaller one).
                probe = uncertain.proposed_mb
                probe_why = (
                    f"the plan wants {probe} MB but the curve is unsure there "
                    f"({uncertain.reason}): one worker measures it (the deadline holds if it "
                    "is slower)"
                )

        def worker_cost(m: int, cold: bool) -> float:
            return remaining_cost(m, cold) / workers

        def fits(m: int) -> bool:
            return m >= floor and planned_rounds * per(m) + after_s(m) <= remaining_s

        target = decision.memory_mb
        # Does a cold start fit, with the rounds at their expected time (the upper bound would
        # call most tight deadlines out of time, and then every round pay for a larger warm
        # environment rather than a short cold start)?
        cold_fits = (
            planned_rounds * expected_round_time(target)
            + model.init_at(target) / 1000
            + after_s(target, expected_round_time)
            <= remaining_s
        )
        self.keep_warm(
            context,
            decisions,
            worker_cost,
            fits,
            skip=1 if probe is not None else 0,
            cold_fits=cold_fits,
        )
        if probe is not None and len(context.stage.tasks) > 1:
            decisions[context.stage.tasks[-1].key] = MemoryDecision(probe, "probe-below", probe_why)
        return decisions

    @staticmethod
    def warm_measured(context: PolicyContext) -> bool:
        """Has a worker run in a warm environment (not its first run there)?"""
        return any(
            x.shape == "worker" and x.ok and not x.init_ms for x in context.observations.samples
        )

    @staticmethod
    def environments(context: PolicyContext) -> Counter:
        """Environments each size of the workers has started (cold starts observed)."""
        return Counter(
            x.memory_mb
            for x in context.observations.samples
            if x.shape == "worker" and x.ok and x.init_ms
        )

    @staticmethod
    def keep_warm(
        context: PolicyContext, decisions, worker_cost, fits, skip: int = 0, cold_fits=True
    ) -> None:
        """Between rounds, every environment a worker cold-started is warm and idle. A worker
        that would start cold at the decided size takes a warm environment of another size
        instead when that meets the deadline and costs less over the remaining rounds than a
        cold start (the pilot's environment, say). Not for workers that waited for a pilot in
        the same round: they would only take an environment the next round needs. Changes
        ``decisions`` in place. (Environments are assumed alive: rounds are far shorter than
        the keep-alive window.) When the deadline has no room for a cold start (``cold_fits``
        False), a warm environment at least as large is taken whatever it costs: it is never
        slower than a cold start."""
        if context.must_decide_all:
            return
        envs = CeScaling.environments(context)
        keys = [t.key for t in context.stage.tasks][: len(context.stage.tasks) - skip]
        if not keys or not envs:
            return
        target = decisions[keys[0]].memory_mb
        starting_cold = max(0, len(keys) - envs.pop(target, 0))
        movable = keys[len(keys) - starting_cold :] if starting_cold else []
        for size, count in sorted(envs.items()):
            faster = size >= target and not cold_fits
            if not movable or not (fits(size) or faster):
                continue
            if not faster and worker_cost(size, False) >= worker_cost(target, True):
                continue
            why = (
                f"no time for a cold start at {target} MB: a warm {size} MB environment is "
                "no slower"
                if faster
                else f"a warm {size} MB environment meets the deadline and costs less over the "
                f"remaining rounds than a cold start at {target} MB"
            )
            for key in movable[:count]:
                decisions[key] = MemoryDecision(size, "keep-warm", why)
            movable = movable[count:]

    @staticmethod
    def rounds_before_fit(context: PolicyContext) -> int:
        """Rounds still to run, this one included, before the loss curve can be fitted
        (``MIN_POINTS`` losses in); 0 without a target loss, or once it can."""
        training = context.spec.training
        assert training is not None
        if training.target_loss is None:
            return 0
        return max(0, MIN_POINTS - len(context.observations.losses))

    @staticmethod
    def expected_rounds(context: PolicyContext, planned: int) -> int:
        """The rounds still to run as the plan expects them before the loss curve can be
        fitted, for comparing sizes' costs (never for the deadline: the recoverable plan
        protects every round the budget allows). With two losses, a power law through the
        origin through the last two, ``L = b t^-c``, solved for the target: the optimistic
        reading (a real curve flattens towards a floor above zero and takes longer), which
        the fit corrects a round later, and an underestimate costs at most a move the plan
        has kept time for. With one loss there is no rate to read, and a loss that does not
        fall gives none: every round the budget allows (``planned``), as before."""
        training = context.spec.training
        assert training is not None
        losses = context.observations.losses
        done, target = len(losses), training.target_loss
        if target is None or done < 2:
            return planned
        before, last = losses[-2], losses[-1]
        if last <= target:
            return 1
        if not 0 < last < before:
            return planned
        rate = math.log(before / last) / math.log(done / (done - 1))
        total = done * (last / target) ** (1 / rate)
        return max(1, min(planned, math.ceil(total) - done))

    @staticmethod
    def rounds_left(context: PolicyContext) -> int:
        """Rounds still needed, the upper end of the loss-curve estimate (all that the epoch
        budget allows when there is no target or too little to fit yet: then the training plan
        is recoverable instead, ``resize_training``)."""
        training = context.spec.training
        assert training is not None
        planned = 1 + len(context.outline)
        losses = context.observations.losses
        if training.target_loss is None or len(losses) < MIN_POINTS:
            return planned
        done = len(losses)
        stored = context.observations.predictors.get("loss-curve")
        if stored is not None and stored["observations"] == done:
            curve = LossCurve.from_state(stored["state"])  # learned by the loop
        else:
            curve = LossCurve.fit(list(range(1, done + 1)), list(losses))
        estimate = curve.rounds_to_target(training.target_loss, planned)
        if estimate.upper is None:
            return planned
        # one round more than the fit's upper end: the loss-curve bound moves from round to
        # round (5, 6, 5, then 2 with 3 still to run, in a ResNet job), and one round short is
        # a missed deadline, one round long only a slightly larger size
        return max(1, min(planned, estimate.upper + ROUND_MARGIN))


def run_noise(observations: Observations, shape: str) -> float:
    """The run-to-run spread of ``shape`` (log-normal sigma): the pooled standard deviation of
    its log durations among runs alike (same size, epochs, architecture, cold or warm); at
    least ``NOISE_SIGMA``, the prior before two runs alike were seen."""
    groups: dict[tuple, list[float]] = defaultdict(list)
    for x in observations.samples:
        if x.ok and x.shape == shape and x.duration_ms > 0:
            key = (x.memory_mb, x.epochs, x.architecture, bool(x.init_ms))
            groups[key].append(math.log(x.duration_ms))
    squares, freedom = 0.0, 0
    for logs in groups.values():
        if len(logs) > 1:
            mean = fmean(logs)
            squares += sum((v - mean) ** 2 for v in logs)
            freedom += len(logs) - 1
    measured = math.sqrt(squares / freedom) if freedom else 0.0
    return max(NOISE_SIGMA, measured)


def noise_margin(plan: list[StageOption], sigma: float) -> float:
    """Time to keep for the noise of a plan made at the expected times: ``NOISE_Z`` standard
    deviations of the plan's total time, each stage's spread ``sigma`` × its time (a stage
    of one task is one draw; the stages' spreads add in quadrature)."""
    return NOISE_Z * sigma * math.sqrt(sum(o.time_s**2 for o in plan))
