"""The issue's acceptance, end to end in one pilot: submit from the fleet, answer both gates, accepted."""

from __future__ import annotations

import pygit2
import pytest
from rich.syntax import Syntax
from textual.widgets import Select, TextArea
from textual.widgets._select import SelectOverlay

from loom_core.agents.executors.demo_project import create_demo_project
from loom_core.engine.runner import demo_task
from loom_tui.app import make_app
from loom_tui.screens.fleet import FleetScreen, FleetTable
from loom_tui.screens.gate import GateDialog
from loom_tui.screens.project import ProjectScreen
from loom_tui.screens.submit import SubmitScreen
from tests.tui.test_project_gate import agents, catalog_with, is_screen, open_project, settle

SIZE = (120, 36)
pytestmark = pytest.mark.anyio


async def choose(pilot, select: Select, label: str) -> None:
    """Pick ``label`` in ``select`` with the keyboard: open the menu, move down to it, enter."""
    select.focus()
    await pilot.pause()
    await pilot.press("enter")
    overlay = select.query_one(SelectOverlay)
    await settle(pilot, lambda: select.expanded)
    labels = [str(overlay.get_option_at_index(i).prompt) for i in range(overlay.option_count)]
    assert label in labels, labels
    for _ in range(len(labels)):
        if overlay.highlighted is not None and labels[overlay.highlighted] == label:
            break
        await pilot.press("down")
    await pilot.press("enter")
    await settle(pilot, lambda: not select.expanded)


async def gate_shown(pilot, screen: ProjectScreen, *, after: GateDialog | None = None) -> GateDialog:
    """Wait for the project to park and its gate dialog to show (by itself, or via g if the drive
    finished before the project view was on top). ``after``: a dialog that must not be the one shown."""
    app = pilot.app
    pid = screen.pid

    def parked_or_shown() -> bool:
        if is_screen(app, GateDialog) and app.screen is not after:
            return True
        return (app.screen is screen and not app.control.is_driving(pid)
                and app.rows.get(pid, {}).get("status") == "parked")

    await settle(pilot, parked_or_shown, timeout=20)
    if not is_screen(app, GateDialog) or app.screen is after:
        await pilot.press("g")
        await settle(pilot, lambda: is_screen(app, GateDialog) and app.screen is not after)
    return app.screen


async def test_submit_from_fleet_answer_both_gates_accepted(tmp_path):
    proj = tmp_path / "shop"
    create_demo_project(proj)  # idle: no task yet
    repo = pygit2.Repository(str(proj))
    main_before = repo.branches.local["main"].target
    pricing_before = (proj / "shop" / "pricing.py").read_text()
    cat, (pid,) = catalog_with(tmp_path, proj)
    app = make_app(cat, watch=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: pid in app.rows and is_screen(app, FleetScreen))
        assert app.rows[pid]["status"] == "idle" and not app.rows[pid].get("task_id")
        fleet = app.screen

        # n → the submit form; type the task, pick the demo backend and the demo-gates policy, submit
        await pilot.press("n")
        await settle(pilot, lambda: is_screen(app, SubmitScreen))
        form = app.screen
        assert form.query_one("#submit-text", TextArea).has_focus
        await pilot.press(*demo_task())
        assert form.query_one("#submit-text", TextArea).text == demo_task()
        await choose(pilot, form.query_one("#submit-backend", Select), "demo (offline, scripted)")
        await choose(pilot, form.query_one("#submit-policy", Select), "demo-gates")
        await settle(pilot)  # the form's probe (last backend, Docker) must not undo the choice
        assert form.values()["backend"] == "demo" and form.values()["policy"] == "demo-gates"
        await pilot.press("ctrl+s")
        await settle(pilot, lambda: app.screen is fleet)

        # open the project; the drive parks at the plan gate and its dialog shows the planner's output
        screen = await open_project(pilot, pid)
        plan = await gate_shown(pilot, screen)
        assert plan.view["gate"] == "gate-plan" and plan.view["agent"] == "planner"
        assert agents(screen)[:3] == ["classifier", "code-analyzer", "planner"]
        output = str(plan.query_one("#gate-output-text").content)
        assert "Plan written to .loom/work/plan.md" in output
        assert "# Plan: Reject discount percentages outside 0-100" in output  # the plan document itself
        assert plan.showing == "output"
        await pilot.press("d")
        await pilot.pause()
        assert plan.showing == "diff"
        assert plan.query_one("#gate-diff").has_focus
        await pilot.press("a")

        # the final gate: the diff shows the change to shop/pricing.py
        final = await gate_shown(pilot, screen, after=plan)
        assert final.view["gate"] == "gate-final" and "implementer" in agents(screen)
        await pilot.press("d")
        await pilot.pause()
        diff = final.query_one("#gate-diff-text").content
        assert isinstance(diff, Syntax) and "+++ b/shop/pricing.py" in diff.code
        rejected = False
        if final.view.get("blockers"):
            # the challenger's blocker: send it back once with a note, then answer the next final gate
            assert final.query_one("#gate-blockers").display
            rejected = True
            await pilot.press("r")
            assert final.query_one("#gate-note").has_focus
            await pilot.press(*"reject negative percentages too")
            await pilot.press("enter")
            final2 = await gate_shown(pilot, screen, after=final)
            assert final2.view["gate"] == "gate-final" and not final2.view.get("blockers")
            await pilot.press("d")
            await pilot.pause()
            diff = final2.query_one("#gate-diff-text").content
            assert isinstance(diff, Syntax) and "+++ b/shop/pricing.py" in diff.code
            assert "0 <= percent <= 100" in diff.code
        await pilot.press("a")
        await settle(pilot, lambda: app.screen is screen and not app.control.is_driving(pid)
                     and app.rows[pid].get("status") == "accepted" and screen.has_branch, timeout=20)
        task_id = app.rows[pid]["task_id"]
        assert task_id and screen.verdict == "accepted"
        if rejected:
            assert agents(screen).count("implementer") == 2

        # back on the fleet the project's status cell reads accepted
        await pilot.press("escape")
        await settle(pilot, lambda: app.screen is fleet)
        assert str(fleet.query_one(FleetTable).get_cell(pid, "status")) == "accepted"

    repo = pygit2.Repository(str(proj))
    assert f"loom/{task_id}" in repo.branches.local
    branch_pricing = repo.revparse_single(f"loom/{task_id}:shop/pricing.py").data.decode()
    assert "ValueError" in branch_pricing and branch_pricing != pricing_before
    # the user's main is unchanged: same commit, same checkout, same working file
    assert repo.branches.local["main"].target == main_before
    assert repo.head.shorthand == "main"
    assert (proj / "shop" / "pricing.py").read_text() == pricing_before
    assert not [p for p, flags in repo.status().items() if not p.startswith(".loom")]

