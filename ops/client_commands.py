"""Client commands of `icdq`: the synchronous API calls printed as tables."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from ops.client import call
from ops.code_command import code
from ops.keys_command import keys

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


@click.command()
@click.argument("words", nargs=-1, required=True)
@click.option("--limit", "-n", default=10, show_default=True, help="How many results.")
@click.option("--chapter", type=int, help="Only this chapter (1-22).")
@click.option("--billable/--headers", default=None, help="Only billable codes, or only headers.")
def search(words: tuple[str, ...], limit: int, chapter: int | None, billable: bool | None) -> None:
    """Search codes by words (any order, lay terms, abbreviations, typos) or by code prefix."""
    params: dict[str, object] = {"q": " ".join(words), "limit": limit}
    if chapter is not None:
        params["chapter"] = chapter
    if billable is not None:
        params["billable"] = str(billable).lower()
    answer = call("GET", "/v1/search", params=params)
    table = Table("#", "code", "billable", "score", "description")
    for rank, entry in enumerate(answer["results"], 1):
        table.add_row(str(rank), entry["code"], _yes(entry["billable"]), f"{entry['score']:.2f}",
                      entry["description"])
    console.print(table if answer["results"] else "no matching code")


@click.command()
@click.argument("symptoms", nargs=-1, required=True)
@click.option("--top", default=3, show_default=True, help="Suggestions shown per symptom.")
def analyze(symptoms: tuple[str, ...], top: int) -> None:
    """Suggest codes for each symptom (quote multi-word symptoms) and summarize them together."""
    answer = call("POST", "/v1/analyze", json={"symptoms": list(symptoms)})
    table = Table("symptom", "code", "confidence", "description")
    for result in answer["results"]:
        suggestions = result["suggestions"][:top] or [{"code": "", "confidence": 0, "description": "no match"}]
        for i, entry in enumerate(suggestions):
            table.add_row(result["symptom"] if i == 0 else "", entry["code"], f"{entry['confidence']:.2f}",
                          entry["description"])
    console.print(table)
    summary = answer["summary"]
    combined = Table("code", "supported by", "confidence", "description",
                     title=f"combined (overall confidence {summary['confidence']:.2f})")
    for entry in summary["codes"][:5]:
        combined.add_row(entry["code"], ", ".join(entry["supported_by"]), f"{entry['confidence']:.2f}",
                         entry["description"])
    console.print(combined)


COMMANDS = [lookup, search, analyze, code, keys]
