"""The console never loses work quietly: q while agents work asks (and, told to stop, keeps the screen
up until the drives stopped between steps); New task over a task in progress offers resume / replace and
keeps the text; approving over an open blocking finding asks once more."""

from __future__ import annotations

import asyncio
import time

import pytest
from textual.app import App

from loom_core.agents.executors.demo_project import create_demo_project
from loom_core.control.status import project_status
from loom_core.engine.runner import RunOptions, demo_task
from loom_core.store.archive import history
from loom_tui.app import make_app
from loom_tui.screens.choice import ChoiceDialog, QuitDialog, StoppingScreen
from loom_tui.screens.confirm import ConfirmDialog
from loom_tui.screens.fleet import FleetScreen
from loom_tui.screens.gate import GateDialog
from loom_tui.screens.submit import SubmitScreen
from tests.tui.test_project_gate import SIZE, catalog_with, is_screen, open_project, settle

pytestmark = pytest.mark.anyio
NOW = "2030-01-01T00:00:00.000Z"


async def wait_for(pilot, until, timeout: float = 15.0) -> None:
    """Let messages land until ``until()`` holds, without waiting for the drive's worker to end."""
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; screen is {type(pilot.app.screen).__name__}")
        await pilot.pause()
        await asyncio.sleep(0.02)


async def test_q_while_a_drive_runs_asks_and_stopping_keeps_the_screen_until_it_stopped(tmp_path):
    proj = tmp_path / "shop"
    create_demo_project(proj)
    cat, (pid,) = catalog_with(tmp_path, proj)
    app = make_app(cat, watch=False, demo_delay_s=0.3)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: is_screen(app, FleetScreen))  # no drive yet: settling is safe
        app.submit_task(pid, demo_task(), RunOptions(backend="demo", policy="auto"))
        await wait_for(pilot, lambda: app.control.is_driving(pid))

        await pilot.press("q")
        await wait_for(pilot, lambda: is_screen(app, QuitDialog))
        assert app.return_code is None and app.control.is_driving(pid)  # asked, nothing stopped
        assert "shop" in str(app.screen.query_one("#choice-title").content)
        await pilot.press("escape")
        await wait_for(pilot, lambda: is_screen(app, FleetScreen))
        assert app.return_code is None and app.control.is_driving(pid)  # "stay": the drive goes on

        await pilot.press("q")
        await wait_for(pilot, lambda: is_screen(app, QuitDialog))
        await pilot.press("s")
        await wait_for(pilot, lambda: is_screen(app, StoppingScreen) or app.return_code is not None)
        if app.return_code is None:  # the screen says what it waits for while the step finishes
            assert "shop" in str(app.screen.query_one("#stopping-text").content)
        await wait_for(pilot, lambda: app.return_code is not None, timeout=30)
        assert not app.control.is_driving(pid)
    st = project_status(proj, NOW)
    assert st["state"] == "in_progress" and st["verdict"] != "abandoned"  # stopped between steps, resumable


async def test_new_task_over_a_parked_task_offers_resume_or_replace_and_keeps_the_text(parked):
    cat, pid, proj = parked
    old_task = project_status(proj, NOW)["task_id"]
    app = make_app(cat, watch=False)
    text = "Rename the shop package's helper module"
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_project(pilot, pid)
        await pilot.press("n")
        await settle(pilot, lambda: is_screen(app, SubmitScreen))
        form = app.screen
        form.query_one("#submit-text").insert(text)
        await settle(pilot)  # the form's probe picked the project's last backend (demo)
        await pilot.press("ctrl+s")
        await settle(pilot, lambda: is_screen(app, ChoiceDialog))
        assert "parked at gate 'gate-plan'" in str(app.screen.query_one("#choice-body").content)
        assert project_status(proj, NOW)["task_id"] == old_task  # nothing was sent or dropped

        await pilot.press("escape")  # back to the form, the text still there
        await settle(pilot, lambda: app.screen is form)
        assert form.query_one("#submit-text").text == text

        await pilot.press("ctrl+s")
        await settle(pilot, lambda: is_screen(app, ChoiceDialog))
        await pilot.press("r")  # answer its gate instead: the text is kept as a draft
        await settle(pilot, lambda: is_screen(app, GateDialog))
        assert app.drafts[pid] == text
        await pilot.press("escape")
        await settle(pilot, lambda: app.screen is screen)

        await pilot.press("n")
        await settle(pilot, lambda: is_screen(app, SubmitScreen))
        assert app.screen.query_one("#submit-text").text == text  # the draft came back
        await settle(pilot)
        await pilot.press("ctrl+s")
        await settle(pilot, lambda: is_screen(app, ChoiceDialog))
        await pilot.press("p")  # replace
        await settle(pilot, lambda: not app.control.is_driving(pid)
                     and project_status(proj, NOW)["task_id"] not in (None, old_task), timeout=30)
    st = project_status(proj, NOW)
    assert st["task"] == text
    archived = {e.get("task_id"): e for e in history(proj)}
    assert old_task in archived  # the replaced task is archived, not lost


async def test_new_task_over_a_running_drive_replaces_it_after_its_step(tmp_path):
    proj = tmp_path / "shop"
    create_demo_project(proj)
    cat, (pid,) = catalog_with(tmp_path, proj)
    app = make_app(cat, watch=False, demo_delay_s=0.3)
    text = "Round every total to cents"
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_project(pilot, pid)
        app.submit_task(pid, demo_task(), RunOptions(backend="demo", policy="auto"))
        await wait_for(pilot, lambda: app.control.is_driving(pid) and project_status(proj, NOW)["task_id"])
        first = project_status(proj, NOW)["task_id"]
        await wait_for(pilot, lambda: screen.check_action("new_task_over", ()))
        await pilot.press("n")
        await wait_for(pilot, lambda: is_screen(app, SubmitScreen))
        app.screen.query_one("#submit-text").insert(text)
        app.screen.query_one("#submit-backend").value = "demo"
        await pilot.pause()
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: is_screen(app, ChoiceDialog))
        assert "being driven here" in str(app.screen.query_one("#choice-body").content)
        assert app.control.is_driving(pid)  # asking stopped nothing
        await pilot.press("p")
        await wait_for(pilot, lambda: project_status(proj, NOW)["task_id"] not in (None, first)
                       and not app.control.is_driving(pid), timeout=40)
    assert project_status(proj, NOW)["task"] == text
    assert first in {e.get("task_id") for e in history(proj)}  # the stopped task is archived, not lost


VIEW = {"gate": "gate-final", "role": "final", "gate_event_id": "gev-1", "message": "final gate", "agent": "reviewer",
        "output": "done", "diff": "", "blockers": [
            {"severity": "blocking", "file": "shop/pricing.py", "line_start": 12, "category": "correctness",
             "summary": "negative discounts are still accepted", "agent": "reviewer"},
            {"severity": "warn", "file": "README.md", "category": "docs", "summary": "not updated"}]}


class GateHost(App):
    def __init__(self, view) -> None:
        super().__init__()
        self.view = view
        self.answers: list = []

    def on_mount(self) -> None:
        self.push_screen(GateDialog(self.view, "p1", "shop"), self.answers.append)


@pytest.mark.parametrize("key", ["a", "y"])
async def test_approving_over_an_open_blocking_finding_asks_once_more(key):
    app = GateHost(VIEW)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press(key)
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog) and app.answers == []
        title = str(app.screen.query_one("#confirm-title").content)
        assert "1 open blocking finding" in title
        assert "negative discounts" in str(app.screen.query_one("#confirm-body").content)
        await pilot.press("n")  # no: back at the gate, nothing answered
        await pilot.pause()
        assert isinstance(app.screen, GateDialog) and app.answers == []
        await pilot.press(key)
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
        assert app.answers == [("accept" if key == "a" else "auto-apply", None)]


async def test_approving_without_blocking_findings_answers_at_once():
    app = GateHost({**VIEW, "blockers": [VIEW["blockers"][1]]})  # a warning only
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("a")
        await pilot.pause()
        assert app.answers == [("accept", None)]


async def test_the_history_view_shows_a_hand_edited_index_without_failing(tmp_path):
    from loom_tui.screens.history import HistoryScreen, HistoryTable

    proj = tmp_path / "shop"
    create_demo_project(proj)
    index = proj / ".loom" / "history" / "index.jsonl"
    index.parent.mkdir(parents=True)
    index.write_bytes(b'{"task_id": "t-one", "task_short": 5, "started_at": "garbage", "ended_at": 7, '
                      b'"archived_at": 9, "verdict": ["x"]}\n'
                      b'not json\n[1]\n{"task_id": "t-caf\xe9", "task_short": "caf\xe9 task", "elapsed_s": "long"}\n')
    cat, (pid,) = catalog_with(tmp_path, proj)
    app = make_app(cat, watch=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: is_screen(app, FleetScreen))
        app.push_screen(HistoryScreen(pid))
        await settle(pilot, lambda: is_screen(app, HistoryScreen) and app.screen.query_one(HistoryTable).row_count)
        table = app.screen.query_one(HistoryTable)
        labels = sorted(str(table.get_row_at(i)[0]) for i in range(table.row_count))
        assert labels == ["5", "caf\ufffd task"]
