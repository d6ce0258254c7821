"""Keep stored secrets out of everything loom writes or prints.

Agent outputs, prompts, log lines and error messages pass through :func:`Redactor.redact`
before they reach a transcript, the task store, the event stream or the terminal.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

CONVENTIONAL_ENV = ("ANTHROPIC_API_KEY", "OPENROUTER_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY",
                    "CLAUDE_CODE_OAUTH_TOKEN", "LOOM_TG_BOT_TOKEN")
MIN_LEN = 6  # shorter values would redact ordinary words


class Redactor:
    def __init__(self, values: Iterable[str] = ()) -> None:
        vals = sorted({v for v in values if v and len(v) >= MIN_LEN}, key=len, reverse=True)
        self._re = re.compile("|".join(re.escape(v) for v in vals)) if vals else None

    @classmethod
    def from_environment(cls, store=None) -> Redactor:
        values = [os.environ.get(name, "") for name in CONVENTIONAL_ENV]
        try:
            if store is None:
                from .secrets import SecretStore

                store = SecretStore()
            for name in store.names():
                values.append(store.get(name) or "")
        except Exception:  # an unreadable store must not stop redaction of the rest
            pass
        return cls(values)

    def redact(self, text: str) -> str:
        if self._re is None or not text:
            return text
        return self._re.sub("[redacted]", text)
