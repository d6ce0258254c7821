"""Filesystem helpers of the sandbox: the private base directory, safe removal, JSON files, disk usage."""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
import tempfile
from pathlib import Path

from loom_core.errors import SandboxError

try:
    from _sha1 import sha1  # built in: no OpenSSL load for naming the sandbox (``loom status``)
except ImportError:  # a Python built without it
    from hashlib import sha1

META_NAME = "loom-sandbox.json"  # inside the sandbox repository's .git/


def base_dir_of(base_dir: Path | None) -> Path:
    owner = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    return Path(base_dir if base_dir is not None else tempfile.gettempdir()) / f"loom-{owner}"


def sandbox_name(project: Path) -> str:
    """``wt-<16 hex>`` keyed on the resolved project folder (a subfolder project gets its own)."""
    return f"wt-{sha1(str(project).encode()).hexdigest()[:16]}"


def ensure_base(base_dir: Path | None) -> Path:
    """Create ``loom-<uid>`` 0700; refuse a symlink, a non-directory or someone else's directory."""
    base = base_dir_of(base_dir)
    try:
        base.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(base, 0o700)
        except FileExistsError:
            pass
        st = os.lstat(base)
    except OSError as exc:
        raise SandboxError(f"cannot create the sandbox root {base}: {exc}") from exc
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise SandboxError(f"sandbox root {base} is not a real directory", code="SANDBOX_ROOT_UNSAFE")
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise SandboxError(f"sandbox root {base} is owned by uid {st.st_uid}, not by you",
                           code="SANDBOX_ROOT_UNSAFE")
    if st.st_mode & 0o077:
        os.chmod(base, 0o700)
    return base


def walk_stats(path: Path):
    """``os.stat_result`` of everything under the directory ``path`` (symlinks not followed, entries that
    vanish or cannot be read skipped), depth first."""
    stack = [os.fspath(path)]
    while stack:
        try:
            it = os.scandir(stack.pop())
        except OSError:
            continue
        with it:
            for entry in it:
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    stack.append(entry.path)
                yield st


def disk_usage_of(path: Path) -> int:
    """Bytes allocated under ``path`` (like ``du -s``): symlinks are not followed, hard links counted once."""
    try:
        st = os.lstat(path)
    except OSError:
        return 0
    total, seen = st.st_blocks * 512, set()
    if not stat.S_ISDIR(st.st_mode):
        return total
    for st in walk_stats(path):
        if st.st_nlink > 1 and not stat.S_ISDIR(st.st_mode):
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
        total += st.st_blocks * 512
    return total


def write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_inside(path: Path, parent: Path) -> bool:
    try:
        path.resolve().relative_to(parent.resolve())
        return True
    except ValueError:
        return False


def remove(p: Path) -> None:
    """Remove a file, a symlink (never its target) or a directory tree."""
    if p.is_dir() and not p.is_symlink():
        rmtree(p)
    else:
        p.unlink(missing_ok=True)


def rmtree(p: Path) -> None:
    if p.is_symlink() or not p.is_dir():
        p.unlink(missing_ok=True)
        return

    def retry(func, path, _exc):  # read-only dirs (e.g. module caches) block deletion
        try:
            os.chmod(os.path.dirname(path), 0o700)
            if os.path.isdir(path) and not os.path.islink(path):
                os.chmod(path, 0o700)
            func(path)
        except OSError:
            pass

    if sys.version_info >= (3, 12):
        shutil.rmtree(p, onexc=retry)
    else:
        shutil.rmtree(p, onerror=retry)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True
