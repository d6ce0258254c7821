"""The supervisor's audit log, ``<project>/.loom/daemon/log.jsonl`` (spec §4.7).

One JSON object per line, ``{ts, level, event, detail?}``, appended (``O_APPEND``: whole lines even with
two writers), optionally echoed to a stream (stderr in the foreground). A log that cannot be written
never stops the drive.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any, TextIO

from loom_core.surfaces.daemon.status import daemon_dir, now_iso


def log_path(project: Path) -> Path:
    return daemon_dir(project) / "log.jsonl"


class DaemonLog:
    def __init__(self, path: Path, *, echo: TextIO | None = None) -> None:
        self.path = Path(path)
        self.echo = echo
        self._lock = threading.Lock()

    @classmethod
    def for_project(cls, project: Path, *, echo: TextIO | None = None) -> DaemonLog:
        return cls(log_path(project), echo=echo)

    def write(self, event: str, level: str = "info", **detail: Any) -> dict[str, Any]:
        entry: dict[str, Any] = {"ts": now_iso(), "level": level, "event": event}
        if detail:
            entry["detail"] = detail
        line = json.dumps(entry, default=str, ensure_ascii=False)
        with self._lock:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    os.write(fd, (line + "\n").encode("utf-8"))
                finally:
                    os.close(fd)
            except OSError:
                pass
            if self.echo is not None:
                try:
                    self.echo.write(line + "\n")
                    self.echo.flush()
                except (OSError, ValueError):
                    pass
        return entry


def read_log(project: Path, last: int | None = None) -> list[dict[str, Any]]:
    """The log's entries (the ``last`` ones), unreadable lines skipped."""
    try:
        lines = log_path(project).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    out = []
    for line in lines[-last:] if last else lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            out.append(entry)
    return out


class LogSink:
    """An engine event sink for a supervised drive: each agent's usage (``spawn-usage``) and the engine's and
    executors' notices (``executor-notice``) go to the daemon log, the rest is left out."""

    def __init__(self, log: DaemonLog) -> None:
        self.log = log

    def emit(self, event: Any) -> None:
        d = event.data
        if event.kind == "spawn-end":
            self.log.write("spawn-usage", agent=d.get("agent"), agent_run_id=d.get("agent_run_id"),
                           model=d.get("model"), cost_usd=d.get("cost_usd"), tokens_in=d.get("tokens_in"),
                           tokens_out=d.get("tokens_out"), duration_ms=d.get("duration_ms"))
        elif event.kind == "notice":
            self.log.write("executor-notice", level=d.get("level") or "info", message=str(d.get("message"))[:500])
