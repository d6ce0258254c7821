"""The fleet's poll re-reads only what changed: a project whose files are unchanged (and a second old, so a
later write cannot hide under the same mtime) is not read again, and any write to it — its store, or a small
file under ``.loom`` replaced by rename — shows in the very next poll."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from loom_core.bundles.spec import BUNDLE
from loom_core.control import LocalControl
from loom_core.control.catalog import Catalog
from loom_core.engine import budget
from loom_core.engine.clock import FixedClock
from loom_core.engine.engine import Engine
from loom_core.engine.host_mark import mark_host


def settle(project: Path) -> None:
    """Age every file under ``.loom`` (and the folder) by 5 s, as if nothing had touched it for a while."""
    old = time.time_ns() - 5_000_000_000
    base = project / ".loom"
    for path in [base, *base.rglob("*")]:
        os.utime(path, ns=(old, old), follow_symlinks=False)


@pytest.fixture
def fleet(tmp_path, monkeypatch):
    cat = Catalog([], tmp_path / "workspace.json")
    idle, parked = tmp_path / "idle", tmp_path / "parked"
    idle.mkdir()
    parked.mkdir()
    e = Engine(parked, bundle=BUNDLE, clock=FixedClock())
    gate = e.create("write the spec for the export").directive.gate_event_id
    e.close()
    ids = {p.name: cat.add(p).id for p in (idle, parked)}
    reads = []
    real = budget.view
    monkeypatch.setattr(budget, "view", lambda project, task_id: reads.append(Path(project).name) or real(project, task_id))
    return LocalControl(cat), ids, parked, gate, reads


def by_name(rows):
    return {r["name"]: r for r in rows}


def still(rows):
    """The rows less what the clock moves on its own (a parked task's elapsed time)."""
    return {name: {k: v for k, v in r.items() if not k.startswith("elapsed")} for name, r in rows.items()}


def test_an_unchanged_project_is_not_read_again_and_a_changed_one_shows_in_the_next_poll(fleet):
    control, ids, parked, gate, reads = fleet
    settle(parked)
    first = by_name(control.fleet())
    assert first["parked"]["status"] == "parked" and first["idle"]["status"] == "idle"
    reads.clear()
    again = by_name(control.fleet())
    assert still(again) == still(first)
    assert reads == []  # nothing under .loom changed: its budget (and marker, host, store) were not read again

    task_id = first["parked"]["task_id"]
    mark_host(parked, task_id, "2026-01-01T00:00:00.000Z")  # task-exec.json replaced by rename
    row = by_name(control.fleet())["parked"]
    assert row["host"] and row["host"]["task_id"] == task_id
    assert reads == ["parked"]

    e = Engine(parked, bundle=BUNDLE, clock=FixedClock())  # a driver holds the store open
    try:
        settle(parked)
        assert by_name(control.fleet())["parked"]["status"] == "parked"
        e.answer(gate, "accept")  # a commit into the WAL: the database file itself is not written
        assert by_name(control.fleet())["parked"]["status"] != "parked"
    finally:
        e.close()


def test_a_project_written_within_the_last_second_is_read_every_poll(fleet):
    control, ids, parked, gate, reads = fleet  # just created: its files are fresh
    control.fleet()
    control.fleet()
    assert reads == ["parked", "parked"]  # a write in the same mtime tick could not be told apart: read again


def test_a_remembered_running_task_still_moves_with_the_clock_and_the_drive_lock(tmp_path, monkeypatch):
    from loom_core.control.status import project_status
    from loom_core.engine.lock import ProjectLock
    from loom_core.store import read

    project = tmp_path / "busy"
    project.mkdir()
    e = Engine(project, bundle=BUNDLE, clock=FixedClock())
    e.answer(e.create("write the spec").directive.gate_event_id, "accept")  # an agent run pending
    e.close()
    settle(project)
    opened = []
    real = read.status_facts
    monkeypatch.setattr(read, "status_facts", lambda path: opened.append(path) or real(path))
    key = str(project.resolve())
    t0, t1 = "2026-12-02T10:00:00.000Z", "2026-12-02T11:30:00.000Z"
    first = project_status(key, t0, stall_after_min=50, polled=True)
    assert first["status"] == "stopped" and first["pending"] and first["driven"] is False
    later = project_status(key, t1, stall_after_min=50, polled=True)  # files unchanged: the remembered task
    assert later["elapsed_s"] == first["elapsed_s"] + 5400
    assert later["pending"][0]["age_s"] == first["pending"][0]["age_s"] + 5400
    with ProjectLock(project):  # a driver takes the lock: the same files, a driven task
        held = project_status(key, t1, stall_after_min=50, polled=True)
    assert held["driven"] is True and held["status"] == "stalled" and "agent pending for" in held["stalled"]
    assert project_status(key, t1, stall_after_min=50, polled=True)["status"] == "stopped"
    later["tokens"]["in"] = -1  # a caller's edit to its row never reaches the remembered one
    assert project_status(key, t1, stall_after_min=50, polled=True)["tokens"]["in"] >= 0
    assert len(opened) == 1  # the store was read once; every later row came from what was remembered
