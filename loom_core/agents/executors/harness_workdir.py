"""The harness's working directory: a file snapshot before and after the run (the files it touched),
the scratch directory outside the sandbox, and aider's repo-map cache removed again from the git root."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

SNAPSHOT_LIMIT = 100_000     # files; past that the sandbox's own diff is the only file list
_SNAPSHOT_SKIP = frozenset({".git", ".loom", "node_modules", ".venv", "__pycache__"})


def snapshot(root: Path) -> dict[str, tuple[int, int]] | None:
    """``{relative path: (size, mtime_ns)}`` of the sandbox's files (None when it is too big)."""
    out: dict[str, tuple[int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _SNAPSHOT_SKIP and not d.startswith(".aider")]
        base = Path(dirpath)
        for name in filenames:
            if name.startswith(".aider"):
                continue
            p = base / name
            try:
                st = p.lstat()
            except OSError:
                continue
            out[p.relative_to(root).as_posix()] = (st.st_size, st.st_mtime_ns)
            if len(out) > SNAPSHOT_LIMIT:
                return None
    return out


def changes(before: dict | None, after: dict | None) -> tuple[list[str], list[str]]:
    if before is None or after is None:
        return [], []
    modified = sorted(k for k, v in after.items() if k in before and before[k] != v)
    created = sorted(k for k in after if k not in before)
    return modified, created


def git_top(root: Path) -> Path:
    """The nearest directory at or above ``root`` holding ``.git`` (aider writes its cache there)."""
    for p in (root, *root.parents):
        if (p / ".git").exists():
            return p
    return root


def aider_artefacts(top: Path) -> set[str]:
    try:
        return {p.name for p in top.iterdir() if p.name.startswith(".aider")}
    except OSError:
        return set()



def scratch_dir(root: Path) -> Path:
    """A fresh temporary directory that is not inside the sandbox."""
    path = Path(tempfile.mkdtemp(prefix="loom-harness-")).resolve()
    if path == root or root in path.parents:
        shutil.rmtree(path, ignore_errors=True)
        path = Path(tempfile.mkdtemp(prefix="loom-harness-", dir=str(root.parent))).resolve()
    return path


def remove_new_artefacts(top: Path, before: set[str]) -> None:
    """Remove aider's ``.aider*`` files this run left at the git root (they would land in the diff)."""
    for name in aider_artefacts(top) - before:
        p = top / name
        try:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
        except OSError:
            pass

