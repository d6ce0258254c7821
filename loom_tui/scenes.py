"""Deterministic console scenes, shared by the SVG snapshot tests and the screenshot script.

``build(root)`` makes a small fleet under ``root`` with real stores driven through the real
engine on the demo backend, at fixed times and with fixed ids, so every picture is the same
on every machine: a project parked at its plan gate, one finished (with an archived earlier
task), one idle. ``SCENES`` says how to reach each view from the fleet.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from loom_core.control import Catalog, FixedClock

START = "2026-11-20T09:00:00.000Z"
NOW = "2026-11-20T09:12:34.000Z"
ROOT = Path("/tmp/loom-scenes")  # fixed, so paths in the pictures are the same everywhere


def _normalise(project: Path) -> None:
    """Measured durations vary from run to run: pin them for the pictures."""
    from loom_core.control import pin_durations

    pin_durations(project / ".loom" / "state.db")


def environment(root: Path) -> dict[str, str]:
    return {"LOOM_HOME": str(root / "home"), "TMPDIR": str(root / "tmp"), "TZ": "UTC", "LOOM_THEME": "textual-dark"}


def _drive(project: Path, task: str, opts: Any, at: str, new_id: Callable[[], str]) -> None:
    """Submit ``task`` through the facade at the fixed time ``at`` with ids from ``new_id``, and drive it
    until it parks or ends."""
    from loom_core.control import LocalControl

    LocalControl(Catalog([], None), clock=FixedClock(at), new_id=new_id).submit(project, task, opts)


def build(root: Path = ROOT, *, empty: bool = False) -> Catalog:
    from loom_core.control import RunOptions, create_demo_project, demo_task, sequential_ids

    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    env = environment(root)
    os.environ.update(env)
    (root / "tmp").mkdir()
    tempfile.tempdir = None  # pick up the new TMPDIR
    catalog = Catalog([], root / "home" / "workspace.json")
    if empty:
        catalog.save()
        return catalog
    ids = sequential_ids()  # one sequence over the whole fleet
    shop = root / "shop"
    create_demo_project(shop)
    _drive(shop, demo_task(), RunOptions(backend="demo", policy="demo-gates"), START, ids)
    billing = root / "billing"
    create_demo_project(billing)
    _drive(billing, "Round totals to cents", RunOptions(backend="demo", policy="auto"), "2026-11-19T15:00:00.000Z", ids)
    _drive(billing, demo_task(), RunOptions(backend="demo", policy="auto"), "2026-11-20T08:30:00.000Z", ids)
    docs = root / "docs-site"
    docs.mkdir()
    for p in (shop, billing, docs):
        _normalise(p)
        catalog.add(p, now=START)
    return catalog


def make(catalog: Catalog, **kw: Any):
    from loom_core.control import LocalControl
    from loom_tui.app import LoomApp

    app = LoomApp(LocalControl(catalog, clock=FixedClock(NOW, step_ms=0)), watch=False, **kw)
    app.control.sink_for = lambda pid: _pinned_sink(app, pid)
    return app


def _pinned_sink(app, pid):
    """The console's log sink, its lines stamped with the scenes' fixed time instead of the wall clock's."""
    from loom_tui.bridge import TuiSink

    class PinnedSink(TuiSink):
        def flush(self) -> None:
            with self._lock:
                self._lines = [f"{NOW[11:19]} {line[9:]}" for line in self._lines]
            super().flush()

    return PinnedSink(app, pid)


async def _settle(pilot, rounds: int = 6) -> None:
    for _ in range(rounds):
        await pilot.pause(0.05)


async def fleet(pilot) -> None:
    await _settle(pilot)


async def project(pilot) -> None:
    await _settle(pilot)
    await pilot.press("enter")  # the parked project sorts first
    await _settle(pilot, 10)
    if type(pilot.app.screen).__name__ == "GateDialog":  # opened by itself? keep the project view
        await pilot.press("escape")
        await _settle(pilot)


async def running(pilot) -> None:
    """The project view of a task whose first agent runs (slowed down; its clock is the fixed one, so it reads
    0:00). The caller stops the drive afterwards: ``stop_drives(app)``."""
    from loom_core.control import RunOptions

    await _settle(pilot)
    app = pilot.app
    pid = next(p.id for p in app.control.projects() if p.name == "billing")
    opts = RunOptions(backend="demo", policy="auto", demo_delay_s=60)

    def drive() -> None:  # a thread of its own, not the app's worker: the app's loop never waits for it
        try:
            app.control.submit(pid, "Log every refund with its reason", opts)
        except Exception:  # noqa: BLE001 - stopped by stop_drives
            pass

    threading.Thread(target=drive, daemon=True, name="scene-drive").start()
    for _ in range(200):  # until the fleet row says its agent runs
        await pilot.pause(0.05)
        row = app.rows.get(pid) or {}
        if row.get("status") == "running" and row.get("pending"):
            break
        app.refresh_rows()
    app.open_project(pid)
    await _settle(pilot, 10)


def stop_drives(app) -> None:
    """Stop whatever a scene left driving (a slowed agent is cancelled at once)."""
    for p in app.control.projects():
        if app.control.pause(p.id):
            app.control.wait_stopped(p.id, timeout_s=30)


async def gate(pilot) -> None:
    await project(pilot)
    await pilot.press("g")
    await _settle(pilot, 10)


async def inspector(pilot) -> None:
    await project(pilot)
    await pilot.press("enter")
    await _settle(pilot, 10)


async def history(pilot) -> None:
    await _settle(pilot)
    await pilot.press("down", "h")  # the finished project comes second
    await _settle(pilot, 10)


async def settings(pilot) -> None:
    await _settle(pilot)
    await pilot.press("s")
    await _settle(pilot, 10)


async def wizard(pilot) -> None:
    await _settle(pilot, 8)


# name -> (empty catalog?, how to get there)
SCENES: dict[str, tuple[bool, Callable[[Any], Awaitable[None]]]] = {
    "fleet": (False, fleet),
    "project": (False, project),
    "gate": (False, gate),
    "running": (False, running),
    "inspector": (False, inspector),
    "history": (False, history),
    "settings": (False, settings),
    "wizard": (True, wizard),
}
