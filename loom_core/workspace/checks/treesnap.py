"""A snapshot of a tree around the checks: whatever a check changed is found and put back.

In a git work tree the snapshot is the tree git would commit — tracked and untracked files that
are not ignored, ``.loom/`` left out — written with pygit2 (``index.add_all`` on an in-memory
copy of the index, then ``write_tree``: the blobs and trees go to the object database, the index
file is never written). Its id is that tree's id (the project folder's subtree), so an identical
tree has an identical id. Reverting compares a second such tree with the first: files a check
created are deleted, files it modified or deleted are written back from the first tree's blobs.

Outside git a manifest (size, mtime, mode) stands in, with a bounded copy of small files so a
modified one can be put back; a change that cannot be undone is still reported.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pygit2

LOOM_DIR = ".loom"
_SKIP_DIRS = frozenset({".git", ".loom", "node_modules", ".venv", "venv", "__pycache__", ".tox", ".nox"})
BACKUP_FILE_BYTES = 512 * 1024
BACKUP_TOTAL_BYTES = 32 * 1024 * 1024


def _open_repo(root: Path) -> tuple[pygit2.Repository, str] | None:
    """The git repository whose work tree holds ``root``, and ``root``'s prefix in it."""
    try:
        found = pygit2.discover_repository(str(root))
        repo = pygit2.Repository(found) if found else None
    except (pygit2.GitError, OSError, KeyError):
        return None
    if repo is None or repo.is_bare or not repo.workdir:
        return None
    try:
        prefix = root.resolve().relative_to(Path(repo.workdir).resolve()).as_posix()
    except ValueError:
        return None
    return repo, "" if prefix == "." else prefix


@dataclass
class TreeSnapshot:
    """What ``root`` held when :meth:`take` ran. ``id`` names the content (a git tree id, or a
    manifest digest outside git)."""

    root: Path
    id: str
    kind: str  # "git" | "manifest"
    tree: str | None = None  # whole-repository tree id (git)
    prefix: str = ""
    manifest: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    backup: Path | None = None

    # ------------------------------------------------------------------ taking
    @classmethod
    def take(cls, root: Path) -> TreeSnapshot:
        root = Path(root)
        opened = _open_repo(root)
        if opened is not None:
            repo, prefix = opened
            tree = _write_tree(repo, prefix)
            return cls(root, _subtree_id(repo, tree, prefix), "git", tree=str(tree), prefix=prefix)
        return _take_manifest(root)

    def repo(self) -> pygit2.Repository | None:
        opened = _open_repo(self.root) if self.kind == "git" else None
        return opened[0] if opened else None

    # ------------------------------------------------------------------ comparing
    def changed_since(self, commit: str | None) -> list[str] | None:
        """Files (relative to ``root``) added or modified in this snapshot against ``commit``'s tree;
        None when that cannot be told (no git, unknown commit)."""
        repo = self.repo()
        if repo is None or not commit or self.tree is None:
            return None
        try:
            base = repo.revparse_single(commit).peel(pygit2.Tree)
            diff = repo.diff(base, repo[self.tree])
        except (KeyError, ValueError, pygit2.GitError):
            return None
        out = []
        for d in diff.deltas:
            if d.status in (pygit2.enums.DeltaStatus.DELETED,):
                continue
            rel = self._rel(d.new_file.path)
            if rel is not None:
                out.append(rel)
        return sorted(out)

    def _rel(self, repo_path: str) -> str | None:
        if not self.prefix:
            return None if repo_path.startswith(LOOM_DIR + "/") else repo_path
        if not repo_path.startswith(self.prefix + "/"):
            return None
        return repo_path[len(self.prefix) + 1:]

    # ------------------------------------------------------------------ reverting
    def revert(self) -> tuple[list[str], list[str]]:
        """Undo every change made to the tree since :meth:`take`: ``(changed paths, paths that could
        not be restored)``, both relative to ``root``."""
        if self.kind == "git":
            return self._revert_git()
        return self._revert_manifest()

    def _revert_git(self) -> tuple[list[str], list[str]]:
        repo = self.repo()
        if repo is None or self.tree is None:
            return [], []
        after = _write_tree(repo, self.prefix)
        if str(after) == self.tree:
            return [], []
        changed: list[str] = []
        failed: list[str] = []
        for d in repo.diff(repo[self.tree], repo[after]).deltas:
            rel = self._rel(d.new_file.path if d.status == pygit2.enums.DeltaStatus.ADDED else d.old_file.path)
            if rel is None:
                continue
            changed.append(rel)
            path = self.root / rel
            try:
                if d.status == pygit2.enums.DeltaStatus.ADDED:
                    _remove(path)
                    _prune_empty(path.parent, self.root)
                else:
                    _write_blob(path, repo[d.old_file.id].data, d.old_file.mode)
            except (OSError, KeyError):
                failed.append(rel)
        return sorted(changed), sorted(failed)

    def _revert_manifest(self) -> tuple[list[str], list[str]]:
        now = _manifest(self.root)
        changed = sorted(p for p in set(now) | set(self.manifest) if now.get(p) != self.manifest.get(p))
        failed: list[str] = []
        for rel in changed:
            path = self.root / rel
            try:
                if rel not in self.manifest:
                    _remove(path)
                    _prune_empty(path.parent, self.root)
                elif self.backup is not None and (self.backup / rel).is_file():
                    _write_blob(path, (self.backup / rel).read_bytes(), self.manifest[rel][2])
                else:
                    failed.append(rel)
            except OSError:
                failed.append(rel)
        return changed, failed

    def close(self) -> None:
        if self.backup is not None:
            shutil.rmtree(self.backup, ignore_errors=True)
            self.backup = None


# --------------------------------------------------------------------------- git helpers
def _write_tree(repo: pygit2.Repository, prefix: str) -> pygit2.Oid:
    index = repo.index  # read from disk; changed only in memory, never written back
    index.read(True)
    index.add_all([prefix] if prefix else None)
    loom = f"{prefix}/{LOOM_DIR}" if prefix else LOOM_DIR
    index.remove_directory(loom)
    return index.write_tree()


def _subtree_id(repo: pygit2.Repository, tree: pygit2.Oid, prefix: str) -> str:
    if not prefix:
        return str(tree)
    try:
        return str(repo[tree][prefix].id)
    except KeyError:  # an empty project folder
        return hashlib.sha1(b"tree 0\0").hexdigest()


def subtree(repo: pygit2.Repository, commit: str, prefix: str) -> pygit2.Tree | None:
    """The project folder's tree in ``commit`` (None when unknown or absent)."""
    try:
        tree = repo.revparse_single(commit).peel(pygit2.Tree)
        return tree if not prefix else repo[tree[prefix].id].peel(pygit2.Tree)
    except (KeyError, ValueError, pygit2.GitError):
        return None


def _write_blob(path: Path, data: bytes, mode: int) -> None:
    if os.path.lexists(path) and (path.is_dir() and not path.is_symlink()):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    if stat.S_ISLNK(mode):
        os.symlink(os.fsdecode(data), path)
        return
    path.write_bytes(data)
    if mode & 0o111:
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()


def _prune_empty(d: Path, root: Path) -> None:
    """Remove folders left empty by a deletion, up to (not including) ``root``."""
    while d != root and root in d.parents:
        try:
            d.rmdir()
        except OSError:
            return
        d = d.parent


# --------------------------------------------------------------------------- manifest (no git)
def _manifest(root: Path) -> dict[str, tuple[int, int, int]]:
    out: dict[str, tuple[int, int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS and not (base / d).is_symlink()
                       and not (base / d / "pyvenv.cfg").exists()]
        for name in filenames:
            p = base / name
            try:
                st = p.lstat()
            except OSError:
                continue
            out[p.relative_to(root).as_posix()] = (st.st_size, st.st_mtime_ns, st.st_mode)
    return out


def _take_manifest(root: Path) -> TreeSnapshot:
    manifest = _manifest(root)
    digest = hashlib.sha256()
    for rel in sorted(manifest):
        digest.update(f"{rel}\0{manifest[rel]}\n".encode())
    backup = Path(tempfile.mkdtemp(prefix="loom-checks-snap-"))
    budget = BACKUP_TOTAL_BYTES
    for rel, (size, _mtime, mode) in sorted(manifest.items()):
        if size > BACKUP_FILE_BYTES or size > budget or not stat.S_ISREG(mode):
            continue
        try:
            data = (root / rel).read_bytes()
        except OSError:
            continue
        dst = backup / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(data)
        budget -= len(data)
    return TreeSnapshot(root, digest.hexdigest()[:40], "manifest", manifest=manifest, backup=backup)
