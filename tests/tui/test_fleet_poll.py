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
