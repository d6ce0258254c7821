"""Replay: step through a recorded run tick by tick, seeing the task state as of each tick.

The states come from re-feeding the recorded events into a temporary store
(``loom_core.engine.replay.states``) in a thread worker, once, and are cached per tick.
``v`` verifies the audit chain and replays the run against its record.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Group
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from loom_core.errors import LoomError
from loom_tui.screens.history import fmt_time

TICK_COLUMNS = (("seq", "#"), ("time", "time"), ("event", "event"), ("directive", "directive"),
                ("what", "gate / agents"))
PHASE_MARK = {"completed": ("✓", "green"), "in_progress": ("▶", "bold yellow"), "skipped": ("–", "dim"),
              "pending": ("·", "dim")}
GATE_STYLE = {"approved": "green", "auto-approved": "green", "rejected": "yellow", "auto-rejected": "yellow"}
SEVERITY = {"blocking": "bold red", "warn": "yellow", "info": "dim"}


def tick_summary(t: dict[str, Any]) -> str:
    """The gate / agents cell: gates decided in the tick, a gate asked, an answer, agents started."""
    parts = []
    for n in t.get("notes") or []:
        if isinstance(n, dict) and n.get("type") == "gate-decided":
            parts.append(f"{n.get('gate')}: {n.get('decision')}")
    if t.get("decision"):
        parts.append(f"answer: {t['decision']}")
    d = t.get("directive") or {}
    if d.get("kind") == "ask-user":
        parts.append(f"⏸ {d.get('gate')}")
    elif d.get("kind") == "complete":
        parts.append(f"done: {d.get('verdict')}")
    elif d.get("kind") == "shuttle":
        parts.append(", ".join(i.get("agent", "?") for i in d.get("intents") or []))
    elif d.get("kind"):
        parts.append(d.get("code") or "")
    return " · ".join(p for p in parts if p)


def render_state(state: dict[str, Any], tick: dict[str, Any], total: int,
                 previous: dict[str, Any] | None = None, phase_order: list[str] | None = None) -> Group:
    """The task as of one tick: phases, gates, agents run (with verdicts), running, open findings."""
    d = tick.get("directive") or {}
    head = Text.assemble((f"tick {tick['seq']} of {total}", "bold"), f" · {fmt_time(tick.get('ts'), False)} · ",
                         (tick.get("event") or "?", "cyan"), " → ", (d.get("kind") or "?", "cyan"))
    pipe = state.get("pipeline") or {}
    if pipe.get("status") and pipe.get("status") != "in_progress":
        head.append(f"  [{pipe.get('verdict') or pipe.get('status')}]", style="bold")
    out: list[Any] = [head]

    phases = Text("phases  ", style="bold")
    rank = {p: i for i, p in enumerate(phase_order or [])}
    rows = sorted((state.get("phases") or {}).items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0]))
    for name, ph in rows:
        mark, style = PHASE_MARK.get(ph.get("status"), ("?", ""))
        phases.append(f"{mark} {name}", style=style)
        phases.append("  ")
    out.append(phases)

    gates = state.get("gates") or {}
    before = (previous or {}).get("gates") or {}
    if gates:
        out.append(Text("gates", style="bold"))
        for name, g in sorted(gates.items(), key=lambda kv: (kv[1].get("decided_at") or "", kv[0])):
            line = Text("  ")
            line.append(f"{name} ", style="bold")
            line.append(g.get("status") or "?", style=GATE_STYLE.get(g.get("status"), "yellow"))
            if g.get("decided_by"):
                line.append(f" by {g['decided_by']}", style="dim")
            if g.get("feedback"):
                line.append(f" — {g['feedback']}")
            if before.get(name) != g:
                line.append("  ← this tick", style="bold magenta")
            out.append(line)
    pua = (state.get("driver") or {}).get("pending_user_answer")
    if pua:
        out.append(Text(f"  parked at {pua.get('gate')}: {str(pua.get('message') or '')[:120]}",
                        style="bold black on yellow"))

    records = state.get("agent_records") or []
    queue: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for v in state.get("verdicts") or []:
        queue.setdefault((v.get("agent"), v.get("phase")), []).append(v)
    out.append(Text(f"agents run ({len(records)})", style="bold"))
    for r in records:
        vq = queue.get((r.get("agent"), r.get("phase"))) or []
        v = vq.pop(0) if vq else None
        line = Text(f"  {r.get('seq', ''):>3} {r.get('agent', '?'):<24} {r.get('phase', ''):<15}")
        if v:
            verdict = v.get("verdict") or ""
            style = "green" if verdict in ("APPROVE", "PASS", "GROUNDED") else "yellow"
            line.append(verdict, style=style)
            if v.get("summary_line"):
                line.append(f" {v['summary_line'][:60]}", style="dim")
        out.append(line)
    pending = state.get("pending") or {}
    if pending:
        out.append(Text("running", style="bold"))
        for p in pending.values():
            out.append(Text(f"      {p.get('agent', '?'):<24} {p.get('phase', ''):<15} {p.get('model') or ''}",
                            style="yellow"))

    findings = [f for f in (state.get("findings") or {}).values()
                if f.get("status") == "open" and f.get("superseded_by_iteration") is None]
    out.append(Text(f"open findings ({len(findings)})", style="bold"))
    for f in findings[:20]:
        where = f.get("file") or ""
        if where and f.get("line_start"):
            where += f":{f['line_start']}"
        line = Text("  ")
        line.append(f"{f.get('severity', '?'):<8}", style=SEVERITY.get(f.get("severity"), ""))
        line.append(f" {f.get('category') or ''} {where} ", style="dim")
        line.append(str(f.get("summary") or "")[:100])
        out.append(line)
    return Group(*out)


class TickTable(DataTable):
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

    def __init__(self, path: Path, title: str | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        self.title_text = title or self.path.name
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
        table = TickTable(id="replay-ticks", cursor_type="row", zebra_stripes=True)
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
        from loom_core.control.views import ticks

        try:
            self.post_message(self.TicksLoaded(ticks(self.path)))
        except (LoomError, OSError, ValueError) as exc:
            self.post_message(self.TicksLoaded(None, str(exc)))
        except Exception as exc:  # a damaged store must not take the console down
            self.post_message(self.TicksLoaded(None, f"{type(exc).__name__}: {exc}"))

    @work(thread=True, exclusive=True, group="replay-states", exit_on_error=False)
    def replay_states(self) -> None:
        from loom_core.bundles import load_bundle
        from loom_core.engine.replay import states

        try:
            got = states(self.path)
            order: list[str] = []
            first = next(iter(got.values()), None)
            if first and first.get("pipeline", {}).get("bundle"):
                try:
                    order = list(load_bundle(first["pipeline"]["bundle"]).phases)
                except LoomError:
                    pass
            self.post_message(self.StatesReady(got, phase_order=order))
        except Exception as exc:
            self.post_message(self.StatesReady(None, f"{type(exc).__name__}: {exc}" if not isinstance(
                exc, LoomError) else str(exc)))

    @work(thread=True, exclusive=True, group="replay-verify", exit_on_error=False)
    def run_verify(self) -> None:
        from loom_core.engine.replay import replay, verify

        try:
            chain = verify(self.path)
            if not chain.ok:
                self.post_message(self.Verified(False, [f"audit chain BROKEN at row {chain.broken_row}: "
                                                        f"{chain.reason}"]))
                return
            report = replay(self.path)
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
        self.shown_plain = "\n".join(r.plain for r in group.renderables if isinstance(r, Text))
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
