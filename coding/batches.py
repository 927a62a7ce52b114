"""The JSON batch jobs: `lookup` (codes) and `analyze` (symptoms), one result record per item."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import orjson

from coding.claims import CODE_SHAPE, Resolver, Suggester, dotted, normalize

BATCH_LIMIT = 100_000


class BatchError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def batch_items(kind: str, body: dict) -> list[str]:
    """The items of a JSON batch request, checked: a non-empty list of strings."""
    field = {"lookup": "codes", "analyze": "symptoms"}[kind]
    items = body.get(field)
    if not isinstance(items, list) or not items or not all(isinstance(i, str) for i in items):
        raise BatchError("INVALID_BATCH", f"{field!r} must be a non-empty list of strings")
    if len(items) > BATCH_LIMIT:
        raise BatchError("BATCH_TOO_LARGE", f"at most {BATCH_LIMIT:,} {field} per job")
    return items


def code_batch(kind: str, first_line: int, items: Sequence[str], resolve: Resolver,
               suggest: Suggester) -> tuple[list[str], dict]:
    if kind == "lookup":
        facts = resolve({normalize(i) for i in items})
        records = []
        for i, raw in enumerate(items):
            code = normalize(raw)
            f = facts.get(code)
            f = None if f is None or f.who_only else f
            records.append({"line": first_line + i, "input": raw,
                            "code": f.dotted if f else (dotted(code) if CODE_SHAPE.match(code) else None),
                            "valid": f is not None, "billable": bool(f and f.billable),
                            "description": f.description if f else None,
                            "status": "ok" if f else "error"})
    else:
        suggestions = suggest(sorted(set(items)))
        records = [{"line": first_line + i, "symptom": s, "suggestions": suggestions.get(s, []),
                    "status": "ok" if suggestions.get(s) else "warning"} for i, s in enumerate(items)]
    statuses = Counter(r["status"] for r in records)
    rows = [orjson.dumps(r).decode() for r in records]
    return rows, {"status": dict(statuses), "edits": {}}
