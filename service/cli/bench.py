"""`cescale bench` (outcomes of every policy, side by side, in simulation) and
`cescale bench-control` (the control plane's own speed, on Postgres)."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
    app.command("bench-control")(bench_control)


def bench(
    out: Path = typer.Option(..., "--out", help="Directory for results.json, summary.md, plots."),
    quick: bool = typer.Option(
        False, "--quick", help="A few workloads, 2 seeds: a few minutes, for a smoke check."
    ),
    profiles: list[Path] = typer.Option(
        [],
        "--profile",
        help="A measured profile (docs/platform.md); adds an HPO and a training workload built "
        "from it. Repeat for more.",
    ),
    seeds: int | None = typer.Option(
        None, "--seeds", min=1, help="Seeds per cell (default 20; 2 with --quick)."
    ),
    jobs: int | None = typer.Option(
        None, "--jobs", min=1, help="Simulations in parallel (default: one per CPU)."
    ),
    only: list[str] = typer.Option(
        [], "--only", help="Run only this workload id (repeatable), e.g. hpo-mlp-eta3."
    ),
    ablate: str | None = typer.Option(
        None,
        "--ablate",
        help="Instead of the policy comparison, an ablation: 'learning' runs ce-scaling with "
        "and without the loop's learn step on stationary and drifting training workloads.",
    ),
    repeat: bool = typer.Option(
        False,
        "--repeat",
        help="Instead of the policy comparison, repeat jobs: ce-scaling and the oracle run each "
        "job twice by one tenant (the second from the first's curves), costs side by side.",
    ),
) -> None:
    """Run every policy (static at 512/1024/1769/3008 MB, static-safe and static-qos,
    power-tuning, the published peers parrotfish and jolteon, ce-scaling, oracle) on HPO and
    training workloads at a tight and a loose deadline, through the real control loop on the
    emulator with a virtual clock."""
    from rich.console import Console

    from service.bench.report import targets_table, terminal_table, write_outputs
    from service.bench.runner import default_jobs
    from service.bench.suite import SuiteConfig, run_suite, select_workloads
    from service.cli.progress import phases
    from service.platform.emulator.profiles import ProfileError

    if repeat:
        config = SuiteConfig(
            quick=quick, profiles=tuple(profiles), jobs=jobs or default_jobs(), only=tuple(only)
        )
        try:
            workloads = select_workloads(config)
        except (ProfileError, ValueError) as error:
            typer.secho(f"error: {error}", fg="red", err=True)
            raise typer.Exit(2) from None
        _repeat(out, workloads, seeds or (2 if quick else 10), config.jobs)
        return
    if ablate is not None:
        if ablate != "learning":
            typer.secho(f"error: unknown ablation {ablate!r}; ablations: learning", err=True)
            raise typer.Exit(2)
        _ablate_learning(out, quick, seeds, jobs or default_jobs(), only)
        return
    config = SuiteConfig(
        quick=quick,
        seeds=seeds,
        profiles=tuple(profiles),
        jobs=jobs or default_jobs(),
        only=tuple(only),
    )
    try:
        select_workloads(config)
    except (ProfileError, ValueError) as error:
        typer.secho(f"error: {error}", fg="red", err=True)
        raise typer.Exit(2) from None
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)  # a log file: do not squeeze the tables to 80 columns
    with phases(console) as progress:
        result = run_suite(config, on_phase=progress.phase, on_done=progress.advance)
    _, cells, targets = write_outputs(result, out)
    console.print(terminal_table(cells))
    console.print(targets_table(targets))
    if result.errors:
        console.print(f"[red]{len(result.errors)} run(s) raised; see {out / 'summary.md'}")
    console.print(
        f"{result.simulations} simulations in {result.wall_s:.0f} s; wrote {out}/results.json, "
        f"{out}/summary.md and plots"
    )


def _ablate_learning(out: Path, quick: bool, seeds: int | None, jobs: int, only) -> None:
    import json
    import time
    from dataclasses import asdict

    from rich.console import Console
    from rich.table import Table

    from service.bench.ablation import ablation_workloads, markdown, run_ablation, summarise
    from service.cli.progress import phases

    try:
        workloads = ablation_workloads(quick, only)
    except ValueError as error:
        typer.secho(f"error: {error}", fg="red", err=True)
        raise typer.Exit(2) from None
    count = seeds or (2 if quick else 10)
    console = Console() if Console().is_terminal else Console(width=160)
    started = time.perf_counter()
    with phases(console, eta=False) as progress:
        rows, labels = run_ablation(workloads, count, jobs, progress.phase, progress.advance)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ablation.json").write_text(
        json.dumps({"drifts": labels, "rows": [asdict(r) for r in rows]}, indent=1)
    )
    (out / "ablation.md").write_text(markdown(rows, labels, count))
    table = Table(title="ce-scaling with / without the learn step")
    for column in ("drift", "deadline", "runs", "met with", "met without", "cost with/without"):
        table.add_column(column)
    for cell in summarise(rows):
        ratio = "-" if cell["cost_ratio"] is None else f"{cell['cost_ratio']:.3f}"
        table.add_row(
            cell["drift"],
            cell["deadline"],
            str(cell["runs"]),
            f"{100 * cell['met_with']:.0f} %",
            f"{100 * cell['met_without']:.0f} %",
            ratio,
        )
    console.print(table)
    console.print(
        f"{len(rows)} ce-scaling runs in {time.perf_counter() - started:.0f} s; wrote "
        f"{out}/ablation.md and {out}/ablation.json"
    )


def _repeat(out: Path, workloads, seeds: int, jobs: int) -> None:
    import json
    import time
    from dataclasses import asdict

    from rich.console import Console
    from rich.table import Table

    from service.bench.repeat import markdown, run_repeat, summarise, targets
    from service.cli.progress import phases

    console = Console() if Console().is_terminal else Console(width=160)
    started = time.perf_counter()
    with phases(console, eta=False) as progress:
        rows = run_repeat(workloads, seeds, jobs, progress.phase, progress.advance)
    table_rows = summarise(rows)
    out.mkdir(parents=True, exist_ok=True)
    (out / "repeat.json").write_text(
        json.dumps(
            {"seeds": seeds, "targets": targets(table_rows), "rows": [asdict(r) for r in rows]},
            indent=1,
        )
    )
    (out / "repeat.md").write_text(markdown(rows, seeds))
    table = Table(title="repeat jobs: ce-scaling's cost over the oracle's (median, max)")
    for column in ("workload", "deadline", "first job", "second job", "met 1st/2nd"):
        table.add_column(column)
    for c in table_rows:
        first, second = c["job1"], c["job2"]

        def ratio(job: dict) -> str:
            if job["vs_oracle_median"] is None:
                return "-"
            return f"{job['vs_oracle_median']:.3f} ({job['vs_oracle_max']:.3f})"

        table.add_row(
            c["workload"],
            c["deadline"],
            ratio(first),
            ratio(second),
            f"{first['met']}/{first['runs']} · {second['met']}/{second['runs']}",
        )
    console.print(table)
    goal = targets(table_rows)
    console.print(f"{goal['target']}: met in {goal['cells_met']} of {goal['cells']} cells")
    console.print(
        f"{len(rows)} jobs in {time.perf_counter() - started:.0f} s; wrote {out}/repeat.md "
        f"and {out}/repeat.json"
    )


def bench_control(
    out: Path = typer.Option(..., "--out", help="Directory for control.json and control.md."),
    running_jobs: int = typer.Option(1000, "--running-jobs", min=1, help="Running jobs."),
    functions_per_job: int = typer.Option(
        10, "--functions-per-job", min=1, max=1000, help="Running functions per job."
    ),
    passes: int = typer.Option(
        5, "--passes", min=2, help="Reconcile passes per replica (the first is a takeover)."
    ),
    series: int = typer.Option(10_000, "--series", min=1, help="Forecaster series."),
    api_seconds: float = typer.Option(
        10.0, "--api-seconds", min=0.5, help="Load per API route, seconds."
    ),
    api_threads: int = typer.Option(8, "--api-threads", min=1, help="Load generator threads."),
    dashboard_jobs: int = typer.Option(
        10_000,
        "--dashboard-jobs",
        min=1,
        help="Jobs (× 100 invocations) for the dashboard queries.",
    ),
) -> None:
    """Measure the control plane on a private Postgres database (127.0.0.1:5432): reconcile
    pass time (one replica, two), forecaster throughput, API rps and latency, and the dashboard
    queries (/v1/usage, a job's series, …) at --dashboard-jobs × 100 invocations."""
    from rich.console import Console

    from service.bench.control.postgres import PostgresUnavailable
    from service.bench.control.suite import ControlConfig, run_control_bench

    console = Console()
    config = ControlConfig(
        jobs=running_jobs,
        workers=functions_per_job,
        passes=passes,
        series=series,
        api_seconds=api_seconds,
        api_threads=api_threads,
        dashboard_jobs=dashboard_jobs,
    )
    try:
        if console.is_terminal:
            with console.status("bench-control") as status:
                document = run_control_bench(config, out, say=lambda line: status.update(line))
        else:  # a log file: one line per measurement as it starts
            document = run_control_bench(
                config, out, say=lambda line: print(f"bench-control: {line}", flush=True)
            )
    except PostgresUnavailable as error:
        typer.secho(f"error: {error}", fg="red", err=True)
        raise typer.Exit(2) from None
    for target in document["targets"]:
        verdict = "[green]met" if target["met"] else "[red]not met"
        console.print(f"{target['target']}: {target['measured']} — {verdict}")
    for name in ("get_job", "post_job"):
        r = document["api"][name]
        console.print(
            f"API {r['method']} {name}: {r['ok_rps']} rps, p50 {r['p50_ms']} ms, "
            f"p99 {r['p99_ms']} ms"
        )
    console.print(f"wrote {out}/control.json and {out}/control.md ({document['wall_s']:.0f} s)")
