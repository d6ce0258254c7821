"""Push and squash-merge of a finished task's branch, against real git repositories (a bare repo
in tmp_path is the remote)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from loom_core.errors import LoomError
from loom_core.workspace import ship

BRANCH = "loom/t-2026-01-01-fix"


def git(cwd: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return out.stdout.strip()


@pytest.fixture(autouse=True)
def _identity(monkeypatch):
    for k, v in {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t",
                 "GIT_COMMITTER_EMAIL": "t@example.invalid", "GIT_CONFIG_NOSYSTEM": "1"}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("HOME", "/nonexistent-home-for-git")  # no global config from the developer


@pytest.fixture
def repo(tmp_path) -> Path:
    """A repo on main with one commit and a loom/<task> branch that changes a file and adds one."""
    r = tmp_path / "repo"
    r.mkdir()
    git(r, "init", "-q", "-b", "main")
    (r / "a.py").write_text("x = 1\n")
    (r / "b.py").write_text("y = 1\n")
    git(r, "add", ".")
    git(r, "commit", "-q", "-m", "init")
    git(r, "checkout", "-q", "-b", BRANCH)
    (r / "a.py").write_text("x = 2\n")
    (r / "c.py").write_text("z = 3\n")
    git(r, "add", ".")
    git(r, "commit", "-q", "-m", "loom: work")
    git(r, "checkout", "-q", "main")
    return r


@pytest.fixture
def bare(tmp_path) -> Path:
    b = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(b)], check=True)
    return b


# ---------------------------------------------------------------------- push

def test_push_to_origin(repo, bare):
    git(repo, "remote", "add", "origin", str(bare))
    msg = ship.push(repo, BRANCH)
    assert msg == f"pushed {BRANCH} to origin"
    assert git(bare, "rev-parse", f"refs/heads/{BRANCH}") == git(repo, "rev-parse", BRANCH)
    assert "up to date" in ship.push(repo, BRANCH)  # idempotent


def test_push_prefers_the_branch_upstream(repo, bare, tmp_path):
    other = tmp_path / "other.git"
    subprocess.run(["git", "init", "-q", "--bare", str(other)], check=True)
    git(repo, "remote", "add", "origin", str(bare))
    git(repo, "remote", "add", "mirror", str(other))
    git(repo, "config", f"branch.{BRANCH}.remote", "mirror")
    assert ship.push(repo, BRANCH) == f"pushed {BRANCH} to mirror"
    assert git(other, "branch", "--list", BRANCH)
    assert not git(bare, "branch", "--list", BRANCH)


def test_push_explicit_remote(repo, bare):
    git(repo, "remote", "add", "backup", str(bare))
    assert ship.push(repo, BRANCH, remote="backup") == f"pushed {BRANCH} to backup"
    with pytest.raises(ship.NoRemote, match="no remote named 'nope'"):
        ship.push(repo, BRANCH, remote="nope")


def test_push_without_a_remote_is_a_clear_error(repo):
    with pytest.raises(ship.NoRemote, match="git remote add origin"):
        ship.push(repo, BRANCH)


def test_push_only_non_origin_remote_needs_naming(repo, bare):
    git(repo, "remote", "add", "backup", str(bare))
    with pytest.raises(ship.NoRemote, match="remotes: backup"):
        ship.push(repo, BRANCH)


def test_push_missing_branch(repo, bare):
    git(repo, "remote", "add", "origin", str(bare))
    with pytest.raises(ship.BranchNotFound):
        ship.push(repo, "loom/nope")


def test_push_not_a_repo(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(ship.NotAGitRepo):
        ship.push(plain, BRANCH)


def test_push_unreachable_remote(repo, tmp_path):
    git(repo, "remote", "add", "origin", str(tmp_path / "missing.git"))
    with pytest.raises(ship.RemoteUnreachable) as exc:
        ship.push(repo, BRANCH)
    assert isinstance(exc.value, LoomError) and exc.value.code == "REMOTE_UNREACHABLE"


def test_push_rejected_non_fast_forward(repo, bare, tmp_path):
    git(repo, "remote", "add", "origin", str(bare))
    ship.push(repo, BRANCH)
    # someone else moves the remote branch
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "-b", BRANCH, str(bare), str(clone))
    (clone / "d.py").write_text("w = 4\n")
    git(clone, "add", ".")
    git(clone, "commit", "-q", "-m", "theirs")
    git(clone, "push", "-q", "origin", BRANCH)
    git(repo, "checkout", "-q", BRANCH)
    git(repo, "commit", "-q", "--amend", "-m", "rewritten")
    git(repo, "checkout", "-q", "main")
    with pytest.raises(ship.PushRejected):
        ship.push(repo, BRANCH)


@pytest.mark.parametrize("stderr,kind", [
    ("fatal: Authentication failed for 'https://github.com/x/y.git/'", ship.PushAuthFailed),
    ("fatal: could not read Username for 'https://github.com': terminal prompts disabled", ship.PushAuthFailed),
    ("git@github.com: Permission denied (publickey).\nfatal: Could not read from remote repository.",
     ship.PushAuthFailed),
    ("fatal: unable to access 'https://nohost.invalid/x.git/': Could not resolve host: nohost.invalid",
     ship.RemoteUnreachable),
    (" ! [rejected]        loom/t -> loom/t (non-fast-forward)", ship.PushRejected),
    ("something odd", ship.ShipError),
])
def test_push_errors_are_typed(stderr, kind):
    err = ship.classify_push_error(stderr, "origin", BRANCH)
    assert type(err) is kind
    assert "origin" in str(err)


# ---------------------------------------------------------------------- squash-merge

def test_squash_merge(repo):
    before = git(repo, "rev-parse", "HEAD")
    msg = ship.squash_merge(repo, BRANCH)
    assert msg.startswith(f"squash-merged {BRANCH} into main")
    assert git(repo, "log", "-1", "--format=%s") == f"t-2026-01-01-fix: squash of {BRANCH}"
    assert git(repo, "rev-parse", "HEAD~1") == before
    assert git(repo, "log", "-1", "--format=%P").split() == [before]  # one parent: a squash, not a merge
    assert (repo / "a.py").read_text() == "x = 2\n" and (repo / "c.py").exists()
    assert git(repo, "status", "--porcelain") == ""
    with pytest.raises(ship.NothingToMerge):
        ship.squash_merge(repo, BRANCH)
    assert git(repo, "status", "--porcelain") == ""


@pytest.mark.parametrize("how", ["worktree", "index"])
def test_squash_merge_refuses_a_dirty_tree(repo, how):
    (repo / "b.py").write_text("y = 99\n")
    if how == "index":
        git(repo, "add", "b.py")
    head = git(repo, "rev-parse", "HEAD")
    with pytest.raises(ship.DirtyWorkTree, match="b.py"):
        ship.squash_merge(repo, BRANCH)
    assert git(repo, "rev-parse", "HEAD") == head
    assert (repo / "b.py").read_text() == "y = 99\n"  # the user's edit is untouched


def test_squash_merge_ignores_untracked_files(repo):
    (repo / "notes.txt").write_text("mine\n")
    ship.squash_merge(repo, BRANCH)
    assert (repo / "notes.txt").read_text() == "mine\n"


def test_squash_merge_missing_branch(repo):
    with pytest.raises(ship.BranchNotFound, match="loom/nope"):
        ship.squash_merge(repo, "loom/nope")


def test_squash_merge_conflict_is_undone(repo):
    (repo / "a.py").write_text("x = 'main'\n")
    git(repo, "commit", "-q", "-am", "main moves on")
    head = git(repo, "rev-parse", "HEAD")
    with pytest.raises(ship.MergeConflict) as exc:
        ship.squash_merge(repo, BRANCH)
    assert exc.value.files == ["a.py"]
    assert "a.py" in str(exc.value)
    assert git(repo, "rev-parse", "HEAD") == head
    assert git(repo, "status", "--porcelain") == ""
    assert (repo / "a.py").read_text() == "x = 'main'\n"


def test_squash_merge_refuses_detached_head_and_self(repo):
    git(repo, "checkout", "-q", BRANCH)
    with pytest.raises(ship.ShipError, match="checked-out branch"):
        ship.squash_merge(repo, BRANCH)
    git(repo, "checkout", "-q", "--detach", "main")
    with pytest.raises(ship.ShipError, match="detached"):
        ship.squash_merge(repo, BRANCH)


def test_squash_merge_from_a_subdirectory_project(repo):
    sub = repo / "pkg"
    sub.mkdir()
    ship.squash_merge(sub, BRANCH)
    assert (repo / "c.py").exists()


def test_branch_exists(repo, tmp_path):
    assert ship.branch_exists(repo, BRANCH)
    assert not ship.branch_exists(repo, "loom/other")
    assert not ship.branch_exists(tmp_path / "nowhere", BRANCH)


def test_squash_merge_without_a_git_identity_uses_loom(repo, monkeypatch):
    for k in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(k)
    ship.squash_merge(repo, BRANCH)
    assert git(repo, "log", "-1", "--format=%an <%ae>") == "loom <loom@localhost>"
