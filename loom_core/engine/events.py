"""The driver's event stream: a thread-safe fan-out called after commits (no Textual here)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class EngineEvent:
    kind: str  # phase | spawn-start | spawn-end | log | gate-opened | gate-answered | verdict | outcome | notice
    project: str
    data: dict[str, Any] = field(default_factory=dict)


class EventSink(Protocol):
    def emit(self, event: EngineEvent) -> None: ...


class EventBus:
    """Subscribers get every event; one failing subscriber never stops the others or the engine."""

    def __init__(self) -> None:
        self._subs: list[Callable[[EngineEvent], None]] = []
        self._lock = threading.Lock()

    def subscribe(self, fn: Callable[[EngineEvent], None]) -> Callable[[], None]:
        with self._lock:
            self._subs.append(fn)

        def unsubscribe() -> None:
            with self._lock:
                if fn in self._subs:
                    self._subs.remove(fn)

        return unsubscribe

    def emit(self, event: EngineEvent) -> None:
        with self._lock:
            subs = list(self._subs)
        for fn in subs:
            try:
                fn(event)
            except Exception:  # a broken subscriber must not break a drive
                import logging  # here, not at import: `loom status` loads this module and never logs

                logging.getLogger("loom.events").exception("event subscriber failed on %s", event.kind)


class NullSink:
    def emit(self, event: EngineEvent) -> None:
        pass
