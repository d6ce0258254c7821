"""Ship a finished task's branch: push ``loom/<task>`` to a remote, or squash-merge it into the
branch the user has checked out. Explicit user actions only — nothing in the engine calls these.

Both shell out to the git CLI (the user's own credentials, hooks and config apply) with prompts
disabled, so a missing credential fails fast with a clear error instead of hanging a worker.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from loom_core.errors import LoomError

GIT_TIMEOUT_S = 120.0
_IDENTITY = ("loom", "loom@localhost")


class ShipError(LoomError):
    """A push or squash-merge could not be done; nothing was changed unless the message says so."""

    code = "SHIP_FAILED"


class NotAGitRepo(ShipError):
    code = "NOT_A_GIT_REPO"


class BranchNotFound(ShipError):
    code = "BRANCH_NOT_FOUND"


class NoRemote(ShipError):
    code = "NO_REMOTE"


class PushAuthFailed(ShipError):
    code = "PUSH_AUTH_FAILED"


class PushRejected(ShipError):
    code = "PUSH_REJECTED"


class RemoteUnreachable(ShipError):
    code = "REMOTE_UNREACHABLE"


class DirtyWorkTree(ShipError):
    code = "WORKTREE_DIRTY"


class NothingToMerge(ShipError):
    code = "NOTHING_TO_MERGE"


class MergeConflict(ShipError):
    code = "MERGE_CONFLICT"

    def __init__(self, message: str, files: list[str]) -> None:
        super().__init__(message, files=files)
        self.files = files


# ---------------------------------------------------------------------- git plumbing

def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["GIT_TERMINAL_PROMPT"] = "0"  # never wait for a username/password on a terminal
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")  # nor for an ssh passphrase
    env["LC_ALL"] = "C"  # stable messages to classify
    env.pop("GIT_DIR", None)
    env.pop("GIT_WORK_TREE", None)
    return env


def _git(cwd: Path, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(["git", *args], cwd=str(cwd), env=_env(), capture_output=True, text=True,
                              timeout=GIT_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise ShipError("the git command is not installed (it is needed to push or merge)",
                        code="GIT_MISSING") from None
    except subprocess.TimeoutExpired:
        raise ShipError(f"git {args[0]} did not finish within {int(GIT_TIMEOUT_S)} s", code="GIT_TIMEOUT") from None
    if check and proc.returncode != 0:
        raise ShipError(f"git {' '.join(args)} failed: {_tail(proc)}")
    return proc


def _tail(proc: subprocess.CompletedProcess[str], lines: int = 3) -> str:
    text = (proc.stderr or proc.stdout or "").strip().splitlines()
    return " / ".join(t.strip() for t in text[-lines:]) or f"exit code {proc.returncode}"


def _toplevel(project: Path) -> Path:
    project = Path(project)
    if not project.is_dir():
        raise NotAGitRepo(f"{project} is not a directory")
    proc = _git(project, "rev-parse", "--show-toplevel")
    if proc.returncode != 0:
        raise NotAGitRepo(f"{project} is not inside a git repository")
    return Path(proc.stdout.strip())


def _require_branch(top: Path, branch: str) -> None:
    if not branch or _git(top, "check-ref-format", "--branch", branch).returncode != 0:
        raise BranchNotFound(f"'{branch}' is not a valid branch name")
    if _git(top, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}").returncode != 0:
        raise BranchNotFound(f"branch {branch} does not exist in {top}")


def branch_exists(project: Path, branch: str) -> bool:
    """True when ``project`` is in a git repository that has the local branch ``branch``."""
    try:
        top = _toplevel(project)
        _require_branch(top, branch)
    except ShipError:
        return False
    return True


def _remotes(top: Path) -> list[str]:
    return [r for r in _git(top, "remote").stdout.split() if r]


def default_remote(project: Path, branch: str) -> str | None:
    """The branch's upstream remote, else ``origin`` when it exists, else None."""
    top = _toplevel(project)
    remotes = _remotes(top)
    configured = _git(top, "config", "--get", f"branch.{branch}.remote").stdout.strip()
    if configured and configured in remotes:
        return configured
    return "origin" if "origin" in remotes else None


# ---------------------------------------------------------------------- push

_AUTH = ("authentication failed", "could not read username", "could not read password", "permission denied",
         "terminal prompts disabled", "access denied", "returned error: 403", "returned error: 401",
         "invalid username or password", "invalid credentials",
         "host key verification failed")
_REJECTED = ("[rejected]", "non-fast-forward", "fetch first", "[remote rejected]", "protected branch")
_UNREACHABLE = ("could not resolve host", "unable to access", "connection refused", "does not appear to be a git "
                "repository", "could not read from remote repository", "repository not found",
                "network is unreachable", "timed out", "no such file or directory")


def classify_push_error(stderr: str, remote: str, branch: str) -> ShipError:
    """Turn git push's stderr into a typed error with a next step."""
    low = stderr.lower()
    tail = " / ".join(t.strip() for t in stderr.strip().splitlines()[-3:])
    if any(s in low for s in _REJECTED):
        return PushRejected(f"{remote} refused {branch} (the remote branch has other commits or is protected): {tail}")
    if any(s in low for s in _AUTH):
        return PushAuthFailed(f"pushing to {remote} needs credentials that git could not use without a prompt "
                              f"(set up a credential helper or an ssh key, then retry): {tail}")
    if any(s in low for s in _UNREACHABLE):
        return RemoteUnreachable(f"remote {remote} cannot be reached: {tail}")
    return ShipError(f"git push {remote} {branch} failed: {tail}")


def push(project: Path, branch: str, remote: str | None = None) -> str:
    """``git push <remote> <branch>``; ``remote`` defaults to the branch's upstream, else ``origin``.
    Returns one human line."""
    top = _toplevel(project)
    _require_branch(top, branch)
    remotes = _remotes(top)
    if remote is None:
        remote = default_remote(top, branch)
        if remote is None:
            raise NoRemote(f"{top} has no 'origin' remote and {branch} has no upstream; add one with "
                           f"'git remote add origin <url>' (remotes: {', '.join(remotes) or 'none'})")
    elif remote not in remotes:
        raise NoRemote(f"there is no remote named '{remote}' in {top} (remotes: {', '.join(remotes) or 'none'})")
    proc = _git(top, "push", "--porcelain", remote, f"refs/heads/{branch}:refs/heads/{branch}")
    if proc.returncode != 0:
        raise classify_push_error(f"{proc.stderr}\n{proc.stdout}", remote, branch)
    up_to_date = "[up to date]" in proc.stdout
    return f"{branch} is already up to date on {remote}" if up_to_date else f"pushed {branch} to {remote}"


# ---------------------------------------------------------------------- squash-merge

def _dirty(top: Path) -> list[str]:
    proc = _git(top, "status", "--porcelain", "--untracked-files=no", check=True)
    return [line[3:] for line in proc.stdout.splitlines() if line.strip()]


def _identity_args(top: Path) -> list[str]:
    args: list[str] = []
    if not _git(top, "config", "user.name").stdout.strip() and not os.environ.get("GIT_COMMITTER_NAME"):
        args += ["-c", f"user.name={_IDENTITY[0]}"]
    if not _git(top, "config", "user.email").stdout.strip() and not os.environ.get("GIT_COMMITTER_EMAIL"):
        args += ["-c", f"user.email={_IDENTITY[1]}"]
    return args


def squash_merge(project: Path, branch: str) -> str:
    """Squash ``branch`` onto the checked-out branch as one commit ``<task_id>: squash of <branch>``.

    Refuses a dirty index or working tree (untracked files are left alone), a missing branch, a
    detached or unborn HEAD, and merging a branch into itself. On a conflict the merge is undone
    (``git reset --merge``) and :class:`MergeConflict` lists the conflicting files.
    """
    top = _toplevel(project)
    _require_branch(top, branch)
    head = _git(top, "symbolic-ref", "--quiet", "--short", "HEAD")
    if head.returncode != 0:
        raise ShipError(f"{top} has a detached HEAD; check out the branch to merge into first", code="DETACHED_HEAD")
    current = head.stdout.strip()
    if _git(top, "rev-parse", "--verify", "--quiet", "HEAD").returncode != 0:
        raise ShipError(f"{current} in {top} has no commits yet; nothing to squash onto", code="UNBORN_HEAD")
    if current == branch:
        raise ShipError(f"{branch} is the checked-out branch; check out the branch to merge into first",
                        code="MERGE_INTO_SELF")
    dirty = _dirty(top)
    if dirty:
        shown = ", ".join(dirty[:5]) + (f" (+{len(dirty) - 5} more)" if len(dirty) > 5 else "")
        raise DirtyWorkTree(f"{top} has uncommitted changes ({shown}); commit or stash them before the "
                            f"squash-merge")
    task_id = branch.removeprefix("loom/")
    proc = _git(top, "merge", "--squash", "--no-commit", branch)
    if proc.returncode != 0:
        conflicts = [f for f in _git(top, "diff", "--name-only", "--diff-filter=U").stdout.splitlines() if f]
        _git(top, "reset", "--merge")
        if conflicts:
            raise MergeConflict(f"squash-merging {branch} into {current} conflicts in {', '.join(conflicts)}; "
                                f"nothing was changed (merge it by hand to resolve)", conflicts)
        if "would be overwritten" in (proc.stderr + proc.stdout):
            raise DirtyWorkTree(f"untracked files in {top} would be overwritten by {branch}: {_tail(proc)}")
        raise ShipError(f"git merge --squash {branch} failed: {_tail(proc)}")
    if _git(top, "diff", "--cached", "--quiet").returncode == 0:
        _git(top, "reset", "--merge")
        raise NothingToMerge(f"{branch} adds nothing to {current} (already merged?)")
    commit = _git(top, *_identity_args(top), "commit", "--quiet", "-m", f"{task_id}: squash of {branch}")
    if commit.returncode != 0:
        _git(top, "reset", "--merge")
        raise ShipError(f"the squash commit failed, the merge was undone: {_tail(commit)}")
    sha = _git(top, "rev-parse", "--short", "HEAD").stdout.strip()
    return f"squash-merged {branch} into {current} ({sha})"


__all__ = ["push", "squash_merge", "branch_exists", "default_remote", "classify_push_error", "ShipError",
           "NotAGitRepo", "BranchNotFound", "NoRemote", "PushAuthFailed", "PushRejected", "RemoteUnreachable",
           "DirtyWorkTree", "NothingToMerge", "MergeConflict"]
