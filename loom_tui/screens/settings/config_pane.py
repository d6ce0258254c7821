"""The Config tab: a form generated from the settings schema, saved through the facade."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Button, Static, TabPane

from loom_core.errors import LoomError
from loom_tui.widgets.schema_form import SchemaForm


class ConfigPane(TabPane):
    """The form edits the file's settings (not the environment's); open maps (models, fallbacks) are edited
    elsewhere and kept as they are on disk."""

    class Loaded(Message):
        def __init__(self, doc: dict[str, Any] | None, error: str | None = None) -> None:
            super().__init__()
            self.doc = doc
            self.error = error

    class Saved(Message):
        def __init__(self, doc: dict[str, Any] | None, error: str | None = None) -> None:
            super().__init__()
            self.doc = doc
            self.error = error

    def __init__(self) -> None:
        super().__init__("Config", id="tab-config")
        self.doc: dict[str, Any] = {}

    def compose(self) -> ComposeResult:
        yield SchemaForm(self.app.control.config_schema(), id="config-form",
                         notes={"models": "per agent — edit in the Models tab",
                                "keymap": "binding → keys — edit in the Keys tab"})
        with Horizontal(id="config-buttons"):
            yield Button("Save (^s)", id="config-save", variant="primary", compact=True)
            yield Button("Revert (^r)", id="config-revert", compact=True)
            yield Static("", id="config-status", markup=False)

    def on_mount(self) -> None:
        self.load()

    def _status(self, text: str | Text) -> None:
        self.query_one("#config-status", Static).update(text)

    # ------------------------------------------------------------------ workers
    @work(thread=True, exclusive=True, group="settings-load", exit_on_error=False)
    def load(self) -> None:
        try:
            doc = self.app.control.config(file_only=True)
        except LoomError as exc:
            self.post_message(self.Loaded(None, str(exc)))
            return
        self.post_message(self.Loaded(doc))

    @work(thread=True, exclusive=True, group="settings-save", exit_on_error=False)
    def write(self, doc: dict[str, Any], keep: tuple[str, ...]) -> None:
        try:
            saved = self.app.control.config_save(doc, keep=keep)  # maps as on disk now (a Models edit may be newer)
        except (LoomError, OSError) as exc:
            self.post_message(self.Saved(None, str(exc)))
            return
        self.post_message(self.Saved(saved))

    # ------------------------------------------------------------------ messages
    def on_config_pane_loaded(self, message: Loaded) -> None:
        if message.error:
            self._status(Text(message.error, style="red"))
            self.notify(message.error, title="settings", severity="error", timeout=8)
            return
        self.doc = message.doc or {}
        self.query_one(SchemaForm).set_values(self.doc)
        self._status("")

    def on_config_pane_saved(self, message: Saved) -> None:
        if message.error:
            self._status(Text(message.error, style="red"))
            self.notify(message.error, title="not saved", severity="error", timeout=8)
            return
        self.doc = message.doc or self.doc
        self._status(Text("saved", style="green"))
        self._apply_ui()
        self.notify(f"config saved to {self.app.control.config_path()}", title="settings")

    def _apply_ui(self) -> None:
        ui = self.doc.get("ui") or {}
        if ui.get("theme") in ("dark", "light"):
            self.app.theme = f"textual-{ui['theme']}"
        self.app.animation_level = "full" if ui.get("animation") else "none"

    # ------------------------------------------------------------------ actions
    def save(self) -> None:
        """Validate the form; show every error inline, or write it in a worker."""
        form = self.query_one(SchemaForm)
        data = form.values()
        maps = tuple(k for k in form.map_keys() if "." not in k)
        for key in maps:  # open maps are edited elsewhere (Models tab, `loom config set`): keep them
            data[key] = self.doc.get(key) or {}
        errors = self.app.control.config_check(data)
        if errors:
            unplaced = form.show_errors(errors)
            self.screen.show_tab("config", focus=False)
            text = f"not saved: {len(errors)} invalid value(s)"
            if unplaced:
                text += " — " + "; ".join(f"{k}: {errors[k]}" for k in unplaced)
            self._status(Text(text, style="bold red"))
            return
        form.clear_errors()
        self._status(Text("saving…", style="dim"))
        self.write(data, maps)

    def revert(self) -> None:
        self._status(Text("reverted to the file", style="dim"))
        self.load()

    @on(Button.Pressed, "#config-save")
    def _save_pressed(self) -> None:
        self.save()

    @on(Button.Pressed, "#config-revert")
    def _revert_pressed(self) -> None:
        self.revert()
