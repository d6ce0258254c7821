"""The Models tab: each agent's default, override and effective model; enter edits, x clears."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Input, Label, Static, TabPane

from loom_core.config.sections import check_model_ref
from loom_core.errors import LoomError
from loom_tui.widgets.table import LoomTable


class ModelsTable(LoomTable):
    BINDINGS = LoomTable.BINDINGS + [
        Binding("enter", "screen.edit_model", "Edit", id="models.edit",
                tooltip="Set this agent's model (provider:model or a tier)"),
        Binding("x", "screen.clear_model", "Clear", id="models.clear", tooltip="Back to the bundle default"),
    ]


def shown_model(model: str) -> str:
    """The model part of a resolved reference (``anthropic:claude-x`` → ``claude-x``)."""
    return model.split(":", 1)[1] if ":" in model else model


class ModelsPane(TabPane):
    """Rows come from the facade's ``models`` verb (the code bundle's agents, then stray overrides)."""

    class Rows(Message):
        def __init__(self, rows: list[dict[str, Any]] | None, saved: str | None = None,
                     error: str | None = None) -> None:
            super().__init__()
            self.rows = rows
            self.saved = saved
            self.error = error

    def __init__(self) -> None:
        super().__init__("Models", id="tab-models")
        self.rows: dict[str, dict[str, Any]] = {}
        self.editing: str | None = None

    def compose(self) -> ComposeResult:
        table = ModelsTable(id="models-table")
        for key, label in (("agent", "agent"), ("tier", "default"), ("override", "override"),
                           ("effective", "effective")):
            table.add_column(label, key=key)
        yield table
        with Horizontal(id="model-editor", classes="editor-row"):
            yield Label("model", id="model-label", classes="editor-label")
            yield Input(placeholder="provider:model, or fast / balanced / premium; empty clears",
                        id="model-ref", compact=True)
        yield Static("", id="model-error", markup=False)

    def on_mount(self) -> None:
        self.query_one("#model-editor").display = False
        self.load()

    # ------------------------------------------------------------------ workers
    @work(thread=True, exclusive=True, group="settings-model", exit_on_error=False)
    def load(self, agent: str | None = None, ref: str = "") -> None:
        control = self.app.control
        try:
            if agent is not None:
                control.set_model(agent, ref)
            rows = control.models(stray=True)
        except (LoomError, OSError) as exc:
            self.post_message(self.Rows(None, saved=agent, error=str(exc)))
            return
        self.post_message(self.Rows(rows, saved=agent))

    def on_models_pane_rows(self, message: Rows) -> None:
        if message.error:
            self.query_one("#model-error", Static).update(Text(message.error, style="red"))
            self.notify(message.error, title="settings" if message.saved is None else "not saved", severity="error",
                        timeout=8)
            return
        self.rows = {r["agent"]: r for r in message.rows or []}
        if message.saved is not None:
            self.close_editor()
        self.fill()
        if message.saved is not None:
            self.notify(f"model of {message.saved} saved to {self.app.control.config_path()}", title="settings")

    def fill(self) -> None:
        table = self.query_one(ModelsTable)
        keep = table.cursor_row
        table.clear()
        for agent, r in self.rows.items():
            ref = r["override"]
            table.add_row(agent, r["default"] or "?", Text(ref or "—", style="bold" if ref else "dim"),
                          shown_model(r["model"]), key=agent)
        if table.row_count:
            table.move_cursor(row=min(keep, table.row_count - 1))

    # ------------------------------------------------------------------ editing
    def edit_selected(self) -> None:
        agent = self.query_one(ModelsTable).cursor_key()
        if not agent:
            return
        self.editing = agent
        self.query_one("#model-label", Label).update(agent[:17])
        self.query_one("#model-editor").display = True
        ref = self.query_one("#model-ref", Input)
        ref.value = (self.rows.get(agent) or {}).get("override") or ""
        self.query_one("#model-error", Static).update(
            Text("enter saves to the global config · empty clears · escape cancels", style="dim"))
        ref.focus()

    def clear_selected(self) -> None:
        agent = self.query_one(ModelsTable).cursor_key()
        if agent and (self.rows.get(agent) or {}).get("override"):
            self.load(agent, "")

    @on(Input.Submitted, "#model-ref")
    def _submitted(self, event: Input.Submitted) -> None:
        if not self.editing:
            return
        raw = event.value.strip()
        if raw:
            try:
                check_model_ref(raw)
            except ValueError as exc:
                self.query_one("#model-error", Static).update(Text(f"✗ {exc}", style="red"))
                return
        self.load(self.editing, raw)

    def close_editor(self) -> None:
        self.editing = None
        self.query_one("#model-editor").display = False
        self.query_one("#model-error", Static).update("")
        self.query_one(ModelsTable).focus()

    def is_editing(self) -> bool:
        return self.editing is not None and self.screen.focused is self.query_one("#model-ref")
