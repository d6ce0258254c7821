"""The console attached to a plane (``app.control`` an :class:`~loom_core.control.http.HttpControl`).

The plane drives; the console watches. Its verbs return at once, so "finished" comes from the fleet:
:func:`transitions` turns a row's status change into the toast a local drive would have shown. The
project's live log is the plane's SSE stream, read by :func:`follow_log` in a thread worker that only
posts messages (new lines as ``LogLines``; a change of the task's read model as an ``EngineUpdate``, so
the screens reload as they do on a local engine event).
"""

from __future__ import annotations

import json
from typing import Any

from textual.app import App

from loom_tui.messages import EngineUpdate, LogLines

ENDED = ("accepted", "rejected", "abandoned", "failed", "cancelled", "finished")


def is_attached(app: App) -> bool:
    return bool(getattr(getattr(app, "control", None), "remote", False))


def line_of(entry: Any) -> str:
    """One log entry of the plane (a supervisor log record or an engine event) as a console line."""
    if not isinstance(entry, dict):
        return str(entry)
    ts = str(entry.get("ts") or "")[11:19]
    what = entry.get("event") or entry.get("kind") or ""
    rest = " ".join(f"{k}={v}" for k, v in entry.items() if k not in ("ts", "event", "kind") and v not in (None, ""))
    return " ".join(x for x in (ts, str(what), rest) if x)


def follow_log(app: App, pid: str, is_cancelled) -> None:
    """Read the plane's ``/projects/{pid}/log`` stream until ``is_cancelled()``; post new lines as ``LogLines``."""
    from loom_core.control import EngineEvent
    from loom_core.errors import LoomError

    plane = app.control  # an HttpControl: ``log`` is the plane's stream, not a verb of the protocol
    seen: list[str] = []
    status = None
    try:
        for snap in plane.log(pid):
            if is_cancelled():
                return
            now = json.dumps(snap.get("status"), sort_keys=True, default=str)
            if status is not None and now != status:  # the task moved: screens reload as on an engine event
                app.post_message(EngineUpdate(pid, EngineEvent("phase", pid, {"from": "plane"})))
            status = now
            keys = [json.dumps(e, sort_keys=True, default=str) for e in snap.get("log") or []]
            start = 0
            for n in range(min(len(seen), len(keys)), 0, -1):  # the longest overlap of the last snapshot's end
                if seen[-n:] == keys[:n]:
                    start = n
                    break
            fresh = (snap.get("log") or [])[start:] if seen or start else snap.get("log") or []
            seen = keys
            if fresh:
                app.post_message(LogLines(pid, [line_of(e) for e in fresh]))
    except (LoomError, OSError) as exc:
        app.post_message(LogLines(pid, [f"(live log from the plane stopped: {exc})"]))
    except Exception as exc:  # noqa: BLE001 - httpx errors: the stream closed; never take the console down
        if not is_cancelled():
            app.post_message(LogLines(pid, [f"(live log from the plane stopped: {type(exc).__name__})"]))


def transitions(app: App, old: dict[str, dict[str, Any]], rows: list[dict[str, Any]]) -> list[str]:
    """Toast what changed since the last fleet read (parked at a gate, ended); the projects that changed."""
    changed = []
    for r in rows:
        before = old.get(r["id"])
        if before is None or (before.get("status"), before.get("task_id")) == (r.get("status"), r.get("task_id")):
            continue
        changed.append(r["id"])
        name, status = r.get("name", r["id"]), r.get("status")
        if status == "parked":
            from loom_tui.toasts import parked

            parked(app, r["id"], name, r.get("gate"))
        elif status in ENDED:
            app.notify(f"{status} (driven by the plane)", title=name,
                       severity="information" if status == "accepted" else "warning")
    return changed
