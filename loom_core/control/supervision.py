"""Verbs a supervisor needs beyond the ordinary ones: wait, without busy polling, until a gate is answered.

A parked supervisor holds no lock and has no channel to whoever answers (the console, ``loom answer``,
the HTTP plane, another process). It waits on the store: a :class:`~loom_core.store.read.watch.StoreWatch`
asks SQLite's ``data_version`` every ~150 ms and re-reads the pending gate only when it moved. An answer
given through this same client (:meth:`LocalControl.answer`) wakes the waiter at once.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from loom_core.control.client import ProjectRef

WATCH_EVERY_S = 0.15  # how often a waiter asks the store whether anything was committed


class SupervisionVerbs:
    """Mixed into :class:`~loom_core.control.local.LocalControl`."""

    def _answer_signal(self) -> threading.Condition:
        # created on first use; dict.setdefault is atomic, so two threads get the same condition
        return self.__dict__.setdefault("_answered", threading.Condition())

    def notify_answered(self) -> None:
        """Wake every waiter of this client (an answer or a task change was made here)."""
        cond = self._answer_signal()
        with cond:
            self.__dict__["_answers_seen"] = self.__dict__.get("_answers_seen", 0) + 1
            cond.notify_all()

    def wait_answered(self: Any, ref: ProjectRef, gate_event_id: str, timeout_s: float = 1.0) -> bool:
        """Wait up to ``timeout_s`` until gate ``gate_event_id`` is no longer the one waiting (answered here or
        in another process, or its task ended or was replaced); True when it is not (at once if already so)."""
        from loom_core.store import db as dbmod
        from loom_core.store.read.watch import StoreWatch, pending_gate_id

        path = dbmod.state_path(self._path(ref))
        watch = StoreWatch(path)
        cond = self._answer_signal()
        deadline = time.monotonic() + max(0.0, timeout_s)
        try:
            while True:
                with cond:
                    seen = self.__dict__.get("_answers_seen", 0)
                if watch.changed() and pending_gate_id(path) != gate_event_id:
                    return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                with cond:
                    if self.__dict__.get("_answers_seen", 0) == seen:
                        cond.wait(min(WATCH_EVERY_S, left))
                    if self.__dict__.get("_answers_seen", 0) != seen:
                        watch = _refreshed(watch)
        finally:
            watch.close()

    def wait_changed(self: Any, ref: ProjectRef, timeout_s: float = 1.0) -> bool:
        """Wait up to ``timeout_s`` until anything is committed to the project's task store (a task created,
        driven, answered, archived); True when something was. An idle watcher's way of noticing new work."""
        from loom_core.store import db as dbmod
        from loom_core.store.read.watch import StoreWatch

        watch = StoreWatch(dbmod.state_path(self._path(ref)))
        cond = self._answer_signal()
        deadline = time.monotonic() + max(0.0, timeout_s)
        try:
            watch.changed()  # the baseline
            while True:
                with cond:
                    seen = self.__dict__.get("_answers_seen", 0)
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    cond.wait(min(WATCH_EVERY_S, left))
                    if self.__dict__.get("_answers_seen", 0) != seen:
                        return True
                if watch.changed():
                    return True
        finally:
            watch.close()


def _refreshed(watch: Any) -> Any:
    """A fresh watch on the same store: its first ``changed()`` is True, so the gate is re-read."""
    from loom_core.store.read.watch import StoreWatch

    watch.close()
    return StoreWatch(watch.path)
