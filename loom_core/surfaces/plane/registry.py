"""The fleet registry (spec §4.10): one watcher thread per supervised project, one shared FIFO spawn
gate around every agent of every project, and the durable supervised set (``projects.json``).

A watcher runs the daemon's :class:`Supervisor` in watch mode (recovery, park/wake, retry and backoff,
merge-back, ship-on-accept, its log and status file, notifications tagged with the project id); its
waits end early when the plane wakes it (:meth:`Registry.wake` after a submit or an answer). The
registry talks to loom through the facade only.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from loom_core.config.paths import atomic_write
from loom_core.errors import LoomError

log = logging.getLogger("loom.plane")
EVENT_LINES = 60
REFRESH_S = 0.5  # the fleet's read models are at most this much older than one refresh pass


class FifoGate:
    """A counting semaphore served in arrival order (a context manager): agents of every project queue
    for the same ``permits``, so a busy project cannot starve the others."""

    def __init__(self, permits: int) -> None:
        if permits < 1:
            raise ValueError("permits must be at least 1")
        self.permits = permits
        self._free = permits
        self._queue: deque[object] = deque()
        self._cond = threading.Condition()
        self.peak = 0  # most spawns ever inside at once (the bench reads it)
        self.entered = 0  # spawns let through so far

    def __enter__(self) -> FifoGate:
        ticket = object()
        with self._cond:
            self._queue.append(ticket)
            while self._queue[0] is not ticket or self._free == 0:
                self._cond.wait()
            self._queue.popleft()
            self._free -= 1
            self.entered += 1
            self.peak = max(self.peak, self.permits - self._free)
            self._cond.notify_all()
        return self

    def __exit__(self, *exc: Any) -> None:
        with self._cond:
            self._free += 1
            self._cond.notify_all()

    @property
    def in_use(self) -> int:
        return self.permits - self._free

    @property
    def waiting(self) -> int:
        return len(self._queue)


class _Sink:
    """Engine events of one project, kept as the last lines of its live log."""

    def __init__(self, lines: deque[dict[str, Any]]) -> None:
        self.lines = lines

    def emit(self, event: Any) -> None:
        if event.kind == "log":
            return  # agent output lines: too many for a 60-line tail
        self.lines.append({"ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "level": "info",
                           "event": event.kind, "detail": _short(event.data)})


def _short(data: dict[str, Any]) -> dict[str, Any]:
    return {k: (v if isinstance(v, str | int | float | bool | type(None)) else str(v)[:200]) for k, v in data.items()}


class _WakeClock:
    """The supervisor's clock, whose waits end early when the plane wakes the project (a submit, an answer)."""

    def __init__(self, wake: threading.Event) -> None:
        self.wake = wake

    def now(self) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float, stop: threading.Event) -> bool:
        if not stop.is_set():
            self.wake.wait(max(0.0, seconds))
            self.wake.clear()
        return stop.is_set()


class _Tagged:
    """The fleet's notifier, each event tagged with its project id (spec §4.8: subject project/task)."""

    def __init__(self, notifier: Any, project_id: str) -> None:
        self.notifier, self.project_id = notifier, project_id

    def emit(self, event: dict[str, Any]) -> None:
        if self.notifier is not None:
            self.notifier.emit({**event, "project_id": self.project_id})

    def flush(self, timeout_s: float = 10.0) -> None:
        if self.notifier is not None:
            self.notifier.flush(timeout_s)


class Watcher:
    """Runs the daemon's :class:`Supervisor` in watch mode for one project, in a thread, until stopped."""

    def __init__(self, registry: Registry, project: Any) -> None:
        from loom_core.surfaces.daemon.supervisor import Supervisor

        self.registry = registry
        self.project = project
        self.stop_event = threading.Event()
        self.wake_event = threading.Event()
        self.supervisor = Supervisor(registry.control, project.path, watch=True, stop=self.stop_event,
                                     clock=_WakeClock(self.wake_event),
                                     notifier=_Tagged(registry.notifier, project.id))
        self.thread = threading.Thread(target=self._run, name=f"loom-watch-{project.id}", daemon=True)

    def start(self) -> Watcher:
        self.thread.start()
        return self

    @property
    def phase(self) -> str:
        return self.supervisor.phase

    def signal(self) -> None:
        """Ask the watcher to stop: its drive stops after the current step (the running agent is stopped)."""
        self.supervisor.stop()
        self.wake_event.set()

    def stop(self, timeout_s: float = 30.0) -> None:
        self.signal()
        self.thread.join(timeout_s)

    def _run(self) -> None:
        try:
            self.supervisor.run()
        except Exception as exc:  # the scaffolding crashed (e.g. a daemon took the project): say so
            log.exception("watcher of %s crashed", self.project.dir)
            self.registry.note(self.project.id, "watch-crash", message=f"{type(exc).__name__}: {exc}")


def _daemon_elsewhere(path: Path) -> bool:
    """Whether a ``loom daemon`` of another process supervises the project (it may be parked, lock-free)."""
    import os

    try:
        from loom_core.surfaces.daemon.status import owner_running, read_status
    except ImportError:
        return False
    doc = read_status(path)
    return bool(doc) and doc.get("pid") != os.getpid() and owner_running(doc)


class Registry:
    """The projects this plane supervises. ``control`` is the facade the watchers drive through."""

    def __init__(self, control: Any, state_dir: Path, *, gate: FifoGate | None = None,
                 notifier: Any = None) -> None:
        self.control = control
        self.state_dir = Path(state_dir)
        self.gate = gate
        self.notifier = notifier
        self._watchers: dict[str, Watcher] = {}
        self._events: dict[str, deque[dict[str, Any]]] = {}
        self._lock = threading.RLock()
        self._models: dict[str, dict[str, Any]] = {}
        self._fleet: bytes | None = None  # the encoded fleet of the last refresh (None: build again)
        self._refresher: threading.Thread | None = None
        self._closed = threading.Event()

    # ------------------------------------------------------------------ wiring
    def sink_for(self, project_id: str) -> _Sink:
        return _Sink(self._lines(project_id))

    def _lines(self, project_id: str) -> deque[dict[str, Any]]:
        with self._lock:
            return self._events.setdefault(project_id, deque(maxlen=EVENT_LINES))

    def note(self, project_id: str, event: str, **detail: Any) -> None:
        self._lines(project_id).append({"ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                        "level": "info", "event": event, "detail": _short(detail)})

    def events(self, project_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._events.get(project_id, ()))

    # ------------------------------------------------------------------ read models, refreshed off the request path
    def read_models(self) -> list[tuple[Any, dict[str, Any]]]:
        """Every supervised project with its read model as of the last refresh (at most ~``REFRESH_S`` old
        plus one pass): a fleet poll costs no store reads, however many projects there are."""
        if self._refresher is None:
            with self._lock:
                if self._refresher is None:
                    self._refresher = threading.Thread(target=self._refresh_loop, name="loom-plane-models",
                                                       daemon=True)
                    self._refresher.start()
        out = []
        for p in self.supervised():
            model = self._models.get(p.id)
            if model is None:
                model = self._models[p.id] = self.control.read_model(p.path)
            out.append((p, model))
        return out

    def _refresh_loop(self) -> None:
        while not self._closed.is_set():
            try:
                stall = float(self.control.config_get("general.stall_minutes"))
            except (LoomError, TypeError, ValueError):
                stall = None
            for p in self.supervised():
                try:
                    self._models[p.id] = self.control.read_model(p.path, stall_after_min=stall)
                except (LoomError, OSError):
                    pass  # a read error keeps the last model
            self._fleet = None
            self._closed.wait(REFRESH_S)

    def fleet_json(self) -> bytes | None:
        """``GET /projects`` as encoded once per refresh pass; ``None`` until every project has a model."""
        fleet = self._fleet
        if fleet is None:
            supervised = self.supervised()
            if self._refresher is None or any(p.id not in self._models for p in supervised):
                return None
            fleet = self._fleet = json.dumps([{"id": p.id, "dir": p.dir, "supervised": True,
                                               "status": self._models[p.id]} for p in supervised]).encode()
        return fleet

    # ------------------------------------------------------------------ the set
    @property
    def projects_file(self) -> Path:
        return self.state_dir / "projects.json"

    def saved_dirs(self) -> list[str]:
        try:
            data = json.loads(self.projects_file.read_text(encoding="utf-8"))
            dirs = data.get("dirs") if isinstance(data, dict) else None
            return [d for d in dirs if isinstance(d, str)] if isinstance(dirs, list) else []
        except (OSError, ValueError):
            return []

    def _save(self) -> None:
        with self._lock:
            dirs = [w.project.dir for w in self._watchers.values()]
        self.state_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(self.projects_file, json.dumps({"dirs": dirs}, indent=2) + "\n")

    def supervised(self) -> list[Any]:
        with self._lock:
            return [w.project for w in self._watchers.values()]

    def watcher(self, project_id: str) -> Watcher | None:
        with self._lock:
            return self._watchers.get(project_id)

    def is_supervised(self, project_id: str) -> bool:
        return self.watcher(project_id) is not None

    def register(self, ref: Any, *, persist: bool = True) -> Any:
        """Supervise a project (idempotent). A project another process drives → ``PROJECT_LOCKED``."""
        control = self.control
        project = control.project(ref)
        if not project.path.is_dir():
            raise LoomError(f"{project.dir} is not a directory", code="DIR_NOT_FOUND")
        with self._lock:
            if project.id in self._watchers:
                return project
            if control.held_elsewhere(project.path) or _daemon_elsewhere(project.path):
                raise LoomError(f"{project.dir} is being driven by another process; stop it first",
                                code="PROJECT_LOCKED")
            self._watchers[project.id] = Watcher(self, project).start()
            self._fleet = None
        self.note(project.id, "supervised", dir=project.dir)
        if persist:
            self._save()
        return project

    def unregister(self, project_id: str) -> bool:
        """Stop supervising: the drive stops after its current step; the project leaves the durable set."""
        with self._lock:
            w = self._watchers.pop(project_id, None)
            self._models.pop(project_id, None)
            self._fleet = None
        if w is None:
            return False
        w.stop()
        self._save()
        return True

    def recover(self) -> list[str]:
        """Re-attach every saved project; one that fails is skipped (and stays in the set)."""
        attached = []
        for d in self.saved_dirs():
            try:
                attached.append(self.register(Path(d), persist=False).id)
            except (LoomError, OSError) as exc:
                log.warning("recover-skip %s: %s", d, exc)
        return attached

    def wake(self, project_id: str) -> None:
        w = self.watcher(project_id)
        if w is not None:
            w.wake_event.set()

    def shutdown(self, timeout_s: float = 30.0) -> None:
        """Stop every watcher; the durable set is kept for the next start."""
        self._closed.set()
        with self._lock:
            watchers = list(self._watchers.values())
            self._watchers.clear()
        for w in watchers:
            w.signal()
        for w in watchers:
            w.thread.join(timeout_s)
