"""A notifier that follows the settings: long-running surfaces (the plane) rebuild their channels when the
``[notify]`` section changes (spec §4.8), without a restart."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from loom_core.surfaces.notify import Notifier, _log_error


class LiveNotifier:
    """``emit`` / ``flush`` / ``close`` like :class:`Notifier`; before an emit (at most every
    ``min_interval_s``) the settings are read again and, when ``notify`` differs, the channels are rebuilt
    (the old ones finish what they hold). A settings file that no longer loads keeps the current channels
    and is reported through ``on_error("notify", …)``."""

    def __init__(self, load: Callable[[], Any] | None = None, *, on_error: Callable[[str, str], None] | None = None,
                 min_interval_s: float = 2.0) -> None:
        if load is None:
            from loom_core.config.settings import load_settings

            load = load_settings
        self.load = load
        self.on_error = on_error or _log_error
        self.min_interval_s = min_interval_s
        self._lock = threading.Lock()
        self._key: Any = None
        self._checked = float("-inf")
        self._current: Notifier | None = None
        self._retired: list[Notifier] = []
        self._refresh(force=True)

    @property
    def notifier(self) -> Notifier:
        return self._current or Notifier([])

    def _refresh(self, force: bool = False) -> None:
        with self._lock:
            now = time.monotonic()
            if not force and now - self._checked < self.min_interval_s:
                return
            self._checked = now
            try:
                settings = self.load()
                key = settings.notify.model_dump()
                if key == self._key and self._current is not None:
                    return
                fresh = Notifier.from_settings(settings, on_error=self.on_error)
            except Exception as exc:
                self._report(f"settings not reloaded, the channels stay as they were: {exc}")
                return
            if self._current is not None:
                self._current.close()
                self._retired = [n for n in self._retired if n._pending] + [self._current]
            self._current, self._key = fresh, key

    def emit(self, event: dict[str, Any]) -> None:
        try:
            self._refresh()
        except Exception as exc:  # never into the caller
            self._report(f"{type(exc).__name__}: {exc}")
        self.notifier.emit(event)

    def flush(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        for n in [*self._retired, self.notifier]:
            n.flush(max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        self.notifier.close()

    @property
    def channels(self) -> list[str]:
        return self.notifier.channels

    def _report(self, message: str) -> None:
        try:
            self.on_error("notify", message)
        except Exception:
            pass


__all__ = ["LiveNotifier"]
