"""Read model for ``loom status`` and every other surface: the facts of a project's slot."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loom_core.control.humanize import duration as _age
from loom_core.kernel import now as nowmod
from loom_core.store import db as dbmod
from loom_core.store import read

if TYPE_CHECKING:
    from loom_core.store.state import StateStore  # callers may pass an open store


def stall_minutes() -> float:
    """The ``general.stall_minutes`` setting (``LOOM_STALL_MINUTES`` overrides it; a bad value is a ConfigError),
    read without loading the settings model."""
    from loom_core.config.quick import stall_minutes as read

    return read()


def driver_alive(project: Path | str) -> bool:
    """Whether a process holds the project's drive lock (``.loom/lock``, an flock the kernel drops when
    its holder dies). Tested with a shared non-blocking flock on a separate descriptor, released at
    once; ``ProjectLock.acquire`` retries briefly, so this probe never makes a starting drive busy."""
    import fcntl

    path = dbmod.loom_dir(Path(project)) / "lock"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


RESUME = "loom proceed"
HOSTED = "host-driven"  # a task whose agents a host (Claude Code over loom's MCP server) runs


def sandbox_disk(project: Path | str) -> tuple[str | None, int | None]:
    """``(sandbox dir, bytes it holds)`` for a project's sandbox, ``(None, None)`` when there is none.
    A directory walk (``os.scandir``), no subprocess; linked folders are not followed."""
    from loom_core.workspace.fs import base_dir_of, disk_usage_of, sandbox_name

    path = base_dir_of(None) / sandbox_name(Path(project).resolve())
    if not path.is_dir() or path.is_symlink():
        return None, None
    return str(path), disk_usage_of(path)


def project_status(project: Path | str, now: str, *, stall_after_min: float | None = None,
                   store: StateStore | None = None, with_sandbox: bool = False) -> dict[str, Any]:
    """The project's facts; ``with_sandbox`` adds ``sandbox`` / ``sandbox_bytes`` (its disk) for a task
    in progress (a walk of the sandbox, so surfaces polling many projects leave it off)."""
    project = Path(project).resolve()
    out: dict[str, Any] = {"project": str(project), "name": project.name, "task_id": None, "status": "idle"}
    if store is None:
        dbmod.check_kind(dbmod.state_path(project))  # a dangling symlink or a FIFO is named, never "idle"
    from loom_core.store.slot import lost_task, marked

    mark = marked(project)  # read before the store: a task created and marked after it is never "lost"
    if store is not None or dbmod.state_path(project).exists():
        out = _project_status(project, now, out, stall_after_min, store)
    if not out["task_id"] and mark:
        lost = lost_task(project, mark)
        if lost:
            out.update(status="lost", lost=lost)
    if with_sandbox and out.get("state") == "in_progress":
        out["sandbox"], out["sandbox_bytes"] = sandbox_disk(project)
    return out


def _project_status(project: Path, now: str, out: dict[str, Any], stall_after_min: float | None,
                    store: StateStore | None) -> dict[str, Any]:
    if store is None:
        facts = read.status_facts(dbmod.state_path(project))
        if facts is None:
            return out
        st, tick_seq, act = facts.state, facts.tick_seq, facts.activity
    else:
        st = store.state()
        if not st.exists:
            return out
        tick_seq, act = store.bookkeeping()["tick_seq"], read.activity(store.conn)
    use = act.usage
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
        idle = nowmod.seconds_between(act.last_tick, now) if act.last_tick else 0.0
        if pending and oldest >= threshold:
            stalled = f"agent pending for {_age(oldest)} — likely a dropped run; resume with 'loom proceed'"
        elif idle >= threshold:
            stalled = f"no committed progress for {_age(idle)}; resume with 'loom proceed'"
    driven = p["status"] == "in_progress" and not pua and driver_alive(project)
    from loom_core.engine.host_mark import host_of

    host = host_of(project, p["task_id"]) if p["status"] == "in_progress" else None
    stopped = None
    if p["status"] != "in_progress":
        status = "finished"
    elif pua:
        status = "parked"
    elif host:  # its agents run in the host (Claude Code), between its tool calls: not stopped, not ours
        status, stalled = HOSTED, None
    elif not driven:
        status, stalled = "stopped", None
        stopped = f"stopped — not driven (no loom process is driving this task); resume with '{RESUME}'"
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
        "tokens": {"in": c.get("total_tokens_in", 0) + use.failed_tokens_in,
                   "out": c.get("total_tokens_out", 0) + use.failed_tokens_out,
                   "cached": c.get("total_tokens_cached", 0) + use.failed_tokens_cached},
        "turns": use.turns, "failed_attempts": use.failed_attempts, "cost_usd": use.cost_usd,
        "started_at": p["started_at"], "ended_at": p.get("ended_at"), "elapsed_s": round(elapsed, 3),
        "elapsed": _age(elapsed), "stalled": stalled, "ticks": tick_seq,
        "driven": driven, "stopped": stopped, "resume": RESUME if stopped or stalled else None,
        "open_blockers": st.count_blocking(),
        "host": host, "driven_by": f"driven from {host['label']}" if host else None,
    })
    from loom_core.engine import budget

    out["budget"] = budget.view(project, p["task_id"])  # spent / budget; a stop before a spawn is announced
    if status == "stopped" and out["budget"] and out["budget"]["stopped"]:
        out.update(status=budget.STATUS, stopped=out["budget"]["stopped"], code=budget.CODE)
    return out
