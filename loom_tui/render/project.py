"""The project view's header: title with status badge and elapsed time, the meta line, the hint that
says what to do next, and the line of gates. Pure: the screen gathers :class:`Facts`, these format."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.text import Text

from loom_core.control.humanize import span
from loom_core.control.words import ended as ended_word
from loom_tui.fmt import STATUS_STYLE
from loom_tui.widgets.agent_chain import gate_chip


@dataclass(frozen=True)
class Facts:
    """What the header shows, as the project screen knows it now."""

    name: str
    dir: str
    status: str  # the screen's status: a fleet row's status, "running" while driven here, or "archived"
    now: str
    row: dict[str, Any] = field(default_factory=dict)  # the fleet row ({} for an archived task)
    task: dict[str, Any] = field(default_factory=dict)  # the chain's task
    gates: list[dict[str, Any]] = field(default_factory=list)
    archived: bool = False
    driving: bool = False
    in_progress: bool = False
    has_branch: bool = False
    loaded: bool = False
    verdict: str | None = None
    task_id: str | None = None


def elapsed(f: Facts) -> str:
    """``12 min`` while it runs, ``took 3 min`` once it ended, "" before it started."""
    row = {} if f.archived else f.row
    started = f.task.get("started_at") or row.get("started_at")
    if not started:
        return ""
    ended = f.task.get("ended_at") or row.get("ended_at")
    return f"took {span(started, ended)}" if ended else span(started, f.now)


def badge(f: Facts) -> Text:
    st, row = f.status, f.row
    if st == "parked":
        label = f"parked: {row.get('gate')}"
    elif st == "running" and row.get("pending"):
        label = f"running · {len(row['pending'])} pending"
    elif st == "paused":
        label = "paused — not driven here"
    elif st == "stopped":
        label = "stopped — not driven"
    elif st == "over-budget":
        label = "over budget"
    elif st == "host-driven":
        label = row.get("driven_by") or "driven elsewhere"
    elif st == "archived":
        v = f.task.get("verdict") or f.task.get("status")
        label = f"archived · {'discarded' if v == 'in_progress' else (ended_word(None, v) if v else '?')}"
    else:
        label = st
    return Text(f" {label} ", style="bold " + STATUS_STYLE.get(st, ""))


def title(f: Facts) -> Text:
    out = Text()
    out.append(f.name, style="bold")
    out.append("  ")
    out.append_text(badge(f))
    took = elapsed(f)
    if took:
        out.append(f"  {took}", style="dim")
    if not f.archived and f.row.get("flow"):
        out.append(f"  {f.row['flow']} @ step {f.row.get('step')}", style="")
        if f.row.get("phase"):
            out.append(f" · {f.row['phase']}")
    return out


def meta(f: Facts) -> Text:
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append(f.dir, style="dim")
    if not f.archived and (f.row.get("budget") or {}).get("text"):  # spent / budget, live with the row
        out.append(f"  ·  budget {f.row['budget']['text']}", style="bold" if f.status == "over-budget" else "")
    text = f.task.get("task") or f.row.get("task")
    if text:
        out.append("  ·  ", style="dim")
        out.append(text.splitlines()[0])
    return out


def _finished(f: Facts) -> Text:
    verdict = f.verdict or f.status
    head = Text(no_wrap=True, overflow="ellipsis")
    head.append(f"{'✓' if verdict == 'accepted' else '■'} Task {ended_word(None, verdict)}",
                style="bold green" if verdict == "accepted" else "bold yellow")
    if f.has_branch:
        head.append(" — u push · m squash-merge ", style="")
        head.append(f"loom/{f.task_id}", style="dim")
    elif verdict == "accepted":
        head.append(" — no loom/<task> branch (no changes, or not a git repository)", style="dim")
    summary = (f.task.get("completion_summary") or "").strip()
    if summary:
        head.append("\n")
        head.append(" ".join(summary.split()), style="dim")
    return head


def hint(f: Facts) -> Text:
    """What the user can do now (empty when nothing needs saying)."""
    st, row = f.status, f.row
    if f.archived:
        return Text("read-only view of an archived task" + (" · u push · m squash-merge its branch"
                                                             if f.has_branch else ""), style="dim")
    if st == "parked":
        return Text(f"⚑ waiting for you at {row.get('gate')} — press g to answer", style="bold yellow")
    if st == "stalled":
        return Text(f"⚠ {row.get('stalled')} — press r to resume", style="bold red")
    if st == "running" and not f.driving:
        return Text("driven by another loom process (it holds the project's lock); it shows here as it goes",
                    style="dim")
    if st == "paused":
        return Text("in progress but nothing drives it here — r resumes, c abandons", style="yellow")
    if st == "over-budget":
        return Text(f"⚑ {row.get('stopped')} — press b to raise it here", style="bold yellow")
    if st == "host-driven":
        return Text(f"{row.get('driven_by') or 'driven elsewhere'}, which runs its agents — /proceed there; "
                    "'loom proceed --take-over' hands it to loom", style="dim")
    if st == "stopped":
        return Text("stopped — no loom process drives it — r resumes (loom proceed), c abandons", style="bold yellow")
    if st == "unavailable":
        return Text(f"⚠ {row.get('error')}", style="red")
    if row.get("task_id") and not f.in_progress and f.loaded:
        return _finished(f)
    return Text("")


def gates_line(f: Facts) -> Text:
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append("gates ", style="dim")
    for g in sorted(f.gates, key=lambda g: g.get("decided_at") or "~"):
        out.append_text(gate_chip(g, live=f.in_progress))
        out.append("  ")
    return out
