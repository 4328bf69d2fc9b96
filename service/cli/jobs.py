"""`cescale jobs …`: submit, list, read, watch and cancel jobs on a running service (HTTP).

Exit status: 0 on success; 1 when the service said no (the problem's title and detail on one
line), could not be reached, or — for ``watch`` — the job failed or was cancelled; 2 for bad
usage (missing spec file, invalid JSON, no API key).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live

from service.cli import jobview
from service.cli.client import DEFAULT_URL, ApiClient, CliError, read_spec, resolve_api_key

app = typer.Typer(
    help="Submit, follow and cancel jobs on a running service (see docs/cli.md).",
    no_args_is_help=True,
)


class Output(StrEnum):
    table = "table"
    json = "json"


class JobStatusName(StrEnum):
    pending = "pending"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


class JobKindName(StrEnum):
    hpo = "hpo"
    training = "training"


UrlOption = Annotated[
    str, typer.Option("--url", envvar="CESCALE_URL", help="Base URL of the service.")
]
KeyOption = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="CESCALE_API_KEY",
        help="API key (default: the file <CESCALE_STATE_DIR>/api-key that bootstrap writes).",
        show_default=False,
    ),
]
OutputOption = Annotated[
    Output, typer.Option("--output", "-o", help="table for people, json for programs.")
]
IdArgument = Annotated[str, typer.Argument(help="The job's id.", show_default=False)]


@contextmanager
def _session(url: str, api_key: str | None) -> Iterator[ApiClient]:
    """An API client; every CliError ends the command with its one line and exit status."""
    try:
        with ApiClient(url, resolve_api_key(api_key)) as client:
            yield client
    except CliError as error:
        typer.secho(f"error: {error.message}", fg="red", err=True)
        raise typer.Exit(error.exit_code) from None


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2))


def _console(err: bool = False) -> Console:
    console = Console(stderr=err, highlight=False)
    if not console.is_terminal:
        console.width = 240  # a pipe or a file: do not cut tables at 80 columns
    return console


@app.command("submit")
def submit(
    spec: Annotated[str, typer.Argument(help="Job spec JSON file ('-' reads stdin).")],
    watch: Annotated[bool, typer.Option("--watch", help="Follow the job until it ends.")] = False,
    idempotency_key: Annotated[
        str | None,
        typer.Option(
            "--idempotency-key",
            help="Retry-safe submission: the same key and spec return the same job.",
        ),
    ] = None,
    interval: Annotated[
        float, typer.Option(min=0.2, help="Seconds between polls with --watch.")
    ] = 2.0,
    url: UrlOption = DEFAULT_URL,
    api_key: KeyOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Submit the job spec in SPEC; with --watch, follow it to its end."""
    try:
        body = read_spec(spec)
    except CliError as error:
        typer.secho(f"error: {error.message}", fg="red", err=True)
        raise typer.Exit(error.exit_code) from None
    with _session(url, api_key) as client:
        job, replayed = client.submit(body, idempotency_key)
        if output is Output.json and not watch:
            _print_json(job)
        elif output is Output.table:
            again = " (replayed: this key's earlier submission)" if replayed else ""
            typer.echo(f"submitted job {job['id']} ({job['status']}){again}")
        if watch:
            _watch(client, job["id"], interval, output)


@app.command("list")
def list_jobs(
    status: Annotated[
        list[JobStatusName] | None,
        typer.Option("--status", help="Only jobs in this status (repeat for several)."),
    ] = None,
    kind: Annotated[
        list[JobKindName] | None, typer.Option("--kind", help="Only hpo or training jobs.")
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(min=1, help="At most this many jobs (default: all, following pages)."),
    ] = None,
    url: UrlOption = DEFAULT_URL,
    api_key: KeyOption = None,
    output: OutputOption = Output.table,
) -> None:
    """List your jobs, newest first."""
    with _session(url, api_key) as client:
        jobs = client.jobs([s.value for s in status or []], [k.value for k in kind or []], limit)
    if output is Output.json:
        _print_json(jobs)
    elif jobs:
        _console().print(jobview.jobs_table(jobs))
    else:
        typer.echo("no jobs")


@app.command("get")
def get(
    job_id: IdArgument,
    url: UrlOption = DEFAULT_URL,
    api_key: KeyOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Show one job (its result once it has ended)."""
    with _session(url, api_key) as client:
        job = client.job(job_id)
    if output is Output.json:
        _print_json(job)
    else:
        _console().print(jobview.job_table(job))


@app.command("cancel")
def cancel(
    job_id: IdArgument,
    url: UrlOption = DEFAULT_URL,
    api_key: KeyOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Cancel a job: a pending one at once, a running one when its in-flight work returns."""
    with _session(url, api_key) as client:
        job = client.cancel(job_id)
    if output is Output.json:
        _print_json(job)
    elif job["status"] == "cancelled":
        typer.echo(f"job {job['id']} cancelled")
    else:
        typer.echo(
            f"job {job['id']}: cancel requested; it launches nothing more and ends cancelled "
            "when its in-flight invocations return"
        )


@app.command("cost")
def cost(
    job_id: IdArgument,
    url: UrlOption = DEFAULT_URL,
    api_key: KeyOption = None,
    output: OutputOption = Output.table,
) -> None:
    """The job's cost so far, per stage (the sum of its billed invocations)."""
    with _session(url, api_key) as client:
        data = client.cost(job_id)
    if output is Output.json:
        _print_json(data)
    else:
        _console().print(jobview.cost_table(data))


@app.command("timeline")
def timeline(
    job_id: IdArgument,
    url: UrlOption = DEFAULT_URL,
    api_key: KeyOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Stage events and memory changes (with their reasons), oldest first."""
    with _session(url, api_key) as client:
        data = client.timeline(job_id)
    if output is Output.json:
        _print_json(data)
    else:
        _console().print(jobview.timeline_table(data))


@app.command("watch")
def watch(
    job_id: IdArgument,
    interval: Annotated[float, typer.Option(min=0.2, help="Seconds between polls.")] = 2.0,
    url: UrlOption = DEFAULT_URL,
    api_key: KeyOption = None,
    output: OutputOption = Output.table,
) -> None:
    """Follow a job live until it ends; exit 1 if it failed or was cancelled.

    On a terminal: a live view (stages, trials or rounds done, memory per shape, cost so far,
    time left to the deadline). Otherwise: one line per change. With --output json the final
    job is printed as JSON (the progress goes to stderr).
    """
    with _session(url, api_key) as client:
        _watch(client, job_id, interval, output)


def _watch(client: ApiClient, job_id: str, interval: float, output: Output) -> None:
    console = _console(err=output is Output.json)

    def poll() -> jobview.Progress:
        return jobview.fold(client.job(job_id), client.cost(job_id), client.timeline(job_id))

    try:
        if console.is_terminal:
            progress = _live(console, poll, interval)
        else:
            progress = _lines(console, poll, interval)
    except KeyboardInterrupt:
        typer.secho(
            f"stopped watching; job {job_id} goes on (cancel it with 'cescale jobs cancel')",
            err=True,
        )
        raise typer.Exit(130) from None
    if output is Output.json:
        _print_json(progress.job)
    else:
        _final_line(progress)
    if progress.status != "succeeded":
        raise typer.Exit(1)


def _live(console: Console, poll: Callable[[], jobview.Progress], interval: float):
    progress = poll()
    with Live(jobview.watch_view(progress), console=console, auto_refresh=False) as live:
        while not progress.finished:
            time.sleep(interval)
            progress = poll()
            live.update(jobview.watch_view(progress), refresh=True)
    return progress


def _lines(console: Console, poll: Callable[[], jobview.Progress], interval: float):
    """Not a terminal (a log, a pipe, CI): a plain line whenever the picture changes."""
    last = None
    while True:
        progress = poll()
        changed = progress.line(clock=False)
        if changed != last:
            typer.echo(f"{time.strftime('%H:%M:%S')} {progress.line()}", err=console.stderr)
            last = changed
        if progress.finished:
            return progress
        time.sleep(interval)


def _final_line(progress: jobview.Progress) -> None:
    job = progress.job
    deadline = {True: ", deadline missed", False: ", deadline met"}.get(
        job.get("deadline_missed"), ""
    )
    reason = f" ({job['status_reason']})" if job.get("status_reason") else ""
    typer.secho(
        f"job {job['id']} {job['status']}{reason} in {jobview.seconds(progress.elapsed_s)}, "
        f"cost {jobview.usd(progress.cost_usd)}{deadline}",
        fg="green" if job["status"] == "succeeded" else "red",
    )
