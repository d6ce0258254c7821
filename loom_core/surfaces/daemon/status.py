"""The supervisor's status file and lock, ``<project>/.loom/daemon/daemon.json`` (spec §4.1).

``{pid, project_dir, started_at, updated_at, phase, task_id?, detail?, start_token?}``. Acquire is an
exclusive create; a file left by a dead owner, by this process, by a ``stopped`` daemon, or unreadable
is reclaimed. ``start_token`` (``/proc/<pid>/stat`` field 22, the process start time) tells a live
daemon from an unrelated process that reused its pid, so :func:`stop_daemon` never signals a stranger.
Advisory only: recovery reads the store, never this file.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loom_core.errors import LoomError
from loom_core.procs import alive, start_token

PHASES = ("starting", "driving", "parked", "backing-off", "idle", "stopping", "stopped")


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def daemon_dir(project: Path) -> Path:
    return Path(project) / ".loom" / "daemon"


def status_path(project: Path) -> Path:
    return daemon_dir(project) / "daemon.json"


def read_status(project: Path) -> dict[str, Any] | None:
    """The status file's object; None when missing or unreadable (tolerant read)."""
    try:
        data = json.loads(status_path(project).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def owner_running(doc: dict[str, Any] | None) -> bool:
    """Whether the file's owner is a live daemon: alive, same start token, not ``stopped``."""
    if not doc or doc.get("phase") == "stopped":
        return False
    pid = doc.get("pid")
    return alive(pid, doc.get("start_token"))


class DaemonStatus:
    """This process's hold on a project's status file."""

    def __init__(self, project: Path) -> None:
        self.project = Path(project).resolve()
        self.path = status_path(self.project)
        self.doc: dict[str, Any] = {}
        self.held = False
        self._lock = threading.Lock()  # a signal handler's "stopping" and the drive's phases never interleave

    def acquire(self) -> DaemonStatus:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        now = now_iso()
        self.doc = {"pid": os.getpid(), "project_dir": str(self.project), "started_at": now, "updated_at": now,
                    "phase": "starting", "start_token": start_token(os.getpid())}
        for _ in range(5):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                other = read_status(self.project)
                if other is not None and other.get("pid") != os.getpid() and owner_running(other):
                    raise LoomError(f"a loom daemon already supervises {self.project} (pid {other.get('pid')}); "
                                    f"stop it with 'loom daemon stop {self.project}'",
                                    code="DAEMON_ALREADY_RUNNING") from None
                try:
                    self.path.unlink()  # dead owner, ours, stopped or unreadable: reclaim
                except FileNotFoundError:
                    pass
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(self.doc, fh)
            self.held = True
            return self
        raise LoomError(f"could not take {self.path} (another daemon keeps starting); try again",
                        code="DAEMON_ALREADY_RUNNING")

    def update(self, phase: str | None = None, **fields: Any) -> None:
        """Atomically rewrite the file (``<path>.<pid>.tmp`` + rename); ``None`` values drop a field."""
        with self._lock:
            if not self.held:
                return
            if phase is not None:
                self.doc["phase"] = phase
            for k, v in fields.items():
                if v is None:
                    self.doc.pop(k, None)
                else:
                    self.doc[k] = v
            self.doc["updated_at"] = now_iso()
            tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
            try:
                tmp.write_text(json.dumps(self.doc), encoding="utf-8")
                os.replace(tmp, self.path)
            except OSError:
                pass  # advisory: a status file that cannot be written never stops a drive

    def release(self) -> None:
        """Mark the file ``stopped`` (kept for ``daemon status``; the next start reclaims it)."""
        if self.held:
            self.update("stopped")
            self.held = False


def stop_daemon(project: Path, *, timeout_s: float = 30.0) -> dict[str, Any]:
    """SIGTERM the project's daemon and wait for it to stop. ``{"result": "not-running"|"stopped"|"still-running",
    "pid"}``; a dead owner or a reused pid is cleared without signalling anyone."""
    doc = read_status(project)
    if doc is None or doc.get("phase") == "stopped":
        return {"result": "not-running", "pid": (doc or {}).get("pid")}
    pid = doc.get("pid")
    if not owner_running(doc):
        try:
            status_path(project).unlink()
        except FileNotFoundError:
            pass
        return {"result": "not-running", "pid": pid, "cleared": True}
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not owner_running(read_status(project)) or not alive(pid):
            return {"result": "stopped", "pid": pid}
        time.sleep(0.05)
    return {"result": "still-running", "pid": pid}
