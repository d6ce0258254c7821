"""What sits at ``.loom/state.db`` decides what loom may do: an empty or half-created store is
simply no task (and is made again), another program's SQLite database is never written, and a
reader looking while a store is made or rotated sees "idle" or the task, never "damaged"."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from loom_core.bundles.spec import BUNDLE
from loom_core.control.status import project_status
from loom_core.engine.engine import Engine
from loom_core.errors import StateCorrupt
from loom_core.store.state import StateStore
from tests.conftest import ROOT, run_loom

NOW = "2026-03-01T10:00:00.000Z"


def cli(*args: str, cwd, env: dict | None = None):
    """The CLI of this checkout (never an installed copy)."""
    return run_loom(*args, cwd=cwd, env={"PYTHONPATH": str(ROOT), "ANTHROPIC_API_KEY": "sk-ant-test-not-used",
                                         **(env or {})})


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------ point 10: empty / half-made stores
@pytest.mark.parametrize("leftover", ["zero-bytes", "zero-bytes+journal", "sqlite-no-tables"])
def test_an_empty_or_half_created_store_is_no_task_and_is_made_again(project, leftover):
    loom = project / ".loom"
    loom.mkdir()
    db = loom / "state.db"
    if leftover == "sqlite-no-tables":
        conn = sqlite3.connect(db)
        conn.execute("PRAGMA journal_mode=wal")  # a header written, the first table never committed
        conn.close()
        assert db.stat().st_size > 0
    else:
        db.write_bytes(b"")
        if leftover.endswith("journal"):
            (loom / "state.db-journal").write_bytes(b"")
    st = project_status(project, NOW)
    assert st["status"] == "idle" and st["task_id"] is None
    proc = cli("status", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("no active task") and "corrupt" not in proc.stdout + proc.stderr
    e = Engine(project, bundle=BUNDLE)
    e.create("spec it")
    e.close()
    assert project_status(project, NOW)["task_id"] is not None
    assert cli("verify", cwd=project).returncode == 0


ROTATE_LOOP = textwrap.dedent("""
    import shutil, sys, time
    from pathlib import Path
    from loom_core.bundles.spec import BUNDLE
    from loom_core.engine.engine import Engine
    project, until = Path(sys.argv[1]), float(sys.argv[2])
    n = 0
    while time.time() < until:
        if n % 3 == 0:  # the very first creation of a store, over and over
            for f in (project / ".loom").glob("state.db*"):
                f.unlink()
        e = Engine(project, bundle=BUNDLE)
        e.create(f"task {n}")
        e.rotate(reason="test", force=True)
        e.close()
        n += 1
    print(n)
""")


def test_readers_never_see_a_store_being_created_or_rotated_as_damaged(project):
    from loom_core.control import views as readmodel
    from loom_core.engine.replay import verify
    from loom_core.errors import LoomError

    (project / ".loom").mkdir()
    until = time.time() + 4.0
    writer = subprocess.Popen([sys.executable, "-c", ROTATE_LOOP, str(project), str(until)], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: dict[str, int] = {}
    errors: list[str] = []
    reads = 0
    db = project / ".loom" / "state.db"
    while time.time() < until:
        try:
            st = project_status(project, NOW)
            seen[st["status"]] = seen.get(st["status"], 0) + 1
            if readmodel.store_path(project) is not None:
                readmodel.chain(db)
                report = verify(db)
                if not report.ok:
                    errors.append(report.line("live"))
        except LoomError as exc:
            errors.append(str(exc))
        reads += 1
    out, err = writer.communicate(timeout=60)
    assert writer.returncode == 0, err
    assert int(out) >= 5, "the writer barely ran"
    assert reads >= 50
    assert errors == [], f"{len(errors)} of {reads} reads failed, e.g. {errors[:3]}"
    assert "idle" in seen and "parked" in seen and set(seen) <= {"idle", "parked"}, seen


# ------------------------------------------------------------------ point 13: another program's database
@pytest.fixture
def foreign(project):
    loom = project / ".loom"
    loom.mkdir()
    db = loom / "state.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO users VALUES (1, 'ada')")
    conn.commit()
    conn.close()
    return db


@pytest.mark.parametrize("args", [("proceed",), ("run", "--in-place", "tidy", "things"), ("answer", "accept"), ("reset",),
                                  ("reset", "--force"), ("status",), ("verify",), ("recover", "abandon")])
def test_a_foreign_sqlite_file_is_refused_by_every_command_and_never_written(project, foreign, args):
    before = _digest(foreign)
    proc = cli(*args, cwd=project)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "not a loom state file" in lines[0] and "users" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert _digest(foreign) == before
    assert sorted(p.name for p in foreign.parent.iterdir() if p.name.startswith("state.db")) == ["state.db"]


def test_the_store_refuses_a_foreign_database_before_any_write(project, foreign):
    before = _digest(foreign)
    with pytest.raises(StateCorrupt) as info:
        StateStore.for_project(project)
    assert info.value.code == "STORE_FOREIGN"
    with pytest.raises(StateCorrupt):
        project_status(project, NOW)
    assert _digest(foreign) == before
    assert not os.path.exists(str(foreign) + "-wal")


# ------------------------------------------------------------------ point 10: a deleted -wal after a kill
CREATE_AND_DIE = textwrap.dedent("""
    import os, sys
    from loom_core.bundles.spec import BUNDLE
    from loom_core.engine.engine import Engine
    e = Engine(sys.argv[1], bundle=BUNDLE)
    e.create("spec the login limiter")
    os._exit(0)  # like kill -9: no close, no checkpoint; the task lives only in state.db-wal
""")


def test_a_task_lost_with_its_wal_file_is_reported_not_shown_as_an_empty_slot(project):
    proc = subprocess.run([sys.executable, "-c", CREATE_AND_DIE, str(project)], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    wal = project / ".loom" / "state.db-wal"
    assert wal.stat().st_size > 0
    assert project_status(project, NOW)["task_id"] is not None
    wal.unlink()
    (project / ".loom" / "state.db-shm").unlink(missing_ok=True)
    st = project_status(project, NOW)
    assert st["task_id"] is None and st["status"] == "lost" and "state.db-wal" in st["lost"]
    out = cli("status", cwd=project)
    assert out.returncode == 0 and out.stdout.startswith("LOST: the state of task t-") and "no active task" not in out.stdout
    resumed = cli("proceed", "--backend", "demo", cwd=project)
    assert resumed.returncode == 1 and "was lost" in resumed.stderr, resumed.stderr
    # a new task clears it; an archived task is not lost
    e = Engine(project, bundle=BUNDLE)
    e.create("another")
    e.rotate(force=True)
    e.close()
    assert project_status(project, NOW)["status"] == "idle"
