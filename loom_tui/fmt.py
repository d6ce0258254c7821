"""Small formatters shared by the screens (tokens, durations, ages)."""

from __future__ import annotations


def fmt_tokens(n: int | None) -> str:
    n = n or 0
    return f"{n / 1000:.1f}k" if n >= 1000 else str(n)


def token_line(tin: int | None, tout: int | None, cached: int | None) -> str:
    s = f"{fmt_tokens(tin)} in · {fmt_tokens(tout)} out"
    return s + f" · {fmt_tokens(cached)} cached" if cached else s


def fmt_ms(ms: int | float | None) -> str:
    if ms is None:
        return "—"
    if ms < 1000:
        return f"{int(ms)} ms"
    s = ms / 1000
    if s < 60:
        return f"{s:.1f} s"
    return f"{int(s // 60)}m {int(s % 60):02d}s"


def fmt_age(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    s = int(max(0, seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


# one palette for status badges and cells, shared by the fleet and the project view
STATUS_STYLE = {"parked": "bold black on yellow", "stalled": "bold white on red", "running": "bold green",
                "paused": "bold yellow", "stopped": "bold yellow", "accepted": "green", "rejected": "yellow", "abandoned": "red",
                "failed_force_closed": "red", "unavailable": "red", "lost": "bold white on red", "idle": "dim", "archived": "bold blue"}
