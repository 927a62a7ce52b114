"""The search log: requests append to an in-process buffer; a background thread writes it to the
month-partitioned `search_log` with one COPY per batch, never an INSERT on the request path."""

from __future__ import annotations

import atexit
import contextlib
import logging
import time
from collections import deque
from datetime import UTC, datetime

from db.copy import copy_rows
from db.engine import transaction
from ops.background import BatchFlusher, PerProcess

log = logging.getLogger("icdq.searchlog")

COLUMNS = ("created_at", "query", "results", "latency_ms", "cache_hit")
FLUSH_EVERY = 2.0  # seconds
FLUSH_AT = 500  # rows: a burst is written without waiting for the timer
MAX_BUFFER = 50_000  # beyond this (database down for long) the oldest rows are dropped


class SearchLog(BatchFlusher):
    name = "search-log"
    interval = FLUSH_EVERY
    batch = FLUSH_AT

    def __init__(self, database_url: str) -> None:
        super().__init__()
        self.database_url = database_url
        self.rows: deque[tuple] = deque(maxlen=MAX_BUFFER)

    def add(self, query: str, results: int, latency_ms: float, cache_hit: bool) -> None:
        self.rows.append((datetime.now(UTC), query[:200], results, round(latency_ms, 3), cache_hit))
        self.queued(len(self.rows))

    def failed(self, err: Exception) -> None:
        log.warning("search log not written (%s); will retry", type(err).__name__)
        time.sleep(FLUSH_EVERY)  # the rows stay buffered; don't hammer a database that is down

    def flush(self) -> int:
        """Write everything buffered so far in one COPY; rows stay buffered if it fails."""
        batch = []
        while self.rows and len(batch) < MAX_BUFFER:
            batch.append(self.rows.popleft())
        if not batch:
            return 0
        try:
            with transaction(self.database_url) as conn:
                return copy_rows(conn, "search_log", COLUMNS, batch)
        except Exception:
            self.rows.extendleft(reversed(batch))
            raise


search_log = PerProcess(SearchLog)  # search_log(database_url): the process's log for that database


@atexit.register
def _flush_all() -> None:
    for buffered in list(search_log.instances.values()):
        with contextlib.suppress(Exception):  # at exit there is nobody left to tell
            buffered.flush()
