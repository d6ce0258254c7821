"""History: a project's archived tasks. Enter opens one read-only, p replays it tick by tick."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from loom_core.control.humanize import duration
from loom_core.control.words import ended
from loom_core.errors import LoomError
from loom_tui.fmt import clip, fmt_time
from loom_tui.widgets.table import LoomTable

COLUMNS = (("task", "task"), ("verdict", "verdict"), ("elapsed", "elapsed"), ("archived", "archived"))
BADGE = {"accepted": "green", "rejected": "yellow", "discarded": "bold red", "abandoned": "red",
         "force-closed": "red"}


def verdict_of(row: dict[str, Any]) -> str:
    """An archived in-progress task was discarded (it never finished)."""
    if row.get("status") == "in_progress" or row.get("reason") == "discarded":
        return "discarded"
    if not (row.get("verdict") or row.get("status")):
        return "—"
    return ended(row.get("status"), row.get("verdict"))  # the words `loom history` uses


def badge(verdict: str) -> Text:
    return Text(verdict, style=BADGE.get(verdict, ""))


class HistoryTable(LoomTable):
    BINDINGS = [
        Binding("enter", "screen.open", "Open", id="history.open_row", tooltip="Show the archived task read-only"),
    ]


class HistoryScreen(Screen):
    CSS_PATH = "../styles/history.tcss"
    BINDINGS = [
        Binding("enter", "open", "Open", id="history.open", tooltip="Show the archived task read-only"),
        Binding("p", "replay", "Replay", id="history.replay",
                tooltip="Step through the recorded run tick by tick (time travel over its audit)"),
        Binding("r", "reload", "Reload", id="history.reload", tooltip="Read the history again"),
        Binding("escape", "back", "Back", id="history.back", tooltip="Back to the previous view"),
    ]

    class Loaded(Message):
        def __init__(self, rows: list[dict[str, Any]] | None, error: str | None = None) -> None:
            super().__init__()
            self.rows = rows or []
            self.error = error

    def __init__(self, pid: str) -> None:
        super().__init__()
        self.pid = pid
        self._rows: dict[str, dict[str, Any]] = {}
        self._name = pid
        self._known = False  # the project is in the catalog

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="history-title")
        table = HistoryTable(id="history-table")
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        yield table
        yield Static("reading the history…", id="history-empty")
        yield Footer()

    def on_mount(self) -> None:
        try:
            proj = self.app.control.project(self.pid)
        except LoomError as exc:
            self.query_one("#history-title", Static).update(Text(str(exc), style="red"))
            self.query_one("#history-empty", Static).update("")
            self.query_one(HistoryTable).display = False
            return
        self._known = True
        self._name = proj.name
        self.sub_title = f"history · {proj.name}"
        self.query_one("#history-title", Static).update(Text.assemble(("History  ", "bold"), (proj.name, "bold"),
                                                                      ("  " + proj.dir, "dim")))
        self.query_one(HistoryTable).focus()
        self.load()

    @work(thread=True, exclusive=True, group="history", exit_on_error=False)
    def load(self) -> None:
        try:
            rows = self.app.control.history(self.pid) if self._known else []
        except (LoomError, OSError) as exc:
            self.post_message(self.Loaded(None, str(exc)))
            return
        self.post_message(self.Loaded(rows))

    def on_history_screen_loaded(self, message: Loaded) -> None:
        table = self.query_one(HistoryTable)
        table.clear()
        self._rows = {}
        empty = self.query_one("#history-empty", Static)
        if message.error:
            empty.update(Text(f"cannot read the history: {message.error}", style="red"))
            empty.display = True
            table.display = False
            return
        for i, row in enumerate(message.rows):
            key = row.get("db_file") or f"{row.get('task_id')}#{i}"
            self._rows[key] = row
            label = str(row.get("task_short") or row.get("task") or row.get("task_id") or "?")
            elapsed = row.get("elapsed_s") if isinstance(row.get("elapsed_s"), (int, float)) else None
            when = row.get("archived_at") if isinstance(row.get("archived_at"), str) else None
            table.add_row(clip(label, 36), badge(str(verdict_of(row))), duration(elapsed, fine=True), fmt_time(when), key=key)
        empty.update("No archived tasks yet — a finished task is archived when the next one starts.")
        empty.display = not message.rows
        table.display = bool(message.rows)
        self.refresh_bindings()

    # ------------------------------------------------------------------ actions
    def selected(self) -> dict[str, Any] | None:
        key = self.query_one(HistoryTable).cursor_key() if self._rows else None
        return None if key is None else self._rows.get(key)

    def action_open(self) -> None:
        row = self.selected()
        if row and row.get("task_id"):
            self.app.open_project(self.pid, row.get("ref") or row["task_id"])

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_replay(self) -> None:
        row = self.selected()
        if not row or not self._known:
            return
        ref = row.get("ref") or row.get("task_id")
        if not ref or not self.app.control.store_of(self.pid, ref):
            self.notify("the archived store of this task is missing", severity="error")
            return
        self.app.open_replay(self.pid, ref, title=f"{self._name} · {row.get('task_short') or row.get('task_id')}")

    def action_reload(self) -> None:
        self.load()

    def action_back(self) -> None:
        self.app.pop_screen()

    def check_action(self, action: str, parameters) -> bool | None:
        if action in ("open", "replay") and not self._rows:
            return None
        return True

    def palette_entries(self):
        return [
            ("history: open task", "Show the selected archived task read-only", self.action_open),
            ("history: replay", "Step through the selected run tick by tick", self.action_replay),
            ("history: reload", "Read the history again", self.action_reload),
            ("history: back", "Back to the previous view", self.action_back),
        ]
