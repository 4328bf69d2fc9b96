"""Does a memory curve fitted on three sizes pick a size that costs close to the cheapest?

For every curve (published Lambda measurements, benchmarks/data/lambda_curves.csv, or synthetic
ones) the true cost of an invocation at each measured size is known; the true optimum is the
cheapest of them. Each method sees three sizes and picks one of the curve's sizes:

- ``best-of-3``: the cheapest of the three measured sizes (no curve at all; the floor any
  curve must beat to be worth fitting);
- ``point``: MemoryCurve fitted on three fixed sizes (smallest, log-middle, largest), the size
  whose *predicted* cost is lowest (before);
- ``interval``: the same fit, the size whose *upper-bound* cost is lowest
  (``MemoryCurve.cheapest``, after);
- ``adaptive``: the first size fixed (the log-middle), the next two chosen one at a time by
  ``MemoryCurve.next_size`` (it may stop early when the pick is settled), then ``cheapest``.

Per curve it prints each method's pick and its cost over the optimum's, the fit's MAPE on the
sizes it did not see; then the share of curves whose pick is within 5 % of the optimum's cost,
all methods side by side, in one run.

    python benchmarks/curve_pick.py                 # the published held-out curves
    python benchmarks/curve_pick.py --set design    # the curves looked at while designing
    python benchmarks/curve_pick.py --synthetic 200 # synthetic curves (seeded)
    python benchmarks/curve_pick.py --noise 0.03 --seeds 20  # measured with 3 % noise
"""

from __future__ import annotations

import argparse
import csv
import math
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np

from service.policies.costing import invocation_usd
from service.prediction.memory_curve import MemoryCurve, vcpu_share

DATA = Path(__file__).parent / "data" / "lambda_curves.csv"
# Looked at (and run) while designing the rule; everything else in the data file is held out.
DESIGN_PREFIX = "s3-put-heavy/"
WITHIN = 1.05
METHODS = ("best-of-3", "point", "interval", "adaptive")
SYNTHETIC_GRID = (128, 256, 384, 512, 768, 1024, 1536, 1769, 2048, 3008, 4096, 6144, 8192, 10240)

Curve = tuple[str, list[float], list[float]]  # name, sizes ascending, mean duration (ms)


def published(which: str) -> list[Curve]:
    by_name: dict[str, list[tuple[float, float]]] = defaultdict(list)
    with DATA.open() as handle:
        for row in csv.DictReader(handle):
            by_name[row["curve"]].append((float(row["memory_mb"]), float(row["duration_ms"])))
    curves = []
    for name, points in by_name.items():
        design = name.startswith(DESIGN_PREFIX)
        if which == "all" or (which == "design") == design:
            points.sort()
            curves.append((name, [p[0] for p in points], [p[1] for p in points]))
    return curves


def synthetic(count: int) -> list[Curve]:
    """Lambda-shaped curves that the model's form does not quite fit: a slowdown at small
    sizes (garbage collection under memory pressure), a CPU share that grows less than in
    proportion below one vCPU, and the I/O + serial + parallel parts of the model."""
    curves = []
    for seed in range(count):
        rng = np.random.default_rng(10_000 + seed)
        top = float(rng.choice([2048, 3008, 10240]))
        sizes = np.array([m for m in SYNTHETIC_GRID if m <= top], dtype=float)
        v = vcpu_share(sizes)
        io = math.exp(rng.uniform(math.log(1), math.log(3000)))
        serial = math.exp(rng.uniform(math.log(10), math.log(20_000)))
        parallel = 0.0 if rng.random() < 0.5 else math.exp(rng.uniform(math.log(10), math.log(20_000)))
        threads = float(rng.choice([2, 4, 6]))
        alpha = rng.uniform(0.85, 1.0)
        duration = io + serial / np.minimum(v, 1.0) ** alpha + parallel / np.minimum(v, threads)
        if rng.random() < 0.5:  # up to 1.8x slower at 128 MB, fading with memory
            duration *= 1 + rng.uniform(0.05, 0.8) * (128 / sizes) ** rng.uniform(0.5, 2)
        curves.append((f"synthetic-{seed}", list(sizes), list(duration)))
    return curves


def fixed_design(sizes: list[float]) -> list[float]:
    """Smallest, the size nearest the log-middle, largest."""
    middle = math.sqrt(sizes[0] * sizes[-1])
    inner = min(sizes[1:-1], key=lambda m: (abs(math.log(m / middle)), m))
    return [sizes[0], inner, sizes[-1]]


def run_curve(curve: Curve, noise: float, seed: int) -> dict[str, tuple[float, float, float]]:
    """method -> (pick, cost / optimum's cost, MAPE % of the fit on the unseen sizes)."""
    name, sizes, truth = curve
    arch = "arm64" if "arm64" in name else "x86_64"
    true = dict(zip(sizes, truth, strict=True))

    def cost(memory: float, duration: float) -> float:
        return invocation_usd(memory, duration, 0.0, arch)

    optimum = min(cost(m, true[m]) for m in sizes)
    rng = np.random.default_rng(seed)

    def measure(memory: float) -> float:
        return true[memory] * (math.exp(rng.normal(0.0, noise)) if noise else 1.0)

    def mape(curve: MemoryCurve, seen: list[float]) -> float:
        unseen = [m for m in sizes if m not in seen]
        errors = [abs(curve.predict(m) - true[m]) / true[m] for m in unseen]
        return 100 * float(np.mean(errors)) if errors else float("nan")

    def ratio(memory: float) -> float:
        return cost(memory, true[memory]) / optimum

    design = fixed_design(sizes)
    seen = {m: measure(m) for m in design}
    fitted = MemoryCurve.fit(list(seen), list(seen.values()))
    fit_error = mape(fitted, design)
    best_measured = min(seen, key=lambda m: cost(m, seen[m]))
    point = min(sizes, key=lambda m: (cost(m, fitted.predict(m)), m))
    interval = fitted.cheapest(sizes, cost=cost)

    adaptive = {design[1]: measure(design[1])}
    curve_now = MemoryCurve.fit(list(adaptive), list(adaptive.values()))
    while len(adaptive) < 3:
        following = curve_now.next_size(sizes, cost=cost)
        if following is None:
            break
        adaptive[following] = measure(following)
        curve_now = MemoryCurve.fit(list(adaptive), list(adaptive.values()))
    adaptive_pick = curve_now.cheapest(sizes, cost=cost)
    return {
        "best-of-3": (best_measured, ratio(best_measured), float("nan")),
        "point": (point, ratio(point), fit_error),
        "interval": (interval, ratio(interval), fit_error),
        "adaptive": (adaptive_pick, ratio(adaptive_pick), mape(curve_now, list(adaptive))),
        "_adaptive_sizes": (float(len(adaptive)), 0.0, 0.0),
        "_seen": tuple(sorted(adaptive)),  # type: ignore[dict-item]
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", choices=("held-out", "design", "all"), default="held-out")
    parser.add_argument("--synthetic", type=int, default=0, help="use N synthetic curves instead")
    parser.add_argument("--noise", type=float, default=0.0, help="relative noise per measurement")
    parser.add_argument("--seeds", type=int, default=1, help="noise draws per curve")
    parser.add_argument("--quiet", action="store_true", help="only the summary")
    args = parser.parse_args(argv)
    curves = synthetic(args.synthetic) if args.synthetic else published(args.set)
    seeds = range(args.seeds if args.noise else 1)
    hits: dict[str, list[bool]] = defaultdict(list)
    ratios: dict[str, list[float]] = defaultdict(list)
    mapes: list[float] = []
    header = "".join(f"  {m:>17}" for m in METHODS)
    if not args.quiet:
        print(f"{'curve':<30} {'optimum':>8}{header}  {'MAPE':>6}  adaptive sizes")
    for curve in curves:
        name, sizes, truth = curve
        for seed in seeds:
            result = run_curve(curve, args.noise, seed)
            for method in METHODS:
                hits[method].append(result[method][1] <= WITHIN)
                ratios[method].append(result[method][1])
            mapes.append(result["point"][2])
            if args.quiet or seed:
                continue
            arch = "arm64" if "arm64" in name else "x86_64"
            opt = min(sizes, key=lambda m: invocation_usd(m, truth[sizes.index(m)], 0, arch))
            cells = "".join(
                f"  {result[m][0]:>7.0f} MB {result[m][1]:>5.3f}" for m in METHODS
            )
            seen = ",".join(f"{m:.0f}" for m in result["_seen"])  # type: ignore[union-attr]
            print(f"{name:<30} {opt:>5.0f} MB{cells}  {result['point'][2]:>5.1f}%  {seen}")
    total = len(hits[METHODS[0]])
    print()
    print(f"{len(curves)} curves × {len(seeds)} draw(s), noise {args.noise:.0%}:")
    print(f"{'':<30} {'':>8}" + "".join(f"  {m:>17}" for m in METHODS))
    share = "".join(f"  {100 * np.mean(hits[m]):>16.0f}%" for m in METHODS)
    print(f"{'pick within 5 % of optimum':<39}{share}")
    worst = "".join(f"  {max(ratios[m]):>17.3f}" for m in METHODS)
    print(f"{'worst cost / optimum':<39}{worst}")
    mean = "".join(f"  {np.mean(ratios[m]):>17.3f}" for m in METHODS)
    print(f"{'mean cost / optimum':<39}{mean}")
    print(f"fit MAPE on unseen sizes (fixed 3): mean {np.nanmean(mapes):.1f} % over {total} fits")


if __name__ == "__main__":
    main()
