"""Agents in containers on a real Docker engine (our own dockerd; see conftest): the edit lands on
``loom/<task>``, the container runs as the non-root user with the limits asked for, the token never shows
in its command line or labels, a timeout or a cancel removes it, a loom killed with -9 leaves a labelled
container that the next start removes, and with bind mounts off the copy round-trips as archives."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from loom_core.agents.executors.container import ContainerExecutor
from loom_core.agents.executors.container_plan import decide, docker_status
from loom_core.config.settings import load_settings
from loom_core.errors import ExecutorError
from loom_core.kernel.types import Intent
from loom_core.store import slot
from loom_core.workspace import Workspace
from loom_core.workspace.landing import land
from tests.conftest import ROOT
from tests.docker.conftest import TOKEN, containers, wait_for
from tests.support.git import branch_files, make_repo

pytestmark = pytest.mark.xdist_group("docker")


def plan_for(project: Path):
    if not (project / ".git").exists():
        make_repo(project, {"README.md": "# p\n"})
    plan, notice = decide(True, "claude-code", project)
    assert plan is not None, notice
    return plan


def intent(workdir: Path, prompt: str, rid: str = "ar-1", **extras) -> Intent:
    return Intent("implementer", rid, "implementation", "claude-sonnet-4-5", prompt, system_prompt="Be \"careful\".",
                  extras={"workdir": str(workdir), "edits_files": True, **extras})


@pytest.fixture
def repo(tmp_path):
    proj = tmp_path / "app"
    make_repo(proj, {"app/core.py": "def f():\n    return 1\n", "README.md": "# app\n", "old.txt": "bye\n"})
    ws = Workspace.provision(proj, fresh=True)
    assert ws.isolated
    yield proj, ws
    if ws.root.exists():
        ws.discard()


def test_the_agents_edit_lands_on_the_task_branch(docker_env, repo):
    proj, ws = repo
    owner = ws.root.stat().st_uid
    ex = ContainerExecutor(plan_for(proj))
    logs: list[str] = []
    res = ex.execute(intent(ws.root, "@@write app/core.py def f(): return 2\n@@write notes/n.txt new\n@@rm old.txt"
                            "\n@@git"), threading.Event(), logs.append)

    # git in the container reads HEAD through the object store the sandbox borrows (mounted read-only)
    assert res.output == "uid=1000 gid=1000 home=/home/app token=set argc=10 git=commit"
    assert (res.usage.tokens_in, res.usage.tokens_out, res.usage.cost_usd) == (12, 7, 0.0125)
    assert ws.root.stat().st_uid == owner and (ws.root / ".git").stat().st_uid == owner  # owners never change
    assert (ws.root / "notes" / "n.txt").stat().st_uid == 1000  # what the agent made is the agent's
    merge = land(proj, "t-docker-1", ws)
    assert merge.status == "merged" and merge.branch == "loom/t-docker-1"
    files = branch_files(proj, "loom/t-docker-1")
    assert files["app/core.py"] == "def f(): return 2\n"
    assert "old.txt" not in files and files["README.md"] == "# app\n" and files["notes/n.txt"] == "new\n"
    assert not containers(docker_env, **{"loom.run": "ar-1"})  # removed after the run


def test_non_root_limits_and_no_token_on_the_command_line(docker_env, tmp_path):
    work = tmp_path / "w"
    work.mkdir()
    ex = ContainerExecutor(plan_for(tmp_path / "p"))
    (tmp_path / "p" / ".loom").mkdir()
    slot.mark(tmp_path / "p", "t-limits")  # what the engine records once the task exists
    cancel = threading.Event()
    box: dict = {}
    t = threading.Thread(target=lambda: box.setdefault("err", _fails(ex, intent(work, "@@nap 30", "ar-lim"), cancel)))
    t.start()
    try:
        (c,) = wait_for(lambda: [c for c in containers(docker_env, **{"loom.run": "ar-lim"})
                                 if c.status == "running"])
        a = c.attrs
        host, cfg = a["HostConfig"], a["Config"]
        assert cfg["User"] == "1000:1000" and host["Init"] is True
        assert (host["Memory"], host["PidsLimit"], host["NanoCpus"]) == (256 * 1024 ** 2, 64, 500_000_000)
        assert host["NetworkMode"] == "none" and "/home/app" in host["Tmpfs"]
        assert cfg["WorkingDir"] == "/workspace" and any(m["Destination"] == "/workspace" for m in a["Mounts"])
        shown = json.dumps([cfg["Cmd"], a["Args"], a["Path"], cfg["Labels"], cfg.get("Entrypoint")])
        assert TOKEN not in shown and "--permission-mode" in shown
        assert cfg["Labels"]["loom.owner-pid"] == str(os.getpid()) and cfg["Labels"]["loom.task"] == "t-limits"
        assert cfg["Labels"]["loom.project"] == str(tmp_path / "p")
        cancel.set()
        t.join(30)
    finally:
        cancel.set()
        t.join(30)
    assert box["err"].code == "EXECUTOR_ABORTED"
    assert not containers(docker_env, **{"loom.run": "ar-lim"})


def _fails(ex, it, cancel) -> ExecutorError:
    with pytest.raises(ExecutorError) as info:
        ex.execute(it, cancel, lambda line: None)
    return info.value


def test_a_timeout_stops_and_removes_the_container(docker_env, tmp_path):
    work = tmp_path / "w"
    work.mkdir()
    ex = ContainerExecutor(plan_for(tmp_path / "p"), session_timeout_s=1.0)
    ex.kill_grace_s = 2
    started = time.monotonic()
    err = _fails(ex, intent(work, "@@nap 60", "ar-slow"), threading.Event())
    assert err.code == "EXECUTOR_TIMEOUT" and "session timeout" in str(err)
    assert time.monotonic() - started < 20
    assert not containers(docker_env, **{"loom.run": "ar-slow"})


KILLED_LOOM = """
import sys, threading
from pathlib import Path
from loom_core.agents.executors.container import ContainerExecutor
from loom_core.agents.executors.container_plan import decide
from loom_core.kernel.types import Intent
plan, _ = decide(True, "claude-code", Path(sys.argv[2]))
it = Intent("implementer", "ar-orphan", "implementation", "m", "@@nap 120", extras={"workdir": sys.argv[1], "edits_files": True})
ContainerExecutor(plan).execute(it, threading.Event(), print)
"""


def test_a_kill_9_leaves_a_labelled_container_that_the_next_start_removes(docker_env, tmp_path):
    work = tmp_path / "w"
    work.mkdir()
    out = open(tmp_path / "child.out", "wb")
    make_repo(tmp_path / "p", {"README.md": "# p\n"})
    child = subprocess.Popen([sys.executable, "-c", KILLED_LOOM, str(work), str(tmp_path / "p")], cwd=ROOT, env=dict(os.environ),
                             stdout=out, stderr=subprocess.STDOUT)
    try:
        try:
            wait_for(lambda: [c for c in containers(docker_env, **{"loom.owner-pid": child.pid})
                              if c.status == "running"], timeout=30)
        except AssertionError:
            raise AssertionError((tmp_path / "child.out").read_text()) from None
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        time.sleep(0.3)
        (left,) = containers(docker_env, **{"loom.owner-pid": child.pid})  # nobody cleaned up
        assert left.labels["loom.run"] == "ar-orphan"
        _plan, notice = decide(None, "claude-code", tmp_path / "p")  # the next start
        assert "removed 1 container(s) left by a loom that was killed" in notice
        assert not containers(docker_env, **{"loom.owner-pid": child.pid})
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        out.close()


def test_without_bind_mounts_the_copy_round_trips_as_archives(docker_env, repo, monkeypatch):
    monkeypatch.setenv("LOOM_DOCKER_BIND_MOUNTS", "off")
    proj, ws = repo
    (ws.root / "deep" / "er").mkdir(parents=True)
    (ws.root / "deep" / "er" / "keep.bin").write_bytes(bytes(range(256)) * 64)
    os.symlink("app/core.py", ws.root / "link.py")
    untouched = (ws.root / "README.md").stat().st_ino
    plan = plan_for(proj)
    assert plan.bind_mounts is False
    ex = ContainerExecutor(plan)
    seen: dict = {}
    cancel = threading.Event()

    def peek():
        (c,) = wait_for(lambda: [c for c in containers(docker_env, **{"loom.run": "ar-arch"})
                                 if c.status == "running"])
        seen["mounts"] = c.attrs["Mounts"]

    t = threading.Thread(target=peek)
    t.start()
    res = ex.execute(intent(ws.root, "@@nap 1\n@@write app/core.py shipped back\n@@write new/dir/n.txt new\n"
                            "@@rm old.txt\n@@git", "ar-arch"), cancel, lambda line: None)
    t.join(20)
    assert seen["mounts"] == [] or all(m["Type"] == "tmpfs" for m in seen["mounts"])  # no bind mount at all
    assert res.output.startswith("uid=1000 ") and res.output.endswith(" git=commit")  # the store was shipped too
    assert (ws.root / "app" / "core.py").read_text() == "shipped back\n"
    assert (ws.root / "new" / "dir" / "n.txt").read_text() == "new\n"
    assert not (ws.root / "old.txt").exists()
    assert (ws.root / "deep" / "er" / "keep.bin").read_bytes() == bytes(range(256)) * 64
    assert os.readlink(ws.root / "link.py") == "app/core.py"
    assert (ws.root / "README.md").stat().st_ino == untouched  # what the agent left alone is not rewritten
    assert all(p.stat().st_uid == os.getuid() for p in ws.root.rglob("*"))
    merge = land(proj, "t-docker-2", ws)
    assert merge.status == "merged"
    files = branch_files(proj, "loom/t-docker-2")
    assert files["app/core.py"] == "shipped back\n" and files["new/dir/n.txt"] == "new\n" and "old.txt" not in files


def test_status_names_a_missing_image_on_the_engine(docker_env, monkeypatch):
    monkeypatch.setenv("LOOM_DOCKER_IMAGE", "loom-test/nothing:here")
    st = docker_status(load_settings())
    assert not st.available and "has no image loom-test/nothing:here" in st.reason and st.engine is None
    monkeypatch.setenv("LOOM_DOCKER_IMAGE", docker_env.image)
    st = docker_status(load_settings())
    assert st.available and st.engine and "as 1000:1000" in st.reason


def test_an_agent_silent_longer_than_the_api_timeout_is_still_heard(docker_env, tmp_path):
    work = tmp_path / "w"
    work.mkdir()
    ex = ContainerExecutor(plan_for(tmp_path / "p"))
    ex.api_timeout_s = 1  # requests that end wait 1 s at most; the output stream must not
    heard: list[tuple[float, str]] = []
    res = ex.execute(intent(work, "@@say early\n@@nap 3\n@@say late\n@@write late.txt still here", "ar-quiet"),
                     threading.Event(), lambda line: heard.append((time.monotonic(), line)))
    assert res.output.startswith("uid=1000 ") and (work / "late.txt").read_text() == "still here\n"
    when = {line: t for t, line in heard}
    assert when["late"] - when["early"] > 1.5  # each line reached the live log as the agent printed it


def test_git_on_the_host_keeps_working_while_agents_run_side_by_side(docker_env, repo):
    """Reviewers run at once on one copy while loom snapshots it on the host: no container may make the
    repository someone else's (git and libgit2 refuse a repository owned by another user)."""
    import pygit2

    proj, ws = repo
    ex = ContainerExecutor(plan_for(proj))
    outs: dict = {}

    def run(rid: str) -> None:
        outs[rid] = ex.execute(intent(ws.root, "@@nap 4\n@@git", rid, edits_files=False), threading.Event(),
                               lambda line: None).output

    threads = [threading.Thread(target=run, args=(rid,)) for rid in ("ar-r1", "ar-r2")]
    for t in threads:
        t.start()
    wait_for(lambda: len([c for c in containers(docker_env, **{"loom.project": str(proj)})
                          if c.status == "running"]) == 2)
    assert str(pygit2.Repository(str(ws.root)).head.target)  # the host opens the copy mid-run
    for t in threads:
        t.join(30)
    assert [outs[r].rsplit(" ", 1)[-1] for r in ("ar-r1", "ar-r2")] == ["git=commit", "git=commit"]


def test_the_login_file_is_mounted_read_only_and_home_stays_writable(docker_env, tmp_path, monkeypatch):
    monkeypatch.delenv("CLAUDE_CODE_OAUTH_TOKEN")
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "cc"))
    (tmp_path / "cc").mkdir()
    (tmp_path / "cc" / ".credentials.json").write_text('{"login": "from-the-file"}')
    (tmp_path / "cc" / ".credentials.json").chmod(0o644)
    work = tmp_path / "w"
    work.mkdir()
    plan = plan_for(tmp_path / "p")
    assert plan.credential == "file"
    res = ContainerExecutor(plan).execute(intent(work, "@@cred", "ar-cred"), threading.Event(), lambda line: None)
    assert "token=unset" in res.output and res.output.endswith("cred=login:from-the-file claude-dir-writable=yes")
