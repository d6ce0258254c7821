"""Read model for ``loom status`` and every other surface: the facts of a project's slot."""

from __future__ import annotations

import os
import time
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

    path = _LOCKS.get(project) if isinstance(project, str) else None
    if path is None:
        path = os.path.join(dbmod.loom_dir(Path(project)), "lock")
        if isinstance(project, str):
            if len(_LOCKS) >= 4096:
                _LOCKS.clear()
            _LOCKS[project] = path
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


_LOCKS: dict[str, str] = {}  # a polled project's lock path
_HEADS: dict[str, tuple[Path, str, str]] = {}  # a polled project's (Path, its text, its name)

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


SETTLE_NS = 1_000_000_000  # a file untouched for 1 s cannot be written again under the same mtime
_QUIET: dict[str, tuple[tuple, dict[Any, Any]]] = {}


def _watched(project: Path | str) -> tuple[str, ...]:
    """The files a project's status is read from: the store's three, the marker, the exec file, the budget
    ledger and the history index (the small ones are replaced by rename, so a new inode shows a write)."""
    got = _WATCHED.get(os.fspath(project))
    if got is None:
        project = Path(project)
        from loom_core.engine.budget import ledger_path
        from loom_core.engine.exec_file import exec_file
        from loom_core.store.archive import index_path
        from loom_core.store.slot import marker_path

        db = os.fspath(dbmod.state_path(project))
        got = (db, db + "-wal", db + "-shm", *(os.fspath(f(project)) for f in
                                              (marker_path, exec_file, ledger_path, index_path)))
        if len(_WATCHED) >= 4096:
            _WATCHED.clear()
        _WATCHED[os.fspath(project)] = got
    return got


_WATCHED: dict[str, tuple[str, ...]] = {}


def _quiet_signature(project: Path | str) -> tuple | None:
    """``stat`` of every watched file; None unless each is a second old (only then does a later write show
    as another mtime). Not the ``.loom`` folder: reading a closed store creates and drops its WAL there."""
    now, sig = time.time_ns(), []
    for name in _watched(project):
        try:
            st = os.stat(name)
        except FileNotFoundError:
            sig.append(None)
            continue
        except OSError:
            return None
        if now - st.st_mtime_ns < SETTLE_NS:
            return None
        sig.append((st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(sig)


class _Reads:
    """What a project's files say (marker, host, budget, lost task), remembered for a poller while its
    files are unchanged: the fleet polls every project every 2 s and most have not moved."""

    def __init__(self, project: Path | str, remember: bool) -> None:
        self.memo: dict[Any, Any] | None = None
        self.store_exists: bool | None = None  # known from the signature (None: ask the disk)
        sig = _quiet_signature(project) if remember else None
        if sig is None:
            return
        self.store_exists = sig[0] is not None
        key = os.fspath(project)
        hit = _QUIET.get(key)
        if hit is None or hit[0] != sig:
            if len(_QUIET) >= 4096:
                _QUIET.clear()
            hit = _QUIET[key] = (sig, {})
        self.memo = hit[1]

    def get(self, name: Any, read: Any) -> Any:
        if self.memo is None:
            return read()
        if name not in self.memo:
            self.memo[name] = read()
        got = self.memo[name]
        return dict(got) if isinstance(got, dict) else got


def project_status(project: Path | str, now: str, *, stall_after_min: float | None = None,
                   store: StateStore | None = None, with_sandbox: bool = False,
                   polled: bool = False) -> dict[str, Any]:
    """The project's facts; ``with_sandbox`` adds ``sandbox`` / ``sandbox_bytes`` (its disk) for a task
    in progress (a walk of the sandbox, so surfaces polling many projects leave it off). ``polled``: the
    caller reads it again and again (``project`` resolved already, a catalog entry): what its files say is
    not read again while they are unchanged; the clock and the drive lock are looked at every time."""
    key = os.fspath(project) if polled else None  # a poller's rows, remembered under the catalog's string
    reads = _Reads(key if key is not None else project, polled and store is None)
    if reads.memo is not None and "row" in reads.memo and not with_sandbox:
        # no task or a finished one, files unchanged (the same inodes that passed check_kind when the row was
        # made): nothing the clock moves
        return dict(reads.memo["row"])
    head = _HEADS.get(key) if key is not None else None
    if head is None:
        project = Path(project) if polled else Path(project).resolve()
        head = (project, str(project), project.name)
        if key is not None:  # a poller's project: its Path is made once
            if len(_HEADS) >= 4096:
                _HEADS.clear()
            _HEADS[key] = head
    project = head[0]
    out: dict[str, Any] = {"project": head[1], "name": head[2], "task_id": None, "status": "idle"}
    if store is None and (reads.memo is None or "live" not in reads.memo):  # (a remembered task: inodes checked)
        dbmod.check_kind(dbmod.state_path(project))  # a dangling symlink or a FIFO is named, never "idle"
    from loom_core.store.slot import lost_task, marked

    mark = reads.get("mark", lambda: marked(project))  # before the store: a task marked after it is never "lost"
    if store is not None or (reads.store_exists if reads.store_exists is not None
                             else dbmod.state_path(project).exists()):
        out = _project_status(project, now, out, stall_after_min, store, reads)
    if not out["task_id"] and mark:
        lost = reads.get(("lost", mark), lambda: lost_task(project, mark))
        if lost:
            out.update(status="lost", lost=lost)
    if reads.memo is not None and out.get("state") != "in_progress" and not out.get("pending"):
        reads.memo["row"] = dict(out)
    if with_sandbox and out.get("state") == "in_progress":
        out["sandbox"], out["sandbox_bytes"] = sandbox_disk(project)
    return out


def _project_status(project: Path, now: str, out: dict[str, Any], stall_after_min: float | None,
                    store: StateStore | None, reads: _Reads) -> dict[str, Any]:
    """A task's row: what its store says (remembered while its files are unchanged, see ``_Reads``), then what
    the clock and the drive lock add (ages, stalled, driven: worked out on every call)."""
    live = reads.memo.get("live", False) if reads.memo is not None else False
    if live is False:
        live = _live(project, store, reads)
        if reads.memo is not None:
            reads.memo["live"] = live
    if live is None:
        return out
    fields, started, ended, pending_since, last_tick = live
    status_s, pua, host = fields["state"], fields["gate"] is not None, fields["host"]
    end = ended or now
    elapsed = nowmod.seconds_between(started, end)
    pending = [{**r, "age_s": nowmod.seconds_between(since, now)} for r, since in pending_since]
    threshold = (stall_after_min if stall_after_min is not None else stall_minutes()) * 60
    stalled = None
    if status_s == "in_progress" and not pua:
        oldest = max((x["age_s"] for x in pending), default=0.0)
        idle = nowmod.seconds_between(last_tick, now) if last_tick else 0.0
        if pending and oldest >= threshold:
            stalled = f"agent pending for {_age(oldest)} — likely a dropped run; resume with 'loom proceed'"
        elif idle >= threshold:
            stalled = f"no committed progress for {_age(idle)}; resume with 'loom proceed'"
    driven = status_s == "in_progress" and not pua and driver_alive(out["project"])
    stopped = None
    if status_s != "in_progress":
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
    out.update(fields)
    budget_row = fields["budget"]
    out.update({"status": status, "pending": pending, "tokens": dict(fields["tokens"]),
                "elapsed_s": round(elapsed, 3), "elapsed": _age(elapsed), "stalled": stalled, "driven": driven,
                "stopped": stopped, "resume": RESUME if stopped or stalled else None,
                "budget": dict(budget_row) if isinstance(budget_row, dict) else budget_row,
                "host": dict(host) if isinstance(host, dict) else host})
    if status == "stopped" and budget_row and budget_row["stopped"]:
        from loom_core.engine import budget

        out.update(status=budget.STATUS, stopped=budget_row["stopped"], code=budget.CODE)
    return out


def _live(project: Path, store: StateStore | None, reads: _Reads) -> tuple | None:
    """What a task's row takes from its files, none of it moved by the clock: ``(fields, started_at,
    ended_at, [(pending run, its started_at)], last tick)``; None without a task."""
    if store is None:
        facts = read.status_facts(dbmod.state_path(project))
        if facts is None:
            return None
        st, tick_seq, act = facts.state, facts.tick_seq, facts.activity
    else:
        st = store.state()
        if not st.exists:
            return None
        tick_seq, act = store.bookkeeping()["tick_seq"], read.activity(store.conn)
    use = act.usage
    p, c, d = st.pipeline, st.counters, st.driver
    pua = d.get("pending_user_answer")
    phase = next((n for n, r in st.phases.items() if r["status"] == "in_progress"), None)
    pending = [({"agent": r["agent"], "agent_run_id": r["agent_run_id"], "phase": r["phase"]}, r["started_at"])
               for r in st.pending.values()]
    host = None
    if p["status"] == "in_progress":
        from loom_core.engine.host_mark import host_of

        host = reads.get(("host", p["task_id"]), lambda: host_of(project, p["task_id"]))
    from loom_core.engine import budget

    fields = {
        "task_id": p["task_id"], "task": p["task"], "task_short": p.get("task_short"), "bundle": p["bundle"],
        "state": p["status"], "verdict": p.get("verdict"), "work_result": p.get("work_result"),
        "flow": d.get("flow_name"), "step": d.get("step_index"), "phase": phase,
        "gate": pua["gate"] if pua else None, "gate_event_id": pua["gate_event_id"] if pua else None,
        "gate_message": pua["message"] if pua else None, "pending": None,  # (the clock's, in the row's order)
        "spawns": c.get("agents_count", 0),
        "tokens": {"in": c.get("total_tokens_in", 0) + use.failed_tokens_in,
                   "out": c.get("total_tokens_out", 0) + use.failed_tokens_out,
                   "cached": c.get("total_tokens_cached", 0) + use.failed_tokens_cached},
        "turns": use.turns, "failed_attempts": use.failed_attempts, "cost_usd": use.cost_usd,
        "started_at": p["started_at"], "ended_at": p.get("ended_at"), "elapsed_s": None,
        "elapsed": None, "stalled": None, "ticks": tick_seq, "driven": None, "stopped": None, "resume": None,
        "open_blockers": st.count_blocking(),
        "host": host, "driven_by": f"driven from {host['label']}" if host else None,
        # spent / budget; a stop before a spawn is announced
        "budget": reads.get(("budget", p["task_id"]), lambda: budget.view(project, p["task_id"])),
    }
    return fields, p["started_at"], p.get("ended_at"), pending, act.last_tick
