"""Flower, never without authentication: refuses to start unless FLOWER_BASIC_AUTH is user:password."""

from __future__ import annotations

import os
import sys


def main() -> int:
    auth = os.environ.get("FLOWER_BASIC_AUTH", "")
    user, _, password = auth.partition(":")
    if not user or not password:
        print("flower: refusing to start without authentication; set FLOWER_BASIC_AUTH=user:password",
              file=sys.stderr)
        return 2
    port = os.environ.get("FLOWER_PORT", "5555")
    # Flower reads FLOWER_BASIC_AUTH from the environment itself, so the password never shows in `ps`.
    args = ["celery", "-A", "jobs.worker", "flower", f"--port={port}", "--address=127.0.0.1"]
    os.execvp(args[0], args)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
