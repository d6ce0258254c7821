"""The console's one table: a DataTable with a row cursor, zebra stripes, j/k to move, and the key
of the row under the cursor. Every list in the console (fleet, history, project chain, replay ticks,
settings) is one of these or a subclass."""

from __future__ import annotations

from itertools import count
from typing import Any

from textual.binding import Binding
from textual.widgets import DataTable

_generation = count(1)
CELL_CACHE_MAX = 3_000  # drawn cells and lines kept (the oldest go first; each is a handful of objects the
LINE_CACHE_MAX = 1_000  # garbage collector walks: a 200-row fleet needs ~2 per row and stripe)


def _cell_width(value: Any) -> int | None:
    """The width a cell needs, for the common cells (None: let DataTable measure it, as it would anyway)."""
    from rich.cells import cell_len
    from rich.text import Text

    if isinstance(value, Text):
        return value.cell_len
    if isinstance(value, str):  # DataTable reads a string as markup: one that may hold some is measured by it
        return None if "[" in value or "\n" in value else cell_len(value)
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool):
        return len(str(value))
    return None


def _value_key(value: Any) -> Any:
    """A hashable stand-in for a cell's value that two equal values share (None: no stand-in, draw it)."""
    from rich.text import Text

    if isinstance(value, str | int | float) or value is None:
        return type(value), value
    if isinstance(value, Text):
        return (Text, value.plain, value.style, tuple(value.spans), value.justify, value.overflow, value.no_wrap,
                value.end)
    return None


def _restamp_cell(lines: Any, row_index: int, column_index: int) -> Any:
    """A drawn cell moved to ``(row_index, column_index)``: its segments name that place for mouse clicks."""
    from rich.segment import Segment
    from rich.style import Style

    here = Style.from_meta({"row": row_index, "column": column_index})
    return [[Segment(seg.text, (seg.style + here) if seg.style else here, seg.control) for seg in line]
            for line in lines]


def _restamp(strip: Any, row_index: int, background: tuple[Any, Any] | None = None) -> Any:
    """A drawn line moved to ``row_index``: the same segments with the row its mouse metadata names and,
    with ``background`` ``(old, new)``, the stripe's background swapped where the line showed it."""
    from rich.segment import Segment
    from rich.style import Style
    from textual.strip import Strip

    here = Style.from_meta({"row": row_index})  # merged into each segment's meta (its column stays)
    swap = None if background is None else Style(bgcolor=background[1])
    segments = []
    for text, style, control in strip:
        if style is not None:
            if swap is not None and style.bgcolor == background[0]:
                style = style + swap
            if style._meta:
                style = style + here
        segments.append(Segment(text, style, control))
    return Strip(segments, strip.cell_length)


class LoomTable(DataTable):
    """``DataTable`` set up the way loom's screens use it (``cursor_type="row"``, zebra stripes; both can be
    overridden per table); ``j``/``k`` move the cursor without showing in the footer."""

    BINDINGS = [Binding("j", "cursor_down", show=False), Binding("k", "cursor_up", show=False)]

    def __init__(self, *, cursor_type: str = "row", zebra_stripes: bool = True, **kw: Any) -> None:
        super().__init__(cursor_type=cursor_type, zebra_stripes=zebra_stripes, **kw)  # type: ignore[arg-type]
        self._cell_versions: dict[tuple[Any, Any], int] = {}
        self._row_versions: dict[Any, int] = {}
        self._line_versions: dict[Any, int] = {}
        self._cells_drawn: dict[tuple, Any] = {}
        self._lines_drawn: dict[tuple, Any] = {}
        self._values_drawn: dict[tuple, Any] = {}  # drawn cells by (column, value, style…): rows share values
        self._one_line_rows = True  # every row one line high (a row's place is its index)
        self._pass: tuple[Any, tuple[int, ...]] | None = None  # (base style, column widths) while rendering
        self._row_styles: dict[tuple[int, Any], Any] = {}  # the stripes' styles, this pass

    # ------------------------------------------------------------------ draw only what changed
    # DataTable keys its caches on a table-wide update counter and repaints the whole widget on any change,
    # so one changed cell re-rendered every visible cell (a 200-project fleet polled every 2 s spent ~100 ms
    # a frame there), and every update rebuilt its row order (O(rows)) to find the row's place. Here an update
    # leaves the counter alone (only that row's cached pieces are dropped) and repaints only its row; cells and
    # whole lines are versioned, so a line is drawn again only when its row's values, its stripe, the cursor on
    # it or the column widths changed. A re-sort moves drawn lines (re-stamping the row their segments carry
    # for mouse clicks) instead of drawing them. Column widths only grow, and only when a value needs it.
    def update_cell(self, row_key: Any, column_key: Any, value: Any, *, update_width: bool = False) -> None:
        from textual.widgets.data_table import CellDoesNotExist, CellKey, ColumnKey, RowKey

        row_key = RowKey(row_key) if isinstance(row_key, str) else row_key
        column_key = ColumnKey(column_key) if isinstance(column_key, str) else column_key
        if row_key not in self._row_locations or column_key not in self._column_locations:
            raise CellDoesNotExist(f"No cell exists for row_key={row_key!r}, column_key={column_key!r}.")
        self._data[row_key][column_key] = value
        version = next(_generation)
        self._cell_versions[(row_key, column_key)] = version
        self._line_versions[row_key] = version
        column = self.columns[column_key]
        if not update_width and column.auto_width:
            need = _cell_width(value)
            update_width = need is None or need > column.get_render_width(self) - 2 * self.cell_padding
        if update_width:
            self._update_count += 1  # widths change: DataTable re-measures and everything is drawn again
            self._updated_cells.add(CellKey(row_key, column_key))
            self._require_update_dimensions = True
            self.refresh()
            return
        # the counter stays (the row order and line offsets DataTable caches by it still hold): drop what
        # DataTable cached of this row's values instead
        row_index = self._row_locations.get(row_key)
        self._row_renderable_cache.discard((self._update_count, row_index))
        self._cell_render_cache.clear()
        self._row_render_cache.clear()
        self._line_cache.clear()
        if self._one_line_rows:  # its place without summing the heights of the rows above it
            from textual.geometry import Region

            y = row_index + (self.header_height if self.show_header else 0)
            self._refresh_region(Region(0, y, max(self.size.width, self.virtual_size.width), 1))
        else:
            self.refresh_row(row_index)

    def add_row(self, *cells: Any, height: int | None = 1, key: str | None = None, label: Any = None) -> Any:
        row_key = super().add_row(*cells, height=height, key=key, label=label)
        self._one_line_rows = self._one_line_rows and height == 1
        self._row_versions[row_key] = self._line_versions[row_key] = next(_generation)
        return row_key

    def clear(self, columns: bool = False) -> Any:
        self._cells_drawn.clear()
        self._lines_drawn.clear()
        self._values_drawn.clear()
        self._one_line_rows = True
        return super().clear(columns)

    def _highlight(self, row_index: int) -> tuple:
        """What of the cursor and the hover cursor falls on the row at ``row_index``."""
        kind, cur, hov = self.cursor_type, self.cursor_coordinate, self.hover_coordinate
        if kind == "row":
            return cur.row == row_index, hov.row == row_index
        if kind == "cell":
            return cur.column if cur.row == row_index else -1, hov.column if hov.row == row_index else -1
        return (cur.column, hov.column) if kind == "column" else ()

    def render_lines(self, crop: Any) -> Any:
        # what every line of this pass shares, worked out once (DataTable asks for it per line)
        self._pass = (self.rich_style, tuple(column.get_render_width(self) for column in self.columns.values()))
        self._row_styles: dict[tuple[int, Any], Any] = {}
        try:
            return super().render_lines(crop)
        finally:
            self._pass = None

    def _get_row_style(self, row_index: int, base_style: Any) -> Any:
        # a stripe's style, worked out once a pass (DataTable works it out from the CSS for every line drawn)
        if self._pass is None or row_index < max(self.fixed_rows, 0):
            return super()._get_row_style(row_index, base_style)
        key = (row_index % 2 if self.zebra_stripes else 0, base_style)
        got = self._row_styles.get(key)
        if got is None:
            got = self._row_styles[key] = super()._get_row_style(row_index, base_style)
        return got

    def render_line(self, y: int) -> Any:
        if self._pass is None or self.fixed_rows:
            return super().render_line(y)
        scroll_x, scroll_y = self.scroll_offset
        if not self.show_header or y >= self.header_height:
            y += scroll_y
        return self._render_line(y, scroll_x, scroll_x + self.size.width, self._pass[0])

    def _render_line(self, y: int, x1: int, x2: int, base_style: Any) -> Any:
        try:
            row_key, line_no = self._get_offsets(y)
        except LookupError:
            return super()._render_line(y, x1, x2, base_style)
        if row_key is self._header_row_key or self.fixed_rows or self.fixed_columns or self._labelled_row_exists:
            return super()._render_line(y, x1, x2, base_style)
        row_index = self._row_locations.get(row_key)
        stripe = row_index % 2 if self.zebra_stripes else 0
        key = (row_key, line_no, self._line_versions.get(row_key, 0), stripe,
               self._highlight(row_index), x1, x2, self.size.width, base_style, self.cursor_type, self.show_cursor,
               self._show_hover_cursor, self._pseudo_class_state, self.app.theme,
               self._pass[1] if self._pass is not None
               else tuple(column.get_render_width(self) for column in self.columns.values()))
        hit = self._lines_drawn.get(key)
        if hit is not None and hit[0] == row_index:
            return hit[1]
        if hit is not None:
            strip = _restamp(hit[1], row_index)
        else:  # drawn on the other stripe (moved by one row): swap the stripe's background
            other = self._lines_drawn.get(key[:3] + (1 - stripe,) + key[4:]) if self.zebra_stripes else None
            swap = self._stripe_swap(base_style, stripe) if other is not None else None
            strip = (_restamp(other[1], row_index, swap) if swap is not None
                     else super()._render_line(y, x1, x2, base_style))
        if len(self._lines_drawn) >= LINE_CACHE_MAX:
            del self._lines_drawn[next(iter(self._lines_drawn))]
        self._lines_drawn[key] = (row_index, strip)
        return strip

    def _stripe_swap(self, base_style: Any, stripe: int) -> tuple[Any, Any] | None:
        """``(other stripe's background, this stripe's)`` when the stripes differ in background only."""
        odd, even = self._get_row_style(1, base_style), self._get_row_style(0, base_style)
        if odd.without_color != even.without_color or odd.color != even.color:
            return None
        return (even.bgcolor, odd.bgcolor) if stripe else (odd.bgcolor, even.bgcolor)

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
            lines = _restamp_cell(hit[1], row_index, column_index)
        else:  # a new value: drawn already if another row of this column showed an equal one in the same style
            value = _value_key(self._data[row][column]) if self._one_line_rows else None
            like = None if value is None else (column, value) + key[4:] + (self.cell_padding,)
            seen = None if like is None else self._values_drawn.get(like)
            if seen is not None:
                lines = seen[1] if seen[0] == (row_index, column_index) else _restamp_cell(seen[1], row_index,
                                                                                            column_index)
            else:
                lines = super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
                if like is not None:
                    if len(self._values_drawn) >= CELL_CACHE_MAX:
                        del self._values_drawn[next(iter(self._values_drawn))]
                    self._values_drawn[like] = ((row_index, column_index), lines)
        if len(self._cells_drawn) >= CELL_CACHE_MAX:
            del self._cells_drawn[next(iter(self._cells_drawn))]
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
