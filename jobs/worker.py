"""Worker and beat entry point: `celery -A jobs.worker worker`."""

import contextlib
import ctypes
import gc
import logging
import time

from celery.signals import worker_init

from api import create_app

flask_app = create_app()
celery_app = flask_app.extensions["celery"]
log = logging.getLogger("icdq.jobs")


@worker_init.connect
def warm_claim_facts(**_) -> None:
    """Before the pool forks: build the claim facts of every code of the active release once, so
    every pool process starts with them (shared copy-on-write) rather than each building them in its
    first chunks (measured ~1.5-2 s a process: fetching and building 98,000 codes' facts). A worker
    that cannot reach the database yet starts cold; its processes build what they meet, as before."""
    from coding.claim_lookup import warm_facts
    from db.engine import get_engine

    url = flask_app.config["DATABASE_URL"]
    started = time.perf_counter()
    try:
        with get_engine(url).connect() as conn:
            count = warm_facts(conn)
    except Exception as err:  # noqa: BLE001 - a warm-up, never a reason not to start
        log.warning("claim facts not prepared at start (%s); pool processes build them as needed",
                    type(err).__name__)
        return
    finally:
        get_engine(url).dispose()  # no connection of the parent's is left for the pool to inherit
    gc.collect()
    gc.freeze()  # long-lived: kept out of the collector's walks (and so unshared pages) in every process
    _trim_heap()
    log.info("claim facts of %d codes prepared in %.1f s", count, time.perf_counter() - started)


def _trim_heap() -> None:
    """Hand the heap's free pages back to the system before forking: every pool process would
    otherwise count the parent's freed memory (the rows the warm-up fetched) in its own RSS."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim this way
        ctypes.CDLL("libc.so.6").malloc_trim(0)
