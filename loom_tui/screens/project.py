"""Project view: header, the agent-chain timeline, the live log, and the task verbs.

``ProjectScreen(pid)`` shows the live task; ``ProjectScreen(pid, task_id)`` shows an archived
task read-only from its history store. The chain is read in a thread worker on mount and, debounced,
on engine events for this project."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Collapsible, DataTable, Header, Log, Static

from loom_tui.render import project as header
from loom_tui.shipping import ship_after_accept, ship_branch
from loom_tui.widgets.agent_chain import AgentChain
from loom_tui.widgets.footer import LoomFooter

STATEFUL = frozenset({"gate", "new_task", "new_task_over", "pause", "resume", "budget", "cancel", "push", "squash",
                      "toggle_log", "history"})
DEBOUNCE_S = 0.15
LOG_LINES = 2000


class ChainLoaded(Message):
    def __init__(self, data: dict[str, Any] | None, branch: bool, error: str | None = None) -> None:
        super().__init__()
        self.data = data
        self.branch = branch
        self.error = error


class ProjectScreen(Screen):
    CSS_PATH = "../styles/project.tcss"
    BINDINGS = [
        Binding("escape", "back", "Back", id="project.back", tooltip="Back to the fleet"),
        Binding("enter", "inspect", "Inspect", id="project.inspect", show=False,
                tooltip="Open the selected run: output, prompt, findings, verdicts, files"),
        Binding("g", "gate", "Gate", id="project.gate", tooltip="Answer the gate the task is parked at"),
        Binding("n", "new_task", "New task", id="project.new", tooltip="Submit a task (the slot is empty or finished)"),
        Binding("n", "new_task_over", "New task", id="project.new_over", show=False,
                tooltip="Submit a task over the one in progress (asks: resume it or replace it)"),
        Binding("p", "pause", "Pause", id="project.pause", tooltip="Stop the drive after the current step"),
        Binding("r", "resume", "Resume", id="project.resume", tooltip="Drive the task on from where it stopped"),
        Binding("b", "budget", "Budget", id="project.budget", tooltip="Raise the task's cost / token budget and resume"),
        Binding("c", "cancel", "Cancel", id="project.cancel", tooltip="Abandon the task in progress (asks first)"),
        Binding("u", "push", "Push", id="project.push", tooltip="git push the task's loom/<task> branch"),
        Binding("m", "squash", "Squash-merge", id="project.squash",
                tooltip="Squash-merge loom/<task> into your checked-out branch (asks first)"),
        Binding("h", "history", "History", id="project.history", tooltip="Archived tasks of this project"),
        Binding("l", "toggle_log", "Log", id="project.log", tooltip="Show or hide the live log"),
    ]

    def __init__(self, pid: str, task_id: str | None = None) -> None:
        super().__init__()
        self.pid = pid
        self.task_id = task_id
        self.archived = task_id is not None
        self.chain: dict[str, Any] = {"task": {}, "runs": [], "gates": []}
        self.store: Path | None = None
        self.has_branch = False
        self._reload_due = False
        self._loaded = False
        self._ready = False  # composed and mounted: forwarded engine messages may touch widgets
        self._clock = None  # the title's elapsed time ticks only while the task is in progress
        try:
            self.project = self.app.control.project(pid)  # in memory: the catalog is already loaded
        except Exception:  # noqa: BLE001 - shown as "not in the catalog"
            self.project = None

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="project-title")
        yield Static("", id="project-meta")
        yield Static("", id="project-hint")
        yield Static("", id="project-gates")
        yield AgentChain(id="project-chain")
        yield Static("loading the agent chain…", id="project-empty")
        with Collapsible(title="log", collapsed=True, id="project-log-box"):
            yield Log(max_lines=LOG_LINES, id="project-log")
        yield LoomFooter()

    def on_mount(self) -> None:
        self.sub_title = (self.project.name if self.project else self.pid) + (" · archived" if self.archived else "")
        self.query_one(DataTable).focus()
        self.query_one("#project-chain").display = False
        if self.archived:
            self.query_one("#project-log-box").display = False
        self._render_header()
        self.load_chain()
        self._ready = True

    def on_unmount(self) -> None:
        self._ready = False

    # ------------------------------------------------------------------ data
    @property
    def row(self) -> dict[str, Any]:
        return self.app.rows.get(self.pid) or {}

    @property
    def in_progress(self) -> bool:
        return not self.archived and self.row.get("state") == "in_progress"

    @property
    def driving(self) -> bool:
        return self.app.control.is_driving(self.pid)

    @property
    def status(self) -> str:
        if self.archived:
            return "archived"
        st = self.row.get("status") or "idle"
        if self.driving and st in ("parked", "idle", "stalled", "paused", "stopped", "over-budget"):
            return "running"  # rows lag the drive by a refresh; a drive here is never parked
        return st  # "running" means a live loom process holds the project's lock (this console or another)

    @property
    def verdict(self) -> str | None:
        if self.archived:
            return self.chain["task"].get("verdict")
        return self.row.get("verdict")

    @property
    def shown_task_id(self) -> str | None:
        # an archive ref may be a file name (``<id>.2``, archives of an older loom): the store names the task
        return self.chain["task"].get("task_id") or self.task_id or self.row.get("task_id")

    @work(thread=True, exclusive=True, group="chain", exit_on_error=False)
    def load_chain(self) -> None:
        control = self.app.control
        if self.project is None:
            self.post_message(ChainLoaded(None, False, "not in the catalog"))
            return
        try:  # an archived task id that is still the live task (not archived yet) reads the live store
            self.store = control.store_of(self.pid, self.task_id)
            data = control.chain(self.pid, self.task_id) if self.store is not None else None
            if data is None:
                self.store = None
                self.post_message(ChainLoaded(None, False))
                return
            task = data["task"]
            branch = bool(task.get("verdict") == "accepted" and task.get("task_id")
                          and control.branch_exists(self.pid, f"loom/{task['task_id']}"))
        except Exception as exc:  # noqa: BLE001
            self.post_message(ChainLoaded(None, False, f"{type(exc).__name__}: {exc}"))
            return
        self.post_message(ChainLoaded(data, branch))

    def on_chain_loaded(self, message: ChainLoaded) -> None:
        self._loaded = True
        empty = self.query_one("#project-empty", Static)
        table = self.query_one(AgentChain)
        if message.error:
            empty.update(Text(f"could not read the task: {message.error}", style="red"))
            empty.display, table.display = True, False
            return
        if message.data is None:
            empty.update("No task yet — press n to submit one." if not self.archived
                         else "This archived task could not be found.")
            empty.display, table.display = True, False
            self.chain = {"task": {}, "runs": [], "gates": []}
            self.has_branch = False
            self._render_header()
            self.refresh_bindings()
            return
        self.chain = message.data
        self.has_branch = message.branch
        runs = self.chain["runs"]
        empty.display, table.display = not runs, bool(runs)
        if not runs:
            empty.update("No agent has run yet.")
        table.show(runs, live=self.status == "running")  # a running agent's clock ticks only while driven
        self._render_header()
        self.refresh_bindings()

    def _schedule_reload(self) -> None:
        if not self._reload_due:
            self._reload_due = True
            self.set_timer(DEBOUNCE_S, self._reload)

    def _reload(self) -> None:
        self._reload_due = False
        self.load_chain()

    # ------------------------------------------------------------------ header
    def facts(self) -> header.Facts:
        task = self.chain["task"]
        return header.Facts(
            name=self.project.name, dir=self.project.dir, status=self.status, now=self.app.control.now(),
            row=self.row, task=task, gates=self.chain.get("gates") or [], archived=self.archived,
            driving=self.driving, in_progress=self.in_progress, has_branch=self.has_branch, loaded=self._loaded,
            verdict=self.verdict, task_id=self.shown_task_id)

    def _render_header(self) -> None:
        if self.project is None:
            self.query_one("#project-title", Static).update(Text(f"{self.pid}: not in the catalog", style="bold red"))
            return
        f = self.facts()
        self.query_one("#project-title", Static).update(header.title(f))
        self.query_one("#project-meta", Static).update(header.meta(f))
        hint = header.hint(f)
        self.query_one("#project-hint", Static).update(hint)
        self.query_one("#project-hint").display = bool(hint.plain)
        self.query_one("#project-gates", Static).update(header.gates_line(f))
        self.query_one("#project-gates").display = bool(f.gates)
        if self.in_progress and self._clock is None:
            self._clock = self.set_interval(1.0, self._tick)
        elif not self.in_progress and self._clock is not None:  # ended or archived: nothing moves, no timer
            self._clock.stop()
            self._clock = None

    def _tick(self) -> None:
        if self.in_progress:
            self._render_header()

    # ------------------------------------------------------------------ forwarded by the app
    def apply_rows(self, rows: list[dict[str, Any]]) -> None:
        if not self._ready:
            return
        self._render_header()
        self.query_one(AgentChain).set_live(self.status == "running")
        self.refresh_bindings()

    def engine_event(self, pid: str, event) -> None:
        if pid != self.pid or self.archived or not self._ready:
            return
        self._schedule_reload()
        if event.kind in ("merge", "gate-answered"):
            self.refresh_bindings()

    def log_lines(self, pid: str, lines: list[str]) -> None:
        if pid != self.pid or self.archived or not lines or not self._ready:
            return
        try:
            log = self.query_one("#project-log", Log)
            box = self.query_one("#project-log-box", Collapsible)
        except NoMatches:  # not composed yet, or being torn down
            return
        log.write_lines(lines)
        box.title = f"log · {lines[-1].replace(chr(10), ' ')[:90]}"

    def run_finished(self, pid: str, outcome, error: str | None) -> None:
        if pid != self.pid or self.archived or not self._ready:
            return
        self._schedule_reload()
        self.refresh_bindings()
        if outcome is None:
            return
        if outcome.kind == "paused" and getattr(outcome, "gate", None) and self.app.screen is self:
            self.app.open_gate(self.pid)
        else:
            ship_after_accept(self.app, self.pid, outcome, done=self.load_chain)

    # ------------------------------------------------------------------ actions
    def check_action(self, action: str, parameters) -> bool | None:
        if self.project is None and action not in ("back", "toggle_log"):
            return None
        live = not self.archived
        ok = {
            "gate": live and self.status == "parked" and not self.driving,
            "new_task": live and not self.driving and not self.in_progress and self.status != "unavailable",
            # the same key over a task in progress: the form asks resume / replace (kept out of a full footer)
            "new_task_over": live and (self.driving or self.in_progress) and self.status != "unavailable",
            "pause": live and self.driving,
            "resume": live and self.in_progress and not self.driving and self.status != "parked",
            "budget": live and self.in_progress and not self.driving and self.status == "over-budget",
            "cancel": live and self.in_progress,
            "push": self.has_branch and self.verdict == "accepted" and not self.in_progress,
            "squash": self.has_branch and self.verdict == "accepted" and not self.in_progress,
            "inspect": bool(self.query_one(AgentChain).keys),
            "toggle_log": live,
            "history": live,  # an archived view is opened from the history
        }.get(action, True)
        if ok:
            return True
        # Keys of another lifecycle state are hidden, not greyed: at 80 columns the Footer cannot
        # hold all eleven, and only a few apply at any moment. The palette still lists them all.
        return False if action in STATEFUL else None

    def _guard(self, action: str, fn):
        @functools.wraps(fn)  # keeps the action's name: the help screen names the palette entry of a key
        def run() -> None:
            if not self.check_action(action, ()):
                self.notify(f"'{action.replace('_', ' ')}' does not apply right now", severity="warning")
            else:
                fn()
        return run

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_inspect()

    def action_inspect(self) -> None:
        chain = self.query_one(AgentChain)
        run = chain.selected()
        if run is None or self.store is None:
            return
        self.app.open_run(self.pid, self.task_id, list(self.chain["runs"]), chain.keys.index(run),
                          archived=self.archived)

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_gate(self) -> None:
        self.app.open_gate(self.pid)

    def action_new_task(self) -> None:
        self.app.open_submit(self.pid)

    action_new_task_over = action_new_task

    def action_pause(self) -> None:
        self.app.pause_task(self.pid)

    def action_resume(self) -> None:
        self.app.proceed_task(self.pid)
        self.notify("resuming", title=self.project.name if self.project else self.pid)

    def action_budget(self) -> None:
        from loom_tui.screens.budget import BudgetDialog

        def raised(budgets: dict[str, Any] | None) -> None:
            if budgets:
                self.app.proceed_task(self.pid, budgets)
                self.notify("resuming with the raised budget", title=self.project.name if self.project else self.pid)

        name = self.project.name if self.project else self.pid
        self.app.push_screen(BudgetDialog(name, self.row.get("budget")), raised)

    def action_cancel(self) -> None:
        def done(yes: bool | None) -> None:
            if yes:
                self.app.cancel_task(self.pid)

        self.app.confirm(
            "Cancel the task?", f"{self.row.get('task_short') or self.row.get('task') or 'the task'} is abandoned: "
            "the drive stops and the task ends as abandoned. Its sandbox work is not merged.", "Abandon", done)

    def _confirm_ship(self, branch: str, title: str, body: str, yes: str, **what: bool) -> None:
        def answered(ok: bool | None) -> None:
            if ok:
                ship_branch(self.app, self.pid, branch, done=self.load_chain, **what)

        self.app.confirm(title, body, yes, answered)

    def action_push(self) -> None:
        branch = f"loom/{self.shown_task_id}"
        self._confirm_ship(branch, f"Push {branch}?", f"git push {branch} to its upstream remote, or to origin.",
                           "Push", push=True)

    def action_squash(self) -> None:
        branch = f"loom/{self.shown_task_id}"
        where = self.project.dir if self.project else "the project"
        self._confirm_ship(branch, f"Squash-merge {branch}?", f"One commit with the whole of {branch} goes onto "
                           f"the branch checked out in {where}. Your working tree and index must be clean.",
                           "Squash-merge", squash=True)

    def action_history(self) -> None:
        self.app.open_history(self.pid)

    def action_toggle_log(self) -> None:
        box = self.query_one("#project-log-box", Collapsible)
        box.collapsed = not box.collapsed

    def palette_entries(self):
        entries = [
            ("project: answer gate", "Answer the gate the task is parked at", "gate", self.action_gate),
            ("project: inspect run", "Open the selected run", "inspect", self.action_inspect),
            ("project: new task", "Submit a task", "new_task", self.action_new_task),
            ("project: new task over this one", "Submit a task: resume or replace the one in progress",
             "new_task_over", self.action_new_task),
            ("project: pause", "Stop the drive after the current step", "pause", self.action_pause),
            ("project: resume", "Drive the task on from where it stopped", "resume", self.action_resume),
            ("project: cancel task", "Abandon the task in progress", "cancel", self.action_cancel),
            ("project: push branch", "git push the loom/<task> branch", "push", self.action_push),
            ("project: squash-merge branch", "Squash-merge loom/<task> into your branch", "squash",
             self.action_squash),
            ("project: history", "Archived tasks of this project", "history", self.action_history),
            ("project: toggle log", "Show or hide the live log", "toggle_log", self.action_toggle_log),
            ("project: back", "Back to the fleet", "back", self.action_back),
        ]
        return [(title, help_text, self._guard(action, fn)) for title, help_text, action, fn in entries
                if self.check_action(action, ())]  # only what applies now
