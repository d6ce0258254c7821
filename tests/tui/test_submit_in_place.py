"""The submit form on a project that is not a git repository: it says what running in place means and
submits only once the person ticks that they want it."""

from __future__ import annotations

import pytest

from loom_core.agents.executors.demo import write_demo_project
from loom_core.engine.runner import demo_task
from loom_tui.app import make_app
from loom_tui.screens.submit import SubmitScreen
from tests.tui.test_project_gate import SIZE, catalog_with, is_screen, open_project, settle

pytestmark = pytest.mark.anyio


async def test_a_non_git_project_needs_a_confirmed_in_place_run(tmp_path):
    proj = tmp_path / "plain"
    proj.mkdir()
    write_demo_project(proj)  # the demo's files, no git
    original = (proj / "shop" / "pricing.py").read_text()
    cat, (pid,) = catalog_with(tmp_path, proj)
    app = make_app(cat, watch=False)
    async with app.run_test(size=(SIZE[0], 40)) as pilot:
        screen = await open_project(pilot, pid)
        await pilot.press("n")
        await settle(pilot, lambda: is_screen(app, SubmitScreen))
        form = app.screen
        warning = str(form.query_one("#submit-inplace-warning").content)
        assert f"agents will edit files in {proj}" in warning
        assert "no isolation, no diff review and no branch" in warning
        form.query_one("#submit-text").insert(demo_task())
        form.query_one("#submit-backend").value = "demo"
        form.query_one("#submit-policy").value = "full-autonomous"
        await pilot.pause()
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is form and not app.control.is_driving(pid)
        assert "run in place anyway" in str(form.query_one("#submit-error").content)
        assert (proj / "shop" / "pricing.py").read_text() == original

        form.query_one("#submit-inplace").value = True
        await pilot.pause()
        await pilot.press("ctrl+s")
        await settle(pilot, lambda: app.screen is screen and not app.control.is_driving(pid)
                     and app.rows[pid].get("status") == "accepted", timeout=20)
    assert "percent <= 100" in (proj / "shop" / "pricing.py").read_text()  # in place, as confirmed
