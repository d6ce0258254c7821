"""Fault injection for the crash-matrix tests.

``LOOM_CRASH_AT=<point>:<n>`` makes the process SIGKILL itself the n-th time it passes the
named point (``*`` matches every point, so ``*:17`` dies at the 17th crash point crossed).
``LOOM_CRASH_TRACE=<file>`` appends every crossed point's name (to enumerate them).
Unset, ``crashpoint`` is a no-op costing one global read. It lives below the engine, the agents and
the workspace (all of them mark points) and imports nothing of loom.
"""

from __future__ import annotations

import os
import signal

_SPEC = os.environ.get("LOOM_CRASH_AT", "")
_TRACE = os.environ.get("LOOM_CRASH_TRACE", "")
_counts: dict[str, int] = {}


def crashpoint(name: str) -> None:
    if not _SPEC:
        return
    if _TRACE:
        with open(_TRACE, "a", encoding="utf-8") as fh:
            fh.write(name + "\n")
    point, _, nth = _SPEC.partition(":")
    if point != "*" and point != name:
        return
    _counts[point] = _counts.get(point, 0) + 1
    if _counts[point] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
