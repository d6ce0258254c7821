"""``loom run --docker`` end to end on a real engine: a whole fast-lane task whose implementer runs in a
container lands its edit on ``loom/<task>``; a ``loom run`` killed with -9 leaves its container running
and the next run removes it; ``--docker`` refuses in one line when containers cannot work; auto falls back
to the sandbox copy with a notice naming what is missing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from loom_core.agents.executors.container import ContainerExecutor
from loom_core.engine.options import RunOptions
from loom_core.engine.runner import TaskRunner
from loom_core.errors import ConfigError
from tests.conftest import ROOT, run_loom
from tests.docker.conftest import containers, wait_for
from tests.support.git import branch_files, make_repo, user_side

pytestmark = pytest.mark.xdist_group("docker")


def test_loom_run_docker_lands_the_containers_edit(docker_env, tmp_path):
    proj = tmp_path / "app"
    make_repo(proj, {"app/core.py": "def f():\n    return 1\n", "README.md": "# app\n"})
    before = user_side(proj)
    cp = run_loom("run", "--docker", "--fast", "--backend", "claude-code", "--json",
                  "@@write app/core.py def f(): return 42", cwd=proj, timeout=120)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    out = json.loads(cp.stdout)
    branch = out["merge"]["branch"]
    assert branch.startswith("loom/") and out["merge"]["status"] == "merged"
    assert branch_files(proj, branch)["app/core.py"] == "def f(): return 42\n"
    assert user_side(proj) == before  # the user's checkout is untouched
    assert "agents run in containers of loom-test/claude:tiny as 1000:1000" in cp.stderr + cp.stdout


def test_the_runner_builds_container_executors_only_when_asked(docker_env, tmp_path):
    make_repo(tmp_path, {"a.txt": "a\n"})
    runner = TaskRunner(tmp_path, RunOptions(backend="claude-code", docker=True))
    ex = runner._backend().resolver.executor("claude-code", agentic=True)
    assert isinstance(ex, ContainerExecutor) and ex.plan.user == "1000:1000"
    off = TaskRunner(tmp_path, RunOptions(backend="claude-code", docker=False))
    assert off._backend().resolver.container is None


def test_docker_required_but_impossible_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.delenv("LOOM_DOCKER_IMAGE", raising=False)
    proj = tmp_path / "app"
    make_repo(proj, {"a.txt": "a\n"})
    cp = run_loom("run", "--docker", "--backend", "claude-code", "do it", cwd=proj)
    assert cp.returncode == 1
    assert cp.stderr.strip().splitlines() == [
        "loom: --docker requires container isolation, but no image is configured (set LOOM_DOCKER_IMAGE; "
        "see docker/README.md)"]
    assert not (proj / ".loom").exists()
    both = run_loom("run", "--docker", "--no-docker", "do it", cwd=proj)
    assert both.returncode == 2 and "cannot be combined" in both.stderr
    plain = tmp_path / "plain"
    plain.mkdir()
    cp = run_loom("run", "--docker", "--backend", "claude-code", "--in-place", "do it", cwd=plain)
    assert cp.returncode == 1 and "is not a git repository (a container works on a sandbox copy)" in cp.stderr


def test_auto_without_an_engine_uses_the_sandbox_copy_and_says_why(tmp_path, monkeypatch):
    monkeypatch.setenv("LOOM_DOCKER_IMAGE", "loom/claude:latest")
    monkeypatch.setenv("LOOM_DOCKER_USER", "1000")
    monkeypatch.setenv("CLAUDE_CODE_OAUTH_TOKEN", "t")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no.sock")
    events = []

    class Sink:
        def emit(self, ev):
            events.append(ev)

    make_repo(tmp_path, {"a.txt": "a\n"})
    runner = TaskRunner(tmp_path, RunOptions(backend="claude-code"), sink=Sink())
    assert runner._backend().resolver.container is None  # the host's Claude Code CLI will run
    (notice,) = [e.data["message"] for e in events if e.kind == "notice"]
    assert notice.startswith("agents run in a sandbox copy, not a container: the Docker engine at unix://")
    assert "--no-docker silences this" in notice
    with pytest.raises(ConfigError) as info:
        TaskRunner(tmp_path, RunOptions(backend="claude-code", docker=True))._backend()
    assert info.value.code == "DOCKER_UNAVAILABLE" and "does not answer" in str(info.value)


def test_daemon_start_refuses_docker_up_front_and_passes_the_flag_to_a_detached_child(tmp_path, monkeypatch):
    monkeypatch.delenv("LOOM_DOCKER_IMAGE", raising=False)
    proj = tmp_path / "app"
    make_repo(proj, {"a.txt": "a\n"})
    cp = run_loom("daemon", "start", "--docker", "--backend", "claude-code", "do it", cwd=proj)
    assert cp.returncode == 1 and cp.stderr.strip().splitlines() == [
        "loom: --docker requires container isolation, but no image is configured (set LOOM_DOCKER_IMAGE; "
        "see docker/README.md)"]
    assert not (proj / ".loom").exists()
    assert run_loom("daemon", "start", "--docker", "--no-docker", cwd=proj).returncode == 2
    from loom_core.surfaces.cli.common import docker_flags

    assert (docker_flags(True), docker_flags(False), docker_flags(None)) == (["--docker"], ["--no-docker"], [])


def test_a_loom_run_killed_with_9_leaves_a_container_the_next_run_removes(docker_env, tmp_path):
    proj = tmp_path / "app"
    make_repo(proj, {"app/core.py": "def f():\n    return 1\n"})
    child = subprocess.Popen([sys.executable, "-m", "loom_core.surfaces.cli", "run", "--docker", "--fast",
                              "--backend", "claude-code", "@@nap 120"], cwd=proj,
                             env={**os.environ, "PYTHONPATH": str(ROOT)},
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: [c for c in containers(docker_env, **{"loom.owner-pid": child.pid})
                          if c.status == "running"], timeout=60)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        time.sleep(0.3)
        assert len(containers(docker_env, **{"loom.owner-pid": child.pid})) == 1  # the agent outlived its loom
        cp = run_loom("run", "--docker", "--fast", "--backend", "claude-code", "--replace", "--json",
                      "@@write app/core.py def f(): return 3", cwd=proj, timeout=120)
        assert cp.returncode == 0, cp.stdout + cp.stderr
        assert "removed 1 container(s) left by a loom that was killed" in cp.stderr + cp.stdout
        assert not containers(docker_env, **{"loom.owner-pid": child.pid})
        branch = json.loads(cp.stdout)["merge"]["branch"]
        assert branch_files(proj, branch)["app/core.py"] == "def f(): return 3\n"
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
