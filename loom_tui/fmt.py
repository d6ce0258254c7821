"""Small formatters shared by the screens (tokens, local times, clipping, status styles); ages and durations are
:mod:`loom_core.control.humanize`."""

from __future__ import annotations

from datetime import datetime


def fmt_tokens(n: int | None) -> str:
    n = n or 0
    return f"{n / 1000:.1f}k" if n >= 1000 else str(n)


def token_line(tin: int | None, tout: int | None, cached: int | None) -> str:
    s = f"{fmt_tokens(tin)} in · {fmt_tokens(tout)} out"
    return s + f" · {fmt_tokens(cached)} cached" if cached else s


def fmt_time(iso: str | None, with_date: bool = True) -> str:
    """A stored UTC timestamp on the local clock."""
    if not iso:
        return "—"
    try:
        dt = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone()
    except ValueError:
        return iso
    return dt.strftime("%Y-%m-%d %H:%M" if with_date else "%H:%M:%S")


def clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


# one palette for status badges and cells, shared by the fleet and the project view
STATUS_STYLE = {"parked": "bold black on yellow", "stalled": "bold white on red", "running": "bold green",
                "paused": "bold yellow", "stopped": "bold yellow", "over-budget": "bold black on yellow", "accepted": "green", "rejected": "yellow", "abandoned": "red",
                "failed_force_closed": "red", "unavailable": "red", "lost": "bold white on red", "idle": "dim", "archived": "bold blue"}
SEVERITY_STYLE = {"blocking": "bold red", "warn": "yellow", "info": "dim"}  # findings, in every view
