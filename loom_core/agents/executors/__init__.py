"""Executor seam: ``execute(intent, cancel, log) -> ExecResult``. Executors reuse the
intent's ``agent_run_id``; they never mint one."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from loom_core.kernel.types import Intent


@dataclass
class Usage:
    tokens_in: int = 0
    tokens_out: int = 0
    tokens_cached: int = 0
    cache_write: int = 0
    cost_usd: float | None = None
    num_turns: int | None = None
    duration_ms: int | None = None


def usage_dict(u: Usage) -> dict:
    """A spawn attempt's usage as stored with a transcript or a fallback attempt."""
    return {"tokens_in": u.tokens_in, "tokens_out": u.tokens_out, "tokens_cached": u.tokens_cached,
            "cache_write": u.cache_write, "cost_usd": u.cost_usd, "num_turns": u.num_turns,
            "duration_ms": u.duration_ms}


def failed_usage(exc: Exception) -> Usage | None:
    """What a failed or stopped attempt consumed, when its executor could tell (``detail["usage"]``)."""
    u = getattr(exc, "detail", {}).get("usage")
    return u if isinstance(u, Usage) else None


@dataclass
class ExecResult:
    output: str
    files_modified: tuple[str, ...] = ()
    files_created: tuple[str, ...] = ()
    usage: Usage = field(default_factory=Usage)
    model: str | None = None  # the model actually run
    attempts: list[dict] = field(default_factory=list)  # earlier backends tried (fallback chain), and why
    prompt: str | None = None  # the prompt the agent was given, when the driver added to the kernel's
    findings: list[dict] = field(default_factory=list)  # blocking findings about the spawn itself (driver)


class Executor(Protocol):
    name: str
    label: str
    idempotent: bool

    def execute(self, intent: Intent, cancel: threading.Event, log: Callable[[str], None]) -> ExecResult: ...


class ScriptedExecutor:
    """Instant executor answering from a function of the intent (tests, benchmarks)."""

    name = "scripted"
    label = "scripted (instant)"
    idempotent = True

    def __init__(self, respond: Callable[[Intent], str | ExecResult]) -> None:
        self._respond = respond
        self.calls: list[str] = []
        self._lock = threading.Lock()

    def execute(self, intent: Intent, cancel: threading.Event, log: Callable[[str], None]) -> ExecResult:
        with self._lock:
            self.calls.append(intent.agent_run_id)
        out = self._respond(intent)
        return out if isinstance(out, ExecResult) else ExecResult(output=out)
