"""The in-process facade: the verbs every surface uses, on a real demo project and a real store."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from loom_core.control import Catalog, ControlClient, LocalControl, ProjectBusy, RunOptions
from loom_core.errors import GateAlreadyAnswered, LoomError


def test_local_control_is_a_control_client():
    assert isinstance(LocalControl(Catalog([], None)), ControlClient)


def test_a_project_is_named_by_catalog_id_or_by_directory(parked_control, tmp_path):
    control, pid, proj = parked_control
    assert control.project(pid).path == proj.resolve()
    assert control.project(proj).id == pid  # same id whichever way it is named
    assert control.status(pid)["task_id"] == control.status(proj)["task_id"]
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    assert control.project(outside).path == outside.resolve()  # the CLI works outside the catalog
    with pytest.raises(LoomError) as err:
        control.project("0123456789ab")
    assert err.value.code == "NOT_IN_CATALOG"


def test_a_gate_answer_names_its_gate_and_a_stale_one_sends_nothing(parked_control):
    control, pid, proj = parked_control
    shown = control.gate(pid)
    assert shown and shown["gate"] == "gate-plan" and shown["gate_event_id"]
    # another surface (its own facade) answers the same gate first
    other = LocalControl(Catalog([], None))
    assert other.answer(proj, "accept", gate_event_id=shown["gate_event_id"])["decision"] == "accept"
    ticks_before = len(control.ticks(pid))
    with pytest.raises(GateAlreadyAnswered) as err:
        control.answer(pid, "reject", "do it differently", gate_event_id=shown["gate_event_id"])
    assert err.value.code == "GATE_ALREADY_ANSWERED"
    assert len(control.ticks(pid)) == ticks_before  # nothing was written
    # the task moves on from the first answer only
    res = control.proceed(pid)
    assert res.outcome.kind in ("paused", "complete")
    assert res.outcome.gate != "gate-plan"


def test_an_answer_without_an_id_answers_whatever_gate_waits(parked_control):
    control, pid, _ = parked_control
    assert control.answer(pid, "accept")["gate"] == "gate-plan"
    with pytest.raises(LoomError) as err:
        control.answer(pid, "accept")
    assert err.value.code == "NO_PENDING_GATE"


_HOLD = textwrap.dedent("""
    import sys, time
    from loom_core.engine.runner import ProjectLock
    with ProjectLock(__import__("pathlib").Path(sys.argv[1])):
        print("held", flush=True)
        time.sleep(60)
""")


def test_cancel_and_recover_take_the_project_lock(parked_control):
    control, pid, proj = parked_control
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(proj)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ProjectBusy):
            control.cancel(pid)
        with pytest.raises(ProjectBusy):
            control.recover(pid, "abandon")
        with pytest.raises(ProjectBusy):
            control.answer(pid, "accept")
        assert control.status(pid)["state"] == "in_progress"  # none of them changed the task
    finally:
        holder.kill()
        holder.wait()
    out = control.cancel(pid)
    assert out["next"] == "complete" and out["verdict"] != "accepted"
    assert control.status(pid)["state"] != "in_progress"


def test_cancel_stops_this_clients_drive_then_abandons(tmp_path):
    from loom_core.control import create_demo_project, demo_task

    proj = tmp_path / "slow"
    create_demo_project(proj)
    control = LocalControl(Catalog([], tmp_path / "ws.json"), demo_delay_s=0.3)
    pid = control.add_project(proj).id
    result: dict = {}
    worker = threading.Thread(target=lambda: result.setdefault(
        "r", control.submit(pid, demo_task(), RunOptions(backend="demo", policy="auto"))))
    worker.start()
    deadline = __import__("time").monotonic() + 30
    while not control.is_driving(pid) and __import__("time").monotonic() < deadline:
        __import__("time").sleep(0.02)
    assert control.is_driving(pid)
    out = control.cancel(pid)
    worker.join(30)
    assert not worker.is_alive() and not control.is_driving(pid)
    assert result["r"].outcome.kind == "aborted"
    assert out["next"] == "complete" and out["verdict"] != "accepted"
    assert control.status(pid)["state"] != "in_progress"


def test_reset_archives_under_the_lock_and_says_so(parked_control):
    control, pid, proj = parked_control
    task_id = control.status(pid)["task_id"]
    with pytest.raises(LoomError):
        control.reset(pid)  # in progress: refused without force
    out = control.reset(pid, force=True)
    assert out["task_id"] == task_id and Path(out["archive"]).exists()
    assert control.status(pid)["task_id"] is None
    assert [r.get("task_id") for r in control.history(pid)] == [task_id]
    assert control.reset(pid) == {"task_id": None, "archive": None, "sandbox": None}


def test_push_and_merge_take_the_project_lock(parked_control):
    control, pid, proj = parked_control
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(proj)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ProjectBusy):
            control.merge(pid, "loom/nothing")
        with pytest.raises(ProjectBusy):
            control.push(pid, "loom/nothing")
    finally:
        holder.kill()
        holder.wait()
