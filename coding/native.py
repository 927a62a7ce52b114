"""The compiled claim path: the modules setup.py compiles with mypyc, and the guard that runs their
Python source instead when there is no compiled build or it is older than the source.

The claim coding loop is plain Python; compiled, a chunk codes ~1.7x faster with the same output
(tests/coding/test_native.py). A machine without a C compiler installs and runs the same source
interpreted. Compiled modules sit beside their sources; setup.py records the digest of each source
it compiled in `native.json`, and importing `coding` compares them, so an edited source runs as
Python (with a warning) until `make install` compiles it again, never a stale build.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.util
import json
import sys
import warnings
from pathlib import Path

COMPILED = ("coding.claim_csv", "coding.claims")  # what setup.py compiles, with mypyc
MANIFEST = "native.json"  # {module: sha256 of the source it was compiled from}
_HERE = Path(__file__).resolve().parent


def source(module: str, root: Path = _HERE.parent) -> Path:
    return root.joinpath(*module.split(".")).with_suffix(".py")


def digests(root: Path = _HERE.parent) -> dict[str, str]:
    return {m: hashlib.sha256(source(m, root).read_bytes()).hexdigest() for m in COMPILED}


class _SourceFinder(importlib.abc.MetaPathFinder):
    """Finds the compiled modules' .py sources ahead of their compiled extensions."""

    def find_spec(self, fullname, path=None, target=None):  # noqa: ANN001 - the finder protocol
        if fullname in COMPILED:
            return importlib.util.spec_from_file_location(fullname, source(fullname))
        return None


def use_source() -> None:
    """Import the compiled modules from their Python source from now on (they must not be imported
    yet): for a stale build, and for comparing the two (tests, bench)."""
    if not any(isinstance(f, _SourceFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _SourceFinder())


def compiled() -> bool:
    """Whether the claim path runs compiled in this process (after its modules are imported)."""
    files = [getattr(sys.modules.get(module), "__file__", None) or "" for module in COMPILED]
    return all(file and not file.endswith(".py") for file in files)


def check() -> None:
    """Run the Python source of any compiled module whose source changed since it was compiled."""
    try:
        built = json.loads((_HERE / MANIFEST).read_text())
    except (OSError, ValueError):
        return  # not compiled here: Python imports the sources anyway
    if built != digests():
        use_source()
        warnings.warn("the compiled claim modules are older than their source; running the source "
                      "(slower) until `make install` compiles it again", RuntimeWarning, stacklevel=2)


def describe() -> str:
    """How this process runs the claim path, in words (make install and the benchmark print it)."""
    import coding.claims  # noqa: F401 - what is asked about is what an import gives

    if compiled():
        return "compiled with mypyc"
    if (_HERE / MANIFEST).exists():
        return "Python source (the compiled build is older than it: `make install` compiles it again)"
    return "Python source (not compiled: no C compiler or mypyc here; `pip install -v` shows why)"
