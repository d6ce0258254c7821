"""The console's history opens exactly the archive a row shows, also for two archives an older loom
stored under one task id (``<id>.db`` and ``<id>.2.db``)."""

from __future__ import annotations

import json
import shutil
import sqlite3

import pytest

from loom_core.agents.executors.demo_project import create_demo_project
from loom_core.control.catalog import Catalog
from loom_core.engine.engine import Engine
from loom_core.engine.runner import RunOptions, TaskRunner, demo_task
from loom_tui.app import make_app
from loom_tui.screens.history import HistoryScreen, HistoryTable
from loom_tui.screens.project import ProjectScreen
from tests.support.archives import unpacked

pytestmark = pytest.mark.anyio


async def settle(app, pilot, rounds: int = 4) -> None:
    for _ in range(rounds):
        busy = [w for w in app.workers if w.name != "_loader"]
        if busy:
            await app.workers.wait_for_complete(busy)
        await pilot.pause()


async def test_each_archive_under_a_shared_id_opens_itself(tmp_path):
    proj = tmp_path / "shop"
    create_demo_project(proj)
    assert TaskRunner(proj, RunOptions(backend="demo", policy="auto")).start(demo_task()).outcome.verdict == "accepted"
    engine = Engine(proj, create=False)
    engine.rotate(reason="auto-rotate")
    engine.close()
    hist = proj / ".loom" / "history"
    index = hist / "index.jsonl"
    line = json.loads(index.read_text().splitlines()[-1])
    task_id = line["task_id"]
    older = hist / f"{task_id}.2.db"
    shutil.copyfile(hist / f"{task_id}.db", older)
    with unpacked(older) as db:
        conn = sqlite3.connect(db)
        conn.execute("UPDATE pipeline_state SET task_short = 'the other run'")
        conn.commit()
        conn.close()
    with index.open("a") as fh:
        fh.write(json.dumps({**line, "db_file": f".loom/history/{task_id}.2.db", "task_short": "the other run"})
                 + "\n")

    cat = Catalog([], tmp_path / "workspace.json")
    pid = cat.add(proj).id
    app = make_app(cat, watch=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        opened = {}
        for row in range(2):
            app.push_screen(HistoryScreen(pid))
            await settle(app, pilot)
            table = app.screen.query_one(HistoryTable)
            table.focus()
            table.move_cursor(row=row)
            label = str(table.get_row_at(row)[0])
            await pilot.press("enter")
            await settle(app, pilot)
            assert isinstance(app.screen, ProjectScreen)
            opened[label] = (app.screen.store, app.screen.shown_task_id)
            app.pop_screen()
            app.pop_screen()
            await settle(app, pilot)
    assert opened["the other run"] == (older, task_id)
    assert {s for s, _ in opened.values()} == {older, hist / f"{task_id}.db"}
