"""`icdq code FILE`: submit a claim file to the API, show progress, write the results, summarize."""

from __future__ import annotations

import time
from pathlib import Path

import click
import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from ops import config
from ops.client import api_client, checked

console = Console(stderr=True)
FINAL = ("succeeded", "failed", "cancelled")


def _submit(client: httpx.Client, path: Path) -> dict:
    with open(path, "rb") as handle:
        return checked(client.post("/v1/jobs", data={"kind": "claims"},
                                   files={"file": (path.name, handle, "text/csv")}))


def _follow(client: httpx.Client, job: dict) -> dict:
    columns = (TextColumn("coding"), BarColumn(), MofNCompleteColumn(), TextColumn("lines"),
               TextColumn("{task.fields[rate]:,.0f} lines/s"), TimeElapsedColumn(), TextColumn("ETA"),
               TimeRemainingColumn())
    started = time.monotonic()
    with Progress(*columns, console=console, transient=False) as progress:
        bar = progress.add_task("coding", total=None, rate=0)
        while job["state"] not in FINAL:
            time.sleep(0.3)
            job = checked(client.get(f"/v1/jobs/{job['id']}"))
            done = job["progress"]["done"]
            progress.update(bar, completed=done, total=job["progress"]["total"],
                            rate=done / max(time.monotonic() - started, 1e-6))
    return job


def _download(client: httpx.Client, job_id: str, out: Path, fmt: str) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with client.stream("GET", f"/v1/jobs/{job_id}/results", params={"format": fmt}) as response:
        if response.status_code >= 400:
            response.read()
            checked(response)
        with open(out, "wb") as handle:
            for block in response.iter_bytes():
                handle.write(block)


def _summary(job: dict, out: Path, seconds: float) -> Table:
    status, edits = job["counts"]["status"], job["counts"]["edits"]
    table = Table(title=f"job {job['id']}: {job['state']}", show_header=False)
    table.add_row("lines", f"{job['progress']['done']:,} of {job['progress']['total'] or 0:,}")
    for name in ("ok", "warning", "error"):
        table.add_row(f"claims {name}", f"{status.get(name, 0):,}")
    for edit, count in sorted(edits.items(), key=lambda kv: -kv[1])[:8]:
        table.add_row(f"  {edit}", f"{count:,}")
    table.add_row("time", f"{seconds:.1f} s ({job['progress']['done'] / max(seconds, 1e-6):,.0f} lines/s)")
    table.add_row("results", str(out))
    return table


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the results (default: FILE.results.FORMAT).")
@click.option("--format", "fmt", type=click.Choice(["csv", "ndjson"]), default="ndjson", show_default=True)
def code(file: Path, out: Path | None, fmt: str) -> None:
    """Code a claim file through the API: progress, results file, summary."""
    out = out or file.with_suffix(f".results.{fmt}")
    started = time.monotonic()
    try:
        with api_client(timeout=300) as client:
            job = _follow(client, _submit(client, file))
            _download(client, job["id"], out, fmt)
    except httpx.TransportError as err:
        raise click.ClickException(f"cannot reach the icdq API at {config.load().api_url} "
                                   f"({type(err).__name__}); is `icdq up` running?") from None
    Console().print(_summary(job, out, time.monotonic() - started))
    if job["state"] != "succeeded":
        raise click.ClickException(f"the job {job['state']}: {job.get('error') or 'see the results so far'}")
