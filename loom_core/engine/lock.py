"""The per-project lock: one process drives (or answers, recovers, resets) a project at a time."""

from __future__ import annotations

import errno
import fcntl
import os
import time
from pathlib import Path
from typing import Any

from loom_core.errors import LoomError, StateReadOnly
from loom_core.store import db as dbmod
from loom_core.store import loomdir


class ProjectBusy(LoomError):
    code = "PROJECT_BUSY"


def _flock_briefly(fh: Any, tries: int = 25, pause_s: float = 0.01) -> None:
    """LOCK_EX, retried for ~0.25 s: a reader's liveness probe (``status.driver_alive``) holds a shared
    lock for microseconds and must never make a starting drive busy."""
    for i in range(tries):
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if i == tries - 1:
                raise
            time.sleep(pause_s)


class ProjectLock:
    """An advisory lock on ``.loom/lock`` held while a process drives the project; the
    kernel releases it if the process dies."""

    def __init__(self, project: Path) -> None:
        self.path = dbmod.loom_dir(project) / "lock"
        self._fh = None

    def acquire(self) -> ProjectLock:
        try:
            loomdir.ensure(self.path.parent)
            fh = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the lock's lifetime
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise
            raise StateReadOnly(f"{self.path.parent} is read-only; loom needs to write its state there") from None
        try:
            _flock_briefly(fh)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise ProjectBusy(f"{self.path.parent.parent} is being driven by {holder}; stop it or wait") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}")
        fh.flush()
        self._fh = fh
        return self

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None

    def __enter__(self) -> ProjectLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()
