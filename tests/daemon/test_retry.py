"""The retry policy (spec §4.4, §4.5) through a real Supervisor over a scripted facade: the delays it
sleeps, the waits it honours, what it escalates and notifies. Sleeps are recorded, not slept."""

from __future__ import annotations

import threading
import time

import pytest

from loom_core.errors import LoomError
from loom_core.surfaces.daemon import Supervisor, read_log, read_status
from tests.daemon.support import BLOCK, FakeClock, RecordingNotifier, ScriptedControl, accepted, error, events


def supervise(tmp_path, control, **kw):
    clock, notifier = FakeClock(), RecordingNotifier()
    sup = Supervisor(control, tmp_path, clock=clock, notifier=notifier, **kw)
    return sup.run(), clock, notifier


def test_transient_errors_back_off_1_2_4_then_the_drive_succeeds(tmp_path):
    control = ScriptedControl([error("EXECUTOR_FAILED"), error("EXECUTOR_TIMEOUT"), error("EXECUTOR_FAILED"),
                               accepted()])
    result, clock, notifier = supervise(tmp_path, control)
    assert result == "accepted"
    assert clock.sleeps == [1, 2, 4]
    assert control.calls == ["proceed"] * 4
    retries = [e["detail"] for e in read_log(tmp_path) if e["event"] == "retry"]
    assert [r["attempt"] for r in retries] == [1, 2, 3] and [r["delay_ms"] for r in retries] == [1000, 2000, 4000]
    assert events(tmp_path)[0] == "recover-on-start"
    assert [e["event"] for e in notifier.events] == ["retry", "retry", "retry", "complete"]
    assert read_status(tmp_path)["phase"] == "stopped"


def test_the_sixth_transient_failure_escalates_at_the_ceiling(tmp_path):
    control = ScriptedControl([error("EXECUTOR_FAILED")] * 6 + [accepted()])
    result, clock, notifier = supervise(tmp_path, control)
    assert result == "failed"
    assert clock.sleeps == [1, 2, 4, 8, 16]
    assert "escalate-ceiling" in events(tmp_path)
    assert notifier.events[-1]["event"] == "failed" and notifier.events[-1]["code"] == "EXECUTOR_FAILED"


def test_a_thrown_drive_is_an_error_outcome_and_is_retried_when_transient(tmp_path):
    control = ScriptedControl([LoomError("agent died", code="EXECUTOR_FAILED"), accepted()])
    result, clock, _ = supervise(tmp_path, control)
    assert result == "accepted" and clock.sleeps == [1]
    assert "drive-threw" in events(tmp_path)


def test_a_task_another_process_drives_is_waited_for_and_never_counted(tmp_path):
    control = ScriptedControl([LoomError("busy", code="PROJECT_BUSY")] * 8 + [accepted()])
    result, clock, notifier = supervise(tmp_path, control)
    assert result == "accepted" and clock.sleeps == [5] * 8
    assert "retry" not in events(tmp_path) and [e["event"] for e in notifier.events] == ["complete"]


def test_a_rate_limit_waits_the_configured_time_and_is_not_counted(tmp_path, monkeypatch):
    monkeypatch.setenv("LOOM_RATE_LIMIT_WAIT", "90s")
    control = ScriptedControl([error("EXECUTOR_FAILED"), error("EXECUTOR_RATE_LIMITED"), error("EXECUTOR_FAILED"),
                               accepted()])
    result, clock, notifier = supervise(tmp_path, control)
    assert result == "accepted"
    assert clock.sleeps == [1, 90, 2]  # the wait does not reset or advance the transient count
    wait = [e for e in read_log(tmp_path) if e["event"] == "rate-limit-wait"]
    assert wait[0]["detail"]["wait_ms"] == 90_000
    assert "rate-limit-wait" in [e["event"] for e in notifier.events]


def test_the_default_rate_limit_wait_is_an_hour(tmp_path, monkeypatch):
    monkeypatch.delenv("LOOM_RATE_LIMIT_WAIT", raising=False)
    result, clock, _ = supervise(tmp_path, ScriptedControl([error("EXECUTOR_RATE_LIMITED"), accepted()]))
    assert result == "accepted" and clock.sleeps == [3600]


@pytest.mark.parametrize("code", ["EXECUTOR_AUTH_FAILED", "DRIVE_SPAWN_CAP_EXCEEDED", "EXECUTOR_INVALID_MODEL"])
def test_a_terminal_error_escalates_at_once_and_notifies_failed(tmp_path, code):
    control = ScriptedControl([error(code), accepted()])
    result, clock, notifier = supervise(tmp_path, control)
    assert result == "failed" and clock.sleeps == [] and control.calls == ["proceed"]
    assert "escalate" in events(tmp_path)
    failed = notifier.events[-1]
    assert failed["event"] == "failed" and failed["code"] == code and failed["task_id"] == "t-1"
    assert failed["project_id"] == "p1"
    assert read_status(tmp_path)["phase"] == "stopped"


def test_nothing_to_supervise_is_a_noop(tmp_path):
    control = ScriptedControl([], in_progress=False)
    result, _, _ = supervise(tmp_path, control)
    assert result == "noop" and control.calls == []
    assert events(tmp_path) == ["nothing-to-supervise"]


def test_a_new_task_is_submitted_once_then_proceeded(tmp_path):
    control = ScriptedControl([error("EXECUTOR_FAILED"), accepted()], in_progress=False)
    result, _, _ = supervise(tmp_path, control, task="do it")
    assert result == "accepted" and control.calls == ["submit", "proceed"]


def test_ship_on_accept_pushes_and_merges_as_persisted_and_logs_both(tmp_path):
    from loom_core.engine.options import RunResult

    control = ScriptedControl([])
    control.opts.push = control.opts.squash_merge = True
    merge = type("M", (), {"status": "merged", "branch": "loom/t-1", "files": ["a.py"]})()
    control.proceed = lambda ref, opts=None: RunResult(accepted(), merge, task_id="t-1")
    result, _, _ = supervise(tmp_path, control)
    assert result == "accepted"
    log = {e["event"]: e for e in read_log(tmp_path)}
    assert log["auto-push"]["level"] == "error" and log["auto-push"]["detail"]["code"] == "NO_REMOTE"
    assert log["auto-merge"]["detail"]["ok"] is True and log["auto-merge"]["detail"]["branch"] == "loom/t-1"


def test_watch_parks_a_slot_after_three_errors_and_leaves_it_until_its_task_changes(tmp_path):
    stop = threading.Event()
    control = ScriptedControl([error("EXECUTOR_FAILED")] * 3 + [accepted("t-2")], stop=stop, stop_after=6)
    clock, notifier = FakeClock(), RecordingNotifier()
    sup = Supervisor(control, tmp_path, watch=True, clock=clock, notifier=notifier, stop=stop)
    done = threading.Thread(target=lambda: setattr(sup, "result", sup.run()))
    done.start()
    done.join(10)
    assert sup.result == "stopped"
    assert control.calls == ["proceed"] * 3  # parked: t-1 is never driven again
    got = events(tmp_path)
    assert got.count("watch-cool-down") == 2 and "watch-park" in got and got[-1] == "watch-stop"
    assert "watch-park" in [e["event"] for e in notifier.events]
    assert clock.sleeps[:2] == [1, 2]


def test_watch_drives_a_new_task_after_a_parked_one(tmp_path):
    stop = threading.Event()
    control = ScriptedControl([error("EXECUTOR_AUTH_FAILED"), accepted("t-2")], stop=stop, stop_after=12)
    seen: list[list[str]] = []

    def arrive(n: int) -> None:  # after a few idle looks, a new task arrives (intake wrote it into the store)
        if n == 6:
            seen.append(list(control.calls))
            control.task_id = "t-2"

    control.on_status = arrive
    sup = Supervisor(control, tmp_path, watch=True, clock=FakeClock(), stop=stop)
    assert sup.run() == "stopped"
    assert seen == [["proceed"]]  # a terminal error parked t-1 at once; it was not driven again
    assert control.calls == ["proceed", "proceed"]
    assert "complete" in events(tmp_path)


def test_a_drive_past_its_deadline_is_stopped_and_retried_as_transient(tmp_path, monkeypatch):
    monkeypatch.setenv("LOOM_DRIVE_DEADLINE_MS", "150")
    control = ScriptedControl([BLOCK, accepted()])
    started = time.monotonic()
    result, clock, _ = supervise(tmp_path, control)
    assert result == "accepted" and clock.sleeps == [1]
    assert time.monotonic() - started < 5
    retries = [e["detail"] for e in read_log(tmp_path) if e["event"] == "retry"]
    assert retries[0]["code"] == "DRIVE_TIMEOUT" and "drive-deadline" in events(tmp_path)


def test_a_stop_during_a_drive_pauses_it_and_ends_aborted(tmp_path):
    control = ScriptedControl([BLOCK, accepted()])
    sup = Supervisor(control, tmp_path, clock=FakeClock())
    threading.Timer(0.2, sup.stop).start()
    assert sup.run() == "aborted"
    assert control.calls == ["proceed"] and read_status(tmp_path)["phase"] == "stopped"
    assert [e for e in read_log(tmp_path) if e["event"] == "aborted"][0]["detail"]["reason"] == "shutdown"
