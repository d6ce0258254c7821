"""Landing accepted work survives kill -9 at every step of merge-back and clean-up: a resumed run never
commits again, finishes the branch from the recorded commit, removes the sandbox (half-deleted or not)
and the leftovers of killed runs, and never moves a branch the user has touched."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pygit2
import pytest

from loom_core.agents.executors.demo_project import create_demo_project
from loom_core.engine.runner import demo_task
from loom_core.workspace import Workspace
from tests.conftest import run_loom
from tests.support.git import branch_files, user_side

pytestmark = pytest.mark.slow


def _env(tmpdir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOM_CRASH")}
    return {**env, "TMPDIR": str(tmpdir), **extra}


def _run(proj: Path, env: dict) -> subprocess.CompletedProcess:
    return run_loom("run", demo_task(), "--backend", "demo", "--policy", "auto", cwd=proj, env=env, timeout=120)


def _project(tmp_path: Path, name: str) -> tuple[Path, Path]:
    tmpdir = tmp_path / f"{name}-tmp"
    tmpdir.mkdir()
    proj = tmp_path / name
    create_demo_project(proj)
    return proj, tmpdir


def _task_id(proj: Path, env: dict) -> str:
    return json.loads(run_loom("status", "--json", cwd=proj, env=env).stdout)["task_id"]


def _loom_commits(proj: Path, task_id: str) -> list[pygit2.Commit]:
    """The commits on ``loom/<task_id>`` that the user's branch does not have."""
    shas = subprocess.run(["git", "rev-list", f"main..loom/{task_id}"], cwd=proj, check=True, capture_output=True,
                          text=True).stdout.split()
    repo = pygit2.Repository(str(proj))
    return [repo[s] for s in shas]


def _leftovers(tmpdir: Path, proj: Path) -> list[str]:
    base = Workspace.sandbox_path(proj, base_dir=tmpdir)
    return sorted(p.name for p in base.parent.glob(base.name + "*")) if base.parent.is_dir() else []


@pytest.fixture(scope="module")
def expected(tmp_path_factory) -> dict[str, str]:
    """The branch an uninterrupted run lands."""
    tmp = tmp_path_factory.mktemp("clean")
    proj, tmpdir = _project(tmp, "clean")
    env = _env(tmpdir)
    proc = _run(proj, env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    files = branch_files(proj, f"loom/{_task_id(proj, env)}")
    assert "if not 0 <= percent <= 100" in files["shop/pricing.py"]
    return files


@pytest.mark.parametrize("point", ["merge-sandbox-commit", "merge-objects-written", "merge-ref-created",
                                   "sandbox-rmtree"])
def test_kill_during_landing_then_proceed_lands_exactly_the_agents_change(tmp_path, expected, point):
    proj, tmpdir = _project(tmp_path, "app")
    before = user_side(proj)
    killed = _run(proj, _env(tmpdir, LOOM_CRASH_AT=f"{point}:1"))
    assert killed.returncode == -9, f"never reached {point}: {killed.stdout[-600:]}{killed.stderr[-600:]}"
    env = _env(tmpdir)
    task_id = _task_id(proj, env)

    done = run_loom("proceed", cwd=proj, env=env, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "done — accepted" in done.stdout and f"changes committed to branch loom/{task_id}" in done.stdout
    assert "Traceback" not in done.stderr
    assert branch_files(proj, f"loom/{task_id}") == expected  # nothing deleted, nothing extra
    commits = _loom_commits(proj, task_id)
    assert [c.message.split("\n")[0] for c in commits] == [f"loom: {task_id}"]  # exactly one loom commit
    assert "Loom-Audit-Head: " in commits[0].message  # its audit head, for loom verify
    assert [str(p) for p in commits[0].parent_ids] == [before["head"]]
    assert _leftovers(tmpdir, proj) == []  # the sandbox and any partial copy are gone
    assert user_side(proj) == before

    again = run_loom("proceed", cwd=proj, env=env, timeout=60)  # idempotent: no new commit
    assert again.returncode == 0 and [c.id for c in _loom_commits(proj, task_id)] == [commits[0].id]
    st = json.loads(run_loom("status", "--json", cwd=proj, env=env).stdout)
    assert (st["state"], st["verdict"]) == ("completed", "accepted")


def test_a_half_deleted_sandbox_after_the_recorded_commit_is_removed_not_recommitted(tmp_path, expected):
    proj, tmpdir = _project(tmp_path, "app")
    assert _run(proj, _env(tmpdir, LOOM_CRASH_AT="merge-objects-written:1")).returncode == -9
    env = _env(tmpdir)
    task_id = _task_id(proj, env)
    sandbox = Workspace.sandbox_path(proj, base_dir=tmpdir)
    subprocess.run(["rm", "-rf", str(sandbox / ".git"), str(sandbox / "README.md"), str(sandbox / "shop")],
                   check=True)
    done = run_loom("proceed", cwd=proj, env=env, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "done — accepted" in done.stdout
    assert branch_files(proj, f"loom/{task_id}") == expected
    assert len(_loom_commits(proj, task_id)) == 1 and not sandbox.exists()


def test_a_dead_run_s_partial_copy_is_removed_by_the_next_run(tmp_path, expected):
    proj, tmpdir = _project(tmp_path, "app")
    assert _run(proj, _env(tmpdir, LOOM_CRASH_AT="sandbox-rmtree:1")).returncode == -9
    left = _leftovers(tmpdir, proj)
    assert len(left) == 1 and ".partial-" in left[0]  # the kill left the half-deleted copy aside
    second = _run(proj, _env(tmpdir))  # a new task: the dead run's leftovers go first
    assert second.returncode == 0, second.stdout + second.stderr
    assert _leftovers(tmpdir, proj) == []


def test_a_commit_the_user_added_to_the_loom_branch_is_never_lost(tmp_path, expected):
    proj, tmpdir = _project(tmp_path, "app")
    assert _run(proj, _env(tmpdir, LOOM_CRASH_AT="merge-ref-created:1")).returncode == -9
    env = _env(tmpdir)
    task_id = _task_id(proj, env)
    branch = f"loom/{task_id}"
    wt = tmp_path / "wt"
    subprocess.run(["git", "worktree", "add", "-q", str(wt), branch], cwd=proj, check=True, capture_output=True)
    (wt / "USER.md").write_text("mine\n")
    subprocess.run(["git", "add", "USER.md"], cwd=wt, check=True)
    subprocess.run(["git", "-c", "user.name=U", "-c", "user.email=u@x", "commit", "-q", "-m", "user work"], cwd=wt,
                   check=True)
    tip = str(pygit2.Repository(str(proj)).references[f"refs/heads/{branch}"].target)

    done = run_loom("proceed", cwd=proj, env=env, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    repo = pygit2.Repository(str(proj))
    assert str(repo.references[f"refs/heads/{branch}"].target) == tip  # the user's commit is still the tip
    assert branch_files(proj, branch) == {**expected, "USER.md": "mine\n"}


def test_an_unrelated_branch_of_that_name_is_refused_in_one_line_and_the_work_kept(tmp_path, expected):
    proj, tmpdir = _project(tmp_path, "app")
    assert _run(proj, _env(tmpdir, LOOM_CRASH_AT="merge-objects-written:1")).returncode == -9
    env = _env(tmpdir)
    task_id = _task_id(proj, env)
    branch = f"loom/{task_id}"
    subprocess.run(["git", "branch", branch, "main"], cwd=proj, check=True)
    theirs = str(pygit2.Repository(str(proj)).references[f"refs/heads/{branch}"].target)

    refused = run_loom("proceed", cwd=proj, env=env, timeout=60)
    assert refused.returncode == 1
    err = refused.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert f"branch {branch} already exists" in err and "not moving it" in err and "loom proceed" in err
    assert str(pygit2.Repository(str(proj)).references[f"refs/heads/{branch}"].target) == theirs
    assert Workspace.sandbox_path(proj, base_dir=tmpdir).is_dir()  # the work stays in the sandbox

    subprocess.run(["git", "branch", "-m", branch, "mine"], cwd=proj, check=True)
    done = run_loom("proceed", cwd=proj, env=env, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert branch_files(proj, branch) == expected and len(_loom_commits(proj, task_id)) == 1
    assert str(pygit2.Repository(str(proj)).references["refs/heads/mine"].target) == theirs
