"""Project view, gate dialog and submit form, driven with pilots over real demo projects."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import pytest
from rich.syntax import Syntax
from textual.worker import WorkerCancelled, WorkerFailed

from loom_core.agents.executors.demo_project import create_demo_project
from loom_core.control import views as readmodel
from loom_core.engine.runner import RunOptions, TaskRunner, demo_task
from loom_tui.app import make_app
from loom_tui.screens.confirm import ConfirmDialog
from loom_tui.screens.fleet import FleetScreen, FleetTable
from loom_tui.screens.gate import GateDialog
from loom_tui.screens.inspector import RunInspector
from loom_tui.screens.project import ProjectScreen
from loom_tui.screens.submit import SubmitScreen, validate
from tests.tui.conftest import catalog_with  # noqa: F401  (re-exported for the other console tests)

SIZE = (80, 24)
pytestmark = pytest.mark.anyio


async def settle(pilot, until=lambda: True, timeout: float = 10.0) -> None:
    """Let workers finish and messages land until ``until()`` holds (workers may start more workers)."""
    app = pilot.app
    deadline = time.monotonic() + timeout
    while True:
        try:
            await app.workers.wait_for_complete()
        except (WorkerCancelled, WorkerFailed):  # an exclusive worker replaced by a newer one
            pass
        await pilot.pause()
        if until():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; screen is {type(app.screen).__name__}")
        await asyncio.sleep(0.02)


def last_subject(repo: Path) -> str:
    return subprocess.run(["git", "log", "-1", "--format=%s"], cwd=repo, capture_output=True, text=True,
                          check=True).stdout.strip()


def agents(screen: ProjectScreen) -> list[str]:
    return [r["agent"] for r in screen.chain["runs"]]


def is_screen(app, kind) -> bool:
    return isinstance(app.screen, kind)


async def open_project(pilot, pid: str) -> ProjectScreen:
    app = pilot.app
    await settle(pilot, lambda: pid in app.rows and is_screen(app, FleetScreen))
    table = app.screen.query_one(FleetTable)
    table.focus()
    table.move_cursor(row=[k.value for k in table.rows].index(pid))
    await pilot.press("enter")
    await settle(pilot, lambda: is_screen(app, ProjectScreen) and app.screen._loaded)
    return app.screen


async def test_gate_plan_to_accepted_branch(parked):
    cat, pid, proj = parked
    app = make_app(cat, watch=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_project(pilot, pid)
        assert screen.project.name == "shop"
        names = agents(screen)
        assert names[:3] == ["classifier", "code-analyzer", "planner"]
        assert screen.query_one("#project-chain").row_count == len(names)
        assert screen.check_action("gate", ()) and not screen.check_action("new_task", ())
        assert screen.check_action("new_task_over", ())  # n still works: the form asks resume / replace

        # the planner run in the inspector
        table = screen.query_one("#project-chain")
        table.focus()
        table.move_cursor(row=names.index("planner"))
        await pilot.press("enter")
        await settle(pilot, lambda: is_screen(app, RunInspector) and app.screen.detail is not None)
        inspector = app.screen
        assert inspector.detail["agent"] == "planner"
        assert "Plan written to" in str(inspector.query_one("#run-output").content)
        await pilot.press("escape")
        await settle(pilot, lambda: app.screen is screen)

        # g → the plan gate with the planner's output
        await pilot.press("g")
        await settle(pilot, lambda: is_screen(app, GateDialog))
        dialog = app.screen
        assert dialog.view["gate"] == "gate-plan"
        assert dialog.view["agent"] == "planner"
        output = str(dialog.query_one("#gate-output-text").content)
        assert "Plan written to .loom/work/plan.md" in output
        assert dialog.showing == "output"

        # accept → answered and driven on → parks at gate-final → the dialog opens by itself
        await pilot.press("a")
        await settle(pilot, lambda: is_screen(app, GateDialog) and app.screen.view["gate"] == "gate-final")
        final = app.screen
        assert "implementer" in agents(screen)
        await pilot.press("d")
        await pilot.pause()
        assert final.showing == "diff"
        diff = final.query_one("#gate-diff-text").content
        assert isinstance(diff, Syntax) and "+++ b/shop/pricing.py" in diff.code
        assert final.view["blockers"] and final.view["blockers"][0]["file"] == "shop/pricing.py"

        await pilot.press("a")  # over an open blocking finding: asked once more
        await settle(pilot, lambda: is_screen(app, ConfirmDialog))
        assert "open blocking finding" in str(app.screen.query_one("#confirm-title").content)
        await pilot.press("y")
        await settle(pilot, lambda: app.rows[pid].get("status") == "accepted" and app.screen is screen
                     and screen.has_branch)
        task_id = app.rows[pid]["task_id"]
        assert screen.check_action("push", ()) and screen.check_action("squash", ())
        assert screen.check_action("new_task", ()) and not screen.check_action("gate", ())

        # m → confirm → the branch is squash-merged onto main
        await pilot.press("m")
        await settle(pilot, lambda: is_screen(app, ConfirmDialog))
        await pilot.press("y")
        await settle(pilot, lambda: app.screen is screen and "squash of" in last_subject(proj))
        assert last_subject(proj) == f"{task_id}: squash of loom/{task_id}"

        await pilot.press("escape")
        await settle(pilot, lambda: is_screen(app, FleetScreen))
        status = app.screen.query_one(FleetTable).get_cell(pid, "status")
        assert str(status) == "accepted"
    branches = subprocess.run(["git", "branch", "--list", f"loom/{task_id}"], cwd=proj, capture_output=True,
                              text=True, check=True).stdout
    assert f"loom/{task_id}" in branches


async def test_reject_with_a_note_sends_it_back(parked):
    cat, pid, proj = parked
    app = make_app(cat, watch=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_project(pilot, pid)
        before = agents(screen)
        await pilot.press("g")
        await settle(pilot, lambda: is_screen(app, GateDialog))
        dialog = app.screen
        await pilot.press("r")
        assert dialog.rejecting and dialog.query_one("#gate-note").has_focus
        assert not dialog.check_action("accept", ())
        await pilot.press("enter")  # an empty note is refused; the dialog stays
        await pilot.pause()
        assert app.screen is dialog
        await pilot.press(*"cover")  # typed keys reach the note, not the a/r/y/d bindings
        assert app.screen is dialog and dialog.query_one("#gate-note").value == "cover"
        dialog.query_one("#gate-note").value = "cover negative discounts too"
        await pilot.press("enter")
        await settle(pilot, lambda: len(agents(screen)) > len(before) and not app.control.is_driving(pid)
                     and app.rows[pid].get("status") == "parked")
        after = agents(screen)
        assert after[len(before):].count("planner") == 1  # sent back: planned again
        # parked at the plan gate again, and the screen on top opened the dialog by itself
        await settle(pilot, lambda: is_screen(app, GateDialog))
        assert app.screen.view["gate"] == "gate-plan" and app.screen is not dialog
        await pilot.press("escape")
        await settle(pilot, lambda: app.screen is screen)
        # the second round's reviewer shows its own verdict, not the first round's too
        second = len(after) - 1 - after[::-1].index("logic-reviewer")
        screen.query_one("#project-chain").move_cursor(row=second)
        await pilot.press("enter")
        await settle(pilot, lambda: is_screen(app, RunInspector) and app.screen.detail is not None)
        assert [v["iteration"] for v in app.screen.detail["verdicts"]] == [2]


async def test_gate_escape_leaves_it_parked_and_cancels_a_reject(parked):
    cat, pid, proj = parked
    app = make_app(cat, watch=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_project(pilot, pid)
        await pilot.press("g")
        await settle(pilot, lambda: is_screen(app, GateDialog))
        await pilot.press("r", "escape")  # escape leaves the note, not the dialog
        assert is_screen(app, GateDialog) and not app.screen.rejecting
        await pilot.press("escape")
        await settle(pilot, lambda: app.screen is screen)
    assert readmodel.gate_view(proj)["gate"] == "gate-plan"


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
def test_validate(anyio_backend):
    assert "empty" in validate("   \n", False, None)
    assert "fast" in validate("do it", True, "complex")
    assert validate("do it", True, "trivial") is None
    assert validate("do it", True, None) is None
    assert validate("do it", False, "complex") is None


async def test_submit_form_refuses_then_runs_and_logs(tmp_path):
    proj = tmp_path / "idle"
    create_demo_project(proj)
    cat, (pid,) = catalog_with(tmp_path, proj)
    app = make_app(cat, watch=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_project(pilot, pid)
        assert screen.check_action("new_task", ()) and not screen.check_action("gate", ())
        await pilot.press("n")
        await settle(pilot, lambda: is_screen(app, SubmitScreen))
        form = app.screen
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is form
        assert "empty" in str(form.query_one("#submit-error").content)

        form.query_one("#submit-text").insert(demo_task())
        form.query_one("#submit-fast").value = True
        form.query_one("#submit-complexity").value = "complex"
        await pilot.pause()
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is form
        assert "fast means complexity trivial" in str(form.query_one("#submit-error").content)
        assert not app.control.is_driving(pid)

        form.query_one("#submit-fast").value = False
        form.query_one("#submit-complexity").value = None
        form.query_one("#submit-backend").value = "demo"
        form.query_one("#submit-policy").value = "full-autonomous"
        form.query_one("#submit-squash").value = True
        await pilot.pause()
        await pilot.press("ctrl+s")
        await settle(pilot, lambda: app.screen is screen and not app.control.is_driving(pid)
                     and app.rows[pid].get("status") == "accepted" and pid not in app.ship_on_accept,
                     timeout=15)
        # (d) the live log got the run's lines, and its title follows the last one
        log = screen.query_one("#project-log")
        assert log.line_count > 0
        assert any("working (demo backend, offline)" in line for line in log.lines)
        assert str(screen.query_one("#project-log-box").title).startswith("log · ")
        await pilot.press("l")
        await pilot.pause()
        assert not screen.query_one("#project-log-box").collapsed
        assert "implementer" in agents(screen)
    # squash-merge on accept ran: the change is on main as one squash commit
    subject = last_subject(proj)
    assert subject.endswith("squash of loom/" + subject.split(":")[0])
    assert "ValueError" in (proj / "shop" / "pricing.py").read_text()


async def test_archived_task_is_read_only(tmp_path):
    proj = tmp_path / "done"
    create_demo_project(proj)
    auto = RunOptions(backend="demo", policy="full-autonomous")
    first = TaskRunner(proj, auto).start(demo_task())
    assert first.outcome.verdict == "accepted"
    TaskRunner(proj, RunOptions(backend="demo", policy="full-autonomous")).start("Add a docstring to pricing")
    assert any(r.get("task_id") == first.task_id for r in readmodel.archived(proj))
    cat, (pid,) = catalog_with(tmp_path, proj)
    app = make_app(cat, watch=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: pid in app.rows)
        screen = ProjectScreen(pid, first.task_id)
        await app.push_screen(screen)
        await settle(pilot, lambda: screen._loaded)
        assert screen.chain["task"]["task_id"] == first.task_id
        assert "planner" in agents(screen)
        for action in ("gate", "new_task", "pause", "resume", "cancel"):
            assert not screen.check_action(action, ()), action
        assert screen.has_branch and screen.check_action("push", ())
        assert not screen.query_one("#project-log-box").display
        table = screen.query_one("#project-chain")
        table.focus()
        await pilot.press("enter")
        await settle(pilot, lambda: is_screen(app, RunInspector) and app.screen.detail is not None)
        assert app.screen.detail["agent"] == agents(screen)[-1]  # the cursor follows the tail
