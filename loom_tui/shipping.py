"""Push / squash-merge a finished task's ``loom/<task>`` branch from the console, in a thread
worker, with a toast per result. Also the "on accept" choices of the submit form:
``app.ship_on_accept[pid] = {"push": bool, "squash": bool}``, performed once when the task ends
accepted (:func:`ship_after_accept`, called from the project screen; safe to call from the app
too — the entry is popped, so it runs once). The form also puts them in the task's options
(``push`` / ``squash_merge``, saved in ``.loom/task-exec.json``), so a supervisor (``loom daemon``,
the plane) that finishes the task ships it the same way."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from textual.app import App

if TYPE_CHECKING:
    from loom_core.control import ControlClient


def ship_branch(app: App, pid: str, branch: str, *, push: bool = False, squash: bool = False,
                done: Callable[[], None] | None = None) -> None:
    """Push and/or squash-merge ``branch`` of project ``pid`` (explicit user actions only)."""

    def run() -> None:
        from loom_core.errors import LoomError

        control: ControlClient = app.control  # push and merge: verbs of the protocol
        for wanted, fn in ((push, control.push), (squash, control.merge)):
            if not wanted:
                continue
            try:
                app.call_from_thread(app.notify, fn(pid, branch), title="git")
            except LoomError as exc:
                app.call_from_thread(app.notify, f"{exc.code}: {exc}", title="git", severity="error", timeout=10)
        if done is not None:
            app.call_from_thread(done)

    app.run_worker(run, thread=True, group=f"ship-{pid}", exit_on_error=False, name=f"ship {branch}",
                   description="git push / squash-merge")


def ship_after_accept(app: App, pid: str, outcome: Any, done: Callable[[], None] | None = None) -> bool:
    """Perform the submit form's "push / squash-merge on accept" for a run that just ended."""
    if outcome is None or outcome.kind != "complete" or outcome.verdict != "accepted" or not outcome.task_id:
        return False
    wanted = (getattr(app, "ship_on_accept", None) or {}).pop(pid, None)
    if not wanted or not (wanted.get("push") or wanted.get("squash")):
        return False
    ship_branch(app, pid, f"loom/{outcome.task_id}", push=bool(wanted.get("push")),
                squash=bool(wanted.get("squash")), done=done)
    return True
