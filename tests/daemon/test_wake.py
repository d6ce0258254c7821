"""Park and wake (spec §4.3): ``wait_answered`` wakes on an answer from this client at once and on one
from another process within a second, by watching SQLite's data_version (no busy polling of the store)."""

from __future__ import annotations

import tempfile
import threading
import time

import pytest

from loom_core.control import LocalControl, RunOptions, create_demo_project, demo_task
from loom_core.surfaces.daemon import Supervisor, read_log, read_status
from tests.conftest import run_loom
from tests.daemon.support import RecordingNotifier


@pytest.fixture
def parked(tmp_path, monkeypatch):
    """A demo project whose task waits at gate-plan, and the client that parked it."""
    base = tmp_path / "tmpdir"
    base.mkdir()
    monkeypatch.setenv("TMPDIR", str(base))
    monkeypatch.setattr(tempfile, "tempdir", str(base))  # gettempdir() caches; the sandbox base uses it
    proj = tmp_path / "demo"
    create_demo_project(proj)
    control = LocalControl()
    out = control.submit(proj, demo_task(), RunOptions(backend="demo", policy="demo-gates")).outcome
    assert out.kind == "paused" and out.gate == "gate-plan"
    return proj, control, out.gate_event_id


def test_wait_answered_times_out_while_nobody_answers(parked):
    proj, control, gev = parked
    started = time.monotonic()
    assert control.wait_answered(proj, gev, 0.4) is False
    assert 0.35 < time.monotonic() - started < 1.0
    assert control.wait_answered(proj, "gev-some-other-gate", 0.4) is True  # not the waiting gate: at once


def test_an_answer_through_the_same_client_wakes_at_once(parked):
    proj, control, gev = parked
    got = {}

    def wait():
        got["woke"] = control.wait_answered(proj, gev, 5.0)
        got["at"] = time.monotonic()

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.3)
    control.answer(proj, "accept", gate_event_id=gev)
    answered = time.monotonic()
    waiter.join(5)
    assert got["woke"] is True
    assert got["at"] - answered < 0.1


def test_an_answer_from_another_process_wakes_within_a_second(parked):
    proj, control, gev = parked
    got = {}

    def wait():
        got["woke"] = control.wait_answered(proj, gev, 20.0)
        got["at"] = time.monotonic()

    waiter = threading.Thread(target=wait)
    waiter.start()
    proc = run_loom("answer", "accept", cwd=proj)
    answered = time.monotonic()  # the answer is committed before the process exits
    assert proc.returncode == 0, proc.stderr
    waiter.join(20)
    assert got["woke"] is True
    assert got["at"] - answered < 1.0


def test_wait_answered_reads_the_store_only_when_its_data_version_moved(parked, monkeypatch):
    import loom_core.store.read.watch as watch

    proj, control, gev = parked
    reads = []
    real = watch.pending_gate_id
    monkeypatch.setattr(watch, "pending_gate_id", lambda path: reads.append(path) or real(path))
    assert control.wait_answered(proj, gev, 1.0) is False
    assert len(reads) == 1  # the first look; nothing was committed since, so nothing was re-read


def test_a_supervisor_parks_and_an_answer_in_this_process_drives_it_to_the_branch(parked):
    proj, control, _ = parked
    notifier = RecordingNotifier()
    sup = Supervisor(control, proj, notifier=notifier)
    got = {}
    runner = threading.Thread(target=lambda: got.setdefault("result", sup.run()))
    runner.start()
    for gate in ("gate-plan", "gate-final"):
        deadline = time.monotonic() + 20
        while not (sup.phase == "parked" and (control.gate(proj) or {}).get("gate") == gate):
            assert time.monotonic() < deadline, f"never parked at {gate}"
            time.sleep(0.02)
        assert read_status(proj)["detail"] == gate
        control.answer(proj, "accept")
    runner.join(30)
    assert got["result"] == "accepted"
    events = [e["event"] for e in read_log(proj)]
    assert events[0] == "recover-on-start"
    assert events.count("parked") == 2 and events.count("woken") == 2 and "merge-back" in events
    task_id = control.status(proj)["task_id"]
    assert control.branch_exists(proj, f"loom/{task_id}")
    assert [e["event"] for e in notifier.events] == ["parked", "parked", "complete"]
    assert notifier.events[-1]["branch"] == f"loom/{task_id}" and notifier.events[-1]["verdict"] == "accepted"
