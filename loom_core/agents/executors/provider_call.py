"""The provider-call executor: one in-process, single-shot model call (no tools, no sandbox).

Prompt = ``intent.prompt``, system = ``intent.system_prompt``, idempotency key =
``intent.agent_run_id``; ``max_tokens`` = ``intent.extras["max_tokens"]`` or the executor's default.
The reply streams to ``log`` line by line. Never started once ``cancel`` is set
(``EXECUTOR_ABORTED``); a token-limit cut raises ``EXECUTOR_OUTPUT_TRUNCATED``; provider
failures arrive as the typed ``Provider*`` errors (``loom_core.errors``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from loom_core.agents.executors import ExecResult
from loom_core.agents.providers.base import Provider
from loom_core.errors import ProviderAborted
from loom_core.kernel.types import Intent

MAX_LINE = 2000  # a line longer than this is logged in pieces


class LineBuffer:
    """Collects streamed text deltas and hands complete lines to ``log``."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self.log = log
        self.buf = ""

    def feed(self, text: str) -> None:
        self.buf += text
        while True:
            cut = self.buf.find("\n")
            if cut < 0:
                break
            line, self.buf = self.buf[:cut], self.buf[cut + 1:]
            self.log(line)
        while len(self.buf) >= MAX_LINE:
            self.log(self.buf[:MAX_LINE])
            self.buf = self.buf[MAX_LINE:]

    def flush(self) -> None:
        if self.buf:
            self.log(self.buf)
            self.buf = ""


class ProviderExecutor:
    """Executor protocol over a ``Provider``. ``model`` (optional) overrides ``intent.model``; a
    ``<provider>:`` prefix on the model reference is dropped."""

    def __init__(self, provider: Provider, *, label: str, max_tokens: int = 8192, model: str | None = None) -> None:
        self.provider = provider
        self.name = f"provider:{provider.name}"
        self.label = label
        self.max_tokens = max_tokens
        self.model = model
        # the provider honours the Idempotency-Key (Ollama does not)
        self.idempotent = provider.name != "ollama"

    def _model(self, intent: Intent) -> str:
        model = self.model or intent.model
        prefix = f"{self.provider.name}:"
        return model[len(prefix):] if model.startswith(prefix) else model

    def execute(self, intent: Intent, cancel: threading.Event, log: Callable[[str], None]) -> ExecResult:
        if cancel.is_set():
            raise ProviderAborted(f"{intent.agent}: not started, the drive was cancelled", provider=self.provider.name)
        max_tokens = int(intent.extras.get("max_tokens") or self.max_tokens)
        lines = LineBuffer(log)
        started = time.monotonic()
        try:
            reply = self.provider.chat(
                model=self._model(intent),
                system=intent.system_prompt or None,
                messages=[self.provider.user_message(intent.prompt)],
                tools=None,
                max_tokens=max_tokens,
                on_text=lines.feed,
                idempotency_key=intent.agent_run_id,
                cancel=cancel,
            )
        finally:
            lines.flush()
        usage = reply.usage
        usage.duration_ms = int((time.monotonic() - started) * 1000)
        usage.num_turns = usage.num_turns or 1
        return ExecResult(output=reply.text, usage=usage, model=reply.model or self._model(intent))
