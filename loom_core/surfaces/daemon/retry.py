"""The retry policy of spec §4.4: which error codes are retried, waited out or escalated, and the delays.

Pure functions plus :class:`WallClock`, the one place the supervisor reads time or sleeps (tests pass a
fake that records the sleeps instead of sleeping).
"""

from __future__ import annotations

import os
import re
import threading
import time

from loom_core.surfaces.daemon.status import now_iso

TRANSIENT = frozenset({"EXECUTOR_FAILED", "EXECUTOR_NOT_FOUND", "EXECUTOR_TIMEOUT", "EXECUTOR_IDLE_TIMEOUT",
                       "DRIVE_TIMEOUT", "EXECUTOR_OVERLOADED"})
BUSY = frozenset({"PROJECT_BUSY"})  # another process drives the task: wait for it, never count it as a failure
RATE_LIMITED = frozenset({"EXECUTOR_RATE_LIMITED"})
MAX_RETRIES = 5  # the 6th transient failure in a row escalates
BASE_S, CEILING_S = 1.0, 60.0
RATE_LIMIT_WAIT_S = 3600.0
WATCH_MAX_ERRORS = 3  # watch mode parks a slot after this many errors in a row
IDLE_POLL_S = 5.0


def classify(code: str | None) -> str:
    """``busy`` | ``transient`` | ``rate-limited`` | ``terminal`` (everything not named is terminal)."""
    if code in BUSY:
        return "busy"
    if code in RATE_LIMITED:
        return "rate-limited"
    if code in TRANSIENT:
        return "transient"
    return "terminal"


def backoff_s(attempt: int) -> float:
    """Delay before re-drive number ``attempt`` (1-based): 1, 2, 4, 8, 16 … capped at 60 s."""
    return min(CEILING_S, BASE_S * 2 ** max(0, attempt - 1))


def parse_duration_s(text: str | None) -> float | None:
    """``LOOM_*`` durations: an integer is ms; suffix ms|s|m|h allowed; blank or malformed = not set."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", text)
    if not m:
        return None
    value, unit = float(m.group(1)), m.group(2) or "ms"
    return value * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[unit]


def rate_limit_wait_s() -> float:
    got = parse_duration_s(os.environ.get("LOOM_RATE_LIMIT_WAIT"))
    return RATE_LIMIT_WAIT_S if got is None else got


def drive_deadline_s() -> float | None:
    """``LOOM_DRIVE_DEADLINE_MS``: a wall-clock cap on one drive (a breach is the transient ``DRIVE_TIMEOUT``)."""
    got = parse_duration_s(os.environ.get("LOOM_DRIVE_DEADLINE_MS"))
    return got or None


class WallClock:
    """Real time: ``sleep`` waits on the stop event, so a shutdown interrupts it."""

    def now(self) -> str:
        return now_iso()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float, stop: threading.Event) -> bool:
        """Sleep ``seconds`` unless ``stop`` is set first; True when stopped."""
        return stop.wait(max(0.0, seconds))
