"""Replay: step through a recorded run tick by tick, seeing the task state as of each tick.

The states come from re-feeding the recorded events into a temporary store (``control.states``) in a
thread worker, once, and are cached per tick; the panel's text is :mod:`loom_tui.render.replay`.
``v`` verifies the audit chain and replays the run against its record.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from loom_core.errors import LoomError
from loom_tui.fmt import fmt_time
from loom_tui.render.replay import plain, render_state, tick_summary
from loom_tui.widgets.table import LoomTable

TICK_COLUMNS = (("seq", "#"), ("time", "time"), ("event", "event"), ("directive", "directive"),
                ("what", "gate / agents"))


class TickTable(LoomTable):
    """Left/right and j/k step through the ticks."""

    BINDINGS = [
        Binding("right,j", "cursor_down", "Next", key_display="→/j", tooltip="Next tick"),
        Binding("left,k", "cursor_up", "Prev", key_display="←/k", tooltip="Previous tick"),
        Binding("home,g", "screen.jump('first')", "First tick", show=False),
        Binding("end,G", "screen.jump('last')", "Last tick", show=False),
    ]


class ReplayScreen(Screen):
    CSS_PATH = "../styles/replay.tcss"
    BINDINGS = [
        Binding("right", "step(1)", "Next", id="replay.next", tooltip="Next tick (also j)"),
        Binding("left", "step(-1)", "Previous", id="replay.prev", tooltip="Previous tick (also k)"),
        Binding("home", "jump('first')", "First", id="replay.first", show=False, tooltip="First tick"),
        Binding("end", "jump('last')", "Last", id="replay.last", show=False, tooltip="Last tick"),
        Binding("v", "verify", "Verify", id="replay.verify",
                tooltip="Check the audit chain and replay the run against its record"),
        Binding("escape", "back", "Back", id="replay.back", tooltip="Back to the history"),
    ]

    class TicksLoaded(Message):
        def __init__(self, ticks: list[dict[str, Any]] | None, error: str | None = None) -> None:
            super().__init__()
            self.ticks = ticks or []
            self.error = error

    class StatesReady(Message):
        def __init__(self, states: dict[int, dict[str, Any]] | None, error: str | None = None,
                     phase_order: list[str] | None = None) -> None:
            super().__init__()
            self.states = states or {}
            self.error = error
            self.phase_order = phase_order or []

    class Verified(Message):
        def __init__(self, ok: bool, lines: list[str], seq: int | None = None) -> None:
            super().__init__()
            self.ok = ok
            self.lines = lines
            self.seq = seq

    def __init__(self, pid: str, task_id: str, title: str | None = None) -> None:
        super().__init__()
        self.pid = pid
        self.task_id = task_id  # a task id or a history ref
        self.title_text = title or task_id
        self.ticks: list[dict[str, Any]] = []
        self.cache: dict[int, dict[str, Any]] = {}
        self._replaying = False
        self._error: str | None = None
        self.shown_seq: int | None = None
        self.shown_plain = ""  # the state panel as plain text (tests, screenshots)
        self.verify_line = ""
        self.phase_order: list[str] = []

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(Text.assemble(("Replay  ", "bold"), self.title_text), id="replay-title")
        table = TickTable(id="replay-ticks")
        for key, label in TICK_COLUMNS:
            table.add_column(label, key=key)
        yield table
        with VerticalScroll(id="replay-state"):
            yield Static("reading the recorded ticks…", id="replay-state-body")
        yield Static(Text("v verifies the audit chain and replays the run", style="dim"), id="replay-verify")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "replay"
        self.query_one(TickTable).focus()
        self.load_ticks()

    # ------------------------------------------------------------------ workers
    @work(thread=True, exclusive=True, group="replay-ticks", exit_on_error=False)
    def load_ticks(self) -> None:
        try:
            self.post_message(self.TicksLoaded(self.app.control.ticks(self.pid, self.task_id)))
        except (LoomError, OSError, ValueError) as exc:
            self.post_message(self.TicksLoaded(None, str(exc)))
        except Exception as exc:  # a damaged store must not take the console down
            self.post_message(self.TicksLoaded(None, f"{type(exc).__name__}: {exc}"))

    @work(thread=True, exclusive=True, group="replay-states", exit_on_error=False)
    def replay_states(self) -> None:
        try:
            got, order = self.app.control.states(self.pid, self.task_id)
            self.post_message(self.StatesReady(got, phase_order=order))
        except Exception as exc:
            self.post_message(self.StatesReady(None, f"{type(exc).__name__}: {exc}" if not isinstance(
                exc, LoomError) else str(exc)))

    @work(thread=True, exclusive=True, group="replay-verify", exit_on_error=False)
    def run_verify(self) -> None:
        control = self.app.control
        try:
            chain = control.verify(self.pid, self.task_id)
            if not chain.ok:
                at = f" at row {chain.broken_row}" if chain.broken_row is not None else ""
                self.post_message(self.Verified(False, [f"audit chain BROKEN{at}: {chain.reason}"]))
                return
            report = control.replay(self.pid, self.task_id)
        except Exception as exc:
            self.post_message(self.Verified(False, [f"cannot verify: {exc}"]))
            return
        if report.identical:
            self.post_message(self.Verified(True, [f"audit chain intact · replay identical "
                                                   f"({chain.rows} audit rows, {report.replayed} ticks)"]))
        else:
            seq = (report.divergence or report.stopped or {}).get("seq")
            self.post_message(self.Verified(False, ["audit chain intact · " + " ".join(report.lines())], seq))

    # ------------------------------------------------------------------ messages
    def on_replay_screen_ticks_loaded(self, message: TicksLoaded) -> None:
        body = self.query_one("#replay-state-body", Static)
        if message.error:
            body.update(Text(f"cannot read the recorded run: {message.error}", style="red"))
            return
        self.ticks = message.ticks
        if not self.ticks:
            body.update("this store records no ticks")
            return
        table = self.query_one(TickTable)
        for t in self.ticks:
            d = t.get("directive") or {}
            table.add_row(str(t["seq"]), fmt_time(t.get("ts"), False), t.get("event") or "?", d.get("kind") or "?",
                          tick_summary(t)[:60], key=str(t["seq"]))
        body.update(Text("replaying the recorded events…", style="dim"))
        self._replaying = True
        self.replay_states()

    def on_replay_screen_states_ready(self, message: StatesReady) -> None:
        self._replaying = False
        if message.error:
            self._error = message.error
        self.cache.update(message.states)
        self.phase_order = message.phase_order or self.phase_order
        self.show_selected()

    def on_replay_screen_verified(self, message: Verified) -> None:
        self.verify_line = message.lines[0]
        line = Text(message.lines[0], style="bold green" if message.ok else "bold red")
        self.query_one("#replay-verify", Static).update(line)
        self.notify(message.lines[0], title="replay", severity="information" if message.ok else "error")
        if message.seq is not None:
            self.select_seq(message.seq)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self.show_selected()

    # ------------------------------------------------------------------ view
    def selected_index(self) -> int | None:
        table = self.query_one(TickTable)
        if not self.ticks or table.row_count == 0:
            return None
        return max(0, min(table.cursor_row, len(self.ticks) - 1))

    def selected_seq(self) -> int | None:
        i = self.selected_index()
        return None if i is None else self.ticks[i]["seq"]

    def select_seq(self, seq: int) -> None:
        for i, t in enumerate(self.ticks):
            if t["seq"] == seq:
                self.query_one(TickTable).move_cursor(row=i)
                return

    def show_selected(self) -> None:
        i = self.selected_index()
        if i is None:
            return
        tick = self.ticks[i]
        body = self.query_one("#replay-state-body", Static)
        state = self.cache.get(tick["seq"])
        if state is None:
            if self._error:
                body.update(Text(f"replay stopped before tick {tick['seq']}: {self._error}", style="red"))
            elif not self._replaying:
                self._replaying = True
                self.replay_states()
            return
        previous = self.cache.get(self.ticks[i - 1]["seq"]) if i > 0 else {}
        group = render_state(state, tick, len(self.ticks), previous, self.phase_order)
        self.shown_seq = tick["seq"]
        self.shown_plain = plain(group)
        body.update(group)

    # ------------------------------------------------------------------ actions
    def action_step(self, delta: int) -> None:
        table = self.query_one(TickTable)
        if self.ticks:
            table.move_cursor(row=max(0, min(len(self.ticks) - 1, table.cursor_row + delta)))

    def action_jump(self, where: str) -> None:
        if self.ticks:
            self.query_one(TickTable).move_cursor(row=0 if where == "first" else len(self.ticks) - 1)

    def action_verify(self) -> None:
        self.query_one("#replay-verify", Static).update(Text("verifying the audit chain and replaying…",
                                                             style="dim"))
        self.run_verify()

    def action_back(self) -> None:
        self.app.pop_screen()

    def check_action(self, action: str, parameters) -> bool | None:
        if action in ("step", "jump") and not self.ticks:
            return None
        return True

    def palette_entries(self):
        return [
            ("replay: next tick", "Step to the next recorded tick", lambda: self.action_step(1)),
            ("replay: previous tick", "Step to the previous recorded tick", lambda: self.action_step(-1)),
            ("replay: first tick", "Jump to the first tick", lambda: self.action_jump("first")),
            ("replay: last tick", "Jump to the last tick", lambda: self.action_jump("last")),
            ("replay: verify", "Check the audit chain and replay the run against its record", self.action_verify),
            ("replay: back", "Back to the history", self.action_back),
        ]
