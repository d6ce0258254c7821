"""How every surface writes an age or a duration: ``12s``, ``12 min``, ``1h 02m`` (``—`` for unknown).

One formatter for the CLI's ``loom status``, the stall notice and the console's headers and tables.
Pure and import-light."""

from __future__ import annotations

from loom_core.kernel.now import seconds_between

NONE = "—"
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"  # the frames of a running agent's spinner (the console's rows, plain mode's live line)


def duration(seconds: float | None, *, fine: bool = False) -> str:
    """``45s``, ``12 min``, ``1h 02m``; with ``fine``, under ten seconds keeps a decimal (``4.2s``).
    Minutes without seconds: an age in an 80-column table has room for six characters."""
    if seconds is None:
        return NONE
    seconds = max(0.0, float(seconds))
    s = int(round(seconds)) if fine else int(seconds)
    if fine and seconds < 10:
        return f"{seconds:.1f}s"
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60} min"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


def millis(ms: float | None) -> str:
    """An agent run's measured time: ``850 ms``, ``1.2 s``, then as :func:`duration`."""
    if ms is None:
        return NONE
    if ms < 1000:
        return f"{int(ms)} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    return duration(ms / 1000)


def span(start: str | None, end: str | None) -> str:
    """The :func:`duration` between two stored timestamps ("" when the start is unknown)."""
    if not start or not end:
        return ""
    return duration(seconds_between(start, end))


def seconds(start: str | None, end: str | None) -> float:
    """Seconds between two stored timestamps; 0 when either is missing or not a timestamp."""
    if not start or not end:
        return 0.0
    try:
        return seconds_between(start, end)
    except ValueError:
        return 0.0


def clock(secs: float) -> str:
    """``0:42``, ``12:05``, ``1:02:03``: a running agent's time."""
    s = max(0, int(secs))
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"
