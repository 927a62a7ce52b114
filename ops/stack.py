"""`icdq up`: the whole stack in the foreground from the Procfile, under one lock per state dir."""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

from ops import config
from ops.embedded import EmbeddedServices, Endpoints, export_env

PROCFILE = Path(__file__).resolve().parent.parent / "Procfile"


class AlreadyRunning(RuntimeError):
    pass


@contextlib.contextmanager
def state_lock(state_dir: Path) -> Iterator[None]:
    """One `icdq up` per state dir; the lock dies with the process, so a crash never wedges it."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "up.lock"
    handle = open(path, "a+")  # noqa: SIM115 - held open for the lifetime of the stack
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        pid = handle.read().strip() or "?"
        handle.close()
        raise AlreadyRunning(
            f"another `icdq up` (pid {pid}) is already running on state dir {state_dir}; "
            "stop it first or set ICDQ_STATE_DIR to another directory") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    try:
        yield
    finally:
        handle.close()


def flower_auth(settings: config.Settings) -> str:
    """FLOWER_BASIC_AUTH, or a generated password kept in the state dir (printed once at start)."""
    if settings.flower_basic_auth:
        return settings.flower_basic_auth
    path = settings.state_dir / "flower-auth"
    if not path.exists():
        path.write_text(f"admin:{secrets.token_urlsafe(12)}")
        path.chmod(0o600)
    return path.read_text().strip()


def read_procfile(path: Path = PROCFILE) -> dict[str, str]:
    entries = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, command = line.partition(":")
            entries[name.strip()] = command.strip()
    return entries


def process_env(settings: config.Settings, endpoints: Endpoints) -> dict[str, str]:
    env = dict(os.environ)
    env.update(export_env(endpoints))
    env.update({
        "ICDQ_STATE_DIR": str(settings.state_dir),
        "PORT": str(settings.port),
        "FLOWER_PORT": str(settings.flower_port),
        "FLOWER_BASIC_AUTH": flower_auth(settings),
        "PATH": f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
        "PYTHONUNBUFFERED": "1",
    })
    return env


def run_stack(settings: config.Settings, only: list[str] | None = None, echo=print) -> int:
    """Start services, migrate, load if empty, run the Procfile; Ctrl-C/SIGTERM stops it all."""
    from honcho.manager import Manager
    from honcho.printer import Printer

    from ops.setup import prepare_database

    with state_lock(settings.state_dir):
        embedded = EmbeddedServices(settings)
        try:
            endpoints = embedded.start()
            prepare_database(endpoints.database_url, echo=echo)
            env = process_env(settings, endpoints)
            echo(f"flower: http://127.0.0.1:{settings.flower_port}  (basic auth user "
                 f"{env['FLOWER_BASIC_AUTH'].split(':', 1)[0]}; password in FLOWER_BASIC_AUTH "
                 f"or {settings.state_dir / 'flower-auth'})")
            manager = Manager(Printer(sys.stdout))
            for name, command in read_procfile().items():
                if only is None or name in only:
                    manager.add_process(name, command, env=env)
            manager.loop()
            # 130/143: honcho's code for "stopped by SIGINT/SIGTERM", which is a clean stop we asked for
            return 0 if manager.returncode in (130, 143) else manager.returncode or 0
        finally:
            embedded.stop()
