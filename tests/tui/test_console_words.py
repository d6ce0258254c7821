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
