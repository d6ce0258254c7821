"""The only clock reads in loom: NowTokens are minted here, once per tick."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol

from loom_core.kernel.now import format_dt, parse


class Clock(Protocol):
    def now(self) -> str: ...


class SystemClock:
    """Wall clock, made strictly increasing so two ticks never share a token."""

    def __init__(self) -> None:
        self._last = ""
        self._lock = threading.Lock()

    def now(self) -> str:
        with self._lock:
            token = format_dt(datetime.now(UTC))
            if token <= self._last:
                token = format_dt(parse(self._last) + timedelta(milliseconds=1))
            self._last = token
            return token


class FixedClock:
    """Deterministic clock for tests: starts at ``start`` and moves ``step_ms`` per read."""

    def __init__(self, start: str = "2026-01-01T00:00:00.000Z", step_ms: int = 1) -> None:
        self._t = parse(start)
        self._step = timedelta(milliseconds=step_ms)

    def now(self) -> str:
        token = format_dt(self._t)
        self._t += self._step
        return token

    def advance(self, seconds: float) -> None:
        self._t += timedelta(seconds=seconds)
