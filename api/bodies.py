"""JSON request bodies of the form {"<field>": [items...]}: one reader, one set of error codes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import request

from api.errors import ApiError


@dataclass(frozen=True)
class ListBody:
    field: str  # "codes"
    example: str  # '"E11.9"', shown in the error message
    limit: int  # more is 413: the caller should submit a job of `job_kind`
    too_many_code: str
    job_kind: str
    item_code: str  # the error code of a bad item
    item_rule: str  # what every item must be, in words
    item_ok: Callable[[object], bool]

    def read(self) -> list:
        body = request.get_json(silent=True)
        items = body.get(self.field) if isinstance(body, dict) else None
        if not isinstance(items, list) or not items:
            raise ApiError(400, "INVALID_REQUEST", f'expected a JSON body {{"{self.field}": [{self.example}, ...]}}')
        if len(items) > self.limit:
            raise ApiError(413, self.too_many_code,
                           f"at most {self.limit:,} {self.field} a call; submit a {self.job_kind} job")
        if not all(self.item_ok(item) for item in items):
            raise ApiError(400, self.item_code, f"every {self.item_rule}")
        return items
