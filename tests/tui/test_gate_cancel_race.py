"""The console answers only the gate it showed, and cancels through the facade: pilots over real demo
projects, with the other surface a real second process."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from loom_core.control import RunOptions, create_demo_project, demo_task
from loom_core.control.status import driver_alive, project_status
from loom_tui.app import ANSWERED_ELSEWHERE, make_app
from loom_tui.screens.confirm import ConfirmDialog
from loom_tui.screens.gate import GateDialog
from tests.tui.conftest import catalog_with
from tests.tui.test_console_safety import NOW, wait_for
from tests.tui.test_project_gate import SIZE, is_screen, open_project, settle

pytestmark = pytest.mark.anyio

# another surface, in its own process: accept the plan gate and drive on to the next gate
ELSEWHERE = textwrap.dedent("""
    import sys
    from loom_core.control import LocalControl
    c = LocalControl()
    c.answer(sys.argv[1], "accept")
    c.proceed(sys.argv[1])
""")


def answers(control, pid) -> list[str]:
    return [t["decision"] for t in control.ticks(pid) if t.get("decision")]


def record_notices(app) -> list[str]:
    """Every notice the app shows, kept (a toast expires, and a loaded machine may outlast it)."""
    seen: list[str] = []
    real = app.notify

    def notify(message, *args, **kw):
        seen.append(str(message))
        return real(message, *args, **kw)

    app.notify = notify
    return seen


async def test_a_gate_answered_elsewhere_while_shown_is_not_answered_again(parked):
    cat, pid, proj = parked
    app = make_app(cat, watch=False)
    control = app.control
    real_answer = control.answer
    sent: list[dict] = []
    failures: list[str] = []

    def answer_after_the_other_process(ref, decision, note=None, **kw):
        """The race: the other process answers (and drives on to the next gate) just before ours lands."""
        other = subprocess.run([sys.executable, "-c", ELSEWHERE, str(proj)], capture_output=True, text=True,
                               timeout=60)
        failures.extend([other.stderr] if other.returncode else [])
        sent.append({"decision": decision, **kw})
        return real_answer(ref, decision, note, **kw)

    control.answer = answer_after_the_other_process
    seen = record_notices(app)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_project(pilot, pid)
        if not is_screen(app, GateDialog):
            await pilot.press("g")
        await settle(pilot, lambda: is_screen(app, GateDialog))
        shown = app.screen.view["gate_event_id"]
        assert app.screen.view["gate"] == "gate-plan"
        await pilot.press("r")
        await pilot.press(*"redo it")
        await pilot.press("enter")
        await settle(pilot, lambda: failures or (app.screen is screen and ANSWERED_ELSEWHERE in seen
                                                 and not control.is_driving(pid)), timeout=60)
        assert not failures, failures[0]  # the other surface's answer went through
        assert sent == [{"decision": "reject", "gate_event_id": shown}]  # the dialog's gate, by id
        gate = control.gate(pid)
        assert gate is not None and gate["gate"] != "gate-plan"  # the next gate waits, unanswered
        assert answers(control, pid) == ["accept"]  # the other process's answer only
        assert not any("gate answer sent" in n for n in seen)


async def test_cancel_while_driving_abandons_and_leaves_no_driver(tmp_path):
    proj = tmp_path / "shop"
    create_demo_project(proj)
    cat, (pid,) = catalog_with(tmp_path, proj)
    app = make_app(cat, watch=False, demo_delay_s=0.3)
    control = app.control
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_project(pilot, pid)
        app.submit_task(pid, demo_task(), RunOptions(backend="demo", policy="auto"))
        await wait_for(pilot, lambda: control.is_driving(pid) and project_status(proj, NOW)["task_id"])
        app.refresh_rows()
        await wait_for(pilot, lambda: screen.check_action("cancel", ()))
        await pilot.press("c")
        await wait_for(pilot, lambda: is_screen(app, ConfirmDialog))
        assert control.is_driving(pid)  # asking stopped nothing
        await pilot.press("y")
        await wait_for(pilot, lambda: not control.is_driving(pid) and app.screen is screen, timeout=60)
        await wait_for(pilot, lambda: project_status(proj, NOW)["state"] != "in_progress", timeout=30)
    st = project_status(proj, NOW)
    assert st["state"] == "abandoned", st
    assert not driver_alive(proj)  # nobody holds the project's drive lock
