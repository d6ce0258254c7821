"""The user's git work is never lost or misattributed: every task has its own id and branch, the sandbox
starts from HEAD (the user's uncommitted and untracked files are not the agents'), and ``.loom/`` never
shows in ``git status``."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pygit2
import pytest

from loom_core.agents.executors.demo_project import create_demo_project
from loom_core.engine.runner import demo_task
from loom_core.workspace import Workspace
from tests.conftest import run_loom
from tests.support.git import branch_files, make_repo

pytestmark = pytest.mark.slow


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    base = tmp_path / "tmpdir"
    base.mkdir()
    return {**{k: v for k, v in os.environ.items() if not k.startswith("LOOM_CRASH")}, "TMPDIR": str(base)}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=U", "-c", "user.email=u@x", *args], cwd=cwd, check=True,
                          capture_output=True, text=True).stdout.strip()


def _status(proj: Path, env: dict) -> dict:
    return json.loads(run_loom("status", "--json", cwd=proj, env=env).stdout)


def test_the_same_text_twice_is_two_tasks_and_a_user_commit_on_the_first_branch_stays(tmp_path, env):
    proj = tmp_path / "app"
    create_demo_project(proj)
    run = ("run", demo_task(), "--backend", "demo", "--policy", "auto")
    assert run_loom(*run, cwd=proj, env=env, timeout=120).returncode == 0
    first = _status(proj, env)["task_id"]
    assert re.fullmatch(r"t-\d{4}-\d{2}-\d{2}-[a-z0-9-]+-[0-9a-f]{6}", first), first
    wt = tmp_path / "wt"
    git(proj, "worktree", "add", "-q", str(wt), f"loom/{first}")
    (wt / "USER.md").write_text("mine\n")
    git(wt, "add", "USER.md")
    git(wt, "commit", "-q", "-m", "user work on the loom branch")
    user_tip = git(proj, "rev-parse", f"loom/{first}")

    again = run_loom(*run, cwd=proj, env=env, timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    second = _status(proj, env)["task_id"]
    assert second != first and second.rsplit("-", 1)[0] == first.rsplit("-", 1)[0]
    assert git(proj, "rev-parse", f"loom/{first}") == user_tip  # never moved
    assert branch_files(proj, f"loom/{first}")["USER.md"] == "mine\n"
    assert "USER.md" not in branch_files(proj, f"loom/{second}")

    listed = run_loom("history", cwd=proj, env=env).stdout
    assert first in listed
    assert run_loom("replay", first, cwd=proj, env=env).returncode == 0
    verified = run_loom("verify", "--task", first, cwd=proj, env=env)
    assert verified.returncode == 0 and f"{first}.db" in verified.stdout, verified.stdout + verified.stderr


def test_two_archives_under_one_id_are_each_addressable(tmp_path, env):
    """Archives an older loom made under one id (``<id>.db``, ``<id>.2.db``): history names each apart."""
    proj = tmp_path / "app"
    create_demo_project(proj)
    assert run_loom("run", demo_task(), "--backend", "demo", "--policy", "auto", cwd=proj, env=env,
                    timeout=120).returncode == 0
    task_id = _status(proj, env)["task_id"]
    assert run_loom("reset", cwd=proj, env=env).returncode == 0
    hist = proj / ".loom" / "history"
    shutil.copyfile(hist / f"{task_id}.db", hist / f"{task_id}.2.db")
    index = hist / "index.jsonl"
    line = json.loads(index.read_text().splitlines()[-1])
    with index.open("a") as fh:
        fh.write(json.dumps({**line, "db_file": f".loom/history/{task_id}.2.db", "reason": "older"}) + "\n")

    rows = [r.split()[1] for r in run_loom("history", cwd=proj, env=env).stdout.splitlines()]
    assert rows == [task_id, f"{task_id}.2"]
    for ref in rows:
        out = run_loom("verify", "--task", ref, cwd=proj, env=env)
        assert out.returncode == 0 and f"{ref}.db" in out.stdout, out.stdout + out.stderr
        assert run_loom("replay", ref, cwd=proj, env=env).returncode == 0


def test_the_sandbox_starts_from_head_and_the_branch_holds_only_the_agents_change(tmp_path, env):
    proj = tmp_path / "app"
    create_demo_project(proj)
    with (proj / ".gitignore").open("a") as fh:
        fh.write(".env\n")
    git(proj, "commit", "-q", "-am", "ignore .env")
    head = git(proj, "rev-parse", "HEAD")
    (proj / "README.md").write_text("# my own notes, not committed\n")  # dirty tracked file
    (proj / "untracked.txt").write_text("scratch\n")  # untracked, not ignored
    (proj / ".env").write_text("TOKEN=x\n")  # ignored: the tools may need it
    mine = {p: (proj / p).read_bytes() for p in ("README.md", "untracked.txt", ".env")}

    parked = run_loom("run", demo_task(), "--backend", "demo", "--policy", "review-final-only", cwd=proj, env=env,
                      timeout=120)
    assert parked.returncode == 3, parked.stdout + parked.stderr
    assert "not in it" in parked.stdout and "README.md" in parked.stdout and "untracked.txt" in parked.stdout
    sandbox = Workspace.sandbox_path(proj, base_dir=Path(env["TMPDIR"]))
    diff = (sandbox / ".loom" / "work" / "diff.txt").read_text()  # what the person judges at the final gate
    assert not (sandbox / "untracked.txt").exists() and (sandbox / ".env").read_text() == "TOKEN=x\n"
    assert "shop/pricing.py" in diff
    assert not any(name in diff for name in ("README.md", "untracked.txt", ".env", "my own notes", "TOKEN"))

    assert run_loom("answer", "accept", cwd=proj, env=env).returncode == 0
    done = run_loom("proceed", "--json", cwd=proj, env=env, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert result["merge"]["files"] == ["shop/pricing.py"]
    assert "README.md" not in result["summary"] and "untracked" not in result["summary"]
    branch = f"loom/{result['task_id']}"
    changed = git(proj, "diff", "--name-only", head, branch).splitlines()
    assert changed == ["shop/pricing.py"]
    files = branch_files(proj, branch)
    assert ".env" not in files and "untracked.txt" not in files
    assert files["README.md"] == git(proj, "show", f"{head}:README.md") + "\n"
    assert {p: (proj / p).read_bytes() for p in mine} == mine  # the user's files are untouched
    assert git(proj, "rev-parse", "HEAD") == head


def test_loom_folder_never_shows_in_git_status(tmp_path, env):
    proj = tmp_path / "app"
    create_demo_project(proj)
    (proj / ".gitignore").write_text("__pycache__/\n")  # the project does not ignore .loom/ itself
    shutil.rmtree(proj / ".loom")
    git(proj, "commit", "-q", "-am", "stop ignoring .loom")
    assert git(proj, "status", "--porcelain") == ""
    proc = run_loom("run", demo_task(), "--backend", "demo", "--policy", "auto", cwd=proj, env=env, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (proj / ".loom" / "state.db").exists()
    assert git(proj, "status", "--porcelain", "--untracked-files=all") == ""
    git(proj, "add", "-A")
    assert git(proj, "diff", "--cached", "--name-only") == ""

    other = tmp_path / "other"
    make_repo(other, {"a.py": "x = 1\n"})
    for cmd in (("status",), ("proceed",), ("history",)):
        run_loom(*cmd, cwd=other, env=env)
    assert git(other, "status", "--porcelain", "--untracked-files=all") == ""
    repo = pygit2.Repository(str(other))
    assert repo.status() == {}
