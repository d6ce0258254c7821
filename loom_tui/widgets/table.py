"""The console's one table: a DataTable with a row cursor, zebra stripes, j/k to move, and the key
of the row under the cursor. Every list in the console (fleet, history, project chain, replay ticks,
settings) is one of these or a subclass."""

from __future__ import annotations

from typing import Any

from textual.binding import Binding
from textual.widgets import DataTable


class LoomTable(DataTable):
    """``DataTable`` set up the way loom's screens use it (``cursor_type="row"``, zebra stripes; both can be
    overridden per table); ``j``/``k`` move the cursor without showing in the footer."""

    BINDINGS = [Binding("j", "cursor_down", show=False), Binding("k", "cursor_up", show=False)]

    def __init__(self, *, cursor_type: str = "row", zebra_stripes: bool = True, **kw: Any) -> None:
        super().__init__(cursor_type=cursor_type, zebra_stripes=zebra_stripes, **kw)  # type: ignore[arg-type]

    def cursor_key(self) -> str | None:
        """The key of the row under the cursor (None for an empty table or a row without a key)."""
        if self.row_count == 0:
            return None
        try:
            return self.coordinate_to_cell_key((self.cursor_row, 0)).row_key.value
        except Exception:  # noqa: BLE001 - no row under the cursor
            return None
