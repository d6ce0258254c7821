"""Bad state files give one clear line from the CLI, never a traceback, and are left untouched."""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import subprocess

import pytest

from tests.conftest import run_loom
from tests.support.fixtures import parked_task


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _assert_one_line_error(proc, *needles):
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("loom: ")
    assert "Traceback" not in proc.stderr
    for n in needles:
        assert n in lines[0]


@pytest.mark.parametrize("content", [b"this is not a database at all\n" * 10, b"\x00" * 4096,
                                     b"SQLite format 3\x00" + b"\xff" * 4000])
@pytest.mark.parametrize("command", [["status"], ["verify"], ["recover", "abandon"], ["reset", "--force"]])
def test_corrupt_state_file(project, content, command):
    db = project / ".loom" / "state.db"
    db.parent.mkdir()
    db.write_bytes(content)
    before = _digest(db)
    proc = run_loom(*command, cwd=project)
    _assert_one_line_error(proc, "state.db")
    assert _digest(db) == before
    assert sorted(p.name for p in db.parent.iterdir()) == ["state.db"]


def test_store_from_a_newer_schema(project):
    parked_task(project)
    db = project / ".loom" / "state.db"
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO kernel_schema_versions VALUES ('002_from_the_future', 2, '2030-01-01T00:00:00.000Z')")
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    before = _digest(db)
    for cmd in (["status"], ["recover", "abandon"]):
        proc = run_loom(*cmd, cwd=project)
        _assert_one_line_error(proc, "newer loom", "schema 2 > 1")
    assert _digest(db) == before


@contextlib.contextmanager
def _read_only(path):
    """chmod for ordinary users; a read-only bind mount when running as root."""
    if os.geteuid() != 0:
        path.chmod(0o555)
        try:
            yield
        finally:
            path.chmod(0o755)
        return
    ok = subprocess.run(["mount", "--bind", str(path), str(path)], capture_output=True).returncode == 0 and \
        subprocess.run(["mount", "-o", "remount,ro,bind", str(path)], capture_output=True).returncode == 0
    if not ok:
        subprocess.run(["umount", str(path)], capture_output=True)
        pytest.skip("running as root without permission to mount a read-only directory")
    try:
        yield
    finally:
        subprocess.run(["umount", str(path)], check=True)


def test_read_only_directory(project):
    parked_task(project)
    db = project / ".loom" / "state.db"
    before = _digest(db)
    with _read_only(project / ".loom"):
        assert run_loom("status", cwd=project).returncode == 0  # reading needs no write access
        _assert_one_line_error(run_loom("recover", "abandon", cwd=project), "read-only")
    assert _digest(db) == before

    fresh = project.parent / "fresh"
    fresh.mkdir()
    with _read_only(fresh):
        proc = run_loom("recover", "abandon", cwd=fresh)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1


def test_usage_error_exit_2(project):
    proc = run_loom("status", "--no-such-flag", cwd=project)
    assert proc.returncode == 2
    proc = run_loom("recover", "explode", cwd=project)
    assert proc.returncode == 2 and proc.stderr.startswith("loom: expected retry") and "Traceback" not in proc.stderr
