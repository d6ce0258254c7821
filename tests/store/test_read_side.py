"""The store's read side: a read-only snapshot creates nothing and leaves nothing behind, what is not a
loom store is a typed error, and one rule says which file holds a task (live, archived, unknown)."""

from __future__ import annotations

import os
import sqlite3

import pytest

from loom_core.bundles.spec import BUNDLE
from loom_core.control import views
from loom_core.engine.engine import Engine
from loom_core.errors import NoActiveTask, StateCorrupt
from loom_core.store import read
from loom_core.store.archive import history_dir
from loom_core.store.locate import TaskNotFound, task_store

NOW = "2026-03-01T10:00:00.000Z"


def listing(d) -> list[str]:
    return sorted(os.listdir(d)) if d.exists() else []


def make_task(project, *, archive: bool) -> str:
    e = Engine(project, bundle=BUNDLE)
    e.create("spec it")
    task_id = e.state().pipeline["task_id"]
    if archive:
        e.rotate(reason="test", force=True)
    e.close()
    return task_id


def test_reading_a_missing_store_creates_nothing(tmp_path):
    db = tmp_path / "nowhere" / ".loom" / "state.db"
    assert read.chain(db) == read.Chain(None, (), ())
    assert read.status_facts(db) is None and read.ticks(db) == [] and read.gate(db) is None
    assert read.recording(db) == read.Recording(None, ())
    assert not (tmp_path / "nowhere").exists()


def test_a_corrupt_or_foreign_file_is_a_typed_error_and_is_left_as_it_was(tmp_path):
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"not a database at all, just bytes" * 10)
    foreign = tmp_path / "foreign.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    conn.commit()
    conn.close()
    before = {p: p.read_bytes() for p in (corrupt, foreign)}
    with pytest.raises(StateCorrupt, match="not an SQLite database"):
        read.chain(corrupt)
    with pytest.raises(StateCorrupt) as exc:
        read.status_facts(foreign)
    assert exc.value.code == "STORE_FOREIGN"
    assert {p: p.read_bytes() for p in before} == before
    assert listing(tmp_path) == ["corrupt.db", "foreign.db"]


def test_reading_an_archived_store_leaves_no_wal_or_shm_behind(project):
    task_id = make_task(project, archive=True)
    hist = history_dir(project)
    files = listing(hist)
    assert files == ["index.jsonl", f"{task_id}.db"]  # archiving leaves no side files either
    path = hist / f"{task_id}.db"
    assert read.chain(path).task.task_id == task_id
    assert read.task_id(path) == task_id and read.ticks(path) and read.chain_report(path).ok
    assert listing(hist) == files


def test_a_reader_never_removes_the_log_of_a_store_another_connection_has_open(project, engine):
    engine.create("spec it")
    db = project / ".loom" / "state.db"
    assert os.path.exists(str(db) + "-wal")  # the engine's connection is open
    assert read.task_id(db) == engine.state().pipeline["task_id"]
    assert os.path.exists(str(db) + "-wal") and os.path.exists(str(db) + "-shm")
    assert engine.store.verify_chain().ok


def test_task_store_names_the_live_store_an_archive_or_refuses_by_type(project):
    with pytest.raises(NoActiveTask):
        task_store(project)
    with pytest.raises(TaskNotFound) as exc:
        task_store(project, "t-nope")
    assert exc.value.code == "TASK_NOT_FOUND" and views.store_path(project, "t-nope") is None
    assert views.store_path(project) is None
    old = make_task(project, archive=True)
    live = make_task(project, archive=False)
    db = project / ".loom" / "state.db"
    assert task_store(project) == db and task_store(project, live) == db
    assert task_store(project, old) == history_dir(project) / f"{old}.db"
    assert views.store_path(project, old) == task_store(project, old)
    assert views.store_path(project, "t-nope") is None  # never the live store of another task
    with pytest.raises(TaskNotFound):
        task_store(project, "t-nope")


def test_task_store_names_a_directory_at_the_store_path(project):
    (project / ".loom" / "state.db").mkdir(parents=True)
    with pytest.raises(StateCorrupt, match="directory"):
        task_store(project)


def test_a_polled_status_rereads_only_a_store_that_changed_and_never_misses_a_commit(project, monkeypatch):
    import time

    from loom_core.kernel.types import AgentResult
    from loom_core.store import db as dbmod

    reads = []
    real = dbmod.read_snapshot
    monkeypatch.setattr(dbmod, "read_snapshot", lambda *a, **k: reads.append(1) or real(*a, **k))
    db = dbmod.state_path(project)
    e = Engine(project, bundle=BUNDLE)
    r = e.create("spec it")
    seen = [read.status_facts(db).tick_seq]
    r = e.answer(r.directive.gate_event_id, "accept")  # commits in quick succession, within one clock tick
    seen.append(read.status_facts(db).tick_seq)
    (intent,) = r.directive.intents
    e.deliver(AgentResult(intent.agent_run_id, '{"claims": [], "open_questions": []}'))
    seen.append(read.status_facts(db).tick_seq)
    assert seen == sorted(set(seen)) and len(seen) == 3  # every commit was seen at once
    e.close()
    past = time.time() - 5  # a store left alone (its files a few seconds old) is read once, then not again
    for f in db.parent.glob("state.db*"):
        os.utime(f, (past, past))
    reads.clear()
    for _ in range(3):
        assert read.status_facts(db).tick_seq == seen[-1]
    assert len(reads) == 1
    e = Engine(project, bundle=BUNDLE, create=False)  # and a commit to it is seen at once
    e.recover("abandon")
    e.close()
    assert read.status_facts(db).tick_seq > seen[-1]


def test_a_closed_store_rewritten_within_one_clock_tick_is_never_shown_stale(project):
    """Open, commit, close twice in quick succession: the closed store's header and size can be identical
    and its mtime too (a coarse clock); the poll between them must not keep the first state."""
    from loom_core.store import db as dbmod

    db = dbmod.state_path(project)
    e = Engine(project, bundle=BUNDLE)
    r = e.create("spec it")
    e.close()
    first = read.status_facts(db)
    e = Engine(project, bundle=BUNDLE, create=False)
    e.answer(r.directive.gate_event_id, "accept")
    e.close()
    assert read.status_facts(db).tick_seq > first.tick_seq


def test_a_read_never_drops_the_locks_of_a_connection_this_process_holds(project):
    """POSIX locks belong to the process: a raw open and close of the database file drops SQLite's. Then
    another process closing its connection thinks it is the last one and deletes the WAL index under
    ours (a supervisor parked on a watch never woke, and its next read found the store malformed)."""
    from loom_core.store import db as dbmod
    from loom_core.store.read.watch import StoreWatch, pending_gate_id
    from tests.conftest import ROOT, run_loom
    from tests.support.fixtures import parked_task

    parked_task(project)
    db = dbmod.state_path(project)
    engine = Engine(project, create=False)  # a supervisor holds its store open while parked
    engine.state()
    watch = StoreWatch(db)
    assert watch.changed()
    gate = pending_gate_id(db)  # a read in the same process as the open watch
    read.status_facts(db)
    assert gate is not None
    answered = run_loom("answer", "accept", cwd=project, env={"PYTHONPATH": str(ROOT)})  # another process
    assert answered.returncode == 0, answered.stderr
    assert db.with_name("state.db-shm").exists()  # our connection is still open: nobody may remove it
    assert watch.changed() and pending_gate_id(db) != gate
    assert engine.state().driver.get("pending_user_answer") is None  # and it reads the answer, not garbage
    watch.close()
    engine.close()
