"""A task is "running" only while a loom process drives it (holds the project's lock). After kill -9,
a failed spawn, or an answer given without `loom proceed`, every surface says "stopped — not driven"
and names the command that resumes it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from loom_core.agents.executors import ScriptedExecutor
from loom_core.bundles.spec import BUNDLE
from loom_core.control.status import driver_alive, project_status
from loom_core.engine.clock import FixedClock
from loom_core.engine.drive import Driver
from loom_core.engine.engine import Engine
from loom_core.engine.runner import ProjectLock
from loom_core.errors import ExecutorError
from tests.conftest import ROOT, run_loom
from tests.support import scripts
from tests.support.fixtures import parked_task

NOW = "2026-01-01T00:00:01.000Z"

DRIVE_SLOWLY = textwrap.dedent("""
    import sys, time
    from loom_core.bundles.spec import BUNDLE
    from loom_core.engine.drive import Driver
    from loom_core.engine.engine import Engine
    from loom_core.agents.executors import ScriptedExecutor
    from loom_core.engine.runner import ProjectLock

    def slow(intent):
        print("spawned", intent.agent, flush=True)
        time.sleep(60)
        return ""

    with ProjectLock(sys.argv[1]):
        engine = Engine(sys.argv[1], bundle=BUNDLE, create=False)
        Driver(engine, ScriptedExecutor(slow)).resume()
""")


def _answered_without_proceed(project):
    outcome = parked_task(project)
    assert outcome.kind == "paused"
    engine = Engine(project, bundle=BUNDLE, clock=FixedClock())
    r = engine.answer(outcome.gate_event_id, "accept")
    assert r.directive.kind == "shuttle"  # agents are due, and nothing runs them
    engine.close()


def _cli_status(project) -> str:
    proc = run_loom("status", cwd=project, env={"PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_an_answer_without_proceed_is_stopped_not_running(project):
    _answered_without_proceed(project)
    st = project_status(project, NOW)
    assert st["status"] == "stopped" and st["driven"] is False and st["resume"] == "loom proceed"
    out = _cli_status(project)
    assert "stopped — not driven" in out and "loom proceed" in out and "running" not in out


def test_a_driver_killed_with_sigkill_leaves_a_stopped_task(project, monkeypatch):
    monkeypatch.setenv("LOOM_STALL_MINUTES", "100000000")  # the fixed clock's task is old: not "stalled"
    _answered_without_proceed(project)
    proc = subprocess.Popen([sys.executable, "-c", DRIVE_SLOWLY, str(project)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("spawned"), (line, proc.stderr.read() if proc.poll() is not None else "")
        assert driver_alive(project)
        alive = project_status(project, NOW)
        assert alive["status"] == "running" and alive["driven"] is True
        assert "status:  running" in _cli_status(project)
        from loom_core.control.catalog import Catalog
        from loom_core.control.local import LocalControl

        Catalog.load().add(project, now=NOW)
        assert [r["status"] for r in LocalControl(Catalog.load()).fleet()] == ["running"]
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    assert not driver_alive(project)
    st = project_status(project, NOW)
    assert st["status"] == "stopped" and st["pending"], st
    out = _cli_status(project)
    assert "stopped — not driven" in out and "loom proceed" in out and "never delivered" in out
    rows = LocalControl(Catalog.load()).fleet()
    assert [r["status"] for r in rows] == ["stopped"]
    data = json.loads(run_loom("status", "--json", cwd=project, env={"PYTHONPATH": str(ROOT)}).stdout)
    assert data["status"] == "stopped" and data["resume"] == "loom proceed"


def test_a_failed_spawn_ends_the_drive_and_the_task_shows_stopped(project):
    def broken(intent):
        raise ExecutorError("the model is gone", code="EXECUTOR_INVALID_MODEL")

    _answered_without_proceed(project)
    with ProjectLock(project):
        engine = Engine(project, bundle=BUNDLE, create=False)
        outcome = Driver(engine, ScriptedExecutor(broken)).resume()
        engine.close()
        assert outcome.kind == "error"
    assert project_status(project, NOW)["status"] == "stopped"


def test_a_reader_probing_liveness_never_makes_a_starting_drive_busy(project):
    (project / ".loom").mkdir()
    (project / ".loom" / "lock").write_text("")
    import fcntl

    fd = os.open(project / ".loom" / "lock", os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_SH)  # what a probe holds for an instant

    import threading

    # a probe preempted on a loaded machine holds it far longer than an instant: still not busy
    threading.Timer(0.8, lambda: (fcntl.flock(fd, fcntl.LOCK_UN), os.close(fd))).start()
    with ProjectLock(project):
        assert driver_alive(project)
        assert (project / ".loom" / "lock").read_text() == f"pid {os.getpid()}"
    assert not driver_alive(project)
    assert (project / ".loom" / "lock").read_text() == ""  # let go: nobody is named any more


def test_a_drive_holding_the_lock_makes_a_second_one_busy_at_once(project):
    import time

    from loom_core.engine.lock import ProjectBusy

    with ProjectLock(project):
        t0 = time.monotonic()
        with pytest.raises(ProjectBusy, match=f"pid {os.getpid()}"):
            ProjectLock(project).acquire()
        assert time.monotonic() - t0 < 2  # a named holder is busy quickly, not after the probe wait


def test_driver_alive_is_false_without_a_lock_file(project):
    assert driver_alive(project) is False
    parked_task(project)
    assert project_status(project, NOW)["status"] == "parked"  # a parked task is parked, driven or not
    engine = Engine(project, bundle=BUNDLE)
    driver = Driver(engine, ScriptedExecutor(scripts.happy))
    assert driver is not None
    engine.close()
