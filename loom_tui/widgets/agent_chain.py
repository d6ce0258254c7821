"""The agent-chain timeline: one row per agent run (running ones marked), keyed by run id and
updated in place as the chain grows. Columns fit the width (the least useful are dropped whole,
never cropped), and a running agent's time ticks once a second while a live driver runs it."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from loom_core.control.humanize import SPINNER, clock, millis
from loom_core.control.humanize import seconds as seconds_between
from loom_tui.fmt import token_line
from loom_tui.widgets import fit
from loom_tui.widgets.table import LoomTable

# the columns that matter most are never dropped; at 80 columns the model and the findings count go first
COLUMNS = (fit.Col("n", "#"), fit.Col("agent", "agent", max=24), fit.Col("phase", "phase", drop=1),
           fit.Col("verdict", "verdict"), fit.Col("findings", "find", drop=3), fit.Col("tokens", "tokens", drop=2),
           fit.Col("duration", "took"), fit.Col("model", "model", drop=4))
VERDICT_STYLE = {"APPROVE": "green", "GROUNDED": "green", "REQUEST_CHANGES": "yellow", "REJECT": "red",
                 "BLOCK": "red", "UNGROUNDED": "red"}


def ticking(seconds: float) -> str:
    """A spinner frame and the clock (the frame follows the clock, so a picture of it is repeatable)."""
    return f"{SPINNER[int(max(0, seconds)) % len(SPINNER)]} {clock(seconds)}"


def run_cells(i: int, run: dict[str, Any], running_s: float | None = None) -> dict[str, Any]:
    """One run's cells; ``running_s`` (how long a running agent has run) when a live driver runs it."""
    running = run.get("state") == "running"
    verdict = run.get("verdict")
    if running:
        took = Text(ticking(running_s), style="bold green") if running_s is not None else Text("…")
    else:
        took = millis(run.get("duration_ms"))
    return {
        "n": Text(f"▶{i}" if running else str(i), style="bold green" if running else "dim"),
        "agent": Text(run.get("agent") or "?", style="bold green" if running else "", no_wrap=True,
                      overflow="ellipsis"),
        "phase": run.get("phase") or "—",
        "verdict": Text("running…", style="green italic") if running
        else Text(verdict or "—", style=VERDICT_STYLE.get(verdict or "", "dim" if not verdict else "")),
        "findings": str(run.get("findings") or 0) if run.get("findings") else "·",
        "tokens": "—" if running else token_line(run.get("tokens_in"), run.get("tokens_out"),
                                                 run.get("tokens_cached")),
        "duration": took,
        "model": run.get("model") or "—",
    }


def gate_chip(g: dict[str, Any], live: bool = True) -> Text:
    """``plan ✓ human`` / ``final pending`` / ``plan ✗ human``: one gate in a line of gates
    (a pending gate of a task that ended is "unanswered")."""
    name = (g.get("name") or "?").removeprefix("gate-")
    status = g.get("status") or "?"
    by = g.get("decided_by") or ""
    by = "auto" if by == "auto-policy" else by
    text = Text(f"{name} ", style="bold")
    if status == "pending":
        text.append("pending", style="bold yellow") if live else text.append("unanswered", style="dim")
    elif "reject" in status:
        text.append(f"✗ {by}".strip(), style="red")
    else:
        text.append(f"✓ {by}".strip(), style="green")
    return text


class AgentChain(LoomTable):
    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.keys: list[str] = []
        self.live = False  # a live driver runs the task: running agents' clocks tick
        self._runs: list[dict[str, Any]] = []
        self._cells: list[dict[str, Any]] = []
        self._ticker = None

    def on_mount(self) -> None:
        fit.add_columns(self, COLUMNS, fit.fit(COLUMNS, fit.natural(COLUMNS, ()), self.app.size.width))

    def on_resize(self) -> None:
        self.refit()

    def selected(self) -> str | None:
        """The agent run id under the cursor."""
        return self.cursor_key()

    # ------------------------------------------------------------------ the running clock
    def _now(self) -> str | None:
        try:
            return self.app.control.now()  # the engine's clock, so the time agrees with its records
        except Exception:  # noqa: BLE001 - a plane that went away: the clock just stops
            return None

    def _running_s(self, run: dict[str, Any], now: str | None) -> float | None:
        if not self.live or run.get("state") != "running" or now is None:
            return None
        return seconds_between(run.get("recorded_at"), now)

    def _timer(self) -> None:
        """Tick once a second only while a running agent is shown live; no timer otherwise."""
        want = self.live and any(r.get("state") == "running" for r in self._runs)
        if want and self._ticker is None:
            self._ticker = self.set_interval(1.0, self.tick)
        elif not want and self._ticker is not None:
            self._ticker.stop()
            self._ticker = None

    def tick(self) -> None:
        """Move the running agents' clocks on: only their "took" cells change (not while another screen is in front)."""
        if self.app.screen is not self.screen:
            return
        now = self._now()
        for i, (key, run) in enumerate(zip(self.keys, self._runs, strict=False)):
            if run.get("state") != "running":
                continue
            took = run_cells(i + 1, run, self._running_s(run, now))["duration"]
            if self._cells[i]["duration"] != took:
                self._cells[i]["duration"] = took
                self.update_cell(key, "duration", took)
        self.refit()

    def set_live(self, live: bool) -> None:
        if live != self.live:
            self.live = live
            self.show(self._runs)

    # ------------------------------------------------------------------ rows
    def refit(self) -> None:
        widths = fit.fit(COLUMNS, fit.natural(COLUMNS, self._cells), fit.space_of(self, self.app.size.width))
        if fit.apply(self, COLUMNS, widths):
            return
        keep = self.selected()
        self.clear(columns=True)
        fit.add_columns(self, COLUMNS, widths)
        for key, c in zip(self.keys, self._cells, strict=True):
            self.add_row(*(c[col] for col in widths), key=key)
        if keep in self.keys:
            self.move_cursor(row=self.keys.index(keep), animate=False)

    def show(self, runs: list[dict[str, Any]], *, live: bool | None = None) -> None:
        """Show ``runs``: update changed cells and append new rows; rebuild only when the order
        changed. A cursor on the last row follows the tail."""
        if live is not None:
            self.live = live
        now = self._now() if self.live and any(r.get("state") == "running" for r in runs) else None
        keys = [r["agent_run_id"] for r in runs]
        cells = [run_cells(i + 1, r, self._running_s(r, now)) for i, r in enumerate(runs)]
        shown = [c.value for c in self.columns]
        at_end = self.row_count == 0 or self.cursor_row >= self.row_count - 1
        if keys[:len(self.keys)] == self.keys:
            for key, c in zip(self.keys, cells, strict=False):
                for col in shown:
                    if self.get_cell(key, col) != c[col]:
                        self.update_cell(key, col, c[col])
            for key, c in list(zip(keys, cells, strict=True))[len(self.keys):]:
                self.add_row(*(c[col] for col in shown), key=key)
        else:
            keep = self.selected()
            self.clear()
            for key, c in zip(keys, cells, strict=True):
                self.add_row(*(c[col] for col in shown), key=key)
            if keep in keys:
                self.move_cursor(row=keys.index(keep), animate=False)
                at_end = False
        self.keys, self._runs, self._cells = keys, list(runs), cells
        self.refit()
        self._timer()
        if at_end and keys:
            self.move_cursor(row=len(keys) - 1, animate=False)
