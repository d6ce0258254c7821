"""The project's ``.loom/`` folder: created by one helper that also gives it its own ``.gitignore``
(``*``), so ``git add -A`` in the user's repository never picks up loom's state."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

GITIGNORE = "*\n"


def ensure(directory: Path) -> Path:
    """Create the ``.loom`` folder ``directory`` if needed; a folder this call created (or finds empty)
    gets ``.gitignore`` = ``*``. An existing folder with content is left as the user has it."""
    directory = Path(directory)
    created = False
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        directory.mkdir()
        created = True
    except FileExistsError:
        pass
    gi = directory / ".gitignore"
    if created or (directory.is_dir() and not os.path.lexists(gi) and not any(directory.iterdir())):
        tmp = directory / f".gitignore.{os.getpid()}.tmp"
        try:
            tmp.write_text(GITIGNORE, encoding="utf-8")
            os.replace(tmp, gi)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    return directory


def ensure_for(project: Path) -> Path:
    """``<project>/.loom``, created as :func:`ensure` does."""
    return ensure(Path(project) / ".loom")


def read_json_object(path: Path) -> dict | None:
    """A small JSON object file under ``.loom/``; None when it is missing, not a regular file (a FIFO is
    never opened), unreadable or not an object."""
    import json
    import stat

    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, encoding="utf-8") as fh:
            doc = json.loads(fh.read(1_000_000))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None
