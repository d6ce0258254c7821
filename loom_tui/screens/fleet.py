"""Fleet view: one row per catalog project, live; parked and stalled projects stand out."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static

from loom_core.control.humanize import seconds as seconds_between
from loom_tui.fmt import STATUS_STYLE, fmt_tokens
from loom_tui.widgets import fit
from loom_tui.widgets.agent_chain import ticking
from loom_tui.widgets.footer import LoomFooter
from loom_tui.widgets.table import LoomTable

COLUMNS = (("name", "project"), ("task", "task"), ("status", "status"), ("phase", "phase"),
           ("elapsed", "elapsed"), ("tokens", "tokens"), ("cost", "cost"))
# how each column fits: status and cost are never dropped nor cut; the task takes the width left (at 120
# columns and more it widens); at 80 the tokens, then the phase, then the task's age are dropped whole
FIT = (fit.Col("name", "project", max=24), fit.Col("task", "task", flex=True, min=16), fit.Col("status", "status"),
       fit.Col("phase", "phase", drop=2), fit.Col("elapsed", "elapsed", drop=1), fit.Col("tokens", "tokens", drop=3),
       fit.Col("cost", "cost"))
SORTS = ("attention", "name", "status", "elapsed")
ATTENTION = {"parked": 0, "stalled": 0, "over-budget": 0, "unavailable": 1, "running": 2}


class NameCell(Text):
    """The name cell carries its project id, so the table can be ordered by row identity."""

    pid: str = ""


def ticks(row: dict[str, Any]) -> bool:
    """A live driver runs an agent of this row's task (``running`` is a held drive lock): its clock ticks."""
    return row.get("status") == "running" and bool(row.get("pending"))


def running_label(row: dict[str, Any], since_s: float = 0.0) -> str:
    """``⠹ implementer · 0:42`` (the oldest running agent, ``since_s`` after the row was read)."""
    pending = row.get("pending") or []
    oldest = max(pending, key=lambda p: p.get("age_s") or 0)
    who = oldest.get("agent") or "agent" if len(pending) == 1 else f"{len(pending)} agents"
    age = (oldest.get("age_s") or 0) + since_s
    spin, time = ticking(age).split(" ", 1)
    return f"{spin} {who} · {time}"


def cells(row: dict[str, Any], since_s: float = 0.0) -> dict[str, Any]:
    status = row.get("status") or "idle"
    label = f"parked: {row['gate']}" if status == "parked" and row.get("gate") else status.replace("-", " ")
    if ticks(row):
        label = running_label(row, since_s)
    elif status == "host-driven":
        label = f"in {(row.get('host') or {}).get('label') or 'its host'}"  # Claude Code runs its agents
    tok = row.get("tokens") or {}
    cost = row.get("cost_usd")
    name = NameCell(row.get("name") or "?", style="bold" if status in ("parked", "stalled", "over-budget") else "",
                    no_wrap=True, overflow="ellipsis")
    task = (row.get("task_short") or row.get("task") or "—").strip().splitlines() or ["—"]
    budget = row.get("budget") or {}
    name.pid = row.get("id") or ""
    return {
        "name": name,
        "task": Text(task[0], no_wrap=True, overflow="ellipsis"),  # as wide as the column the fit leaves
        "status": Text(label, style=STATUS_STYLE.get(status, "")),
        "phase": row.get("phase") or ("—" if not row.get("task_id") else row.get("flow") or "—"),
        "elapsed": row.get("elapsed") or "—",
        "tokens": (f"{fmt_tokens(budget['spent_tokens'])} / {fmt_tokens(budget['max_tokens'])}" if budget.get("max_tokens")
                   else f"{fmt_tokens(tok.get('in', 0))}/{fmt_tokens(tok.get('out', 0))}" if tok else "—"),
        "cost": (f"${budget['spent_cost_usd']:.2f} / ${budget['max_cost_usd']:.2f}" if budget.get("max_cost_usd")
                 else f"${cost:.2f}" if cost is not None else "—"),
    }


class FleetTable(LoomTable):
    """One row per catalog project, keyed by project id."""


class FleetScreen(Screen):
    CSS_PATH = "../styles/fleet.tcss"
    BINDINGS = [
        Binding("enter", "open", "Open", id="fleet.open", tooltip="Open the project view"),
        Binding("n", "new_task", "New task", id="fleet.new", tooltip="Submit a task to the selected project"),
        Binding("g", "gate", "Gate", id="fleet.gate", tooltip="Answer the gate the project is parked at"),
        Binding("a", "add_project", "Add project", id="fleet.add", tooltip="Add a project to the catalog"),
        Binding("h", "history", "History", id="fleet.history", tooltip="Archived tasks of the project"),
        Binding("o", "sort", "Sort", id="fleet.sort", tooltip="Cycle the sort order"),
        Binding("x", "remove", "Remove", id="fleet.remove", show=False,
                tooltip="Remove from the catalog (nothing on disk changes)"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.sort_key = getattr(self.app, "fleet_sort", "attention")  # ui.sort, as the app read it
        self._rows: dict[str, dict[str, Any]] = {}
        self._cells: dict[str, dict[str, Any]] = {}
        self._shown: tuple[str, ...] = ()  # the columns the width has room for (see FIT)
        self._natural: dict[str, int] = {}  # the content widths the columns were last fitted to
        self._read_at: str | None = None  # the clock when the rows were read: running agents' clocks tick from it
        self._ticker = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="fleet-counts")
        table = FleetTable(id="fleet-table")
        widths = fit.fit(FIT, fit.natural(FIT, ()), self.app.size.width)
        fit.add_columns(table, FIT, widths)
        self._shown = tuple(widths)
        yield table
        yield Static("No projects yet — press [b]a[/b] to add one, or run [b]loom demo[/b].", id="fleet-empty")
        yield LoomFooter()

    def on_mount(self) -> None:
        if self.app.rows:
            self.apply_rows(list(self.app.rows.values()))
        self.query_one(FleetTable).focus()

    # ------------------------------------------------------------------ data
    def apply_rows(self, rows: list[dict[str, Any]]) -> None:
        table = self.query_one(FleetTable)
        new = {r["id"]: r for r in rows}
        same_projects = new.keys() == self._rows.keys()
        changed: list[dict[str, Any]] = []
        for pid in [k for k in self._rows if k not in new]:
            table.remove_row(pid)
            self._cells.pop(pid, None)
        for pid, row in new.items():
            if self._rows.get(pid) == row:
                continue
            values = cells(row)
            changed.append(values)
            old = self._cells.get(pid)
            if old is None:
                table.add_row(*(values[k] for k in self._shown), key=pid)
            else:
                for key in self._shown:
                    if values[key] != old[key]:
                        table.update_cell(pid, key, values[key])
            self._cells[pid] = values
        self._rows = new
        self._read_at = self._clock() if any(ticks(r) for r in rows) else None
        self._timer()
        self._fit(shrink=not same_projects, changed=changed)  # a poll only widens a column a value needs
        self._sort()
        counts = {"running": 0, "need you": 0, "finished": 0, "idle": 0}
        for r in rows:
            s = r.get("status")
            if s in ("parked", "stalled", "stopped", "over-budget", "lost", "unavailable"):
                counts["need you"] += 1
            elif s == "running":
                counts["running"] += 1
            elif r.get("task_id"):
                counts["finished"] += 1
            else:
                counts["idle"] += 1
        need = counts["need you"]
        text = " · ".join(f"{v} {k}" for k, v in counts.items())
        if (text, need > 0) != getattr(self, "_counts_shown", None):  # one line, fixed height: no relayout
            self._counts_shown = (text, need > 0)
            self.query_one("#fleet-counts", Static).update(
                Text(text, style="bold yellow") if need else Text(text, style="dim"), layout=False)
        self.query_one("#fleet-empty").display = not rows
        table.display = bool(rows)

    # ------------------------------------------------------------------ layout and the running clock
    def on_resize(self) -> None:
        self.call_after_refresh(self._fit)

    def _fit(self, shrink: bool = True, changed: list[dict[str, Any]] | None = None) -> None:
        """Fit the columns to the width; rebuild the table only when a column comes or goes. Without
        ``shrink`` no column narrows (a width change redraws every line: polls and clock ticks only widen),
        so only the ``changed`` rows' cells need measuring."""
        table = self.query_one(FleetTable)
        natural = fit.natural(FIT, self._cells.values() if shrink or changed is None else changed)
        if not shrink:
            natural = {k: max(w, self._natural.get(k, 0)) for k, w in natural.items()}
        self._natural = natural
        widths = fit.fit(FIT, natural, fit.space_of(table, self.app.size.width))
        if fit.apply(table, FIT, widths):
            return
        keep = table.cursor_key()
        table.clear(columns=True)
        fit.add_columns(table, FIT, widths)
        self._shown = tuple(widths)
        for pid, values in self._cells.items():
            table.add_row(*(values[k] for k in self._shown), key=pid)
        self._sort()
        if keep in self._cells:
            table.move_cursor(row=table.get_row_index(keep), animate=False)

    def _clock(self) -> str | None:
        try:
            return self.app.control.now()  # the engine's clock, as the rows' ages are
        except Exception:  # noqa: BLE001 - a plane that went away: the clocks just stop
            return None

    def _timer(self) -> None:
        """A one-second tick only while some row's agent runs under a live driver; none otherwise."""
        if self._read_at is not None and self._ticker is None:
            self._ticker = self.set_interval(1.0, self.tick)
        elif self._read_at is None and self._ticker is not None:
            self._ticker.stop()
            self._ticker = None

    def tick(self) -> None:
        """Move the running rows' clocks on: only their status cells change."""
        if self._read_at is None or self.app.screen is not self:
            return
        since = seconds_between(self._read_at, self._clock())
        table = self.query_one(FleetTable)
        changed = False
        for pid, row in self._rows.items():
            if not ticks(row):
                continue
            label = Text(running_label(row, since), style=STATUS_STYLE["running"])
            if label != self._cells[pid]["status"]:
                self._cells[pid]["status"] = label
                table.update_cell(pid, "status", label)
                changed = True
        if changed:  # a clock that grew a digit widens the status column
            self._fit(shrink=False)

    def _order_key(self, pid: str):
        r = self._rows.get(pid, {})
        name = (r.get("name") or "").lower()
        if self.sort_key == "name":
            return (name,)
        if self.sort_key == "status":
            return (r.get("status") or "", name)
        if self.sort_key == "elapsed":
            return (-(r.get("elapsed_s") or 0), name)
        return (ATTENTION.get(r.get("status"), 3), name)

    def _sort(self) -> None:
        """Order rows by the chosen key (by row identity, without rebuilding the table)."""
        table = self.query_one(FleetTable)
        wanted = sorted(self._rows, key=self._order_key)
        if [row.key.value for row in table.ordered_rows] == wanted:
            return  # re-sorting would re-render every visible row for nothing
        index = {pid: i for i, pid in enumerate(wanted)}
        table.sort("name", key=lambda name: index.get(getattr(name, "pid", ""), 0))

    def engine_event(self, pid: str, event) -> None:  # rows refresh via the app; nothing to do per event
        pass

    # ------------------------------------------------------------------ actions
    def selected(self) -> str | None:
        return self.query_one(FleetTable).cursor_key() if self._rows else None

    def action_open(self) -> None:
        pid = self.selected()
        if pid:
            self.app.open_project(pid)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value:
            self.app.open_project(event.row_key.value)

    def action_new_task(self) -> None:
        pid = self.selected()
        if pid:
            self.app.open_submit(pid)

    def action_gate(self) -> None:
        pid = self.selected()
        if pid and self._rows.get(pid, {}).get("status") == "parked":
            self.app.open_gate(pid)
        elif pid:
            self.notify("this project is not parked at a gate", severity="warning")

    def action_add_project(self) -> None:
        self.app.open_add_project()

    def action_history(self) -> None:
        pid = self.selected()
        if pid:
            self.app.open_history(pid)

    def action_sort(self) -> None:
        self.sort_key = SORTS[(SORTS.index(self.sort_key) + 1) % len(SORTS)]
        self._sort()
        self.notify(f"sorted by {self.sort_key}")
        self.app.fleet_sort = self.sort_key
        self.app.keep_setting("ui.sort")  # kept in the settings for the next run

    def action_remove(self) -> None:
        pid = self.selected()
        if pid:
            self.app.control.remove_project(pid)
            self.app.refresh_rows()
            self.notify("removed from the catalog (files on disk untouched)")

    def check_action(self, action: str, parameters) -> bool | None:
        if action in ("open", "new_task", "history", "remove", "gate") and not self._rows:
            return None
        if action == "gate":
            pid = self.selected()
            return True if pid and self._rows.get(pid, {}).get("status") == "parked" else None
        return True

    def palette_entries(self):
        return [
            ("fleet: open project", "Open the selected project", self.action_open),
            ("fleet: new task", "Submit a task to the selected project", self.action_new_task),
            ("fleet: answer gate", "Answer the gate the selected project is parked at", self.action_gate),
            ("fleet: add project", "Add a project to the catalog", self.action_add_project),
            ("fleet: history", "Archived tasks of the selected project", self.action_history),
            ("fleet: sort", "Cycle the sort order", self.action_sort),
        ]
