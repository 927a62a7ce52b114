"""The compiled claim path (coding/native.py): used where it was built, the same answers as the Python
source, and never run stale."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import coding.claims
from coding import native
from coding.claim_csv import chunk_records, data_batches, parse_header
from coding.claim_lookup import resolve_facts
from coding.claims import code_records

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "claims_sample.csv"
BUILT = (ROOT / "coding" / native.MANIFEST).exists()
not_built = pytest.mark.skipif(not BUILT, reason="the claim path is not compiled on this machine")

# Codes the sample file in this process, or with use_source() in a fresh one: the rows, one a line.
CODE_SAMPLE = """
import sys
from coding import native
if sys.argv[1] == "source":
    native.use_source()
from db.engine import get_engine
from tests.coding.test_native import code_sample
with get_engine(sys.argv[2]).connect() as conn:
    rows = code_sample(conn)
print(native.compiled(), len(rows))
sys.stdout.write("\\n".join(rows))
"""


def code_sample(conn) -> list[str]:
    data = SAMPLE.read_bytes()
    layout = parse_header(data.split(b"\n", 1)[0].decode())
    rows: list[str] = []
    for _, first_line, records in chunk_records(data_batches([data]), 2_500):
        rows += code_records(layout, first_line, records, lambda c: resolve_facts(conn, c), lambda t: {})[0]
    return rows


def _run(code: str, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(cwd)}, check=False)


def test_where_a_c_compiler_is_present_the_install_compiles_the_claim_path():
    compiler = (sysconfig.get_config_var("CC") or "").split()
    if not compiler or not shutil.which(compiler[0]):
        pytest.skip("no C compiler here: the claim path runs as Python")
    assert BUILT, "make install found a C compiler but did not compile the claim path (see its output)"
    assert native.compiled(), "the compiled claim path is built but this process imported the Python source"
    assert coding.claims.__file__.endswith(sysconfig.get_config_var("EXT_SUFFIX"))


@not_built
def test_compiled_and_python_source_code_the_sample_file_byte_for_byte_the_same(database_url):
    compiled, source = (_run(CODE_SAMPLE, kind, database_url) for kind in ("compiled", "source"))
    assert compiled.returncode == 0, compiled.stderr[-2000:]
    assert source.returncode == 0, source.stderr[-2000:]
    assert compiled.stdout.split("\n", 1)[0] == "True 10000"
    assert source.stdout.split("\n", 1)[0] == "False 10000"
    assert compiled.stdout.split("\n", 1)[1] == source.stdout.split("\n", 1)[1]
    assert '"EXCLUDES1_CONFLICT"' in compiled.stdout and '"MALFORMED_LINE"' in compiled.stdout


@not_built
def test_an_edited_source_runs_as_python_with_a_warning_not_the_stale_build(tmp_path):
    shutil.copytree(ROOT / "coding", tmp_path / "coding", ignore=shutil.ignore_patterns("__pycache__"))
    which = "import coding.claims, coding.native as n; print(n.compiled())"
    untouched = _run(which, cwd=tmp_path)
    assert untouched.stdout.strip() == "True" and "older than their source" not in untouched.stderr
    with open(tmp_path / "coding" / "claim_csv.py", "a") as source:
        source.write("\n# edited after the build\n")
    edited = _run(which, cwd=tmp_path)
    assert edited.returncode == 0, edited.stderr[-2000:]
    assert edited.stdout.strip() == "False"
    assert "older than their source" in edited.stderr
