"""The fleet's poll costs nothing on screen when nothing changed: no message, no line drawn; when one
project's store changes, its row alone is drawn again, in the next poll."""

from __future__ import annotations

import pytest

from loom_core.bundles.spec import BUNDLE
from loom_core.engine.clock import FixedClock
from loom_core.engine.engine import Engine
from loom_tui.app import LoomApp, make_app
from loom_tui.screens.fleet import FleetScreen, FleetTable
from tests.tui.conftest import catalog_with

pytestmark = pytest.mark.anyio


def parked_project(path, *, then_accept: bool = False):
    path.mkdir()
    e = Engine(path, bundle=BUNDLE, clock=FixedClock())
    gate = e.create(f"write the spec for {path.name}").directive.gate_event_id
    if then_accept:
        e.answer(gate, "accept")
    e.close()
    return gate


async def test_an_unchanged_poll_posts_and_draws_nothing_and_a_changed_store_redraws_only_its_row(tmp_path,
                                                                                                   monkeypatch):
    (tmp_path / "alpha").mkdir()
    gate = parked_project(tmp_path / "bravo")
    parked_project(tmp_path / "charlie", then_accept=True)  # past the gate: its columns are as wide as bravo's will be
    cat, (alpha, bravo, charlie) = catalog_with(tmp_path, tmp_path / "alpha", tmp_path / "bravo", tmp_path / "charlie")
    posted, drawn = [], []
    real_rows = LoomApp.on_fleet_rows
    monkeypatch.setattr(LoomApp, "on_fleet_rows", lambda self, m: posted.append(m) or real_rows(self, m))
    real_line = FleetTable.render_line

    def render_line(self, y):
        try:
            drawn.append(self._get_offsets(y + int(self.scroll_y))[0].value)
        except LookupError:
            drawn.append(None)  # below the last row
        return real_line(self, y)

    monkeypatch.setattr(FleetTable, "render_line", render_line)
    app = make_app(cat, watch=False)
    async with app.run_test(size=(120, 20)) as pilot:
        screen = app.screen
        assert isinstance(screen, FleetScreen)
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert set(app.rows) == {alpha, bravo, charlie}
        screen.sort_key = "name"  # rows stay where they are when a status changes
        screen._sort()
        await pilot.pause()

        posted.clear(), drawn.clear()
        app.refresh_rows()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert posted == [] and drawn == []  # nothing changed: no message, not a line drawn

        e = Engine(tmp_path / "bravo", bundle=BUNDLE, clock=FixedClock())
        e.answer(gate, "accept")
        e.close()
        app.refresh_rows()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert len(posted) == 1
        assert app.rows[bravo]["status"] == app.rows[charlie]["status"] != "parked"
        assert set(drawn) == {bravo}, drawn  # its row only (the header and the other rows stay as drawn)


async def test_full_collections_wait_for_an_idle_poll_and_python_s_pace_returns_on_exit(tmp_path, monkeypatch):
    import gc

    from loom_tui import app as appmod

    (tmp_path / "alpha").mkdir()
    cat, _ = catalog_with(tmp_path, tmp_path / "alpha")
    before = gc.get_threshold()
    collected = []
    monkeypatch.setattr(gc, "collect", lambda *a: collected.append(a) or 0)
    monkeypatch.setattr(gc, "freeze", lambda: None)  # (the test process's objects stay collectable)
    app = make_app(cat, watch=False)
    async with app.run_test(size=(120, 20)) as pilot:
        await pilot.pause()
        assert app._frozen
        young, _, full = gc.get_threshold()
        assert (young, full) == (appmod.YOUNG_GC_EVERY, appmod.FULL_GC_EVERY)  # no full pass inside a frame
        monkeypatch.setattr(gc, "get_count", lambda: (0, 0, 10))  # generation-1 passes piled up
        app.refresh_rows()  # nothing changed: an idle poll collects
        await app.workers.wait_for_complete()
        app.refresh_rows()  # again within IDLE_GC_S: not again
        await app.workers.wait_for_complete()
        assert len(collected) == 1
    assert gc.get_threshold() == before
