"""What loom's caches under ``$XDG_CACHE_HOME/loom`` share: a stamp of the files an entry was made from
(an edit, an upgrade or a removal makes it stale) and a whole-file write (temp, then rename into place).
Standard library only: ``loom --help`` and every Tab use it."""

from __future__ import annotations

import os
from collections.abc import Iterable


def stamps(files: Iterable[str]) -> list[str]:
    """``size:mtime_ns`` of each file (``gone`` for one that cannot be stat'ed)."""
    out = []
    for f in files:
        try:
            st = os.stat(f)
            out.append(f"{st.st_size}:{st.st_mtime_ns}")
        except OSError:
            out.append("gone")
    return out


def write(path: str | os.PathLike[str], text: str) -> None:
    """``text`` as the whole of ``path`` (0600, its folder made): written aside, then renamed over it, so a
    reader sees the old entry or the new one, never half of one. Errors are the caller's to ignore."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)
