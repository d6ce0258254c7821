"""Plain terminal mode (Rich): progress lines for `loom run` / `loom demo`, and the gate prompt.

Everything here is driven by engine events; what a gate shows (the exact agent output being approved,
the files it names, the diff) is read through the facade.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.syntax import Syntax

if TYPE_CHECKING:
    from loom_core.control import EngineEvent


class PlainSink:
    """Prints engine events as they happen (thread-safe: spawns of a fan-out report in parallel)."""

    def __init__(self, console: Console) -> None:
        self.c = console
        self._lock = threading.Lock()
        self._phase: str | None = None

    def emit(self, ev: EngineEvent) -> None:
        with self._lock:
            handler = getattr(self, "_on_" + ev.kind.replace("-", "_"), None)
            if handler:
                handler(ev.data)

    def _on_backend(self, d: dict[str, Any]) -> None:
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


def ask_gate(console: Console, project: Path, outcome: Any) -> tuple[str, str | None]:
    """Interactive accept / reject / view diff. Returns (decision, note)."""
    show_gate(console, project, outcome)
    while True:
        choice = console.input("[bold]accept[/] (a) · [bold]reject[/] (r) · [bold]view diff[/] (d) · "
                               "[bold]abandon[/] (x) > ").strip().lower()
        if choice in ("a", "accept", "y", "yes"):
            return "accept", None
        if choice in ("d", "diff", "view diff"):
            diff = sandbox_diff(project)
            console.print(Syntax(diff, "diff", word_wrap=True) if diff else "[dim](no diff yet)[/]")
            continue
        if choice in ("r", "reject"):
            note = console.input("what should change? > ").strip()
            if not note:
                console.print("[yellow]a rejection needs a note[/]")
                continue
            return "reject", note
        if choice in ("x", "abandon"):
            return "abandon", None
        console.print("[dim]type a, r, d or x[/]")


def print_outcome(console: Console, result: Any, project: Path, *, interactive_hint: bool = True) -> None:
    o = result.outcome
    u = o.usage
    cost = f", ${u.cost_usd:.4f}" if u.cost_usd is not None else ""
    failed = f" (+{u.failed} failed attempt(s))" if u.failed else ""
    usage = f"{u.spawns} spawn(s){failed}, {u.tokens_in} in / {u.tokens_out} out tokens, {u.turns} turn(s){cost}"
    if o.kind == "complete":
        color = "green" if o.verdict == "accepted" else "red"
        console.print(f"[bold {color}]done — {o.verdict}[/]: {escape(o.summary)}")
        if result.merge is not None and result.merge.status == "merged":
            console.print(f"[dim]your checked-out branch is untouched; inspect with: git log loom/{o.task_id}[/]")
    elif o.kind == "paused":
        console.print(f"[bold yellow]parked at gate '{o.gate}'[/] — a human decision is required.")
        for path in resolve_work_refs(o.message or "", project)[1]:
            console.print(f"to read first: {escape(str(path))}")
        console.print(f"answer with: [bold]loom answer accept[/] or [bold]loom answer reject --note \"…\"[/]"
                      f" (in {project}), then [bold]loom proceed[/]")
    elif o.kind == "parked":
        word = "over budget" if o.code == "BUDGET_EXCEEDED" else "parked"
        console.print(f"[bold yellow]{word}[/] [{o.code}]: {escape(o.message)}")
        if o.recovery_options:
            console.print("options: loom recover " + " | loom recover ".join(o.recovery_options))
    else:
        console.print(f"[bold red]loom run failed[/] [{o.code}]: {escape(o.message)}")
        if o.recovery_options:
            console.print("options: loom recover " + " | loom recover ".join(o.recovery_options))
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
