"""``server.json``: the plane's lock and status file (spec §4.10).

``{pid, host, port, started_at, updated_at, phase, project_count, start_token}``; phases
``starting``, ``serving``, ``stopping``, ``stopped``. Acquired by exclusive create; an existing file is
taken over only when its owner is dead, is us, says ``stopped``, or cannot be read. ``start_token`` is
the owner's start time (``/proc/<pid>/stat`` field 22), so a reused pid is never signalled.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from loom_core.errors import LoomError
from loom_core.procs import alive, start_token

NAME = "server.json"


def default_state_dir() -> Path:
    from loom_core.config.paths import footprint

    return footprint() / "server"


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def read(state_dir: Path) -> dict[str, Any] | None:
    """The status file as written, or ``None`` when missing or unreadable."""
    try:
        data = json.loads((Path(state_dir) / NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def running(state_dir: Path) -> dict[str, Any] | None:
    """The status of a live plane, or ``None``."""
    data = read(state_dir)
    if not data or data.get("phase") == "stopped" or not isinstance(data.get("pid"), int):
        return None
    return data if alive(data["pid"], data.get("start_token")) else None


class ServerLock:
    def __init__(self, state_dir: Path, host: str, port: int) -> None:
        self.dir = Path(state_dir)
        self.path = self.dir / NAME
        self.info: dict[str, Any] = {"pid": os.getpid(), "host": host, "port": port, "started_at": _now(),
                                     "updated_at": _now(), "phase": "starting", "project_count": 0,
                                     "start_token": start_token(os.getpid())}
        self.held = False

    def acquire(self) -> ServerLock:
        self.dir.mkdir(parents=True, exist_ok=True)
        for _ in range(5):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                other = read(self.dir)
                if other and other.get("pid") != os.getpid() and other.get("phase") != "stopped" \
                        and isinstance(other.get("pid"), int) and alive(other["pid"], other.get("start_token")):
                    raise LoomError(f"a plane is already running (pid {other['pid']}, "
                                    f"{other.get('host')}:{other.get('port')}); stop it with `loom serve stop`",
                                    code="SERVER_ALREADY_RUNNING") from None
                try:
                    self.path.unlink()
                except FileNotFoundError:
                    pass
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(json.dumps(self.info))
            self.held = True
            return self
        raise LoomError(f"could not take {self.path}", code="SERVER_ALREADY_RUNNING")

    def update(self, **fields: Any) -> None:
        if not self.held:
            return
        self.info.update(fields, updated_at=_now())
        tmp = self.path.with_name(f"{NAME}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.info), encoding="utf-8")
        os.replace(tmp, self.path)

    def release(self) -> None:
        if self.held:
            self.update(phase="stopped")
            self.held = False


def stop(state_dir: Path, timeout_s: float = 30.0) -> str:
    """Signal the running plane to stop and wait for it: ``stopped``, ``not-running`` or ``timeout``."""
    data = read(state_dir)
    if not data or data.get("phase") == "stopped" or not isinstance(data.get("pid"), int):
        return "not-running"
    pid = data["pid"]
    if not alive(pid, data.get("start_token")):
        (Path(state_dir) / NAME).unlink(missing_ok=True)
        return "not-running"
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not alive(pid, data.get("start_token")) or (read(state_dir) or {}).get("phase") == "stopped":
            return "stopped"
        time.sleep(0.1)
    return "timeout"
