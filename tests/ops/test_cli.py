"""The operator commands a user types: migrate, load, dbshell."""

from __future__ import annotations

import os
import subprocess
import sys


def icdq(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ops.cli", *args], capture_output=True, text=True,
                          timeout=300, env=env or dict(os.environ))


def test_migrate_is_idempotent(endpoints):
    result = icdq("migrate")
    assert result.returncode == 0, result.stderr
    assert "schema is up to date" in result.stdout


def test_loading_the_bundled_release_again_changes_nothing(endpoints):
    result = icdq("load")
    assert result.returncode == 0, result.stderr
    assert "already loaded, nothing changed" in result.stdout
    assert "74,719 billable" in result.stdout


def test_a_bad_release_file_is_a_clear_error(endpoints, tmp_path):
    bad = tmp_path / "notes.xml"
    bad.write_text("<html><body>hello</body></html>")
    result = icdq("load", str(bad))
    assert result.returncode == 1
    assert "release not loaded: not an ICD-10-CM tabular XML" in result.stderr
    assert "Traceback" not in result.stderr
    missing = icdq("load", str(tmp_path / "missing.xml"))
    assert missing.returncode == 1 and "file not found" in missing.stderr


def test_dbshell_passes_arguments_to_psql(endpoints):
    result = icdq("dbshell", "-A", "-t", "-c", "SELECT count(*) FROM icd_codes WHERE active AND billable")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "74719"
