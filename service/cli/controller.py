"""`cescale controller`: the control loop as its own process (any number of replicas)."""

from __future__ import annotations

import signal

import typer

from service.settings import get_settings


def register(app: typer.Typer) -> None:
    app.command("controller")(controller_command)


def controller_command(
    interval_s: float | None = typer.Option(
        None, "--interval", min=0.01, help="Seconds between ticks (default: setting)."
    ),
    owner: str | None = typer.Option(None, "--owner", help="Lease owner id (default: random)."),
    log_level: str | None = typer.Option(
        None,
        "--log-level",
        help="Log level (default: cescale --log-level, CESCALE_LOG_LEVEL, else info).",
        show_default=False,
    ),
) -> None:
    """Run the control loop until SIGINT/SIGTERM. Replicas share jobs through leases."""
    from service import logs
    from service.control.loop import Controller
    from service.control.service import LoopService
    from service.database import Database
    from service.platform.factory import build_platform

    logs.configure(log_level)
    settings = get_settings()
    database = Database(settings)
    platform = build_platform(settings)
    controller = Controller(database, platform, settings, owner=owner)
    service = LoopService(controller, interval_s or settings.controller_interval_s)
    signal.signal(signal.SIGTERM, lambda *_: service.stop())
    signal.signal(signal.SIGINT, lambda *_: service.stop())
    typer.echo(f"controller {controller.owner} on {settings.backend}, every {service.interval_s}s")
    try:
        service.start()
    finally:
        platform.close()
        database.dispose()
