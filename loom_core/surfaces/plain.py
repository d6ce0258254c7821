"""Plain terminal mode (Rich): progress lines for `loom run` / `loom demo`, and the gate prompt.

Everything here is driven by engine events; what a gate shows (the exact agent output being approved,
the files it names, the diff) is read through the facade.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.syntax import Syntax

from loom_core.control import words
from loom_core.control.humanize import SPINNER

if TYPE_CHECKING:
    from loom_core.control import EngineEvent




def elapsed_words(secs: float) -> str:
    s = int(secs)
    return f"{s}s" if s < 60 else f"{s // 60}m{s % 60:02d}s"


class PlainSink:
    """Prints engine events as they happen (thread-safe: spawns of a fan-out report in parallel).

    While agents run and the console writes to a terminal, one live line ("⠋ planner · demo · 12s")
    is redrawn in place about four times a second by a small thread, and erased before the next
    printed line; :meth:`idle` erases it and stops the thread (call it when a drive returns). Into a
    pipe or a file nothing of it is written."""

    def __init__(self, console: Console, *, live: bool | None = None, interval: float = 0.25) -> None:
        self.c = console
        self._lock = threading.RLock()
        self._phase: str | None = None
        self.live = _writes_to_terminal(console) if live is None else live
        self.interval = interval
        self._backend: str | None = None
        self._running: dict[str, tuple[str, float]] = {}  # agent_run_id → (agent, started)
        self._shown = False
        self._frame = 0
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def emit(self, ev: EngineEvent) -> None:
        with self._lock:
            handler = getattr(self, "_on_" + ev.kind.replace("-", "_"), None)
            if ev.kind == "spawn-start":
                self._running[str(ev.data.get("agent_run_id") or ev.data.get("agent"))] = (
                    str(ev.data.get("agent")), time.monotonic())
            elif ev.kind == "spawn-end":
                self._running.pop(str(ev.data.get("agent_run_id") or ev.data.get("agent")), None)
            if handler:
                self._erase()
                handler(ev.data)
            if self.live and self._running:
                self._draw()
                self._start_ticker()
            elif not self._running:
                self._erase()

    # ------------------------------------------------------------------ the live line
    def live_line(self, now: float | None = None) -> str:
        """"⠋ planner · demo · 12s" for the agents running now ("" when none)."""
        with self._lock:
            if not self._running:
                return ""
            now = time.monotonic() if now is None else now
            names = list(dict.fromkeys(a for a, _ in self._running.values()))
            who = ", ".join(names[:2]) + (f" +{len(names) - 2}" if len(names) > 2 else "")
            since = min(t for _, t in self._running.values())
            parts = [who, self._backend, elapsed_words(now - since)]
            return f"{SPINNER[self._frame % len(SPINNER)]} " + " · ".join(p for p in parts if p)

    def _draw(self) -> None:
        line = self.live_line()
        width = max(self.c.width - 1, 10)
        self._write("\r\x1b[2K" + line[:width])
        self._shown = True

    def _erase(self) -> None:
        if self._shown:
            self._write("\r\x1b[2K")
            self._shown = False

    def _write(self, text: str) -> None:
        try:
            self.c.file.write(text)
            self.c.file.flush()
        except (OSError, ValueError):  # the terminal went away: the line is cosmetic
            self.live = False

    def _start_ticker(self) -> None:
        if self._ticker is None or not self._ticker.is_alive():
            self._stop.clear()
            self._ticker = threading.Thread(target=self._tick, name="loom-live-line", daemon=True)
            self._ticker.start()

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                if self._stop.is_set() or not self._running or not self.live:
                    self._erase()
                    return
                self._frame += 1
                self._draw()

    def idle(self) -> None:
        """No agent runs any more (the drive returned, e.g. after a failed spawn): erase the line and
        stop the thread, before the caller prints or asks."""
        self._stop.set()
        with self._lock:
            self._running.clear()
            self._erase()
        ticker = self._ticker
        if ticker is not None and ticker is not threading.current_thread():
            ticker.join(timeout=1)

    # ------------------------------------------------------------------ events
    def _on_backend(self, d: dict[str, Any]) -> None:
        self._backend = d.get("name") or self._backend
        iso = "isolated sandbox" if d.get("isolated") else "IN PLACE (no isolation)"
        self.c.print(f"[dim]backend[/] {escape(d['label'])}   [dim]{iso}[/] {escape(d['sandbox'])}")

    def _on_phase(self, d: dict[str, Any]) -> None:
        phases = d.get("phases") or {}
        current = next((n for n, s in phases.items() if s == "in_progress"), None)
        if current and current != self._phase:
            self._phase = current
            self.c.print(f"[bold cyan]▸ {current}[/]")

    def _on_spawn_start(self, d: dict[str, Any]) -> None:
        self.c.print(f"  [dim]…[/] {d['agent']} [dim]({escape(str(d.get('model')))})[/]")

    def _on_spawn_end(self, d: dict[str, Any]) -> None:
        cost = f" · ${d['cost_usd']:.4f}" if d.get("cost_usd") is not None else ""
        secs = (d.get("duration_ms") or 0) / 1000
        self.c.print(f"  [green]✓[/] {d['agent']} [dim]· {escape(str(d.get('model')))} · {d.get('tokens_in', 0)} in / "
                     f"{d.get('tokens_out', 0)} out{cost} · {secs:.1f}s[/]")

    def _on_findings(self, d: dict[str, Any]) -> None:
        for f in d.get("findings", []):
            loc = f" {f['file']}:{f['line_start']}" if f.get("file") else ""
            color = {"blocking": "red", "warn": "yellow"}.get(f["severity"], "dim")
            self.c.print(f"    [{color}]{f['severity']}[/] [{escape(f['category'])}]{escape(loc)} "
                         f"({f['agent']}): {escape(f['summary'])}")

    def _on_verdicts(self, d: dict[str, Any]) -> None:
        for v in d.get("verdicts", []):
            color = "red" if v["blocking_issues"] else "green"
            self.c.print(f"    [{color}]{v['agent']}: {v['verdict']}[/] [dim]{escape(v.get('summary_line') or '')}[/]")

    def _on_log(self, d: dict[str, Any]) -> None:
        self.c.print(f"    [dim]{escape(d['agent'])}: {escape(d['line'])}[/]")

    def _on_notice(self, d: dict[str, Any]) -> None:
        style = "yellow" if d.get("level") == "warning" else "dim"
        self.c.print(f"[{style}]{escape(d['message'])}[/]")

    def _on_merge(self, d: dict[str, Any]) -> None:
        self.c.print(f"[bold]{escape(d['message'])}[/]")


def _writes_to_terminal(console: Console) -> bool:
    """A terminal that understands "erase line" (not a pipe, a file, or TERM=dumb)."""
    try:
        return bool(console.file.isatty()) and not console.is_dumb_terminal
    except (AttributeError, ValueError, OSError):
        return False


def _control() -> Any:
    from loom_core.control import LocalControl

    return LocalControl()


def sandbox_diff(project: Path) -> str:
    return _control().diff(Path(project))


_WORK_REF = re.compile(r"\.loom/work/([\w.-]+)")


def work_file(project: Path, name: str) -> Path | None:
    """Absolute path of the task's ``.loom/work/<name>``: in the sandbox, or the project when in place."""
    try:
        dirs = _control().work_dirs(Path(project))
    except Exception:  # noqa: BLE001 - a damaged sandbox: fall back to the project
        dirs = []
    for d in (*dirs, Path(project) / ".loom" / "work"):
        if (d / name).is_file():
            return d / name
    return None


def resolve_work_refs(message: str, project: Path) -> tuple[str, list[Path]]:
    """The gate message with each ``.loom/work/<file>`` it names made absolute (the file lives in the
    sandbox, not in the project), and the files found."""
    found: list[Path] = []

    def absolute(m: re.Match) -> str:
        path = work_file(project, m.group(1))
        if path is None:
            return m.group(0)
        found.append(path)
        return str(path)

    return _WORK_REF.sub(absolute, message or ""), found


def show_gate(console: Console, project: Path, outcome: Any) -> None:
    console.print()
    message, files = resolve_work_refs(outcome.message, project)
    console.print(Panel(escape(message), title=f"[bold yellow]⏸ gate '{outcome.gate}'[/] — your decision",
                        border_style="yellow"))
    shown = set()
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        shown.add(text.strip())
        cut = f"\n… ({len(text) - 6000} more characters in {path})" if len(text) > 6000 else ""
        console.print(Panel(escape(text[:6000] + cut), title=escape(f"{path.name} — {path}"), border_style="dim"))
    view = _control().gate(Path(project))
    if view and view.get("output") and view["output"].strip() not in shown:
        console.print(Panel(escape(view["output"][-6000:]), title=f"output of {view['agent']} (what you approve)",
                            border_style="dim"))


def gate_plan(project: Path) -> str:
    """The plan a gate is about: the task's ``.loom/work/plan.md``, else the output being approved."""
    path = work_file(project, "plan.md")
    if path is not None:
        return path.read_text(encoding="utf-8", errors="replace")
    view = _control().gate(Path(project))
    return (view or {}).get("output") or ""


def open_outside(console: Console, project: Path, which: str) -> None:
    """``which`` = "plan" (in the editor, a read-only copy) or "diff" (in the pager); a missing program
    or an empty text is said in one line."""
    from loom_core.control.external import ProgramNotFound, open_text, what_to_open

    try:
        program, suffix = what_to_open(which)
        text = gate_plan(project) if which == "plan" else sandbox_diff(project)
        if not text.strip():
            console.print(f"[dim]({'no plan' if which == 'plan' else 'no diff'} yet)[/]")
            return
        opened = open_text(program, text, suffix=suffix, name=f"loom-{which}")
    except ProgramNotFound as exc:
        console.print(f"[yellow]{escape(str(exc))}[/]")
        return
    if opened.returncode:
        console.print(f"[dim]{escape(Path(program.argv[0]).name)} exited with status {opened.returncode}[/]")
    if opened.changed and which == "plan":
        console.print("[dim]your edits went to a copy and were dropped: to change the plan, reject (r) with a "
                      "note[/]")


def ask_gate(console: Console, project: Path, outcome: Any) -> tuple[str, str | None]:
    """Interactive accept / reject / view diff / open the plan or diff outside. Returns (decision, note)."""
    show_gate(console, project, outcome)
    options = getattr(outcome, "options", None)
    can_abandon = not options or any(o.get("reject_intent") == "abandon" for o in options if isinstance(o, dict))
    while True:
        choice = console.input("[bold]accept[/] (a) · [bold]reject[/] (r) · [bold]view diff[/] (d) · "
                               "plan in $EDITOR (e) · diff in $PAGER (v)"
                               + (" · [bold]abandon[/] (x)" if can_abandon else "") + " > ").strip().lower()
        if choice in ("a", "accept", "y", "yes"):
            return "accept", None
        if choice in ("d", "diff", "view diff"):
            diff = sandbox_diff(project)
            console.print(Syntax(diff, "diff", word_wrap=True) if diff else "[dim](no diff yet)[/]")
            continue
        if choice in ("e", "v"):
            open_outside(console, project, "plan" if choice == "e" else "diff")
            continue
        if choice in ("r", "reject"):
            note = console.input("what should change? > ").strip()
            if not note:
                console.print("[yellow]a rejection needs a note[/]")
                continue
            return "reject", note
        if choice in ("x", "abandon"):
            if can_abandon:
                return "abandon", None
            console.print("[yellow]this gate offers accept or reject; to end the task, stop here (Ctrl-C) and run "
                          "loom recover abandon[/]")
            continue
        console.print(f"[dim]type a, r, d, e, v{' or x' if can_abandon else ''}[/]")


def print_outcome(console: Console, result: Any, project: Path, *, interactive_hint: bool = True) -> None:
    o = result.outcome
    u = o.usage
    cost = f", ${u.cost_usd:.4f}" if u.cost_usd is not None else ""
    failed = f" (+{u.failed} failed attempt(s))" if u.failed else ""
    usage = f"{u.spawns} spawn(s){failed}, {u.tokens_in} in / {u.tokens_out} out tokens, {u.turns} turn(s){cost}"
    if o.kind == "complete":
        accepted = o.verdict == "accepted"
        head = f"[bold {'green' if accepted else 'red'}]{'done' if accepted else 'task ended'} — " \
               f"{words.ended(None, o.verdict)}[/]"
        rest = words.summary(o.summary)
        console.print(f"{head}: {escape(rest)}" if rest else head)
        if result.merge is not None and result.merge.status == "merged":
            console.print(f"[dim]your checked-out branch is untouched; inspect with: git log loom/{o.task_id}[/]")
    elif o.kind == "paused":
        console.print(f"[bold yellow]parked at gate '{o.gate}'[/] — a human decision is required.")
        for path in resolve_work_refs(o.message or "", project)[1]:
            console.print(f"to read first: {escape(str(path))}")
        console.print(f"answer with: [bold]loom answer accept[/] or [bold]loom answer reject --note \"…\"[/]"
                      f" (in {project}), then [bold]loom proceed[/]")
    else:  # parked, error, aborted
        word = {"parked": "over budget" if o.code == "BUDGET_EXCEEDED" else "stopped, the task is parked",
                "error": "stopped by an error"}.get(o.kind, "stopped")
        code = f" [dim]({escape(o.code)})[/]" if o.code else ""
        console.print(f"[bold {'yellow' if o.kind == 'parked' else 'red'}]{word}[/] — {escape(o.message or '')}{code}")
        if o.recovery_options:
            console.print("to go on: " + escape(words.recovery_hint(o.recovery_options)))
    console.print(f"[dim]drive total: {usage}[/]")


def outcome_json(result: Any) -> str:
    o = result.outcome
    data = {"kind": o.kind, "task_id": o.task_id, "verdict": o.verdict, "summary": o.summary, "gate": o.gate,
            "gate_event_id": o.gate_event_id, "code": o.code, "message": o.message, "violations": o.violations,
            "exit_code": o.exit_code,
            "merge": None if result.merge is None else {"status": result.merge.status, "branch": result.merge.branch,
                                                        "commit": result.merge.commit,
                                                        "files": list(result.merge.files)}}
    return json.dumps(data, indent=2)


def is_tty() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()
