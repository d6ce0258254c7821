"""What the bot writes (spec §7 views), as plain text and button specs: ``(label, callback data)`` rows.
Pure: no Telegram, no HTTP. Callback data is ``action|arg`` and never over Telegram's 64 bytes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from loom_core.control.humanize import span
from loom_core.control.words import ended
from loom_core.errors import LoomError

LIMIT = 4000  # one message's text (Telegram allows 4096)
DATA_MAX = 64  # bytes of callback data
COMPLEXITIES = (("🤖 Auto", "auto"), ("⚡ Trivial", "trivial"), ("Simple", "simple"), ("Medium", "medium"),
                ("Complex", "complex"))
VERDICT_ICON = {"accepted": "✅", "rejected": "❌", "failed_force_closed": "💥"}

Buttons = list[list[tuple[str, str]]]

HELP = """loom bot — answer gates, submit and ship from here.

/projects — pick the project this chat works on
/status — its task: phase, gate, last runs
/plan — the task's plan
/cancel — stop and archive the task (asks first)
/help — this text

Any other text is a new task for the active project: pick its complexity and it starts.
Gates are announced here with Approve / Reject / Abandon; Reject asks for a note the agents rework with."""


def data(action: str, arg: str | None = None) -> str:
    """Callback data ``action|arg`` (``action`` alone without an arg); over 64 bytes is a bug, refused."""
    out = action if arg is None else f"{action}|{arg}"
    if len(out.encode()) > DATA_MAX:
        raise LoomError(f"callback data over {DATA_MAX} bytes: {out[:80]!r}", code="CALLBACK_TOO_LONG")
    return out


def parse(raw: str | None) -> tuple[str, str | None]:
    action, _, arg = (raw or "").partition("|")
    return action, (arg or None)


def split(text: str, limit: int = LIMIT) -> list[str]:
    """Text in pieces under ``limit`` characters, cut at newlines (a line longer than that is cut hard)."""
    out: list[str] = []
    cur = ""
    for line in text.splitlines(keepends=True):
        while len(line) > limit:
            if cur:
                out.append(cur)
                cur = ""
            out.append(line[:limit])
            line = line[limit:]
        if len(cur) + len(line) > limit:
            out.append(cur)
            cur = ""
        cur += line
    if cur or not out:
        out.append(cur)
    return [piece.rstrip("\n") or "…" for piece in out]


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def elapsed(model: dict[str, Any]) -> str:
    return span(model.get("started_at"), model.get("ended_at") or now_iso()) or "—"


def error(exc: LoomError) -> str:
    return f"⚠️ {exc.code}: {exc}"


def name_of(row: dict[str, Any]) -> str:
    return str(row.get("name") or row.get("label") or str(row.get("dir", "")).rstrip("/").rsplit("/", 1)[-1]
               or row.get("id"))


# ---------------------------------------------------------------------- projects
def picker(rows: list[dict[str, Any]]) -> tuple[str, Buttons]:
    if not rows:
        return "No projects in the plane's catalog yet: add one with `loom projects add <dir>`.", []
    lines = ["Pick the project for this chat:"]
    buttons: Buttons = []
    for i, row in enumerate(rows):
        state = row.get("status") or "idle"
        lines.append(f"{i + 1}. {name_of(row)} — {state}")
        buttons.append([(f"{i + 1}. {name_of(row)}", data("sp", str(i)))])
    return "\n".join(lines), buttons


def complexity_keyboard(docker: bool | None) -> Buttons:
    """Auto / Trivial / Simple / Medium / Complex, plus the Docker toggle when the plane offers Docker
    (``docker`` is ``None`` when it does not)."""
    rows: Buttons = [[(label, data("cx", value)) for label, value in COMPLEXITIES[:3]],
                     [(label, data("cx", value)) for label, value in COMPLEXITIES[3:]]]
    if docker is not None:
        rows.append([("🐳 Docker: on" if docker else "🐳 Docker: off", data("dk"))])
    return rows


def pending_text(project: str, task: str, docker: bool | None) -> str:
    extra = "" if docker is None else f"\nDocker: {'on' if docker else 'off'}"
    return f"New task for {project}:\n{task}{extra}\n\nHow complex is it?"


# ---------------------------------------------------------------------- gates and ends
def gate_text(project: str, gate: dict[str, Any]) -> str:
    return f"⏸ {project} — parked at gate «{gate.get('gate')}»\n\n{gate.get('message') or ''}".rstrip()


def gate_keyboard(pid: str, gate_event_id: str) -> Buttons:
    return [[("✅ Approve", data("ga", gate_event_id)), ("↩️ Reject", data("gr", gate_event_id))],
            [("🛑 Abandon", data("gx", gate_event_id))],
            [("📄 Plan", data("pl", pid)), ("📊 Status", data("st", pid))]]


def terminal_key(model: dict[str, Any]) -> str | None:
    """``<status>:<task_id>`` once the task has ended, else ``None``."""
    if model.get("has_task") and model.get("status") in ("completed", "abandoned") and model.get("task_id"):
        return f"{model['status']}:{model['task_id']}"
    return None


def terminal_text(project: str, model: dict[str, Any], trace: dict[str, Any] | None) -> str:
    icon = VERDICT_ICON.get(str(model.get("verdict") or model.get("status")), "🛑")
    verdict = ended(model.get("status"), model.get("verdict"))
    summary = ((trace or {}).get("summary") or {}).get("completion_summary")
    if not summary:
        runs = (trace or {}).get("agents") or []
        summary = "\n".join(f"- {r.get('agent')} ({r.get('phase')})" for r in runs[-4:]) or "(no summary)"
    return (f"{icon} {project} — {verdict}\n{model.get('task_label') or model.get('task') or ''}\n\n{summary}\n\n"
            f"took {elapsed(model)}")


def terminal_keyboard(pid: str) -> Buttons:
    return [[("🔀 Squash-merge", data("pm", pid)), ("⬆️ Push", data("pu", pid))], [("📄 Plan", data("pl", pid))]]


# ---------------------------------------------------------------------- status, ship, plan
def status_text(project: str, model: dict[str, Any], trace: dict[str, Any] | None) -> str:
    if not model.get("has_task"):
        return f"📊 {project} — idle (no task)"
    state = model.get("status") or "—"
    if model.get("status") in ("completed", "abandoned"):
        state = f"ended ({ended(model.get('status'), model.get('verdict'))})"
    lines = [f"📊 {project} — {state}", model.get("task_label") or model.get("task") or ""]
    flow = model.get("flow") or {}
    if flow:
        lines.append(f"flow: {flow.get('name')} · step {flow.get('step_index')}")
    if model.get("active_phase"):
        lines.append(f"phase: {model['active_phase']}")
    lines.append(f"elapsed: {elapsed(model)}")
    pending = model.get("pending_agents") or []
    if pending:
        lines.append("running: " + ", ".join(f"{a.get('agent')} ({a.get('phase')})" for a in pending))
    gate = model.get("parked_gate")
    if gate:
        lines.append(f"awaiting you at gate «{gate.get('gate')}»")
    if model.get("stalled"):
        lines.append("⚠️ stalled: no progress for a while")
    runs = ((trace or {}).get("agents") or [])[-3:]
    if runs:
        lines.append("last runs:")
        for r in runs:
            tokens = (r.get("tokens_in") or 0) + (r.get("tokens_out") or 0)
            lines.append(f"- {r.get('agent')} ({r.get('phase')}) · {r.get('model') or '—'} · {tokens} tokens")
    return "\n".join(line for line in lines if line)


def ship_text(verb: str, got: dict[str, Any]) -> str:
    done = got.get("pushed" if verb == "push" else "merged")
    what = "push" if verb == "push" else "squash-merge"
    if done:
        return f"✅ {what}: {got.get('message') or got.get('branch')}"
    return f"⚠️ {what} refused ({got.get('reason') or 'refused'}): {got.get('message') or ''}".rstrip(": ")


def plan_caption(project: str, path: str) -> str:
    return f"📄 {project} — {path}"
