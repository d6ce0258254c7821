"""The console's table draws only what changed: one updated cell re-renders one cell (not every visible
one), a re-sort re-renders nothing, and what is shown is exactly what a freshly built table shows."""

from __future__ import annotations

import pytest
from textual.app import App, ComposeResult
from textual.widgets import DataTable

from loom_tui.widgets.table import LoomTable

pytestmark = pytest.mark.anyio
ROWS = [(f"p{i:02d}", f"project {i:02d}", "idle", f"{i} min") for i in range(30)]


class Host(App):
    def __init__(self, table: DataTable, rows: list[tuple[str, ...]] = ROWS) -> None:
        super().__init__()
        self.table, self.rows = table, rows

    def compose(self) -> ComposeResult:
        yield self.table

    def on_mount(self) -> None:
        self.table.add_columns("name", "status", "elapsed")
        for key, *cells in self.rows:
            self.table.add_row(*cells, key=key)


def screen_text(app: App) -> list[str]:
    table = app.table
    return [table.render_line(y).text for y in range(table.size.height)]


async def test_one_changed_cell_draws_one_cell_and_shows_the_same_as_a_fresh_table(monkeypatch):
    calls = []
    real = DataTable._render_cell
    monkeypatch.setattr(DataTable, "_render_cell", lambda self, *a, **kw: calls.append(a[:2]) or real(self, *a, **kw))
    app = Host(LoomTable(zebra_stripes=False))  # a stripe that changes with a row's place is drawn again
    async with app.run_test(size=(60, 40)) as pilot:
        await pilot.pause()
        calls.clear()
        col = list(app.table.columns)[1]
        app.table.update_cell("p03", col, "busy")
        await pilot.pause()
        assert calls == [(3, 1)]  # DataTable alone would draw every visible cell again
        shown = screen_text(app)
        calls.clear()
        app.table.sort(list(app.table.columns)[2], reverse=True)  # every row moves
        await pilot.pause()
        # moved, not drawn again: only the row now under the cursor and the one that left it (p00, now last)
        assert {r for r, _ in calls if r >= 0} <= {0, 29}, str(sorted(set(calls)))
        assert app.table.coordinate_to_cell_key((0, 0)).row_key.value == "p09"
        after_sort = screen_text(app)

    fresh = Host(LoomTable(zebra_stripes=False))
    async with fresh.run_test(size=(60, 40)) as pilot:
        await pilot.pause()
        fresh.table.update_cell("p03", list(fresh.table.columns)[1], "busy")
        await pilot.pause()
        assert screen_text(fresh) == shown
        fresh.table.sort(list(fresh.table.columns)[2], reverse=True)
        await pilot.pause()
        assert screen_text(fresh) == after_sort


def cells_of(table: DataTable, y: int) -> list[tuple[str, object]]:
    """Each cell of the line at ``y`` as (character, style): what the terminal gets, however it is cut."""
    return [(ch, seg.style) for seg in table.render_line(y) for ch in seg.text]


async def test_moved_rows_look_exactly_as_freshly_drawn_ones_stripes_cursor_and_click_targets():
    app = Host(LoomTable())  # zebra stripes: a row moved by one changes its background
    async with app.run_test(size=(60, 40)) as pilot:
        await pilot.pause()
        table = app.table
        name, status, _ = list(table.columns)
        for key in ("p05", "p06", "p20"):
            table.update_cell(key, status, "busy")
        await pilot.pause()
        cells_of(table, 3)  # drawn once where they are
        # p29 to the top: every other row moves down by one (a stripe change), the cursor's row changes
        table.sort(name, key=lambda cell: "" if cell == "project 29" else cell)
        await pilot.pause()
        moved = [cells_of(table, y) for y in range(table.size.height)]
        order = [table.coordinate_to_cell_key((i, 0)).row_key.value for i in range(table.row_count)]
        cursor = table.cursor_coordinate

    rows = {key: cells for key, *cells in ROWS}
    for key in ("p05", "p06", "p20"):
        rows[key][1] = "busy"
    plain = Host(DataTable(cursor_type="row", zebra_stripes=True), [(key, *rows[key]) for key in order])
    async with plain.run_test(size=(60, 40)) as pilot:  # textual's own table, built in that state
        table = plain.table
        table.move_cursor(row=cursor.row)
        await pilot.pause()
        assert [cells_of(table, y) for y in range(table.size.height)] == moved


async def test_a_value_wider_than_its_column_widens_the_column_instead_of_being_cut():
    app = Host(LoomTable())
    async with app.run_test(size=(80, 40)) as pilot:
        await pilot.pause()
        app.table.update_cell("p03", list(app.table.columns)[1], "waiting for the review")
        await pilot.pause()
        assert any("project 03  waiting for the review  3 min" in line for line in screen_text(app))


async def test_a_value_another_row_shows_is_not_drawn_again_and_looks_and_clicks_as_freshly_drawn(monkeypatch):
    calls = []
    real = DataTable._render_cell
    monkeypatch.setattr(DataTable, "_render_cell", lambda self, *a, **kw: calls.append(a[:2]) or real(self, *a, **kw))
    app = Host(LoomTable())
    async with app.run_test(size=(60, 40)) as pilot:
        await pilot.pause()
        table = app.table
        status = list(table.columns)[1]
        table.update_cell("p04", status, "busy")
        await pilot.pause()
        calls.clear()
        table.update_cell("p12", status, "busy")  # the same value, the same stripe, another row
        await pilot.pause()
        assert calls == []  # p04's drawing, re-stamped for row 12
        shown = [cells_of(table, y) for y in range(table.size.height)]

    rows = {key: cells for key, *cells in ROWS}
    for key in ("p04", "p12"):
        rows[key][1] = "busy"
    plain = Host(DataTable(cursor_type="row", zebra_stripes=True), [(key, *rows[key]) for key in rows])
    async with plain.run_test(size=(60, 40)) as pilot:  # textual's own table, built in that state
        await pilot.pause()
        assert [cells_of(plain.table, y) for y in range(plain.table.size.height)] == shown
