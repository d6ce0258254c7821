"""The console names how a task ended with the CLI's words (``loom history``): abandoned, force-closed."""

from __future__ import annotations

from loom_tui.render.project import Facts, _finished, badge
from loom_tui.screens.history import verdict_of


def test_history_rows_say_abandoned_and_force_closed():
    assert verdict_of({"status": "abandoned", "verdict": None}) == "abandoned"
    assert verdict_of({"status": "completed", "verdict": "failed_force_closed"}) == "force-closed"
    assert verdict_of({"status": "completed", "verdict": "accepted"}) == "accepted"
    assert verdict_of({"status": "in_progress", "verdict": None}) == "discarded"


def test_the_project_header_of_a_force_closed_task():
    f = Facts(name="shop", dir="/x", status="archived", now="2026-01-01T00:00:00.000Z", row={},
              task={"verdict": "failed_force_closed", "status": "completed"}, verdict="failed_force_closed")
    assert "force-closed" in _finished(f).plain and "failed_force_closed" not in _finished(f).plain
    assert badge(f).plain.strip() == "archived · force-closed"


def test_the_toast_of_a_finished_task_is_in_words(tmp_path):
    import asyncio

    from loom_core.control.catalog import Catalog
    from loom_core.engine.drive import Outcome
    from loom_tui.app import make_app
    from loom_tui.messages import RunFinished

    seen: list[str] = []

    async def go():
        app = make_app(Catalog([], tmp_path / "workspace.json"), watch=False)
        async with app.run_test(size=(80, 24), notifications=True) as pilot:
            await pilot.pause()
            app.post_message(RunFinished("p1", Outcome("complete", task_id="t-1", verdict="failed_force_closed",
                                                       summary="task complete (verdict=failed_force_closed, "
                                                               "work=clean)")))
            await pilot.pause()
            seen.extend(str(n.message) for n in app._notifications)

    asyncio.run(go())
    assert seen == ["force-closed"]
