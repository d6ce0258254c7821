"""Toasts that never contradict what is on the screen: "parked at gate … press g" is not shown while the
screen in front is that project's view (it says so) or its gate dialog is open (it is the answer)."""

from __future__ import annotations

from textual.app import App


def about(app: App, pid: str) -> bool:
    """The screen in front shows project ``pid`` live, or a gate dialog of ``pid`` is open."""
    front = app.screen
    if getattr(front, "pid", None) == pid and not getattr(front, "archived", False):
        return True
    return any(type(s).__name__ == "GateDialog" and getattr(s, "pid", None) == pid for s in app.screen_stack)


def parked(app: App, pid: str, name: str, gate: str | None) -> None:
    """Tell that ``pid`` parked at ``gate``, unless the screen already says it."""
    if about(app, pid):
        return
    app.notify(f"parked at gate '{gate or '?'}' — press g in the project to answer", title=name, severity="warning")
