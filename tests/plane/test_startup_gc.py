"""Watch mode's startup clean-up (spec §4.5), once per plane start: orphan sandboxes go when the supervised
projects have nothing in progress, and stay while one has."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from loom_core.control import demo_task
from tests.plane.conftest import client, demo, wait_for


def _orphan() -> Path:
    """A sandbox no project owns, in the sandbox root the plane's gc looks at (the test's tmp dir)."""
    base = Path(tempfile.gettempdir()) / f"loom-{os.getuid()}"
    base.mkdir(mode=0o700, exist_ok=True)
    orphan = base / "wt-0123456789abcdef"
    (orphan / "src").mkdir(parents=True)
    (orphan / "src" / "left.txt").write_text("left behind by a crashed run")
    return orphan


def test_orphans_removed_once_at_start_when_nothing_is_in_progress(start_plane, tmp_path, caplog):
    proj = demo(tmp_path)
    orphan = _orphan()
    caplog.set_level(logging.INFO, logger="loom.plane")
    plane = start_plane(projects=(proj,))
    assert not orphan.exists()
    assert [p for p, _ in plane.gc_removed] == [orphan]
    assert any("startup-gc: removed 1 orphan" in r.getMessage() for r in caplog.records)
    pid = plane.registry.supervised()[0].id
    assert [e["detail"] for e in plane.registry.events(pid) if e["event"] == "startup-gc"] == [{"removed": 1}]

    # once per start, not per watcher: a project supervised later runs no clean-up
    again = _orphan()
    with client(plane) as c:
        assert c.post("/projects", json={"dir": str(demo(tmp_path, "later"))}).status_code == 201
    assert again.exists()


def test_no_clean_up_while_a_supervised_task_is_in_progress(start_plane, tmp_path, caplog):
    proj = demo(tmp_path)
    plane = start_plane()
    with client(plane) as c:
        pid = c.post("/submit", json={"project": str(proj), "task": demo_task(), "backend": "demo",
                                      "policy_preset": "demo-gates"}).json()["id"]
        wait_for(lambda: c.get(f"/projects/{pid}").json()["status"]["parked_gate"])
    plane.stop()  # the project stays in the durable set, its task in progress

    orphan = _orphan()
    caplog.set_level(logging.INFO, logger="loom.plane")
    again = start_plane()
    assert [p.id for p in again.registry.supervised()] == [pid]
    assert again.gc_removed is None and orphan.exists()
    assert any("startup-gc skipped" in r.getMessage() for r in caplog.records)


def test_nothing_to_supervise_no_clean_up(start_plane):
    orphan = _orphan()
    plane = start_plane()
    assert plane.gc_removed is None and orphan.exists()
