"""Read model for ``loom status`` and every other surface: the facts of a project's slot."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..kernel import now as nowmod
from ..store import db as dbmod
from ..store.state import StateStore

DEFAULT_STALL_MINUTES = 50.0


def stall_minutes() -> float:
    raw = os.environ.get("LOOM_STALL_MINUTES", "").strip()
    try:
        return float(raw) if raw else DEFAULT_STALL_MINUTES
    except ValueError:
        return DEFAULT_STALL_MINUTES


def _age(seconds: float) -> str:
    s = int(max(0, seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60} min"
    return f"{s // 3600}h {s % 3600 // 60}m"


def project_status(project: Path | str, now: str, *, stall_after_min: float | None = None,
                   store: StateStore | None = None) -> dict[str, Any]:
    project = Path(project).resolve()
    out: dict[str, Any] = {"project": str(project), "name": project.name, "task_id": None, "status": "idle"}
    if store is None and not dbmod.state_path(project).exists():
        return out
    own = store is None
    store = store or StateStore.for_project(project, create=False)
    try:
        st = store.state()
        if not st.exists:
            return out
        book = store.bookkeeping()
        last_tick = store.conn.execute("SELECT ts FROM audit WHERE type = 'tick' ORDER BY id DESC LIMIT 1").fetchone()
        cost = store.conn.execute("SELECT sum(cost_usd), count(cost_usd) FROM transcripts").fetchone()
    finally:
        if own:
            store.close(checkpoint=False)
    p, c, d = st.pipeline, st.counters, st.driver
    flow = d.get("flow_name")
    pua = d.get("pending_user_answer")
    end = p.get("ended_at") or now
    elapsed = nowmod.seconds_between(p["started_at"], end)
    phase = next((n for n, r in st.phases.items() if r["status"] == "in_progress"), None)
    pending = [{"agent": r["agent"], "agent_run_id": r["agent_run_id"], "phase": r["phase"],
                "age_s": nowmod.seconds_between(r["started_at"], now)} for r in st.pending.values()]
    threshold = (stall_after_min if stall_after_min is not None else stall_minutes()) * 60
    stalled = None
    if p["status"] == "in_progress" and not pua:
        oldest = max((x["age_s"] for x in pending), default=0.0)
        idle = nowmod.seconds_between(last_tick[0], now) if last_tick else 0.0
        if pending and oldest >= threshold:
            stalled = f"agent pending for {_age(oldest)} — likely a dropped run; resume with 'loom proceed'"
        elif idle >= threshold:
            stalled = f"no committed progress for {_age(idle)}; resume with 'loom proceed'"
    if p["status"] != "in_progress":
        status = "finished"
    elif pua:
        status = "parked"
    elif stalled:
        status = "stalled"
    else:
        status = "running"
    out.update({
        "task_id": p["task_id"], "task": p["task"], "task_short": p.get("task_short"), "bundle": p["bundle"],
        "status": status, "state": p["status"], "verdict": p.get("verdict"), "work_result": p.get("work_result"),
        "flow": flow, "step": d.get("step_index"), "phase": phase,
        "gate": pua["gate"] if pua else None, "gate_event_id": pua["gate_event_id"] if pua else None,
        "gate_message": pua["message"] if pua else None,
        "pending": pending, "spawns": c.get("agents_count", 0),
        "tokens": {"in": c.get("total_tokens_in", 0), "out": c.get("total_tokens_out", 0),
                   "cached": c.get("total_tokens_cached", 0)},
        "cost_usd": round(cost[0], 6) if cost and cost[1] else None,
        "started_at": p["started_at"], "ended_at": p.get("ended_at"), "elapsed_s": round(elapsed, 3),
        "elapsed": _age(elapsed), "stalled": stalled, "ticks": book["tick_seq"],
        "open_blockers": st.count_blocking(),
    })
    return out
