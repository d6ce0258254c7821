"""The agent-chain timeline: one row per agent run (running ones marked), keyed by run id and
updated in place as the chain grows."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from loom_core.control.humanize import millis
from loom_tui.fmt import token_line
from loom_tui.widgets.table import LoomTable

# the columns that matter most come first: at 80 columns tokens, time and model scroll off
COLUMNS = (("n", "#"), ("agent", "agent"), ("phase", "phase"), ("verdict", "verdict"), ("findings", "find"),
           ("tokens", "tokens"), ("duration", "took"), ("model", "model"))
VERDICT_STYLE = {"APPROVE": "green", "GROUNDED": "green", "REQUEST_CHANGES": "yellow", "REJECT": "red",
                 "BLOCK": "red", "UNGROUNDED": "red"}


def run_cells(i: int, run: dict[str, Any]) -> dict[str, Any]:
    running = run.get("state") == "running"
    verdict = run.get("verdict")
    return {
        "n": Text(f"▶{i}" if running else str(i), style="bold green" if running else "dim"),
        "agent": Text(run.get("agent") or "?", style="bold green" if running else ""),
        "phase": run.get("phase") or "—",
        "verdict": Text("running…", style="green italic") if running
        else Text(verdict or "—", style=VERDICT_STYLE.get(verdict or "", "dim" if not verdict else "")),
        "findings": str(run.get("findings") or 0) if run.get("findings") else "·",
        "tokens": "—" if running else token_line(run.get("tokens_in"), run.get("tokens_out"),
                                                 run.get("tokens_cached")),
        "duration": "…" if running else millis(run.get("duration_ms")),
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

    def on_mount(self) -> None:
        for key, label in COLUMNS:
            self.add_column(label, key=key)

    def selected(self) -> str | None:
        """The agent run id under the cursor."""
        return self.cursor_key()

    def show(self, runs: list[dict[str, Any]]) -> None:
        """Show ``runs``: update changed cells and append new rows; rebuild only when the order
        changed. A cursor on the last row follows the tail."""
        keys = [r["agent_run_id"] for r in runs]
        cells = [run_cells(i + 1, r) for i, r in enumerate(runs)]
        at_end = self.row_count == 0 or self.cursor_row >= self.row_count - 1
        if keys[:len(self.keys)] == self.keys:
            for key, c in zip(self.keys, cells, strict=False):
                for col, _ in COLUMNS:
                    if self.get_cell(key, col) != c[col]:
                        self.update_cell(key, col, c[col], update_width=True)
            for key, c in list(zip(keys, cells, strict=True))[len(self.keys):]:
                self.add_row(*(c[col] for col, _ in COLUMNS), key=key)
        else:
            keep = self.selected()
            self.clear()
            for key, c in zip(keys, cells, strict=True):
                self.add_row(*(c[col] for col, _ in COLUMNS), key=key)
            if keep in keys:
                self.move_cursor(row=keys.index(keep), animate=False)
                at_end = False
        self.keys = keys
        if at_end and keys:
            self.move_cursor(row=len(keys) - 1, animate=False)
