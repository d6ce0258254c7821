"""The file manifest of a non-git project (§9.2): ``{path: [size, sha256]}`` keeps ``delta()`` honest."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

# Skipped by the manifest, at any depth.
MANIFEST_SKIP = frozenset({".loom", ".git", "node_modules", ".venv", "__pycache__"})


def walk(root: Path):
    """Yield ``(posix path, (size, digest-thunk))``, skipping MANIFEST_SKIP folders; symlinks by target."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in MANIFEST_SKIP)
        here = Path(dirpath)
        links = [d for d in dirnames if (here / d).is_symlink()]
        dirnames[:] = [d for d in dirnames if d not in links]
        for name in sorted(filenames + links):
            full = here / name
            rel = full.relative_to(root).as_posix()
            try:
                if full.is_symlink():
                    target = os.readlink(full).encode("utf-8", "surrogateescape")
                    yield rel, (len(target), _const(hashlib.sha256(b"symlink:" + target).hexdigest()))
                elif full.is_file():
                    yield rel, (full.stat().st_size, _hasher(full))
            except OSError:
                continue


def manifest(root: Path) -> dict[str, list]:
    return {path: [size, digest()] for path, (size, digest) in walk(root)}


def plain_delta(root: Path, old: dict) -> tuple[list[str], list[str]]:
    """``(modified, created)`` of ``root`` against a manifest (``modified`` includes deletions)."""
    modified, created, seen = [], [], set()
    for path, (size, digest) in walk(root):
        seen.add(path)
        prev = old.get(path)
        if prev is None:
            created.append(path)
        elif prev[0] != size or prev[1] != digest():
            modified.append(path)
    modified.extend(p for p in old if p not in seen)
    return sorted(modified), sorted(created)


def _const(value: str):
    return lambda: value


def _hasher(path: Path):
    def digest() -> str:
        h = hashlib.sha256()
        try:
            with open(path, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
        except OSError:
            return ""
        return h.hexdigest()

    return digest
