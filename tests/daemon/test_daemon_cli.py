"""``loom daemon`` end to end with real processes: a detached supervisor on a demo project parks at a gate,
wakes when another process answers, lands the work; stops cleanly and recovers; survives kill -9."""

from __future__ import annotations

import json
import os
import signal
import time
from datetime import datetime

import pytest

from loom_core.control import LocalControl, create_demo_project, demo_task
from loom_core.surfaces.daemon import read_log, read_status
from tests.conftest import run_loom

pytestmark = pytest.mark.slow


@pytest.fixture
def env(tmp_path, monkeypatch):
    base = tmp_path / "tmpdir"
    base.mkdir()
    monkeypatch.setenv("TMPDIR", str(base))  # sandboxes inside the test's tmp dir
    return {"TMPDIR": str(base)}


@pytest.fixture
def demo(tmp_path):
    proj = tmp_path / "demo"
    create_demo_project(proj)
    yield proj
    doc = read_status(proj)  # never leave a daemon behind
    if doc and doc.get("phase") != "stopped":
        try:
            os.kill(doc["pid"], signal.SIGKILL)
        except (ProcessLookupError, KeyError, TypeError):
            pass


def wait_for(what, timeout=20.0, every=0.02):
    deadline = time.monotonic() + timeout
    while True:
        got = what()
        if got:
            return got
        assert time.monotonic() < deadline, "timed out"
        time.sleep(every)


def ts(entry) -> float:
    return datetime.fromisoformat(entry["ts"].replace("Z", "+00:00")).timestamp()


def logged(proj, event, n=1):
    hits = [e for e in read_log(proj) if e["event"] == event]
    return hits if len(hits) >= n else None


def start(proj, env, *args):
    proc = run_loom("daemon", "start", "--detach", "--backend", "demo", *args, cwd=proj, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def daemon_status(proj):
    return json.loads(run_loom("daemon", "status", "--json", cwd=proj).stdout)


def test_detached_daemon_parks_wakes_on_an_answer_from_another_process_and_lands(demo, env):
    proc = start(demo, env, "--policy", "demo-gates", demo_task())
    pid = read_status(demo)["pid"]
    assert f"pid {pid}" in proc.stdout and "log.jsonl" in proc.stdout
    wait_for(lambda: logged(demo, "parked"))
    st = daemon_status(demo)
    assert st["running"] and st["phase"] == "parked" and st["detail"] == "gate-plan" and st["pid"] == pid
    assert "parked" in run_loom("daemon", "status", cwd=demo).stdout
    again = run_loom("daemon", "start", "--detach", "--backend", "demo", cwd=demo, env=env)
    assert again.returncode == 1
    assert f"already supervises {demo} (pid {pid})" in again.stderr
    latencies = []
    for n, gate in enumerate(("gate-plan", "gate-final"), start=1):
        wait_for(lambda g=gate: read_status(demo).get("detail") == g and read_status(demo)["phase"] == "parked")
        answered = run_loom("answer", "accept", cwd=demo)
        done = time.time()  # the answer was committed before `loom answer` exited
        assert answered.returncode == 0, answered.stderr
        assert f"the daemon (pid {pid}) continues the task" in answered.stdout
        woken = wait_for(lambda k=n: logged(demo, "woken", k), timeout=5)[-1]
        latencies.append(ts(woken) - done)
    assert max(latencies) < 1.0, latencies
    wait_for(lambda: read_status(demo)["phase"] == "stopped")
    task_id = LocalControl().status(demo)["task_id"]
    assert LocalControl().branch_exists(demo, f"loom/{task_id}")
    events = [e["event"] for e in read_log(demo)]
    assert events.index("complete") < events.index("merge-back")
    assert not daemon_status(demo)["running"]
    assert "loom daemon: accepted" in (demo / ".loom" / "daemon" / "daemon.out").read_text()


def test_stop_on_a_running_drive_stops_cleanly_and_a_second_start_recovers(demo, env):
    start(demo, env, "--policy", "auto", "--demo-delay", "0.4", demo_task())
    wait_for(lambda: LocalControl().status(demo).get("spawns", 0) >= 2)
    pid = read_status(demo)["pid"]
    stopped_at = time.monotonic()
    proc = run_loom("daemon", "stop", cwd=demo)
    assert proc.returncode == 0 and f"stopped the daemon (pid {pid})" in proc.stdout, proc.stdout + proc.stderr
    assert time.monotonic() - stopped_at < 5
    assert read_status(demo)["phase"] == "stopped"
    assert logged(demo, "aborted")[0]["detail"]["reason"] == "shutdown"
    st = LocalControl().status(demo)
    assert st["state"] == "in_progress" and not st["driven"]  # left resumable, nobody holds it
    assert "no daemon is running" in run_loom("daemon", "stop", cwd=demo).stdout
    start(demo, env)  # no task text: the one in progress is recovered
    wait_for(lambda: read_status(demo)["phase"] == "stopped" and logged(demo, "complete"), timeout=60)
    assert len(logged(demo, "recover-on-start")) == 1
    assert LocalControl().status(demo)["verdict"] == "accepted"


def test_kill_9_mid_task_then_restart_finishes_with_nothing_doubled(demo, env, tmp_path):
    reference = tmp_path / "reference"
    create_demo_project(reference)
    ref = run_loom("run", "--backend", "demo", "--policy", "auto", demo_task(), cwd=reference, env=env)
    assert ref.returncode == 0, ref.stderr
    want = LocalControl().status(reference)

    start(demo, env, "--policy", "auto", "--demo-delay", "0.15", demo_task())
    wait_for(lambda: LocalControl().status(demo).get("spawns", 0) >= 3)
    os.kill(read_status(demo)["pid"], signal.SIGKILL)
    time.sleep(0.2)
    assert not daemon_status(demo)["running"]  # the dead owner is seen as such
    start(demo, env)
    wait_for(lambda: read_status(demo)["phase"] == "stopped" and logged(demo, "complete"), timeout=60)
    got = LocalControl().status(demo)
    assert got["verdict"] == "accepted"
    assert (got["spawns"], got["ticks"]) == (want["spawns"], want["ticks"])
    chain = LocalControl().chain(demo)
    ids = [r["agent_run_id"] for r in chain["runs"]]
    assert len(ids) == len(set(ids))
    assert LocalControl().branch_exists(demo, f"loom/{got['task_id']}")


def test_sigint_in_the_foreground_stops_a_parked_supervisor_at_once(demo, env):
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "loom_core.surfaces.cli", "daemon", "start", "--backend", "demo",
                             "--policy", "demo-gates", demo_task()], cwd=demo, env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: (read_status(demo) or {}).get("phase") == "parked")
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
        assert time.monotonic() - sent < 2
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert '"event": "parked"' in err and "loom daemon: aborted" in err  # the log is echoed to stderr
    assert read_status(demo)["phase"] == "stopped"
    assert logged(demo, "aborted")[0]["detail"] == {"reason": "shutdown", "task_id": read_status(demo)["task_id"],
                                                   "gate": "gate-plan"}
    agents = {e["detail"]["agent"] for e in logged(demo, "spawn-usage")}
    assert {"classifier", "planner"} <= agents
    assert LocalControl().status(demo)["status"] == "parked"  # the task waits for its answer, as it was


def test_watch_mode_drives_its_task_goes_idle_and_picks_up_a_task_created_elsewhere(demo, env):
    from loom_core.control import RunOptions

    start(demo, env, "--watch", "--policy", "auto", demo_task())
    first = wait_for(lambda: logged(demo, "complete"), timeout=30)[0]["detail"]["task_id"]
    wait_for(lambda: read_status(demo)["phase"] == "idle")
    assert daemon_status(demo)["running"]
    created = LocalControl().create_task(demo, "Reject discount percentages above 100 only",
                                         RunOptions(backend="demo", policy="auto"))
    assert created["task_id"] != first
    second = wait_for(lambda: logged(demo, "complete", 2), timeout=15)[-1]
    assert second["detail"]["task_id"] == created["task_id"] and second["detail"]["verdict"] == "accepted"
    assert run_loom("daemon", "stop", cwd=demo).returncode == 0
    events = [e["event"] for e in read_log(demo)]
    assert events[-1] == "watch-stop" and "idle" in events
