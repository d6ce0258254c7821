"""The status file and lock (spec §4.1): exclusive acquire, reclaim rules, pid-reuse-safe stop."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from loom_core.errors import LoomError
from loom_core.surfaces.daemon.status import (
    DaemonStatus,
    alive,
    owner_running,
    read_status,
    start_token,
    status_path,
    stop_daemon,
)


def write(project, **doc):
    path = status_path(project)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))


@pytest.fixture
def sleeper():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait()


def test_acquire_writes_the_file_and_release_marks_it_stopped(tmp_path):
    st = DaemonStatus(tmp_path).acquire()
    doc = read_status(tmp_path)
    assert doc["pid"] == os.getpid() and doc["phase"] == "starting" and doc["project_dir"] == str(tmp_path)
    assert doc["start_token"] == start_token(os.getpid()) and doc["start_token"].isdigit()
    st.update("parked", task_id="t-1", detail="gate-plan")
    assert read_status(tmp_path)["detail"] == "gate-plan"
    st.update("driving", detail=None)
    assert "detail" not in read_status(tmp_path) and not list(status_path(tmp_path).parent.glob("*.tmp"))
    st.release()
    assert read_status(tmp_path)["phase"] == "stopped"
    DaemonStatus(tmp_path).acquire()  # a stopped file is reclaimed


def test_a_live_foreign_owner_refuses_with_its_pid(tmp_path, sleeper):
    write(tmp_path, pid=sleeper.pid, phase="parked", start_token=start_token(sleeper.pid))
    with pytest.raises(LoomError) as err:
        DaemonStatus(tmp_path).acquire()
    assert err.value.code == "DAEMON_ALREADY_RUNNING" and str(sleeper.pid) in str(err.value)


@pytest.mark.parametrize("doc", [None, "garbage", {"pid": 999_999_99, "phase": "driving"}])
def test_a_dead_owner_or_an_unreadable_file_is_reclaimed(tmp_path, doc):
    path = status_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("" if doc is None else json.dumps(doc))
    DaemonStatus(tmp_path).acquire()
    assert read_status(tmp_path)["pid"] == os.getpid()


def test_a_reused_pid_is_not_the_daemon_and_is_never_signalled(tmp_path, sleeper):
    write(tmp_path, pid=sleeper.pid, phase="driving", start_token="1")  # same pid, another process's start time
    assert not owner_running(read_status(tmp_path))
    got = stop_daemon(tmp_path)
    assert got["result"] == "not-running" and got["cleared"]
    assert sleeper.poll() is None  # still alive: nobody was signalled
    assert not status_path(tmp_path).exists()
    DaemonStatus(tmp_path).acquire()


def test_stop_sends_sigterm_to_a_live_owner(tmp_path, sleeper):
    write(tmp_path, pid=sleeper.pid, phase="parked", start_token=start_token(sleeper.pid))
    got = stop_daemon(tmp_path, timeout_s=10)
    assert got == {"result": "stopped", "pid": sleeper.pid}
    assert sleeper.wait(5) == -15
    assert not alive(sleeper.pid)


def test_stop_without_a_daemon_says_so(tmp_path):
    assert stop_daemon(tmp_path)["result"] == "not-running"
