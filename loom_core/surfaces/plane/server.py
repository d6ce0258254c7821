"""Start and stop a plane (spec §5.1): check → lock → registry → re-attach → ``--project``s → listen →
``serving``; stop: ``stopping`` → fleet shutdown → close the server and its SSE streams → release.

:class:`Plane` runs uvicorn in the foreground (``loom serve``) or on a thread (tests, the bench).
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from loom_core.errors import LoomError
from loom_core.surfaces.netloc import is_loopback
from loom_core.surfaces.plane import lockfile
from loom_core.surfaces.plane.registry import FifoGate, Registry

log = logging.getLogger("loom.plane")


def refuse_open_bind(host: str, token: str | None) -> None:
    """A non-loopback bind without a token is refused before anything starts."""
    if not token and not is_loopback(host):
        raise LoomError(f"refusing to listen on {host} without a token: anyone who can reach it could drive "
                        "your projects", code="TOKEN_REQUIRED",
                        hint="pass --token (or set server.token / LOOM_SERVER_TOKEN), or bind 127.0.0.1 and "
                             "tunnel over SSH")


def resolve_token(token: str | None) -> str | None:
    """A literal token, or ``secret:<name>`` from the secret store."""
    if token and token.startswith("secret:"):
        from loom_core.config.secrets import SecretStore

        value = SecretStore().resolve(token)
        if not value:
            raise LoomError(f"the token {token} is not in the secret store", code="TOKEN_MISSING")
        return value
    return token or None


def _notifier() -> Any:
    """The configured notification channels (None when that surface is not installed or not configured)."""
    try:
        from loom_core.surfaces.notify.live import LiveNotifier  # rebuilt when the notify settings change
    except ImportError:
        return None
    try:
        return LiveNotifier()
    except LoomError as exc:
        log.warning("notifications off: %s", exc)
        return None


def startup_gc(control: Any, dirs: list[Path]) -> list[tuple[Path, int]] | None:
    """Watch mode's startup clean-up (spec §4.5), once per plane start, before any watcher drives: orphan
    sandboxes go (the facade's ``gc``, which also keeps any in-progress project's) when the projects to
    supervise have nothing in progress. ``None`` when it did not run (no project, or one is busy)."""
    paths = [p for p in (Path(d).expanduser() for d in dirs) if p.is_dir()]
    if not paths:
        return None
    busy = []
    for p in paths:
        try:
            if control.read_model(p).get("status") == "in_progress" or control.held_elsewhere(p):
                busy.append(str(p))
        except (LoomError, OSError):
            busy.append(str(p))  # unreadable: do not guess
    if busy:
        log.info("startup-gc skipped: in progress in %s", ", ".join(busy))
        return None
    try:
        removed = control.gc()
    except (LoomError, OSError) as exc:
        log.warning("startup-gc failed: %s", exc)
        return None
    log.info("startup-gc: removed %d orphan sandbox(es)%s", len(removed),
             "".join(f"\n  {path} ({size} bytes)" for path, size in removed))
    return removed


class Plane:
    def __init__(self, *, host: str = "127.0.0.1", port: int = 4317, token: str | None = None,
                 state_dir: Path | None = None, permits: int = 4, projects: tuple[Path, ...] = (),
                 catalog: Any = None, sse_period_s: float = 2.0,
                 demo_delay_s: float = 0.0) -> None:
        from loom_core.control import LocalControl

        refuse_open_bind(host, token)
        self.host, self.port, self.token = host, port, token
        self.state_dir = Path(state_dir) if state_dir else lockfile.default_state_dir()
        self.projects = projects
        self.gate = FifoGate(permits)
        self.lock = lockfile.ServerLock(self.state_dir, host, port)
        self.registry: Registry | None = None
        self._catalog, self._sse = catalog, sse_period_s
        self._demo_delay_s = demo_delay_s
        self._local = LocalControl
        self.server: Any = None
        self.thread: threading.Thread | None = None
        self.app: Any = None
        self.gc_removed: list[tuple[Path, int]] | None = None  # what the startup clean-up removed (None: not run)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def _prepare(self) -> None:
        import uvicorn

        from loom_core.surfaces.plane.app import create_app

        self.lock.acquire()
        try:
            reg: Registry | None = None
            control = self._local(self._catalog, spawn_gate=self.gate, demo_delay_s=self._demo_delay_s,
                                  sink_for=lambda pid: reg.sink_for(pid))  # type: ignore[union-attr]
            reg = self.registry = Registry(control, self.state_dir, gate=self.gate, notifier=_notifier())
            self.gc_removed = startup_gc(control, [*map(Path, reg.saved_dirs()), *map(Path, self.projects)])
            reg.recover()
            for d in self.projects:
                try:
                    reg.register(Path(d))
                except (LoomError, OSError) as exc:
                    log.warning("not supervising %s: %s", d, exc)
            if self.gc_removed is not None:  # the live log of each project says so
                for p in reg.supervised():
                    reg.note(p.id, "startup-gc", removed=len(self.gc_removed))
            self.app = create_app(control, token=self.token, registry=reg, sse_period_s=self._sse)
            config = uvicorn.Config(self.app, host=self.host, port=self.port, log_level="warning", lifespan="off",
                                    access_log=False, timeout_graceful_shutdown=3)
            self.server = uvicorn.Server(config)
        except BaseException:
            self.lock.release()
            raise

    def _bound_port(self) -> int:
        for s in self.server.servers:
            for sock in s.sockets:
                return sock.getsockname()[1]
        return self.port

    def start(self, timeout_s: float = 20.0) -> Plane:
        """Serve on a thread; returns once listening (``port=0`` picks a free port)."""
        self._prepare()
        self.thread = threading.Thread(target=self.server.run, name="loom-plane", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                self.shutdown()
                raise LoomError(f"the plane did not start on {self.host}:{self.port}", code="SERVER_START_FAILED")
            time.sleep(0.02)
        self.port = self._bound_port()
        self.lock.update(phase="serving", port=self.port, project_count=len(self.registry.supervised()))
        return self

    def run(self) -> None:
        """Serve in the foreground until SIGINT/SIGTERM, then stop cleanly."""
        self._prepare()
        watcher = threading.Thread(target=self._mark_serving, daemon=True)
        watcher.start()
        try:
            self.server.run()
        finally:
            self.shutdown()

    def _mark_serving(self) -> None:
        while not self.server.started and not self.server.should_exit:
            time.sleep(0.05)
        if self.server.started:
            self.port = self._bound_port()
            self.lock.update(phase="serving", port=self.port, project_count=len(self.registry.supervised()))
            while not self.server.should_exit:
                time.sleep(1.0)
                if self.lock.held and self.registry is not None:
                    count = len(self.registry.supervised())
                    if count != self.lock.info.get("project_count"):
                        self.lock.update(project_count=count)

    def shutdown(self) -> None:
        """Stop: ``stopping``, the fleet stops (its set kept), streams close, the lock is released."""
        if self.lock.held:
            self.lock.update(phase="stopping")
        if self.app is not None:
            self.app.state.stopping.set()
        if self.registry is not None:
            self.registry.shutdown()
            if self.registry.notifier is not None:
                self.registry.notifier.flush(5.0)  # what the watchers said before they stopped
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(10)
        self.lock.release()

    stop = shutdown
