"""The Secrets tab: stored names and masks; a value goes in and is never shown again."""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Input, Label, Static, TabPane

from loom_core.errors import LoomError
from loom_tui.widgets.table import LoomTable


class SecretsTable(LoomTable):
    BINDINGS = LoomTable.BINDINGS + [
        Binding("enter", "screen.replace_secret", "Replace", id="secrets.replace", tooltip="Store a new value"),
        Binding("x", "screen.remove_secret", "Remove", id="secrets.remove", tooltip="Delete the stored secret"),
    ]


class SecretsPane(TabPane):
    class Listed(Message):
        def __init__(self, rows: list[tuple[str, str]] | None, where: str = "", note: str | None = None,
                     error: str | None = None) -> None:
            super().__init__()
            self.rows = rows
            self.where = where
            self.note = note
            self.error = error

    def __init__(self) -> None:
        super().__init__("Secrets", id="tab-secrets")

    def compose(self) -> ComposeResult:
        yield Static("", id="secrets-where", markup=False)
        table = SecretsTable(id="secrets-table", zebra_stripes=False)
        table.add_column("name", key="name")
        table.add_column("value (masked)", key="mask")
        yield table
        with Vertical(id="secrets-editor"):
            with Horizontal(classes="editor-row"):
                yield Label("name", classes="editor-label")
                yield Input(placeholder="e.g. anthropic", id="secret-name", compact=True,
                            restrict=r"[A-Za-z0-9_.\-]*", max_length=64)
            with Horizontal(classes="editor-row"):
                yield Label("value", classes="editor-label")
                yield Input(placeholder="pasted value is never shown", password=True, id="secret-value",
                            compact=True)
                yield Button("Store", id="secret-store", compact=True)
            yield Static("Refer to a secret in the config as secret:<name>. Values are write-only.",
                         classes="hint", markup=False)

    def on_mount(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="settings-secrets", exit_on_error=False)
    def load(self, op: str | None = None, name: str = "", value: str = "") -> None:
        control = self.app.control
        note = None
        try:
            if op == "set":
                control.set_secret(name, value)
                note = f"stored secret '{name}'"
            elif op == "unset":
                control.unset_secret(name)
                note = f"removed secret '{name}'"
            listing = control.secrets()
        except (LoomError, OSError) as exc:
            self.post_message(self.Listed(None, error=str(exc)))
            return
        self.post_message(self.Listed(listing["secrets"], listing["where"], note))

    def on_secrets_pane_listed(self, message: Listed) -> None:
        if message.error:
            self.notify(message.error, title="secrets", severity="error", timeout=8)
            return
        self.query_one("#secrets-where", Static).update(Text(f"stored in: {message.where}", style="dim"))
        table = self.query_one(SecretsTable)
        table.clear()
        for name, masked in message.rows or []:
            table.add_row(name, masked, key=name)
        if message.note:
            self.notify(message.note, title="secrets")

    # ------------------------------------------------------------------ editing
    def store(self) -> None:
        name_in = self.query_one("#secret-name", Input)
        value_in = self.query_one("#secret-value", Input)
        name, value = name_in.value.strip(), value_in.value
        if not name:
            self.notify("give the secret a name", severity="warning")
            name_in.focus()
            return
        if not value:
            self.notify("paste the value to store", severity="warning")
            value_in.focus()
            return
        value_in.value = ""  # never keep the value on screen
        self.load("set", name, value)

    @on(Button.Pressed, "#secret-store")
    @on(Input.Submitted, "#secret-value")
    def _store(self) -> None:
        self.store()

    @on(Input.Submitted, "#secret-name")
    def _name_submitted(self) -> None:
        self.query_one("#secret-value", Input).focus()

    def replace_selected(self) -> None:
        name = self.query_one(SecretsTable).cursor_key()
        if name:
            self.query_one("#secret-name", Input).value = name
            self.query_one("#secret-value", Input).focus()

    def remove_selected(self) -> None:
        name = self.query_one(SecretsTable).cursor_key()
        if not name:
            return

        def done(yes: bool | None) -> None:
            if yes:
                self.load("unset", name)

        self.app.confirm("Remove secret", f"Delete the stored secret '{name}'? Settings that refer to "
                         f"secret:{name} stop resolving.", "Remove", done)
