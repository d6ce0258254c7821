"""One line of text per event, for the channels that carry text (Slack, Telegram)."""

from __future__ import annotations

from typing import Any

ICONS = {"complete": "✅", "parked": "⏸️", "failed": "❌", "rate-limit-wait": "⏳", "watch-park": "🅿️", "retry": "🔁"}
MAX_MESSAGE = 300  # characters of the event's message kept in the line


def _one_line(value: Any) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= MAX_MESSAGE else text[:MAX_MESSAGE - 1] + "…"


def subject(event: dict[str, Any]) -> str:
    """``project_id/task_id`` in a fleet, else the task id (``loom`` when the event has neither)."""
    task = event.get("task_id") or ""
    project = event.get("project_id") or ""
    if project:
        return f"{project}/{task}" if task else str(project)
    return str(task) or "loom"


def format_text(event: dict[str, Any]) -> str:
    """``✅ shop/t-1 complete — accepted → loom/t-1``, ``⏸️ shop/t-1 parked at plan: … — resume to continue``."""
    kind = str(event.get("event") or "event")
    who = subject(event)
    msg = _one_line(event["message"]) if event.get("message") else ""
    tail = f": {msg}" if msg else ""
    if kind == "complete":
        line = f"{who} complete"
        if event.get("verdict"):
            from loom_core.control.words import ended

            line += f" — {ended(event.get('status'), event['verdict'])}"
        if event.get("branch"):
            line += f" → {event['branch']}"
    elif kind == "parked":
        gate = f" at {event['gate']}" if event.get("gate") else ""
        line = f"{who} parked{gate}{tail} — resume to continue"
    elif kind == "failed":
        code = f" [{event['code']}]" if event.get("code") else ""
        line = f"{who} failed{code}{tail}"
    elif kind == "rate-limit-wait":
        line = f"{who} waiting for a rate limit{tail}"
    elif kind == "watch-park":
        line = f"{who} watching, nothing to do{tail}"
    elif kind == "retry":
        code = f" [{event['code']}]" if event.get("code") else ""
        line = f"{who} retrying{code}{tail}"
    else:
        line = f"{who} {kind}{tail}"
    return f"{ICONS.get(kind, '•')} {line}"


__all__ = ["ICONS", "format_text", "subject"]
