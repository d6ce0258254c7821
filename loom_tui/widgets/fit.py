"""Column widths for a table that must fit the terminal: every shown column gets its content's width
(status words are never cut), one flexible column (the task) takes what is left, and when that is too
little the least useful columns are dropped whole instead of cropped at the right edge."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Col:
    key: str
    label: str
    drop: int = 0  # 0: always shown; otherwise dropped (highest first) when the table does not fit
    flex: bool = False  # takes the width the other columns leave (at least ``min``)
    min: int = 0
    max: int = 0  # a cap on the content width (0: none); capped cells end in "…"


def plain_len(value: Any) -> int:
    text = getattr(value, "plain", None)
    return len(text if text is not None else str(value))


def natural(cols: Sequence[Col], rows: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Each column's content width over ``rows`` (cells by column key), at least its label's."""
    out = {c.key: len(c.label) for c in cols}
    for row in rows:
        for key, value in row.items():
            if key in out:
                out[key] = max(out[key], plain_len(value))
    return out


def fit(cols: Sequence[Col], widths: dict[str, int], space: int, pad: int = 1) -> dict[str, int]:
    """The shown columns (in order) and their widths, for a table ``space`` cells wide whose cells have
    ``pad`` cells of padding on each side."""
    shown = list(cols)
    while True:
        out = {c.key: min(widths.get(c.key, len(c.label)), c.max) if c.max else widths.get(c.key, len(c.label))
               for c in shown}
        flex = next((c for c in shown if c.flex), None)
        used = sum(w for k, w in out.items() if flex is None or k != flex.key) + 2 * pad * len(shown)
        if flex is not None:
            out[flex.key] = max(flex.min, space - used)
        too_wide = (space - used < flex.min) if flex is not None else used > space
        droppable = [c for c in shown if c.drop]
        if not too_wide or not droppable:
            return out
        shown.remove(max(droppable, key=lambda c: c.drop))


def apply(table: Any, cols: Sequence[Col], widths: dict[str, int]) -> bool:
    """Give ``table``'s columns ``widths`` when they are the same columns; ``False`` when the set of shown
    columns changed (the caller rebuilds the table with :func:`add_columns`)."""
    from textual.widgets.data_table import ColumnKey

    if [c.value for c in table.columns] != list(widths):
        return False
    changed = False
    for key, width in widths.items():
        column = table.columns[ColumnKey(key)]
        if column.auto_width or column.width != width:
            column.width, column.auto_width = width, False
            changed = True
    if changed:  # DataTable re-measures on idle; its line caches are keyed on the update count
        table._update_count += 1
        table._require_update_dimensions = True
        table.refresh(layout=True)
    return True


def add_columns(table: Any, cols: Sequence[Col], widths: dict[str, int]) -> None:
    labels = {c.key: c.label for c in cols}
    for key, width in widths.items():
        table.add_column(labels[key], key=key, width=width)


def space_of(table: Any, fallback: int) -> int:
    """The cells a table can fill: its width, less its vertical scrollbar when the rows overflow."""
    width = table.size.width or fallback
    if table.row_count + 1 > (table.size.height or 10**6):
        width -= table.styles.scrollbar_size_vertical
    return width
