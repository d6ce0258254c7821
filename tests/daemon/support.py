"""What the daemon tests share: a scripted facade, a clock that records sleeps, a notifier that records events."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from loom_core.engine.drive import Outcome
from loom_core.engine.options import RunOptions, RunResult
from loom_core.errors import LoomError


class FakeClock:
    """Sleeps return at once and are recorded (seconds)."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def now(self) -> str:
        return "2026-01-01T00:00:00.000Z"

    def monotonic(self) -> float:
        return float(len(self.sleeps))

    def sleep(self, seconds: float, stop: threading.Event) -> bool:
        self.sleeps.append(seconds)
        return stop.is_set()


class RecordingNotifier:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def emit(self, event: dict[str, Any]) -> None:
        self.events.append(event)

    def flush(self, timeout_s: float = 0) -> None:
        pass


BLOCK = object()  # in a script: a drive that runs until paused


def error(code: str, task_id: str = "t-1") -> Outcome:
    return Outcome("error", task_id=task_id, code=code, message=f"{code} happened")


def accepted(task_id: str = "t-1") -> Outcome:
    return Outcome("complete", task_id=task_id, verdict="accepted", summary="done")


class ScriptedControl:
    """A facade whose drives return scripted outcomes (an exception in the script is raised), one per drive.

    ``status`` reports the task in progress while the script has outcomes left; ``stop_after`` sets a stop
    event once that many drives were made (watch-mode tests)."""

    def __init__(self, script: list[Any], *, in_progress: bool = True, task_id: str = "t-1",
                 stop: threading.Event | None = None, stop_after: int | None = None) -> None:
        self.script = list(script)
        self.calls: list[str] = []
        self.in_progress = in_progress
        self.task_id = task_id
        self.stop, self.stop_after = stop, stop_after
        self.opts = RunOptions()
        self.status_calls = 0
        self._paused, self._blocking = threading.Event(), False
        self.on_status: Any = None  # called with the number of status calls so far (scripted task changes)

    def project(self, ref: Any) -> Any:
        return type("P", (), {"id": "p1", "path": Path(ref)})()

    def status(self, ref: Any, **_kw: Any) -> dict[str, Any]:
        self.status_calls += 1
        if self.on_status is not None:
            self.on_status(self.status_calls)
        if self.stop is not None and self.stop_after is not None and self.status_calls > self.stop_after:
            self.stop.set()
        if self.in_progress:
            return {"task_id": self.task_id, "state": "in_progress", "status": "running"}
        return {"task_id": self.task_id, "state": "completed", "status": "accepted"}

    def _next(self, verb: str) -> RunResult:
        self.calls.append(verb)
        item = self.script.pop(0)
        if item is BLOCK:  # a long drive: runs until paused
            self._paused.clear()
            self._blocking = True
            self._paused.wait(10)
            self._blocking = False
            item = Outcome("aborted", task_id=self.task_id, code="DRIVE_ABORTED", message="the drive was cancelled")
        if isinstance(item, Exception):
            raise item
        if item.kind == "complete":
            self.in_progress = False
        return RunResult(item, task_id=item.task_id)

    def submit(self, ref: Any, task: str, opts: RunOptions) -> RunResult:
        self.in_progress = True
        return self._next("submit")

    def proceed(self, ref: Any, opts: RunOptions | None = None) -> RunResult:
        return self._next("proceed")

    def pause(self, ref: Any) -> bool:
        if not self._blocking:
            return False
        self._paused.set()
        return True

    def wait_answered(self, ref: Any, gate_event_id: str, timeout_s: float = 1.0) -> bool:
        return True

    def wait_changed(self, ref: Any, timeout_s: float = 1.0) -> bool:
        return False  # nothing changes behind a scripted facade's back

    def run_options(self, ref: Any) -> RunOptions:
        return self.opts

    def push(self, ref: Any, branch: str, remote: str | None = None) -> str:
        raise LoomError("no remote", code="NO_REMOTE")

    def merge(self, ref: Any, branch: str) -> str:
        return f"merged {branch}"


def events(project: Path) -> list[str]:
    from loom_core.surfaces.daemon import read_log

    return [e["event"] for e in read_log(project)]
