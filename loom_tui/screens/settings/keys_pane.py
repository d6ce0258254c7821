"""The Keys tab: every binding of the console with its keys now and by default; enter changes a binding's
keys (kept in the settings' ``[keymap]``), x puts it back to its default. A key another binding already has
where this one acts is refused, with that binding named."""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Input, Label, Static, TabPane

from loom_core.config.sections import check_keymap
from loom_core.errors import LoomError
from loom_tui import keys
from loom_tui.widgets.table import LoomTable


class KeysTable(LoomTable):
    BINDINGS = LoomTable.BINDINGS + [
        Binding("enter", "screen.edit_key", "Change", id="keys.edit", tooltip="Give this binding other keys"),
        Binding("x", "screen.reset_key", "Default", id="keys.reset", tooltip="Back to the binding's default keys"),
    ]


class KeysPane(TabPane):
    class Saved(Message):
        def __init__(self, binding_id: str, value: str, error: str | None = None) -> None:
            super().__init__()
            self.binding_id = binding_id
            self.value = value
            self.error = error

    def __init__(self) -> None:
        super().__init__("Keys", id="tab-keys")
        self.editing: str | None = None
        self.entries = keys.binding_ids()

    def compose(self) -> ComposeResult:
        table = KeysTable(id="keys-table")
        for key, label in (("id", "binding"), ("does", "does"), ("keys", "keys"), ("default", "default")):
            table.add_column(label, key=key)
        yield table
        with Horizontal(id="key-editor", classes="editor-row"):
            yield Label("keys", id="key-label", classes="editor-label")
            yield Input(placeholder="e.g. O, ctrl+o or f5,o (several keys: commas); empty = default",
                        id="key-input", compact=True)
        yield Static("", id="key-status", markup=False)

    def on_mount(self) -> None:
        self.query_one("#key-editor").display = False
        self.fill()

    def keymap(self) -> dict[str, str]:
        return dict(getattr(self.app, "keymap_entries", {}) or {})

    def fill(self) -> None:
        table = self.query_one(KeysTable)
        keep = table.cursor_row
        table.clear()
        keymap = self.keymap()
        for bid, entry in self.entries.items():
            b = entry.binding
            now = keys.display(b, keymap)
            default = keys.display(b, {})
            table.add_row(bid, b.description or b.action, Text(now, style="bold" if bid in keymap else ""),
                          Text(default, style="dim"), key=bid)
        if table.row_count:
            table.move_cursor(row=min(keep, table.row_count - 1))

    def _status(self, text: str, style: str = "dim") -> None:
        self.query_one("#key-status", Static).update(Text(text, style=style))

    # ------------------------------------------------------------------ editing
    def edit_selected(self) -> None:
        bid = self.query_one(KeysTable).cursor_key()
        if not bid:
            return
        self.editing = bid
        self.query_one("#key-label", Label).update(bid[:17])
        self.query_one("#key-editor").display = True
        box = self.query_one("#key-input", Input)
        box.value = self.keymap().get(bid, "")
        self._status("enter saves · empty = the default keys · escape cancels")
        box.focus()

    def reset_selected(self) -> None:
        bid = self.query_one(KeysTable).cursor_key()
        if bid and bid in self.keymap():
            self.change(bid, "")

    @on(Input.Submitted, "#key-input")
    def _submitted(self, event: Input.Submitted) -> None:
        if self.editing:
            self.change(self.editing, event.value.strip())

    def change(self, bid: str, value: str) -> bool:
        """Check ``bid`` → ``value`` ("" = default) and save it; False (and the reason shown) when refused."""
        proposed = self.keymap()
        proposed.pop(bid, None)
        if value:
            try:
                value = check_keymap({bid: value})[bid]
            except ValueError as exc:
                self._status(f"✗ {exc}", "red")
                return False
            proposed[bid] = value
        why = keys.clash(bid, proposed)
        if why:
            self._status(f"✗ not changed: {why}", "bold red")
            self.notify(why, title=f"{bid} not changed", severity="error", timeout=8)
            return False
        self._status("saving…")
        self.save(bid, value)
        return True

    @work(thread=True, group="settings-keys", exit_on_error=False)
    def save(self, bid: str, value: str) -> None:
        try:
            self.app.settings_verbs().config_set(f"keymap.{bid}", value)
        except (LoomError, OSError) as exc:
            self.post_message(self.Saved(bid, value, str(exc)))
            return
        self.post_message(self.Saved(bid, value))

    def on_keys_pane_saved(self, message: Saved) -> None:
        if message.error:
            self._status(f"✗ {message.error}", "red")
            self.notify(message.error, title="not saved", severity="error", timeout=8)
            return
        keymap = self.keymap()
        keymap.pop(message.binding_id, None)
        if message.value:
            keymap[message.binding_id] = message.value
        self.app.keymap_entries = keymap
        self.app.set_keymap(keymap)
        if self.editing == message.binding_id:
            self.close_editor()
        self.fill()
        shown = message.value or "its default keys"
        self._status(f"{message.binding_id} → {shown} (saved)", "green")

    def close_editor(self) -> None:
        self.editing = None
        self.query_one("#key-editor").display = False
        self.query_one(KeysTable).focus()

    def is_editing(self) -> bool:
        return self.editing is not None and self.screen.focused is self.query_one("#key-input")


__all__ = ["KeysPane", "KeysTable"]
