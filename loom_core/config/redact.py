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

from loom_core.config import secrets

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
    def __init__(self, values: Iterable[str] = (), *, shapes: bool = True, follow_resolved: bool = False) -> None:
        self._values = {v for v in values if v and len(v) >= MIN_LEN}
        self._shapes = shapes
        self._follow = follow_resolved  # also every secret this process resolves later (see secrets.resolved_values)
        self._seen = -1
        self._compile()

    def _compile(self) -> None:
        vals = set(self._values)
        if self._follow:
            now = secrets.resolved_values()
            self._seen = len(now)
            vals |= {v for v in now if len(v) >= MIN_LEN}
        ordered = sorted(vals, key=len, reverse=True)
        # a shape starts a word: "disk-…" or "task-…" in a slug never looks like "sk-…"
        parts = [re.escape(v) for v in ordered] + (
            [f"(?<![A-Za-z0-9])(?:{k})" for k in KEY_SHAPES] if self._shapes else [])
        self._re = re.compile("|".join(parts), re.IGNORECASE) if parts else None

    @classmethod
    def from_environment(cls, store=None) -> Redactor:
        """The conventional key variables, the file's secrets, and every secret this process resolves (the
        keyring is not read: a keyring secret reaches an agent only through a resolved reference)."""
        values = [os.environ.get(name, "") for name in CONVENTIONAL_ENV]
        try:
            if store is None:
                store = secrets.SecretStore()
            values.extend(store.file_secrets().values())
        except Exception:  # an unreadable store must not stop redaction of the rest
            pass
        return cls(values, follow_resolved=True)

    def redact(self, text: str) -> str:
        if self._follow and secrets.resolved_count() != self._seen:
            self._compile()
        if self._re is None or not text:
            return text
        return self._re.sub(MARK, text)
