"""`cescale curve`: fit a memory → duration curve to measured points and predict other sizes."""

from __future__ import annotations

import json
import math

import typer

MIN_MEMORY_MB = 128  # docs/platform.md: Lambda memory is 128 … 10,240 MB
MAX_MEMORY_MB = 10_240
DEFAULT_SIZES = "128,256,512,1024,1536,1769,2048,3008,4096,10240"


def register(app: typer.Typer) -> None:
    app.command("curve")(curve)


def curve(
    points: str = typer.Option(
        ...,
        "--points",
        help='Measured "memory_mb:duration_ms" pairs, comma-separated, e.g. "128:1628,1024:386".',
    ),
    predict: str = typer.Option(
        DEFAULT_SIZES, "--predict", help="Memory sizes (MB, 128-10240) to predict, comma-separated."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Fit duration(memory) to measured points (I/O + serial CPU + parallel CPU on Lambda's
    1,769 MB-per-vCPU share), predict the duration at other memory sizes, and name the
    cheapest of them (lowest upper-bound cost) and the size worth measuring next."""
    try:
        memory, duration = _parse_points(points)
        sizes = _parse_sizes(predict)
    except ValueError as error:
        typer.secho(f"error: {error}", fg="red", err=True)
        raise typer.Exit(2) from None

    from service.policies.costing import invocation_usd
    from service.prediction.memory_curve import MemoryCurve

    fitted = MemoryCurve.fit(memory, duration)
    predictions = {key: round(fitted.predict(size), 1) for key, size in sizes}
    errors = {key: round(fitted.relative_error(size), 4) for key, size in sizes}
    candidates = [size for _, size in sizes]
    cheapest = fitted.cheapest(candidates, cost=invocation_usd)
    following = fitted.next_size(candidates, cost=invocation_usd)
    if as_json:
        model = fitted.describe() | {"relative_error": errors}
        pick = {"cheapest_mb": _plain(cheapest), "measure_next_mb": _plain(following)}
        typer.echo(json.dumps({"predictions": predictions, "model": model, "pick": pick}))
        return
    typer.echo(f"{'memory_mb':>10}  {'duration_ms':>12}  {'±':>6}")
    for key, _ in sizes:
        typer.echo(f"{key:>10}  {predictions[key]:>12.1f}  {errors[key] * 100:>5.1f}%")
    typer.echo(
        f"fit: {fitted.io_ms:.1f} ms I/O + {fitted.serial_cpu_ms:.1f} ms serial CPU / min(v, 1)"
        f" + {fitted.parallel_cpu_ms:.1f} ms parallel CPU / min(v, {fitted.threads})"
        ", v = memory_mb / 1769"
    )
    nextly = (
        f"measure {_plain(following)} MB next"
        if following is not None
        else "no other size can be cheaper: nothing worth measuring"
    )
    typer.echo(
        f"cheapest of these sizes at the upper end of its cost (90 %): {_plain(cheapest)} MB;"
        f" {nextly}"
    )


def _plain(memory_mb: float | None) -> float | int | None:
    """A size as people write it: 1024, not 1024.0."""
    if memory_mb is None or not float(memory_mb).is_integer():
        return memory_mb
    return int(memory_mb)


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{what} {text!r} is not a finite number")
    return value


def _memory(text: str) -> float:
    value = _number(text, "memory size")
    if not MIN_MEMORY_MB <= value <= MAX_MEMORY_MB:
        raise ValueError(f"memory size {text!r} is outside {MIN_MEMORY_MB}-{MAX_MEMORY_MB} MB")
    return value


def _parse_points(text: str) -> tuple[list[float], list[float]]:
    memory: list[float] = []
    duration: list[float] = []
    for item in text.split(","):
        parts = item.strip().split(":")
        if len(parts) != 2 or not all(part.strip() for part in parts):
            raise ValueError(f'point {item.strip()!r} is not "memory_mb:duration_ms"')
        memory.append(_memory(parts[0].strip()))
        value = _number(parts[1].strip(), "duration")
        if value <= 0:
            raise ValueError(f"duration {parts[1].strip()!r} must be positive")
        duration.append(value)
    return memory, duration


def _parse_sizes(text: str) -> list[tuple[str, float]]:
    """(key as the user wrote it, value) per size, in the given order, without repeats."""
    sizes: dict[str, float] = {}
    for item in text.split(","):
        key = item.strip()
        if not key:
            raise ValueError(f"--predict {text!r} has an empty size")
        sizes[key] = _memory(key)
    return list(sizes.items())
