"""The one cache-tag helper: how keys and tags are named.

A key is `icdq:<kind>:<release>:<rest>`; it is registered under the tags of its release, its kind
and (when it has one) its chapter, so a new release drops exactly the old release's entries.
"""

from __future__ import annotations

import hashlib

PREFIX = "icdq:"
_TAG = PREFIX + "tag:"


def tag_key(tag: str) -> str:
    """The Redis set holding the keys of one tag."""
    return tag if tag.startswith(_TAG) else _TAG + tag


def release_tag(release_id: int) -> str:
    return f"release:{release_id}"


def kind_tag(kind: str) -> str:
    return f"kind:{kind}"


def chapter_tag(chapter: int) -> str:
    return f"chapter:{chapter}"


def tags_for(kind: str, release_id: int, chapter: int | None = None) -> list[str]:
    tags = [release_tag(release_id), kind_tag(kind)]
    if chapter is not None:
        tags.append(chapter_tag(chapter))
    return tags


def kind_prefix(kind: str) -> str:
    """What every key of one kind starts with."""
    return f"{PREFIX}{kind}:"


def cache_key(kind: str, release_id: int, *parts: object) -> str:
    """A key for `parts`; long or free-text parts are hashed so keys stay short and safe."""
    rest = ":".join(str(p) for p in parts)
    if len(rest) > 64 or any(c in rest for c in " *?[]\\"):
        rest = hashlib.blake2b(rest.encode(), digest_size=16).hexdigest()
    return f"{kind_prefix(kind)}{release_id}:{rest}"


def code_key(code: str) -> str:
    """A code's lookup entry: not per release, so the batch path can MGET before knowing the release;
    tagged with the release its data came from, so a new release drops it."""
    return f"{PREFIX}code:{code}"
