"""Result records as CSV rows, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

import orjson

CSV_COLUMNS = ("line", "claim_id", "status", "codes", "edits", "messages", "suggestions")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralize(cell: str) -> str:
    """A cell a spreadsheet would run as a formula gets a leading apostrophe (OWASP CSV injection)."""
    return "'" + cell if cell.startswith(_FORMULA_START) else cell


def csv_row(record: dict) -> list[str]:
    codes = ";".join(d.get("code") or d.get("input") or "" for d in record.get("diagnoses", ()))
    edits = ";".join(e["edit"] + (f"({' '.join(e['codes'])})" if e["codes"] else "")
                     for e in record.get("edits", ()))
    messages = " | ".join(e["message"] for e in record.get("edits", ()))
    suggestions = ";".join(f"{s['code']} ({s['confidence']})" for s in record.get("suggestions", ()))
    if "symptom" in record or "input" in record:  # lookup / analyze batches
        codes = record.get("code") or record.get("symptom") or ""
        messages = record.get("description") or record.get("input") or ""
    cells = [str(record["line"]), record.get("claim_id", ""), record["status"], codes, edits, messages,
             suggestions]
    return [neutralize(c) for c in cells]


def csv_lines(records: Iterable[str], header: bool = True) -> Iterator[str]:
    """JSON records -> CSV text in blocks of a few hundred rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if header:
        writer.writerow(CSV_COLUMNS)
    for n, record in enumerate(records, 1):
        writer.writerow(csv_row(orjson.loads(record)))
        if n % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
