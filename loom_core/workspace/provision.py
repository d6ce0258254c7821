"""Making a sandbox: its own repository borrowing the user's objects, the user's HEAD checked out, then the
user's ignored files brought over (small ones copied, heavy folders linked, tool caches left out). The
user's uncommitted edits and untracked files are not: the sandbox starts from HEAD, and they are listed
(``left_out``) so the user is told.

The user's repository is only read: no worktree registration, no refs, no index refresh
(``--no-optional-locks``), no hooks.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pygit2

from loom_core.errors import SandboxError
from loom_core.workspace.fs import rmtree, walk_stats

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
LOOM_DIR = ".loom"
# Loom's own state inside any `.loom/`: never brought into a sandbox (§9.1).
STATE_NAMES = frozenset({"state.db", "state.db-wal", "state.db-shm", "state.db-journal", "task-exec.json", "lock",
                         "history", "transcripts", "daemon", "work", "landing.json"})
# Ignored folders reused read-only through a symlink to the user's folder instead of a copy.
LINK_NAMES = frozenset({".venv", "venv", "node_modules", ".tox", ".nox", "target", "build", "dist", ".gradle",
                        ".next", ".nuxt", ".turbo", ".parcel-cache", "bower_components", ".cargo", ".stack-work",
                        ".bundle", "vendor", "_build", "deps", ".pixi", ".conda"})
# Ignored tool caches: neither copied nor linked (a link would let the sandbox's tools write into the
# user's tree); the tools rebuild them in the sandbox.
CACHE_NAMES = frozenset({"__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis",
                         ".cache", ".eslintcache", ".dmypy.json", ".pyre", ".pytype"})
# An ignored folder over either limit is linked, whatever its name.
LINK_MIN_FILES = 1000
LINK_MIN_BYTES = 32 * 1024 * 1024
_FICLONE = 0x40049409
_SAFE_CORE = ("autocrlf", "eol", "filemode", "symlinks", "ignorecase", "precomposeunicode", "protecthfs",
              "protectntfs", "excludesfile", "attributesfile", "safecrlf", "checkstat", "trustctime", "quotepath",
              "longpaths")


def git_env() -> dict[str, str]:
    """The environment for git commands loom runs: no repository redirection from the caller, no LFS
    downloads, no optional lock taken in the user's repository."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR",
                        "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_NAMESPACE", "GIT_CEILING_DIRECTORIES")}
    env.update({"GIT_OPTIONAL_LOCKS": "0", "GIT_LFS_SKIP_SMUDGE": "1", "GIT_TERMINAL_PROMPT": "0"})
    return env


GIT = ("git", "-c", "core.hooksPath=/dev/null")


def common_dir(repo: pygit2.Repository) -> Path:
    """The git dir holding objects and refs (a linked worktree's or submodule's own dir otherwise)."""
    gitdir = Path(repo.path)
    if (gitdir / "commondir").is_file():
        return (gitdir / (gitdir / "commondir").read_text().strip()).resolve()
    return gitdir.resolve()


def head_sha(repo: pygit2.Repository) -> str:
    if repo.head_is_unborn:
        return EMPTY_TREE
    return str(repo.head.peel(pygit2.Commit).id)


def build(repo_root: Path, user: pygit2.Repository, tmp: Path) -> tuple[str, list[str], list[str]]:
    """Build the sandbox at ``tmp``; returns ``(baseline, linked paths, left-out paths)`` (posix,
    repo-relative; left out: the user's uncommitted and untracked, non-ignored paths)."""
    baseline = head_sha(user)
    common = common_dir(user)
    repo = pygit2.init_repository(str(tmp), bare=False)
    gitdir = Path(repo.path)
    (gitdir / "objects" / "info").mkdir(parents=True, exist_ok=True)
    (gitdir / "objects" / "info" / "alternates").write_text(f"{common / 'objects'}\n")
    _copy_core_config(common, repo)
    _set_head(user, repo, baseline)
    status = subprocess.Popen([*GIT, "--no-optional-locks", "status", "--porcelain=v1", "-z", "--no-renames",
                               "--untracked-files=all", "--ignored=matching", "--ignore-submodules=all"],
                              cwd=repo_root, env=git_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        if baseline != EMPTY_TREE:
            # `checkout -f` (parallel workers) writes the tree several times faster than `read-tree -u`
            proc = subprocess.run([*GIT, "-c", "checkout.workers=0", "checkout", "-f", "-q", "HEAD"],
                                  cwd=tmp, env=git_env(), capture_output=True, text=True)
            if proc.returncode != 0:
                raise SandboxError(f"could not check out {baseline[:12]} into the sandbox: "
                                   f"{proc.stderr.strip()[-400:]}")
        out, err = status.communicate()
    finally:
        if status.poll() is None:
            status.kill()
            status.wait()
    if status.returncode != 0:
        raise SandboxError(f"git status failed in {repo_root}: {err.decode(errors='replace').strip()[-400:]}")
    linked, left_out = _overlay(repo_root, tmp, out)
    _submodules(repo_root, tmp)
    write_exclude(common, gitdir, linked)
    return baseline, linked, left_out


def write_exclude(common: Path, gitdir: Path, linked: list[str]) -> None:
    """The sandbox's own ``info/exclude``: the user's, plus loom's folders and the linked paths (a
    ``.venv/`` pattern does not match a symlink, so each link is listed as itself)."""
    user = common / "info" / "exclude"
    text = user.read_text(encoding="utf-8", errors="replace") if user.is_file() else ""
    lines = [text.rstrip("\n"), "# loom sandbox", f"{LOOM_DIR}/"]
    lines += [f"/{_escape(p)}" for p in linked]
    (gitdir / "info").mkdir(parents=True, exist_ok=True)
    (gitdir / "info" / "exclude").write_text("\n".join(x for x in lines if x) + "\n", encoding="utf-8")


def _escape(path: str) -> str:
    return "".join("\\" + c if c in "*?[]\\!# " else c for c in path)


def _copy_core_config(common: Path, repo: pygit2.Repository) -> None:
    """Settings that change how files are checked out or ignored; none that run commands."""
    try:
        src = pygit2.Config(str(common / "config"))
        for entry in src:
            section, _, key = entry.name.lower().partition(".")
            if section == "core" and key in _SAFE_CORE:
                repo.config[entry.name] = entry.value
    except (pygit2.GitError, OSError, KeyError, ValueError):
        pass


def _set_head(user: pygit2.Repository, repo: pygit2.Repository, baseline: str) -> None:
    """The sandbox's HEAD on a branch of the user's branch name at the baseline (detached if theirs is)."""
    if user.head_is_detached:
        repo.set_head(pygit2.Oid(hex=baseline))
        return
    target = user.references["HEAD"].target
    if isinstance(target, str):
        if baseline != EMPTY_TREE:
            repo.references.create(target, pygit2.Oid(hex=baseline), force=True)
        repo.references["HEAD"].set_target(target)


def _entries(out: bytes):
    """``(XY, path)`` from ``status --porcelain=v1 -z --no-renames``."""
    for raw in out.split(b"\0"):
        if len(raw) > 3:
            yield raw[:2].decode(), os.fsdecode(raw[3:])


def _overlay(src_root: Path, dst_root: Path, status: bytes) -> tuple[list[str], list[str]]:
    """Bring the user's ignored files onto the checkout (heavy folders as links); returns ``(linked,
    left_out)``: the links made, and the paths ``git status`` reports as changed or untracked, which stay
    out (the sandbox starts from HEAD). Loom's own ``.loom/`` files (config) are copied, state left out."""
    linked: list[str] = []
    left_out: list[str] = []
    for xy, rel in _entries(status):
        is_dir = rel.endswith("/")
        rel = rel.rstrip("/")
        if _is_loom_state(rel):
            continue
        src, dst = src_root / rel, dst_root / rel
        if xy == "!!" and is_dir:
            kind = "copy" if src.name == LOOM_DIR else classify(src)  # loom's own: copied, state left out
            if kind == "link":
                _clear(dst)
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(src, dst)
                linked.append(rel)
            elif kind == "copy":
                _clear(dst)
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copytree(src, dst, symlinks=True, copy_function=clone_file, ignore=_ignore_loom_state)
            continue
        if xy != "!!" and LOOM_DIR not in rel.split("/"):
            left_out.append(rel)
            continue
        if os.path.lexists(src) and not (os.path.isdir(src) and not os.path.islink(src)):
            copy_entry(src, dst)
    return sorted(linked), sorted(left_out)


def classify(path: Path) -> str:
    """``link``, ``skip`` (a tool cache) or ``copy`` for an ignored folder of the user's tree."""
    name = path.name
    if name in CACHE_NAMES:
        return "skip"
    if name in LINK_NAMES or (path / "pyvenv.cfg").is_file() or (path / "conda-meta").is_dir():
        return "link"
    files = size = 0
    for st in walk_stats(path):  # stops early: a big folder is linked as soon as it is known to be big
        if stat.S_ISDIR(st.st_mode):
            continue
        files += 1
        size += st.st_size
        if files > LINK_MIN_FILES or size > LINK_MIN_BYTES:
            return "link"
    return "copy"


def copy_entry(src: Path, dst: Path) -> None:
    """Copy one file or symlink to ``dst``, replacing whatever is there (never writing through a link)."""
    if os.path.lexists(dst) or dst.is_symlink():
        _clear(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    if os.path.islink(src):
        os.symlink(os.readlink(src), dst)
    else:
        clone_file(src, dst)


def clone_file(src, dst) -> None:
    """Copy a file with its mode and times: a reflink (copy-on-write) where the filesystem allows."""
    src, dst = os.fspath(src), os.fspath(dst)
    if os.path.islink(src):
        os.symlink(os.readlink(src), dst)
        return
    if not stat.S_ISREG(os.lstat(src).st_mode):
        return  # a FIFO, socket or device is never copied: opening a FIFO blocks until a writer comes
    with open(src, "rb") as fi, open(dst, "wb") as fo:
        try:
            fcntl.ioctl(fo.fileno(), _FICLONE, fi.fileno())
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EXDEV, errno.EINVAL, errno.ENOTTY, errno.ENOSYS,
                                 errno.EBADF, errno.EPERM):
                raise
            shutil.copyfileobj(fi, fo, 1 << 20)
    shutil.copystat(src, dst, follow_symlinks=False)


def _submodules(src_root: Path, dst_root: Path) -> None:
    """Submodule working trees (without their ``.git``), so the sandbox builds like the user's tree."""
    gm = dst_root / ".gitmodules"
    if not gm.is_file():
        return
    try:
        cfg = pygit2.Config(str(gm))
        paths = [e.value for e in cfg if e.name.endswith(".path")]
    except (pygit2.GitError, OSError):
        return
    for rel in paths:
        src, dst = src_root / rel, dst_root / rel
        if not src.is_dir() or src.is_symlink() or not dst.is_dir() or dst.is_symlink() or any(dst.iterdir()):
            continue
        shutil.copytree(src, dst, symlinks=True, copy_function=clone_file, dirs_exist_ok=True,
                        ignore=lambda d, names, top=src: {".git"} if Path(d) == top else _ignore_loom_state(d, names))


def _ignore_loom_state(directory, names) -> set[str]:
    return {n for n in names if n in STATE_NAMES} if os.path.basename(directory) == LOOM_DIR else set()


def _is_loom_state(rel: str) -> bool:
    parts = rel.split("/")
    return any(p == LOOM_DIR and i + 1 < len(parts) and parts[i + 1] in STATE_NAMES for i, p in enumerate(parts))


def _clear(p: Path) -> None:
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        rmtree(p)
    else:
        os.unlink(p)
