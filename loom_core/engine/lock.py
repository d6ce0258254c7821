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


HOLDER_WAIT_S = 0.25  # a named holder (a drive) that does not let go within this is busy
PROBE_WAIT_S = 5.0  # an unnamed one is a reader's liveness probe, descheduled on a loaded machine


def _flock_briefly(fh: Any, pause_s: float = 0.01) -> None:
    """LOCK_EX, retried. A drive writes its pid into the file while it holds the lock and clears it
    before letting go; a reader's liveness probe (``status.driver_alive``) holds a shared lock for
    microseconds and writes nothing. So a blocked attempt with a named holder gives up after
    ``HOLDER_WAIT_S``; with no name it waits out the probe (up to ``PROBE_WAIT_S``), which on a busy
    machine can be preempted while it holds the lock — a probe must never make a drive or an answer busy."""
    start = time.monotonic()
    while True:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            waited = time.monotonic() - start
            if waited >= PROBE_WAIT_S or (waited >= HOLDER_WAIT_S and _holder(fh)):
                raise
            time.sleep(pause_s)


def _holder(fh: Any) -> str:
    fh.seek(0)
    return fh.read().strip()


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
            holder = _holder(fh) or "another process"
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
            self._fh.seek(0)
            self._fh.truncate()  # nobody named holds it now (see _flock_briefly)
            self._fh.flush()
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None

    def __enter__(self) -> ProjectLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()
