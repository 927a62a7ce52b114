"""Compiles the claim coding path with mypyc where a C compiler is present (coding/native.py says
why and how a stale build is kept from running). Without a compiler, or if compiling fails, the
install goes on and the same modules run as Python."""

import json
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
from coding.native import COMPILED, MANIFEST, digests, source  # noqa: E402 - needs ROOT on the path


def _warn(what: str, err: BaseException) -> None:
    print(f"icdq: {what} ({type(err).__name__}: {err}); the claim path runs as Python", file=sys.stderr)


class OptionalBuildExt(build_ext):
    """Builds the compiled modules if it can, then records what it compiled from."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as err:  # noqa: BLE001 - no compiler, no headers: still a working install
            _warn("compiling failed", err)
            return
        manifest = Path(self.get_ext_fullpath(COMPILED[0])).parent / MANIFEST
        manifest.write_text(json.dumps(digests(ROOT), indent=1) + "\n")


def extensions() -> list:
    try:
        from mypyc.build import mypycify

        return mypycify([str(source(m, ROOT).relative_to(ROOT)) for m in COMPILED], group_name="coding.compiled")
    except (Exception, SystemExit) as err:  # noqa: BLE001 - mypyc missing or a type error: run as Python
        _warn("mypyc could not compile", err)
        return []


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
