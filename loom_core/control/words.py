"""Plain words for what the engine records in tokens: how a task ended, what comes next, what a recovery does.

The store keeps ``status=abandoned, verdict=None`` or ``verdict=failed_force_closed``, and directives say
``shuttle`` or ``ask-user``; users read "abandoned", "force-closed", "agents run next". Every surface that
prints these (the CLI, plain mode, notifications, the bot, the console) goes through here, so ``loom recover abandon``, ``loom status`` and
``loom history`` say the same word.
"""

from __future__ import annotations

import re

_SUMMARY_HEAD = re.compile(r"^task complete \(verdict=[^,()]*, work=[^()]*\)(?: — )?")

NEXT = {"shuttle": "agents run next", "ask-user": "a gate waits for your answer",
        "complete": "the task has ended", "error": "the task is stuck"}

RECOVERY = {"retry": "try the stuck step again", "retry-failed": "re-run the agents that failed",
            "cancel-pending": "drop the agents still pending and go on", "force-close": "end the task as failed",
            "abandon": "end the task and drop its sandbox"}


def ended(status: str | None, verdict: str | None) -> str:
    """How a task ended: accepted | rejected | abandoned | force-closed | failed (or ``in progress``). Values
    from a hand-edited history index may be anything: they are shown as text, never a crash."""
    status, verdict = _text(status), _text(verdict)
    if status == "abandoned":
        return "abandoned"
    if status == "in_progress":
        return "in progress"
    if verdict == "failed_force_closed":
        return "force-closed"
    if verdict == "error":
        return "failed"
    if verdict:
        return verdict.replace("_", " ").lower()
    return (status or "ended").replace("_", " ")


def _text(value: object) -> str | None:
    return value if value is None or isinstance(value, str) else str(value)


def work(work_result: str | None) -> str:
    """The work's state when the task ended, in words."""
    return {"clean": "no blocking findings", "blocked": "blocking findings left"}.get(_text(work_result) or "", "")


def ended_line(status: str | None, verdict: str | None, work_result: str | None = None) -> str:
    """``abandoned`` / ``accepted (no blocking findings)``."""
    w = work(work_result) if status != "abandoned" else ""
    return f"{ended(status, verdict)}{f' ({w})' if w else ''}"


def summary(text: str | None) -> str:
    """A completion summary without the engine's ``task complete (verdict=…, work=…)`` head."""
    return _SUMMARY_HEAD.sub("", (text or "").strip()).strip()


def next_step(kind: str | None) -> str:
    return NEXT.get(kind or "", f"next: {kind}")


def recovery_hint(options: list[str] | tuple[str, ...]) -> str:
    """``loom recover retry (try the stuck step again) · loom recover abandon (…)``."""
    return " · ".join(f"loom recover {o} ({RECOVERY[o]})" if o in RECOVERY else f"loom recover {o}" for o in options)
