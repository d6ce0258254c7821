"""The fleet registry (spec §4.10): the shared spawn gate, the durable supervised set, the project lock."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

from loom_core.control import demo_task
from loom_core.surfaces.plane.registry import FifoGate
from tests.plane.conftest import client, demo, envelope, wait_for


def test_the_gate_serves_in_arrival_order():
    gate = FifoGate(1)
    order: list[int] = []
    gate.__enter__()  # held: everyone below queues
    threads = []
    for i in range(5):
        t = threading.Thread(target=lambda i=i: (gate.__enter__(), order.append(i), gate.__exit__()))
        t.start()
        threads.append(t)
        wait_for(lambda i=i: gate.waiting == i + 1)
    gate.__exit__()
    for t in threads:
        t.join(5)
    assert order == [0, 1, 2, 3, 4] and gate.peak == 1 and gate.entered == 6


def test_one_gate_bounds_every_spawn_of_every_project(start_plane, tmp_path):
    plane = start_plane(permits=1, demo_delay_s=0.02)
    projects = [demo(tmp_path, f"shop{i}") for i in range(2)]
    with client(plane) as c:
        ids = [c.post("/submit", json={"project": str(p), "task": demo_task(), "backend": "demo",
                                       "policy_preset": "auto"}).json()["id"] for p in projects]
        done = wait_for(lambda: all(c.get(f"/projects/{i}").json()["status"]["status"] == "completed" for i in ids)
                        and [c.get(f"/projects/{i}").json()["status"] for i in ids], timeout_s=60)
    assert [s["verdict"] for s in done] == ["accepted", "accepted"]
    spawns = sum(plane.registry.control.status(p)["spawns"] for p in projects)
    assert plane.gate.peak == 1  # the demo runs reviewers side by side: only the gate kept them to one
    assert plane.gate.entered >= spawns > 0


def test_the_supervised_set_is_reattached_on_restart(start_plane, tmp_path):
    proj = demo(tmp_path)
    first = start_plane()
    with client(first) as c:
        pid = c.post("/projects", json={"dir": str(proj)}).json()["id"]
    saved = json.loads((tmp_path / "server" / "projects.json").read_text())
    assert saved == {"dirs": [str(proj.resolve())]}
    first.stop()
    assert json.loads((tmp_path / "server" / "server.json").read_text())["phase"] == "stopped"
    assert json.loads((tmp_path / "server" / "projects.json").read_text()) == saved  # shutdown keeps the set

    second = start_plane()
    with client(second) as c:
        assert [p["id"] for p in c.get("/projects").json()] == [pid]
        info = json.loads((tmp_path / "server" / "server.json").read_text())
        assert info["phase"] == "serving" and info["port"] == second.port and info["project_count"] == 1
        c.delete(f"/projects/{pid}")  # pausing drops it from the durable set
    assert json.loads((tmp_path / "server" / "projects.json").read_text()) == {"dirs": []}


def test_a_project_another_process_drives_is_locked(start_plane, tmp_path):
    proj = demo(tmp_path)
    (proj / ".loom").mkdir(exist_ok=True)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, sys, time\n"
        f"fh = open({str(proj / '.loom' / 'lock')!r}, 'a+')\n"
        "fcntl.flock(fh, fcntl.LOCK_EX)\nprint('held', flush=True)\ntime.sleep(60)\n")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        plane = start_plane()
        with client(plane) as c:
            envelope(c.post("/projects", json={"dir": str(proj)}), 409, "PROJECT_LOCKED")
            envelope(c.post("/submit", json={"project": str(proj), "task": demo_task(), "backend": "demo"}), 409,
                     "PROJECT_LOCKED")
            assert c.get("/projects").json() == []
    finally:
        holder.kill()
        holder.wait()


def test_a_project_a_daemon_watches_is_locked(start_plane, tmp_path):
    from tests.conftest import run_loom

    proj = demo(tmp_path)
    started = run_loom("daemon", "start", "--watch", "--detach", "-C", str(proj), cwd=tmp_path, timeout=60)
    assert started.returncode == 0, started.stderr
    try:
        plane = start_plane()
        with client(plane) as c:  # an idle watching daemon holds no drive lock: its status file says it is there
            envelope(c.post("/projects", json={"dir": str(proj)}), 409, "PROJECT_LOCKED")
    finally:
        assert run_loom("daemon", "stop", str(proj), cwd=tmp_path, timeout=60).returncode == 0
