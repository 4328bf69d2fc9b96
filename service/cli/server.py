"""`cescale serve` and `cescale bootstrap`: run the service, and prepare a first-run machine."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from service.cli.context import unit_of_work

SAMPLE_JOB = Path("examples/hpo-digits.json")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("bootstrap")(bootstrap)


def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="TCP port."),
    log_level: str | None = typer.Option(
        None,
        help="Log level of the service and uvicorn (default: cescale --log-level, "
        "CESCALE_LOG_LEVEL, else info).",
        show_default=False,
    ),
) -> None:
    """Start the API service (uvicorn) with the request limits of the settings."""
    import uvicorn

    from service import logs
    from service.api.connections import guarded_protocol
    from service.settings import get_settings

    level = logs.configure(log_level)  # one format for uvicorn's lines and ours
    settings = get_settings()
    max_connections = _connections_within_file_limit(settings.max_connections)
    uvicorn.run(
        "service.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        log_level=level,
        log_config=None,
        http=guarded_protocol(settings.request_timeout_s, max_connections),
        timeout_keep_alive=settings.keep_alive_s,
    )


# Descriptors the process needs besides client connections: database pool, emulator workers,
# log and store files.
_RESERVED_FDS = 128


def _connections_within_file_limit(wanted: int) -> int:
    """Raise the open-file limit to its hard maximum if needed, so ``wanted`` client sockets
    fit; if they still do not, serve fewer and say so (an exhausted limit fails accept())."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = wanted + _RESERVED_FDS
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft != resource.RLIM_INFINITY and soft < needed:
        fitting = max(1, soft - _RESERVED_FDS)
        typer.secho(
            f"warning: the open-file limit is {soft}: serving {fitting} connections, not "
            f"CESCALE_MAX_CONNECTIONS={wanted} (raise 'ulimit -n')",
            fg="yellow",
            err=True,
        )
        return fitting
    return wanted


def bootstrap(
    host: str = typer.Option("127.0.0.1", help="Host the printed curl should use."),
    port: int = typer.Option(8000, help="Port the printed curl should use."),
) -> None:
    """First run: create tenant 'default', save its key to .cescale/api-key, print a curl."""
    from service.settings import get_settings
    from service.tenants.service import TenantService

    settings = get_settings()
    key_file = settings.api_key_file
    with unit_of_work() as session:
        tenants = TenantService(session, settings.api_key_prefix)
        created = None if tenants.has_any() else tenants.create("default")
        if created is not None:
            _write_secret(key_file, created.api_key)
    if created is not None:
        typer.echo(
            "Created tenant 'default'. Its API key (shown once; saved to "
            f"{key_file}, mode 0600):\n\n  {created.api_key}\n"
        )
    elif key_file.exists():
        typer.echo(f"Using the API key in {key_file}.")
    else:
        typer.echo(
            "Tenants exist but no key file: issue one with 'cescale tenants issue-key default'."
        )
        return
    base = f"http://{host}:{port}"
    typer.echo(
        "Submit the sample HPO job once the service is up:\n\n"
        f"  curl -sS -X POST {base}/v1/jobs \\\n"
        f'    -H "Authorization: Bearer $(cat {key_file})" \\\n'
        "    -H 'Content-Type: application/json' \\\n"
        f"    -d @{SAMPLE_JOB}\n\n"
        f"API docs: {base}/docs\n"
    )


def _write_secret(path: Path, secret: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    os.chmod(path, 0o600)
