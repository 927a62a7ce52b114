"""Client commands of `icdq`: the synchronous API calls printed as tables."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from ops.client import call

console = Console()


def _yes(flag: bool | None) -> str:
    return "" if flag is None else ("yes" if flag else "no")


@click.command()
@click.argument("codes", nargs=-1, required=True)
def lookup(codes: tuple[str, ...]) -> None:
    """Look codes up (any case, with or without the dot)."""
    answer = call("POST", "/v1/codes/lookup", json={"codes": list(codes)})
    table = Table("input", "code", "valid", "billable", "description")
    for entry in answer["results"]:
        table.add_row(entry.get("input", ""), entry.get("code") or "", _yes(entry.get("valid")),
                      _yes(entry.get("billable")), entry.get("description") or entry.get("message", ""))
    console.print(table)


COMMANDS = [lookup]
