"""`icdq keys create NAME [--tier T]`: a new API key, printed once and stored hashed."""

from __future__ import annotations

import click


@click.group()
def keys() -> None:
    """API keys (X-API-Key)."""


@keys.command("create")
@click.argument("name")
@click.option("--tier", default="standard", show_default=True,
              type=click.Choice(["free", "standard", "bulk"]), help="Rate-limit tier.")
def create(name: str, tier: str) -> None:
    """Create a key; once any key exists, every API call needs one."""
    from api.auth import create_key
    from db import migrate
    from db.engine import transaction
    from ops import config
    from ops.embedded import services

    with services(config.load()) as endpoints:
        migrate.upgrade(endpoints.database_url)
        with transaction(endpoints.database_url) as conn:
            key = create_key(conn, name, tier)
    click.echo(key)
    click.echo(f"key {name!r} ({tier}) created; it is shown only now. Send it as X-API-Key.", err=True)
