"""Operator commands: the dev stack, database chores, activation codes, roles.

They run beside `make run` and read `.data/stack.env` (through Settings), so they reach the
same Redis and MongoDB as the running stack.
"""

from __future__ import annotations

import typer

from cli.app import cli
from shared.config import get_settings

dev = typer.Typer(help="The local development stack.", no_args_is_help=True)
codes_cli = typer.Typer(help="Activation codes.", no_args_is_help=True)
admin_cli = typer.Typer(help="Administration.", no_args_is_help=True)
db_cli = typer.Typer(help="Database chores.", no_args_is_help=True)
cli.add_typer(dev, name="dev")
cli.add_typer(codes_cli, name="codes")
cli.add_typer(admin_cli, name="admin")
cli.add_typer(db_cli, name="db")


def _db():
    from shared.stores import mongo_db

    settings = get_settings()
    if not settings.mongo_url:
        typer.echo("MONGO_URL is not set and no dev stack is running (start one with `make run`).", err=True)
        raise typer.Exit(2)
    return mongo_db(settings)


@dev.command("up")
def dev_up(api_port: int = typer.Option(None, help="API port (default $API_PORT or 8000)"),
           flower_port: int = typer.Option(None, help="Flower port (default $FLOWER_PORT or 5555)")) -> None:
    """Start the whole stack in the foreground; Ctrl-C stops all of it."""
    from cli.devstack import run_stack

    raise typer.Exit(run_stack(api_port, flower_port))


@db_cli.command("init")
def db_init() -> None:
    """Create every index (idempotent)."""
    from shared.bootstrap import ensure_indexes

    ensure_indexes(_db())
    typer.echo("indexes ready")


@codes_cli.command("create")
def codes_create(count: int = typer.Option(1, "--count", "-n", min=1, max=10000)) -> None:
    """Create activation codes; prints one per line."""
    from shared.users.codes import create_codes

    for code in create_codes(_db(), count, get_settings().activation_code_ttl_days, created_by="cli"):
        typer.echo(code)


@admin_cli.command("grant")
def admin_grant(username: str) -> None:
    """Give USERNAME the admin role."""
    from shared.users.repository import set_role

    if not set_role(_db(), username, "admin"):
        typer.echo(f"no user named {username!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"{username} is now an admin")


@admin_cli.command("revoke")
def admin_revoke(username: str) -> None:
    """Take the admin role away from USERNAME."""
    from shared.users.repository import set_role

    if not set_role(_db(), username, "user"):
        typer.echo(f"no user named {username!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"{username} is now a regular user")


@cli.command()
def reconcile() -> None:
    """Reconcile the provider's voices with our records now, and print what changed."""
    import json

    from shared.pool.maintenance import reconcile as run
    from shared.pool.service import VoicePool
    from shared.providers.factory import voice_provider
    from shared.stores import redis_client

    settings = get_settings()
    db = _db()
    report = run(VoicePool(db, redis_client(settings), voice_provider(settings, db), settings))
    typer.echo(json.dumps(report, indent=2, default=str))
