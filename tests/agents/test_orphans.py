"""Child processes never outlive a killed loom: kill -9 ``loom run`` while a slow check runs, resume,
and nothing the first run started survives (PDEATHSIG takes the check's shell at once; the resumed
driver reaps the rest of its process group from the pid file)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from loom_core.agents.executors.demo_project import create_demo_project
from tests.conftest import ROOT, run_loom


def _stat(pid: int | str) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2:].split()


def alive(pid: int) -> bool:
    f = _stat(pid)
    return bool(f) and f[0] not in ("Z", "X")


def group_members(pgid: int) -> list[int]:
    """Live processes in process group ``pgid``."""
    out = []
    for entry in Path("/proc").iterdir():
        f = _stat(entry.name) if entry.name.isdigit() else None
        if f and f[0] not in ("Z", "X") and f[2] == str(pgid):
            out.append(int(entry.name))
    return out


def wait_for(cond, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")
def test_kill_9_during_a_slow_check_leaves_no_orphan_after_resume(tmp_path):
    proj = tmp_path / "shop"
    create_demo_project(proj)
    marks = tmp_path / "marks"
    marks.mkdir()
    # the first run's check sleeps (a background and a foreground sleep); the resumed one passes at once
    slow = (f"echo $$ > {marks}/sh.pid; if [ ! -e {marks}/ran ]; then touch {marks}/ran; "
            f"sleep 300 & echo $! > {marks}/bg.pid; sleep 300; fi")
    (proj / ".loom" / "loom.json").write_text(json.dumps({"checks": {"test": slow}}))
    env = {**os.environ, "LOOM_MAX_SPAWNS": "0"}
    first = subprocess.Popen([sys.executable, "-m", "loom_core.surfaces.cli", "run", "--backend", "demo", "--policy", "auto",
                              "Reject discount percentages outside 0-100 in apply_discount"],
                             cwd=proj, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sh = None
    try:
        assert wait_for(lambda: (marks / "bg.pid").exists() and (marks / "bg.pid").read_text().strip()), \
            "the slow check never started"
        sh = int((marks / "sh.pid").read_text())
        bg = int((marks / "bg.pid").read_text())
        assert alive(sh) and alive(bg)
        # loom records the child right after starting it (the shell may already be running by then)
        assert wait_for(lambda: list((proj / ".loom" / "children").glob("*.json")), 10), "no pid file"
        registry = list((proj / ".loom" / "children").glob("*.json"))
        assert [json.loads(p.read_text())["pid"] for p in registry] == [sh]
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        # PDEATHSIG: the check's shell dies with loom, not minutes later
        assert wait_for(lambda: not alive(sh), 5), f"the check's shell {sh} outlived loom"
        assert alive(bg)  # a grandchild is not covered by PDEATHSIG: the pid file is

        second = run_loom("proceed", cwd=proj, env={"LOOM_MAX_SPAWNS": "0"}, timeout=120)
        assert second.returncode in (0, 3), second.stdout + second.stderr
        assert not alive(bg), f"the first run's background sleep {bg} survived the resume"
        assert group_members(sh) == [], "a process of the killed run's check survived"
        assert not list((proj / ".loom" / "children").glob("*.json"))
        assert "stopped 2 process(es) a killed earlier run left behind" in second.stdout
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(10)
        for pid in group_members(sh) if sh else []:
            os.kill(pid, signal.SIGKILL)


def test_pdeathsig_ties_a_child_to_its_thread(tmp_path):
    """The preexec hook: a child started by a thread of a process that is SIGKILLed dies with it."""
    script = tmp_path / "parent.py"
    script.write_text(
        "import subprocess, sys, threading, time\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from loom_core.workspace import children\n"
        "def run():\n"
        "    p = subprocess.Popen(['sleep', '300'], start_new_session=True, preexec_fn=children.preexec())\n"
        "    print(p.pid, flush=True)\n"
        "    p.wait()\n"
        "threading.Thread(target=run).start()\n"
        "time.sleep(300)\n")
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    pid = int(parent.stdout.readline())
    assert alive(pid)
    parent.kill()
    parent.wait(10)
    ok = wait_for(lambda: not alive(pid), 5)
    if not ok:
        os.kill(pid, signal.SIGKILL)
    assert ok, "the child outlived its parent"


def test_reap_kills_a_dead_runs_group_only(tmp_path):
    """The pid file of a run that is gone gets its group killed; this process's own children and a group id
    now used by processes started before the recorded time (a recycled id) are left alone."""
    from loom_core.workspace import children

    folder = tmp_path / ".loom" / "children"
    folder.mkdir(parents=True)
    procs = [subprocess.Popen(["sleep", "300"], start_new_session=True) for _ in range(3)]
    try:
        starts = [children.start_time(p.pid) for p in procs]
        (folder / "a.json").write_text(json.dumps({"pid": procs[0].pid, "start": starts[0], "loom": [1, 0]}))
        (folder / "b.json").write_text(json.dumps({"pid": procs[1].pid, "start": starts[1],
                                                   "loom": children._me()}))
        (folder / "c.json").write_text(json.dumps({"pid": procs[2].pid, "start": starts[2] + 10 ** 9,
                                                   "loom": [1, 0]}))
        assert children.reap(tmp_path) == [procs[0].pid]
        assert procs[0].wait(5) == -signal.SIGKILL
        assert procs[1].poll() is None and procs[2].poll() is None
        assert sorted(p.name for p in folder.iterdir()) == ["b.json"]
    finally:
        for p in procs:
            p.kill()
            p.wait(5)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")
def test_kill_9_during_an_agent_cli_leaves_no_orphan_after_resume(tmp_path):
    """The same for an agent CLI (a stand-in `claude` that starts a background job and hangs)."""
    from tests.support.git import make_repo

    marks = tmp_path / "marks"
    marks.mkdir()
    fake = tmp_path / "bin" / "claude"
    fake.parent.mkdir()
    fake.write_text(f"#!{sys.executable}\n" + f"""
import json, os, subprocess, sys, time
from pathlib import Path
M = Path({str(marks)!r})
if sys.argv[1:] == ["--version"]:
    print("9.9.9 (Claude Code)"); sys.exit(0)
sys.stdin.read()
if not (M / "ran").exists():
    (M / "ran").touch()
    bg = subprocess.Popen(["sleep", "300"])
    (M / "pids").write_text(f"{{os.getpid()}} {{bg.pid}}")
    time.sleep(300)
Path("hello.txt").write_text("hi\\n")
print(json.dumps({{"type": "result", "is_error": False, "result": "done", "usage": {{}}}}), flush=True)
""")
    fake.chmod(0o755)
    proj = tmp_path / "app"
    make_repo(proj, {"app.py": "x = 1\n"})
    (proj / ".loom").mkdir()
    env = {**os.environ, "LOOM_CLAUDE_BIN": str(fake)}
    first = subprocess.Popen([sys.executable, "-m", "loom_core.surfaces.cli", "run", "--backend", "claude-code", "--fast",
                              "--policy", "auto", "add hello.txt"], cwd=proj, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cli = bg = None
    try:
        assert wait_for(lambda: (marks / "pids").exists() and (marks / "pids").read_text().strip()), \
            "the agent CLI never started"
        cli, bg = map(int, (marks / "pids").read_text().split())
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        assert wait_for(lambda: not alive(cli), 5), f"the agent CLI {cli} outlived loom"
        assert alive(bg)
        second = run_loom("proceed", cwd=proj, env={"LOOM_CLAUDE_BIN": str(fake)}, timeout=120)
        assert not alive(bg), second.stdout + second.stderr
        assert group_members(cli) == []
        assert "left behind" in second.stdout, second.stdout + second.stderr
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(10)
        for pid in group_members(cli) if cli else []:
            os.kill(pid, signal.SIGKILL)
