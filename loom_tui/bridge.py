"""Engine → UI bridge. Engine threads call ``emit``; it posts messages (never blocks, never
touches widgets). Log lines are batched every 100 ms into one ``LogLines`` message."""

from __future__ import annotations

import threading
import time

from textual.app import App

from loom_core.control import EngineEvent
from loom_tui.messages import EngineUpdate, LogLines

BATCH_S = 0.1


class TuiSink:
    def __init__(self, app: App, project_id: str) -> None:
        self._app = app
        self._pid = project_id
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._last_flush = 0.0
        self._timer: threading.Timer | None = None

    def emit(self, event: EngineEvent) -> None:
        if event.kind == "log":
            self._log(f"{event.data.get('agent', '')}: {event.data.get('line', '')}")
            return
        self.flush()
        self._app.post_message(EngineUpdate(self._pid, event))
        if event.kind == "notice":
            self._log(str(event.data.get("message", "")))

    def _log(self, line: str) -> None:
        with self._lock:
            self._lines.append(time.strftime("%H:%M:%S ") + line)
            due = time.monotonic() - self._last_flush >= BATCH_S
            if not due and self._timer is None:
                self._timer = threading.Timer(BATCH_S, self.flush)
                self._timer.daemon = True
                self._timer.start()
        if due:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            lines, self._lines = self._lines, []
            self._last_flush = time.monotonic()
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        if lines:
            self._app.post_message(LogLines(self._pid, lines))
