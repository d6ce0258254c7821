"""The replay view's text: a recorded tick as a table cell and the task state as of a tick.

Pure formatting over the plain dicts ``LocalControl.ticks`` / ``LocalControl.states`` return
(no widgets, no I/O), one small function per part of the panel."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.text import Text

from loom_tui.fmt import SEVERITY_STYLE, fmt_time

PHASE_MARK = {"completed": ("✓", "green"), "in_progress": ("▶", "bold yellow"), "skipped": ("–", "dim"),
              "pending": ("·", "dim")}
GATE_STYLE = {"approved": "green", "auto-approved": "green", "rejected": "yellow", "auto-rejected": "yellow"}
PASSING = ("APPROVE", "PASS", "GROUNDED")
MAX_FINDINGS = 20

State = dict[str, Any]


def _directive_part(d: dict[str, Any]) -> str:
    kind = d.get("kind")
    if kind == "ask-user":
        return f"⏸ {d.get('gate')}"
    if kind == "complete":
        return f"done: {d.get('verdict')}"
    if kind == "shuttle":
        return ", ".join(i.get("agent", "?") for i in d.get("intents") or [])
    return (d.get("code") or "") if kind else ""


def tick_summary(t: dict[str, Any]) -> str:
    """The gate / agents cell: gates decided in the tick, a gate asked, an answer, agents started."""
    parts = [f"{n.get('gate')}: {n.get('decision')}" for n in t.get("notes") or []
             if isinstance(n, dict) and n.get("type") == "gate-decided"]
    if t.get("decision"):
        parts.append(f"answer: {t['decision']}")
    parts.append(_directive_part(t.get("directive") or {}))
    return " · ".join(p for p in parts if p)


def head_line(state: State, tick: dict[str, Any], total: int) -> Text:
    """``tick 3 of 12 · 09:00:01 · event → directive  [verdict]``."""
    d = tick.get("directive") or {}
    head = Text.assemble((f"tick {tick['seq']} of {total}", "bold"), f" · {fmt_time(tick.get('ts'), False)} · ",
                         (tick.get("event") or "?", "cyan"), " → ", (d.get("kind") or "?", "cyan"))
    pipe = state.get("pipeline") or {}
    if pipe.get("status") and pipe.get("status") != "in_progress":
        head.append(f"  [{pipe.get('verdict') or pipe.get('status')}]", style="bold")
    return head


def phases_line(state: State, phase_order: list[str] | None) -> Text:
    """Each phase with its mark, in the bundle's order (unknown phases last, by name)."""
    line = Text("phases  ", style="bold")
    rank = {p: i for i, p in enumerate(phase_order or [])}
    rows = sorted((state.get("phases") or {}).items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0]))
    for name, ph in rows:
        mark, style = PHASE_MARK.get(ph.get("status"), ("?", ""))
        line.append(f"{mark} {name}", style=style)
        line.append("  ")
    return line


def _gate_line(name: str, g: dict[str, Any], changed: bool) -> Text:
    line = Text("  ")
    line.append(f"{name} ", style="bold")
    line.append(g.get("status") or "?", style=GATE_STYLE.get(g.get("status"), "yellow"))
    if g.get("decided_by"):
        line.append(f" by {g['decided_by']}", style="dim")
    if g.get("feedback"):
        line.append(f" — {g['feedback']}")
    if changed:
        line.append("  ← this tick", style="bold magenta")
    return line


def gate_lines(state: State, previous: State | None) -> list[Text]:
    """The gates decided so far (those that changed in this tick marked), and a parked gate."""
    out: list[Text] = []
    gates = state.get("gates") or {}
    before = (previous or {}).get("gates") or {}
    if gates:
        out.append(Text("gates", style="bold"))
        for name, g in sorted(gates.items(), key=lambda kv: (kv[1].get("decided_at") or "", kv[0])):
            out.append(_gate_line(name, g, before.get(name) != g))
    pua = (state.get("driver") or {}).get("pending_user_answer")
    if pua:
        out.append(Text(f"  parked at {pua.get('gate')}: {str(pua.get('message') or '')[:120]}",
                        style="bold black on yellow"))
    return out


def _agent_line(record: dict[str, Any], verdict: dict[str, Any] | None) -> Text:
    line = Text(f"  {record.get('seq', ''):>3} {record.get('agent', '?'):<24} {record.get('phase', ''):<15}")
    if verdict:
        word = verdict.get("verdict") or ""
        line.append(word, style="green" if word in PASSING else "yellow")
        if verdict.get("summary_line"):
            line.append(f" {verdict['summary_line'][:60]}", style="dim")
    return line


def agent_lines(state: State) -> list[Text]:
    """Agents run so far, each with the verdict it gave (matched in order per agent and phase)."""
    records = state.get("agent_records") or []
    queue: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for v in state.get("verdicts") or []:
        queue.setdefault((v.get("agent"), v.get("phase")), []).append(v)
    out = [Text(f"agents run ({len(records)})", style="bold")]
    for r in records:
        vq = queue.get((r.get("agent"), r.get("phase"))) or []
        out.append(_agent_line(r, vq.pop(0) if vq else None))
    return out


def running_lines(state: State) -> list[Text]:
    pending = state.get("pending") or {}
    if not pending:
        return []
    return [Text("running", style="bold")] + [
        Text(f"      {p.get('agent', '?'):<24} {p.get('phase', ''):<15} {p.get('model') or ''}", style="yellow")
        for p in pending.values()]


def _finding_line(f: dict[str, Any]) -> Text:
    where = f.get("file") or ""
    if where and f.get("line_start"):
        where += f":{f['line_start']}"
    line = Text("  ")
    line.append(f"{f.get('severity', '?'):<8}", style=SEVERITY_STYLE.get(f.get("severity"), ""))
    line.append(f" {f.get('category') or ''} {where} ", style="dim")
    line.append(str(f.get("summary") or "")[:100])
    return line


def finding_lines(state: State) -> list[Text]:
    """Open findings of the current iteration (the first :data:`MAX_FINDINGS`)."""
    findings = [f for f in (state.get("findings") or {}).values()
                if f.get("status") == "open" and f.get("superseded_by_iteration") is None]
    return [Text(f"open findings ({len(findings)})", style="bold")] + [_finding_line(f)
                                                                        for f in findings[:MAX_FINDINGS]]


def render_state(state: State, tick: dict[str, Any], total: int, previous: State | None = None,
                 phase_order: list[str] | None = None) -> Group:
    """The task as of one tick: phases, gates, agents run (with verdicts), running, open findings."""
    return Group(head_line(state, tick, total), phases_line(state, phase_order), *gate_lines(state, previous),
                 *agent_lines(state), *running_lines(state), *finding_lines(state))


def plain(group: Group) -> str:
    """The panel as plain text (tests, screenshots)."""
    return "\n".join(r.plain for r in group.renderables if isinstance(r, Text))
