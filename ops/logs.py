"""Logging for every process: one line per record, no request or claim content."""

from __future__ import annotations

import logging

_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s"


def setup_logging(level: str = "INFO") -> None:
    root = logging.getLogger()
    if not any(getattr(h, "_icdq", False) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(_FORMAT))
        handler._icdq = True  # type: ignore[attr-defined]  # marks ours, so setup is idempotent
        root.addHandler(handler)
    root.setLevel(level)
