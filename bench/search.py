"""`make bench-search`: ranking quality on the evaluation set, then server-side latency and throughput
of /v1/search against /healthz, from a gunicorn API this script starts (and stops) itself.

Latency is the server's own `Server-Timing: app;dur=` (the time spent in the server), measured at
16 concurrent keep-alive clients on loopback: first-time queries (the search cache emptied, each
query new), then the same queries again (cached).
"""

from __future__ import annotations

import http.client
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

from rich.console import Console
from rich.table import Table

from bench.quality import evaluate, load_cases
from coding.terms import tokens

ROOT = Path(__file__).resolve().parent.parent
CLIENTS = 16
THREADS = os.environ.get("BENCH_THREADS", "8")  # per gunicorn worker; the Procfile runs 2 x 8
DISTINCT_QUERIES = 3000
console = Console()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_api(env: dict[str, str], port: int) -> subprocess.Popen:
    # Rate limits off: this measures the engine, not the per-key quota.
    command = [str(Path(sys.executable).parent / "gunicorn"), "--bind", f"127.0.0.1:{port}",
               "--worker-class", "gthread", "--workers", "2", "--threads", THREADS, "--keep-alive", "30",
               "--log-level", "warning", "api:create_app(RATELIMIT_ENABLED=False)"]
    return subprocess.Popen(command, cwd=ROOT, env={**env, "PORT": str(port)}, start_new_session=True)


def _get(conn: http.client.HTTPConnection, path: str) -> tuple[int, float, bytes]:
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read()
    timing = response.getheader("Server-Timing", "app;dur=0").split("dur=")[1]
    return response.status, float(timing), body


def _wait_ready(port: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            fast = 0
            for _ in range(40):  # both workers' indexes built: searches answer quickly
                status, dur, _ = _get(conn, "/v1/search?q=warm%20up%20" + str(random.random()))
                fast = fast + 1 if status == 200 and dur < 50 else 0
                if fast >= 20:
                    return
            conn.close()
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("the API did not become ready")


def _run(port: int, paths: list[str]) -> tuple[list[float], float, int]:
    """Spread paths over CLIENTS keep-alive connections; (server ms per request, req/s, errors)."""
    durations: list[float] = []
    errors = [0]
    lock = threading.Lock()
    chunks = [paths[i::CLIENTS] for i in range(CLIENTS)]

    def client(chunk: list[str]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = []
        for path in chunk:
            status, dur, _ = _get(conn, path)
            mine.append(dur)
            if status != 200:
                errors[0] += 1
        conn.close()
        with lock:
            durations.extend(mine)

    threads = [threading.Thread(target=client, args=(c,)) for c in chunks]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return durations, len(paths) / (time.perf_counter() - started), errors[0]


def _queries(database_url: str, cases: list) -> list[str]:
    """Distinct, realistic queries: the evaluation phrases, then 2-3 words of random descriptions."""
    from db.engine import get_engine

    with get_engine(database_url).connect() as conn:
        titles = [r[0] for r in conn.exec_driver_sql(
            "SELECT description FROM icd_codes WHERE active ORDER BY random() LIMIT 20000")]
    rng = random.Random(7)
    seen, out = set(), []
    for phrase in [c.phrase for c in cases]:
        if phrase.lower() not in seen:
            seen.add(phrase.lower())
            out.append(phrase)
    for title in titles:
        words = [w.strip(",()[]") for w in title.lower().split() if len(w) > 3]
        if len(words) < 2:
            continue
        query = " ".join(rng.sample(words, min(len(words), rng.choice((1, 2, 2, 3)))))
        if query not in seen and tokens(query):
            seen.add(query)
            out.append(query)
        if len(out) >= DISTINCT_QUERIES:
            break
    return out


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> None:
    from ops import config
    from ops.embedded import EmbeddedServices, export_env
    from ops.setup import prepare_database

    settings = config.load()
    services = EmbeddedServices(settings)
    endpoints = services.start()
    api = None
    try:
        prepare_database(endpoints.database_url, echo=lambda *_: None)
        env = {**os.environ, **export_env(endpoints)}
        port = _free_port()
        api = _start_api(env, port)
        _wait_ready(port)
        cases = load_cases()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        import orjson

        def ranked(phrase: str) -> list[str]:
            _, _, body = _get(conn, "/v1/search?" + urlencode({"q": phrase, "limit": 5}))
            return [r["code"] for r in orjson.loads(body).get("results", [])]

        from cache.client import Cache
        from cache.tags import kind_tag

        Cache(endpoints.cache_url).invalidate_tags([kind_tag("search")])
        top1, top5, misses = evaluate(cases, ranked)
        queries = _queries(endpoints.database_url, cases)
        Cache(endpoints.cache_url).invalidate_tags([kind_tag("search")])
        paths = ["/v1/search?" + urlencode({"q": q, "limit": 10}) for q in queries]
        health = ["/healthz"] * len(paths)
        _run(port, health[:500])  # warm connections and threads
        first, first_rps, first_errors = _run(port, paths)
        cached, cached_rps, cached_errors = _run(port, paths)
        healthz, health_rps, _ = _run(port, health)
        _report(len(cases), top1, top5, misses, first, first_rps, cached, cached_rps, healthz, health_rps,
                first_errors + cached_errors)
    finally:
        if api is not None:
            os.killpg(api.pid, signal.SIGTERM)
            api.wait(30)
        services.stop()


def _report(n, top1, top5, misses, first, first_rps, cached, cached_rps, healthz, health_rps, errors) -> None:
    table = Table(title=f"bench-search: {n} evaluation phrases, {len(first)} distinct queries, "
                        f"{CLIENTS} keep-alive clients, gunicorn 2 workers x {THREADS} threads, "
                        f"{os.cpu_count()} CPUs")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("target", justify="right")
    table.add_row("top-1", f"{top1:.3f}", ">= 0.85")
    table.add_row("top-5", f"{top5:.3f}", ">= 0.97")
    table.add_row("first-time p50 / p99 (server ms)", f"{statistics.median(first):.2f} / {_pct(first, 99):.2f}",
                  "p99 <= 10")
    table.add_row("cached p50 / p99 (server ms)", f"{statistics.median(cached):.2f} / {_pct(cached, 99):.2f}",
                  "p99 <= 2")
    table.add_row("/healthz p50 / p99 (server ms)",
                  f"{statistics.median(healthz):.2f} / {_pct(healthz, 99):.2f}", "")
    table.add_row("req/s first-time / cached / healthz", f"{first_rps:.0f} / {cached_rps:.0f} / {health_rps:.0f}", "")
    table.add_row("search (cached) vs /healthz throughput", f"{cached_rps / health_rps:.2f}x", ">= 0.5x")
    table.add_row("search (first-time) vs /healthz throughput", f"{first_rps / health_rps:.2f}x", "")
    table.add_row("non-200 answers", str(errors), "0")
    console.print(table)
    if misses:
        console.print(f"top-1 misses ({len(misses)}):")
        for phrase, acceptable, got, in_top5 in misses:
            console.print(f"  {phrase!r}: want {' '.join(acceptable)}, got {' '.join(got) or '-'}"
                          f"{'' if in_top5 else '  (not in top 5)'}")


if __name__ == "__main__":
    main()
