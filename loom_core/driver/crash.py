"""Fault injection for the crash-matrix tests.

``LOOM_CRASH_AT=<point>:<n>`` makes the process SIGKILL itself the n-th time it passes the
named point (``*`` matches every point, so ``*:17`` dies at the 17th crash point crossed).
Unset, ``crashpoint`` is a no-op costing one attribute read.
"""

from __future__ import annotations

import os
import signal

_SPEC = os.environ.get("LOOM_CRASH_AT", "")
_counts: dict[str, int] = {}


def crashpoint(name: str) -> None:
    if not _SPEC:
        return
    point, _, nth = _SPEC.partition(":")
    if point != "*" and point != name:
        return
    _counts[point] = _counts.get(point, 0) + 1
    if _counts[point] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
