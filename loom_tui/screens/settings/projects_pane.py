"""The Projects tab: the catalog; x removes a project from it (files stay), a adds one."""

from __future__ import annotations

from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Static, TabPane

from loom_core.errors import LoomError
from loom_tui.widgets.table import LoomTable


class ProjectsTable(LoomTable):
    BINDINGS = LoomTable.BINDINGS + [
        Binding("x", "screen.remove_project", "Remove", id="projects.remove",
                tooltip="Remove from the catalog (nothing on disk changes)"),
        Binding("a", "screen.add_project", "Add", id="projects.add", tooltip="Add a project to the catalog"),
    ]


class ProjectsPane(TabPane):
    def __init__(self) -> None:
        super().__init__("Projects", id="tab-projects")

    def compose(self) -> ComposeResult:
        table = ProjectsTable(id="projects-table")
        for key in ("id", "name", "dir"):
            table.add_column(key, key=key)
        yield table
        yield Static("x removes the selected project from the catalog (files stay); a adds one.",
                     classes="hint", markup=False)

    def on_mount(self) -> None:
        self.fill()

    def fill(self) -> None:
        table = self.query_one(ProjectsTable)
        table.clear()
        for p in self.app.control.projects():
            table.add_row(p.id, p.name, p.dir, key=p.id)

    def apply_rows(self, rows: list[dict[str, Any]]) -> None:
        """The fleet refreshed: refill when the catalog changed under us."""
        table = self.query_one(ProjectsTable)
        if [k.value for k in table.rows] != [p.id for p in self.app.control.projects()]:
            self.fill()

    @work(thread=True, group="settings-projects", exit_on_error=False)
    def remove(self, pid: str) -> None:
        try:
            self.app.control.remove_project(pid)
        except (LoomError, OSError) as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="error")
            return
        self.app.call_from_thread(self._removed)

    def _removed(self) -> None:
        self.fill()
        self.app.refresh_rows()
        self.notify("removed from the catalog (files on disk untouched)")

    def remove_selected(self) -> None:
        pid = self.query_one(ProjectsTable).cursor_key()
        if not pid:
            return
        try:
            name = self.app.control.project(pid).name
        except LoomError:
            name = pid

        def done(yes: bool | None) -> None:
            if yes:
                self.remove(pid)

        self.app.confirm("Remove from the catalog", f"Stop showing '{name}'? Nothing on disk changes.", "Remove",
                         done)

    def add(self) -> None:
        self.app.open_add_project(lambda _pid: self.fill())
