"""Edit an archived store the way someone behind loom's back would: unpack the compressed image into an
SQLite file, edit that (with ``sqlite3`` or the shell), pack it back in place."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from loom_core.store import codec


@contextlib.contextmanager
def unpacked(archive: Path) -> Iterator[Path]:
    """Yield an SQLite file holding ``archive``'s database; what it holds on exit is packed back into
    ``archive``. An archive an older loom wrote (already an SQLite file) is yielded as it is."""
    archive = Path(archive)
    blob = archive.read_bytes()
    if not codec.is_image(blob):
        yield archive
        return
    work = archive.with_name(archive.name + ".edit.sqlite")
    work.write_bytes(codec.unpack_image(blob))
    try:
        yield work
        archive.write_bytes(codec.pack_image(work.read_bytes()))
    finally:
        for leftover in work.parent.glob(work.name + "*"):
            leftover.unlink()
