"""What a newly loaded release invalidates (filled in by the cache module)."""

from __future__ import annotations


def release_loaded(result) -> None:
    return None
