"""Removing sandboxes nobody will come back to: orphans and leftovers of interrupted provisioning."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from loom_core.errors import SandboxError
from loom_core.workspace import fs


def owner_of(sandbox: Path) -> Path | None:
    """The project a sandbox was made for: its metadata, else (an older sandbox) its baseline.json."""
    meta = fs.read_json(sandbox / ".git" / fs.META_NAME)
    project = meta.get("project") if isinstance(meta, dict) else None
    if not isinstance(project, str):
        old = fs.read_json(sandbox / ".loom" / "work" / "baseline.json")
        project = old.get("project") if isinstance(old, dict) else None
    return Path(project) if isinstance(project, str) and project else None


def sandboxes(base_dir: Path | None = None) -> list[tuple[Path, Path | None]]:
    """``(sandbox, owner project or None)`` for every finished sandbox under the base directory."""
    base = fs.base_dir_of(base_dir)
    try:
        names = sorted(os.listdir(base))
    except OSError:
        return []
    return [(base / n, owner_of(base / n)) for n in names
            if n.startswith("wt-") and ".partial-" not in n and (base / n).is_dir() and not (base / n).is_symlink()]


def gc(base_dir: Path | None = None, *, keep: Callable[[Path], bool] | None = None,
       dry_run: bool = False) -> list[tuple[Path, int]]:
    """Remove orphan sandboxes and dead ``wt-*.partial-<pid>`` dirs; returns ``[(path, bytes)]`` removed
    (or, with ``dry_run``, that would be).

    A sandbox is an orphan when its owner project is unknown or gone, when the owner's sandbox would
    now live elsewhere (an older naming), or when ``keep(project)`` is false.
    """
    base = fs.base_dir_of(base_dir)
    try:
        st = os.lstat(base)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise SandboxError(f"cannot read the sandbox root {base}: {exc}") from exc
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode) or (
            hasattr(os, "getuid") and st.st_uid != os.getuid()):
        raise SandboxError(f"sandbox root {base} is not a real directory of yours", code="SANDBOX_ROOT_UNSAFE")
    removed: list[tuple[Path, int]] = []
    for name in sorted(os.listdir(base)):
        path = base / name
        if not name.startswith("wt-"):
            continue
        if ".partial-" in name:
            pid = name.rpartition(".partial-")[2]
            if pid.isdigit() and fs.pid_alive(int(pid)):
                continue
        elif not _orphan(path, keep):
            continue
        removed.append((path, fs.disk_usage_of(path)))
        if not dry_run:
            fs.rmtree(path)
    return removed


def _orphan(path: Path, keep: Callable[[Path], bool] | None) -> bool:
    if path.is_symlink() or not path.is_dir():
        return True
    owner = owner_of(path)
    if owner is None or not owner.is_dir() or fs.sandbox_name(owner.resolve()) != path.name:
        return True
    return keep is not None and not keep(owner)


def clear_partials(project: Path, base_dir: Path | None = None) -> list[Path]:
    """Remove the leftovers of killed runs for ``project``'s sandbox (``wt-….partial-<pid>`` of a dead
    pid: an interrupted provisioning or deletion); returns what was removed."""
    base = fs.base_dir_of(base_dir)
    prefix = fs.sandbox_name(Path(project).resolve()) + ".partial-"
    try:
        names = os.listdir(base)
    except OSError:
        return []
    removed = []
    for name in names:
        pid = name[len(prefix):]
        if name.startswith(prefix) and pid.isdigit() and not fs.pid_alive(int(pid)):
            fs.rmtree(base / name)
            removed.append(base / name)
    return removed
