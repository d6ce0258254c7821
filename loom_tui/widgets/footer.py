"""The footer of loom's screens: Textual's ``Footer`` that never cuts a key in half.

Textual's footer lays its keys out in one row and crops whatever passes the right edge (at 80 columns
the fleet showed "s Set"). Here it is compact (less padding) under :data:`WIDE` columns, and the keys
that still do not fit are left out whole, the rightmost first (screens list their keys most important
first); quitting, going back and a dialog's answers always stay. The palette (ctrl+p) and the help
screen list every key."""

from __future__ import annotations

from rich.cells import cell_len
from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

WIDE = 100  # narrower than this: the compact style
KEEP = frozenset({"quit", "back", "close", "accept", "reject"})


def key_width(key: FooterKey, compact: bool) -> int:
    """The cells a key takes in the row (its padding, margin and, for the palette key, its border)."""
    text = cell_len(key.key_display) + (cell_len(key.description) + 1 if key.description else 0)
    if key.has_class("-command-palette"):
        return text + (3 if compact else 4)
    return text + (1 if compact else 2)


class LoomFooter(Footer):
    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self._composed_for = 0

    def _width(self) -> int:
        return self.size.width or self.app.size.width

    def compose(self) -> ComposeResult:
        width = self._width()
        self._composed_for = width
        compact = width < WIDE
        if compact != self.compact:
            self.compact = compact
        items = list(super().compose())
        if not all(isinstance(item, FooterKey) for item in items):  # binding groups: Textual's own layout
            yield from items
            return
        used = sum(key_width(k, compact) for k in items)
        while used > width:
            drop = next((k for k in reversed(items) if not k.has_class("-command-palette")
                         and k.action.rsplit(".", 1)[-1] not in KEEP), None)
            if drop is None:
                break
            items.remove(drop)
            used -= key_width(drop, compact)
        yield from items

    def on_resize(self) -> None:
        if self._bindings_ready and self._width() != self._composed_for:
            self.call_after_refresh(self.recompose)

    def shown_keys(self) -> list[str]:
        """The keys on show, as ``key description`` (what a test or a screenshot sees)."""
        return [f"{k.key_display} {k.description}".strip() for k in self.query(FooterKey)]
