"""`cescale tenants …`: tenants and their API keys."""

from __future__ import annotations

import json

import typer

from service.cli.context import unit_of_work

app = typer.Typer(help="Tenants and API keys.", no_args_is_help=True)

JSON_OPTION = typer.Option(False, "--json", help="Print machine-readable JSON.")


@app.command("create")
def create(name: str, as_json: bool = JSON_OPTION) -> None:
    """Create tenant NAME and print its API key (shown only this once)."""
    from service.settings import get_settings
    from service.tenants.service import TenantService

    with unit_of_work() as session:
        issued = TenantService(session, get_settings().api_key_prefix).create(name)
    _print_key(issued.tenant.id, issued.tenant.name, issued.api_key, as_json)


@app.command("issue-key")
def issue_key(name: str, as_json: bool = JSON_OPTION) -> None:
    """Issue an additional API key for tenant NAME (shown only this once)."""
    from service.settings import get_settings
    from service.tenants.service import TenantService

    with unit_of_work() as session:
        issued = TenantService(session, get_settings().api_key_prefix).issue_key(name)
    _print_key(issued.tenant.id, issued.tenant.name, issued.api_key, as_json)


@app.command("revoke-keys")
def revoke_keys(name: str) -> None:
    """Revoke every API key of tenant NAME."""
    from service.tenants.service import TenantService

    with unit_of_work() as session:
        count = TenantService(session).revoke_keys(name)
    typer.echo(f"revoked {count} key(s) of {name}")


@app.command("disable")
def disable(name: str) -> None:
    """Disable tenant NAME: its keys get 403 until it is enabled again."""
    from service.tenants.service import TenantService

    with unit_of_work() as session:
        TenantService(session).set_disabled(name, True)
    typer.echo(f"disabled {name}")


@app.command("enable")
def enable(name: str) -> None:
    """Enable tenant NAME again."""
    from service.tenants.service import TenantService

    with unit_of_work() as session:
        TenantService(session).set_disabled(name, False)
    typer.echo(f"enabled {name}")


@app.command("list")
def list_tenants(as_json: bool = JSON_OPTION) -> None:
    """List tenants."""
    from service.tenants.service import TenantService

    with unit_of_work() as session:
        rows = [
            {
                "tenant_id": str(t.id),
                "name": t.name,
                "created_at": t.created_at.isoformat(),
                "disabled": t.disabled_at is not None,
            }
            for t in TenantService(session).list()
        ]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for row in rows:
        flag = " (disabled)" if row["disabled"] else ""
        typer.echo(f"{row['tenant_id']}  {row['name']}{flag}")


def _print_key(tenant_id, name: str, api_key: str, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({"tenant_id": str(tenant_id), "name": name, "api_key": api_key}))
        return
    typer.echo(f"tenant {name} ({tenant_id})")
    typer.echo(f"API key (shown once, store it now): {api_key}")
