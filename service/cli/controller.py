"""`cescale controller`: the control loop as its own process (any number of replicas)."""

from __future__ import annotations

import signal

import typer


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
    metrics_port: int | None = typer.Option(
        None,
        "--metrics-port",
        min=1,
        max=65535,
        help="Serve Prometheus metrics (this process's loop histograms and the fleet's figures) "
        "on http://<metrics-host>:<port>/metrics. Unauthenticated: bind it to a private address.",
    ),
    metrics_host: str = typer.Option(
        "127.0.0.1", "--metrics-host", help="Address the metrics port listens on."
    ),
) -> None:
    """Run the control loop until SIGINT/SIGTERM. Replicas share jobs through leases."""
    from service import logs
    from service.control.loop import Controller
    from service.control.service import LoopService
    from service.database import Database
    from service.platform.factory import build_platform
    from service.settings import get_settings

    logs.configure(log_level)
    settings = get_settings()
    database = Database(settings)
    platform = build_platform(settings)
    controller = Controller(database, platform, settings, owner=owner)
    service = LoopService(controller, interval_s or settings.controller_interval_s)
    signal.signal(signal.SIGTERM, lambda *_: service.stop())
    signal.signal(signal.SIGINT, lambda *_: service.stop())
    typer.echo(f"controller {controller.owner} on {settings.backend}, every {service.interval_s}s")
    if metrics_port is not None:
        from prometheus_client import start_http_server

        from service.metrics import registry_for

        start_http_server(metrics_port, addr=metrics_host, registry=registry_for(database))
        typer.echo(f"metrics on http://{metrics_host}:{metrics_port}/metrics")
    from apscheduler.schedulers.background import BackgroundScheduler

    from service.events import webhooks

    dispatcher = webhooks.from_settings(database, settings)
    background = BackgroundScheduler()
    webhooks.schedule(background, dispatcher, settings.webhook_interval_s)
    background.start()
    try:
        service.start()
    finally:
        background.shutdown(wait=True)
        dispatcher.close()
        platform.close()
        database.dispose()
