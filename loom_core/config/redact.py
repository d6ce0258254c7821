"""Keep secrets out of everything loom writes or prints.

Agent outputs, prompts, log lines, error messages and the task text itself (before it becomes the
task id, the ``loom/<task>`` branch and the commit message) pass through :func:`Redactor.redact`
before they reach a transcript, the task store, the event stream or the terminal. Matching ignores
case (a slug lower-cases what it copies), and well-known key shapes are redacted even when the key
is stored nowhere loom can see.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

CONVENTIONAL_ENV = ("ANTHROPIC_API_KEY", "OPENROUTER_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY",
                    "CLAUDE_CODE_OAUTH_TOKEN", "LOOM_TG_BOT_TOKEN")
MIN_LEN = 6  # shorter values would redact ordinary words
MARK = "[redacted]"
# credentials recognisable by their shape: provider API keys and tokens, long enough never to be prose
KEY_SHAPES = (
    r"sk-ant-[A-Za-z0-9_-]{16,}",  # Anthropic (api03, admin, oauth)
    r"sk-or-v1-[A-Za-z0-9]{16,}",  # OpenRouter
    r"sk-(?:proj-)?[A-Za-z0-9_-]{32,}",  # OpenAI
    r"gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{40,}",  # GitHub
    r"AIza[0-9A-Za-z_-]{35}",  # Google
    r"xox[abposr]-[A-Za-z0-9-]{10,}",  # Slack
    r"\d{8,10}:AA[A-Za-z0-9_-]{30,}",  # Telegram bot tokens
)


class Redactor:
    def __init__(self, values: Iterable[str] = (), *, shapes: bool = True) -> None:
        vals = sorted({v for v in values if v and len(v) >= MIN_LEN}, key=len, reverse=True)
        # a shape starts a word: "disk-…" or "task-…" in a slug never looks like "sk-…"
        parts = [re.escape(v) for v in vals] + ([f"(?<![A-Za-z0-9])(?:{k})" for k in KEY_SHAPES] if shapes else [])
        self._re = re.compile("|".join(parts), re.IGNORECASE) if parts else None

    @classmethod
    def from_environment(cls, store=None) -> Redactor:
        values = [os.environ.get(name, "") for name in CONVENTIONAL_ENV]
        try:
            if store is None:
                from loom_core.config.secrets import SecretStore

                store = SecretStore()
            for name in store.names():
                values.append(store.get(name) or "")
        except Exception:  # an unreadable store must not stop redaction of the rest
            pass
        return cls(values)

    def redact(self, text: str) -> str:
        if self._re is None or not text:
            return text
        return self._re.sub(MARK, text)
