"""The console and budgets: a task stopped by its token budget stands out in the fleet (over budget, spent
/ budget) and the project header, and b raises the budget from the console, which drives the task on to
its end."""

from __future__ import annotations

import json

import pytest
from textual.widgets import Input

from loom_core.agents.executors.demo_project import create_demo_project
from loom_core.engine.runner import RunOptions, TaskRunner, demo_task
from loom_tui.app import make_app
from loom_tui.screens.budget import BudgetDialog, parse
from loom_tui.screens.fleet import cells
from tests.tui.conftest import catalog_with
from tests.tui.test_project_gate import SIZE, is_screen, open_project, settle

pytestmark = pytest.mark.anyio


@pytest.fixture
def over_budget(tmp_path):
    proj = tmp_path / "shop"
    create_demo_project(proj)
    res = TaskRunner(proj, RunOptions(backend="demo", policy="auto", max_tokens=20000)).start(demo_task())
    assert res.outcome.code == "BUDGET_EXCEEDED"
    cat, (pid,) = catalog_with(tmp_path, proj)
    return cat, pid, proj


def test_the_budget_fields_parse_and_refuse_in_plain_words():
    assert parse("$2.5", "50k") == {"max_cost_usd": 2.5, "max_tokens": 50_000}
    assert parse("", "1m") == {"max_cost_usd": 0.0, "max_tokens": 1_000_000}
    assert "whole number" in parse("1", "lots") and "0 (none) or more" in parse("-1", "")


async def test_b_raises_the_budget_and_the_task_finishes(over_budget):
    cat, pid, proj = over_budget
    app = make_app(cat, watch=False)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_project(pilot, pid)
        row = app.rows[pid]
        assert row["status"] == "over-budget"
        shown = cells(row)
        assert str(shown["status"]) == "over budget" and shown["tokens"].endswith("/ 20.0k")
        assert "budget " in str(screen.query_one("#project-meta").content)
        assert "press b to raise it here" in str(screen.query_one("#project-hint").content)
        assert screen.check_action("budget", ())

        await pilot.press("b")
        await settle(pilot, lambda: is_screen(app, BudgetDialog))
        app.screen.query_one("#budget-tokens", Input).value = "1m"
        app.screen.query_one("#budget-tokens", Input).focus()
        await pilot.press("enter")
        await settle(pilot, lambda: app.rows.get(pid, {}).get("state") == "finished"
                     or app.rows.get(pid, {}).get("verdict") == "accepted", timeout=60)
    assert json.loads((proj / ".loom" / "task-exec.json").read_text())["max_tokens"] == 1_000_000
    assert app.rows[pid]["verdict"] == "accepted"
