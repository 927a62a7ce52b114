"""`make bench-claims`: a generated 1,000,000-line claim file over HTTP to a running stack on embedded
services; upload-to-results-ready lines/s against the database floor measured in the same run.

The floor: one connection sending the same codes in 50,000-code arrays to `unnest(...) JOIN` the
code table. Also checks every line comes back exactly once and reports peak worker RSS.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil
from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
LINES = int(os.environ.get("ICDQ_BENCH_LINES", 1_000_000))


def database_floor(database_url: str, path: Path) -> float:
    """Lines/s when the database only has to find every code of the file (50,000 per round trip)."""
    from coding.claims import normalize
    from db.engine import get_engine

    codes = []
    with open(path) as handle:
        next(handle)
        for line in handle:
            codes += [normalize(c) for c in line.split(",")[4:10] if c.strip()]
    started = time.perf_counter()
    with get_engine(database_url).connect() as conn:
        conn.execute(text("SET jit = off"))
        for i in range(0, len(codes), 50_000):
            conn.execute(text("SELECT count(*) FROM unnest(CAST(:c AS text[])) AS q(code) "
                              "JOIN icd_codes c ON c.code = q.code"), {"c": codes[i:i + 50_000]}).scalar()
    return LINES / (time.perf_counter() - started)


class RssWatch(threading.Thread):
    def __init__(self, pattern: str) -> None:
        super().__init__(daemon=True)
        self.pattern, self.peak, self.stop = pattern, 0, False

    def run(self) -> None:
        while not self.stop:
            for p in psutil.process_iter(["cmdline", "memory_info"]):
                if self.pattern in " ".join(p.info["cmdline"] or ()):
                    self.peak = max(self.peak, p.info["memory_info"].rss)
            time.sleep(0.2)


def main() -> int:
    from examples.make_sample import write
    from ops import config
    from ops.embedded import EmbeddedServices, _free_port

    os.environ.setdefault("ICDQ_STATE_DIR", str(ROOT / "var" / "bench"))
    settings = config.load()
    path = settings.state_dir / "bench_claims.csv"
    if not path.exists():
        print(f"generating {LINES:,} lines -> {path}")
        write(path, LINES, seed=11, bad_rate=0.03, text_rate=0.0)
    port = _free_port()
    env = {**os.environ, "PORT": str(port), "FLOWER_PORT": str(_free_port()), "PYTHONUNBUFFERED": "1"}
    log = open(settings.state_dir / "bench-stack.log", "w")  # noqa: SIM115 - lives as long as the stack
    stack = subprocess.Popen([sys.executable, "-m", "ops.cli", "up", "--only", "web", "--only", "worker",
                              "--only", "beat"], env=env, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
    try:
        from ops.demo import stop, wait_ready

        api = f"http://127.0.0.1:{port}"
        wait_ready(api, stack)
        endpoints = EmbeddedServices(settings).endpoints()
        floor = database_floor(endpoints.database_url, path)
        watch = RssWatch("jobs.worker worker")
        watch.start()
        started = time.perf_counter()
        with httpx.Client(base_url=api, timeout=600) as client, open(path, "rb") as handle:
            job = client.post("/v1/jobs", data={"kind": "claims"}, files={"file": ("b.csv", handle)}).json()
            uploaded = time.perf_counter() - started
            while job["state"] not in ("succeeded", "failed", "cancelled"):
                time.sleep(0.2)
                job = client.get(f"/v1/jobs/{job['id']}").json()
            elapsed = time.perf_counter() - started
            seen = set()
            count = 0
            with client.stream("GET", f"/v1/jobs/{job['id']}/results") as response:
                for line in response.iter_lines():
                    if line:
                        count += 1
                        seen.add(int(line.split('"line":', 1)[1].split(",", 1)[0]))
        watch.stop = True
        rate = LINES / elapsed
        exactly_once = count == len(seen) == LINES == job["progress"]["done"]
        print("\n| measure | value |\n|---|---|")
        print(f"| lines | {LINES:,} |")
        print(f"| job state | {job['state']} |")
        print(f"| upload (HTTP, stored in PostgreSQL) | {uploaded:.1f} s |")
        print(f"| upload to results ready | {elapsed:.1f} s |")
        print(f"| lines/s (upload to results ready) | {rate:,.0f} |")
        print(f"| database floor lines/s (50,000-code arrays, unnest JOIN) | {floor:,.0f} |")
        print(f"| ratio to floor | {rate / floor:.2f} (goal >= 0.5) |")
        print(f"| every line back exactly once | {'yes' if exactly_once else 'NO'} ({count:,} records) |")
        print(f"| peak worker RSS | {watch.peak / 2**20:,.0f} MB (goal <= 300) |")
        return 0 if exactly_once else 1
    finally:
        stop(stack)
        log.close()


if __name__ == "__main__":
    sys.exit(main())
