"""The `icdq` command line."""

from __future__ import annotations

import os
import subprocess
import sys

import click

from ops import config


def _settings() -> config.Settings:
    return config.load()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """icdq: ICD-10-CM coding for bulk claim files."""


@main.command()
@click.option("--only", multiple=True, help="Run only these Procfile entries (web, worker, beat, flower).")
def up(only: tuple[str, ...]) -> None:
    """Run the whole stack in the foreground; Ctrl-C stops all of it."""
    from ops.stack import AlreadyRunning, run_stack

    try:
        sys.exit(run_stack(_settings(), list(only) or None, echo=click.echo))
    except AlreadyRunning as err:
        raise click.ClickException(str(err)) from None


@main.command()
def migrate() -> None:
    """Bring the schema up to date."""
    from db import migrate as migrations
    from ops.embedded import services

    with services(_settings()) as endpoints:
        migrations.upgrade(endpoints.database_url)
    click.echo("schema is up to date")


@main.command()
@click.argument("path", required=False, type=click.Path(dir_okay=False))
def load(path: str | None) -> None:
    """Load an ICD-10-CM release (CDC tabular XML); default: the bundled April 2026 release."""
    from coding.tabular import ReleaseFormatError
    from db import migrate as migrations
    from db.loader import ReleaseConflict
    from ops.embedded import services
    from ops.setup import load as load_release

    with services(_settings()) as endpoints:
        migrations.upgrade(endpoints.database_url)
        try:
            result = load_release(endpoints.database_url, path)
        except (ReleaseFormatError, ReleaseConflict) as err:
            raise click.ClickException(f"release not loaded: {err}") from None
    verb = "loaded" if result.created else "already loaded, nothing changed:"
    click.echo(f"{verb} {result.name}: {result.codes:,} codes, {result.billable:,} billable "
               f"({result.seconds:.1f} s)")


@main.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def dbshell(args: tuple[str, ...]) -> None:
    """psql on the configured database (embedded included); ARGS go to psql."""
    from db.engine import libpq_url
    from ops.embedded import _pg_bin, services

    psql = str(_pg_bin() / "psql")
    with services(_settings()) as endpoints:
        code = subprocess.call([psql, libpq_url(endpoints.database_url), *args])
    sys.exit(code)


def _register_client_commands() -> None:
    from ops import client_commands

    for command in client_commands.COMMANDS:
        main.add_command(command)


_register_client_commands()

if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
