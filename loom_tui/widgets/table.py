"""The console's one table: a DataTable with a row cursor, zebra stripes, j/k to move, and the key
of the row under the cursor. Every list in the console (fleet, history, project chain, replay ticks,
settings) is one of these or a subclass."""

from __future__ import annotations

from itertools import count
from typing import Any

from textual.binding import Binding
from textual.widgets import DataTable

_generation = count(1)
CELL_CACHE_MAX = 20_000


class LoomTable(DataTable):
    """``DataTable`` set up the way loom's screens use it (``cursor_type="row"``, zebra stripes; both can be
    overridden per table); ``j``/``k`` move the cursor without showing in the footer."""

    BINDINGS = [Binding("j", "cursor_down", show=False), Binding("k", "cursor_up", show=False)]

    def __init__(self, *, cursor_type: str = "row", zebra_stripes: bool = True, **kw: Any) -> None:
        super().__init__(cursor_type=cursor_type, zebra_stripes=zebra_stripes, **kw)  # type: ignore[arg-type]
        self._cell_versions: dict[tuple[Any, Any], int] = {}
        self._row_versions: dict[Any, int] = {}
        self._cells_drawn: dict[tuple, Any] = {}

    # ------------------------------------------------------------------ draw only what changed
    # DataTable keys its caches on a table-wide update counter and repaints the whole widget on any change,
    # so one changed cell re-rendered every visible cell (a 200-project fleet polled every 2 s spent ~100 ms
    # a frame there). Here a changed cell repaints only its row, and each cell is versioned: a cell is drawn
    # again only when its value, width, style or cursor state changed (a re-sort re-stamps the row/column
    # the segments carry for mouse clicks instead of drawing again).
    def update_cell(self, row_key: Any, column_key: Any, value: Any, *, update_width: bool = False) -> None:
        from textual.widgets.data_table import CellDoesNotExist, CellKey, ColumnKey, RowKey

        row_key = RowKey(row_key) if isinstance(row_key, str) else row_key
        column_key = ColumnKey(column_key) if isinstance(column_key, str) else column_key
        if row_key not in self._row_locations or column_key not in self._column_locations:
            raise CellDoesNotExist(f"No cell exists for row_key={row_key!r}, column_key={column_key!r}.")
        self._data[row_key][column_key] = value
        self._update_count += 1  # DataTable's own caches: stale lines are re-assembled from cached cells
        self._cell_versions[(row_key, column_key)] = next(_generation)
        if update_width:
            self._updated_cells.add(CellKey(row_key, column_key))
            self._require_update_dimensions = True
            self.refresh()
        else:
            self.refresh_row(self._row_locations.get(row_key))

    def add_row(self, *cells: Any, height: int | None = 1, key: str | None = None, label: Any = None) -> Any:
        row_key = super().add_row(*cells, height=height, key=key, label=label)
        self._row_versions[row_key] = next(_generation)
        return row_key

    def clear(self, columns: bool = False) -> Any:
        self._cells_drawn.clear()
        return super().clear(columns)

    def _render_cell(self, row_index: int, column_index: int, base_style: Any, width: int,
                     cursor: bool = False, hover: bool = False) -> Any:
        if row_index < 0 or column_index < 0:  # header and label cells: DataTable's own cache
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        row = self._row_locations.get_key(row_index)
        column = self._column_locations.get_key(column_index)
        key = (row, column, self._row_versions.get(row, 0), self._cell_versions.get((row, column), 0), base_style,
               width, cursor, hover, self._show_hover_cursor, self._pseudo_class_state, self.app.theme)
        hit = self._cells_drawn.get(key)
        if hit is not None and hit[0] == (row_index, column_index):
            return hit[1]
        if hit is not None:  # the same drawing at another place (a re-sort): re-stamp where it is
            from rich.segment import Segment
            from rich.style import Style

            here = Style.from_meta({"row": row_index, "column": column_index})
            lines = [[Segment(seg.text, (seg.style + here) if seg.style else here, seg.control) for seg in line]
                     for line in hit[1]]
        else:
            lines = super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        if len(self._cells_drawn) >= CELL_CACHE_MAX:
            self._cells_drawn.clear()
        self._cells_drawn[key] = ((row_index, column_index), lines)
        return lines

    def cursor_key(self) -> str | None:
        """The key of the row under the cursor (None for an empty table or a row without a key)."""
        if self.row_count == 0:
            return None
        try:
            return self.coordinate_to_cell_key((self.cursor_row, 0)).row_key.value
        except Exception:  # noqa: BLE001 - no row under the cursor
            return None
