"""`make demo`: start the whole stack, run the main job through the HTTP API, stop what it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

from ops import config
from ops.embedded import _free_port

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "claims_sample.csv"


def wait_ready(api_url: str, stack: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stack.poll() is not None:
            raise SystemExit(f"the stack exited early (code {stack.returncode}); see its log above")
        try:
            if httpx.get(f"{api_url}/readyz", timeout=3).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the stack was not ready within {timeout:.0f} s")


def stop(stack: subprocess.Popen) -> None:
    if stack.poll() is None:
        stack.send_signal(signal.SIGINT)
        try:
            stack.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(stack.pid, signal.SIGKILL)
            stack.wait()


def run_demo_job(env: dict[str, str], state_dir: Path) -> int:
    icdq = [sys.executable, "-m", "ops.cli"]
    if SAMPLE.exists():
        out = state_dir / "demo" / "claims_results.csv"
        out.parent.mkdir(parents=True, exist_ok=True)
        code = subprocess.call([*icdq, "code", str(SAMPLE), "-o", str(out), "--format", "csv"], env=env)
        if code == 0:
            print(f"\nresults: {out}")
        return code
    return subprocess.call([*icdq, "lookup", "E11.9", "e119", "I10", "S52.501A", "S52.501", "G35",
                            "M54.50", "E14.9", "XYZ"], env=env)


def main() -> int:
    settings = config.load()
    port, flower_port = _free_port(), _free_port()
    api_url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PORT": str(port), "FLOWER_PORT": str(flower_port), "ICDQ_API_URL": api_url,
           "ICDQ_STATE_DIR": str(settings.state_dir), "PYTHONUNBUFFERED": "1"}
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    log_path = settings.state_dir / "demo-stack.log"
    print(f"starting the stack (embedded services unless DATABASE_URL/REDIS_URL are set); log: {log_path}")
    with open(log_path, "w") as log:
        stack = subprocess.Popen([sys.executable, "-m", "ops.cli", "up"], env=env, stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True)
        try:
            started = time.monotonic()
            wait_ready(api_url, stack)
            print(f"stack ready in {time.monotonic() - started:.1f} s at {api_url}\n")
            code = run_demo_job(env, settings.state_dir)
        except BaseException:
            print(log_path.read_text()[-3000:], file=sys.stderr)
            raise
        finally:
            print("\nstopping the stack ...")
            children = psutil.Process(stack.pid).children(recursive=True) if stack.poll() is None else []
            stop(stack)
    leftover = [p.pid for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    print("stopped; nothing left running" if not leftover else f"still running: pids {leftover}")
    return code


if __name__ == "__main__":
    sys.exit(main())
