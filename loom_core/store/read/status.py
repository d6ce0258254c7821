"""The facts ``loom status`` (and every surface polling projects) shows, read without opening a full
store: the task state's status-relevant tables, the last tick's time and the usage totals."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from loom_core.errors import SchemaTooNew, StateCorrupt
from loom_core.kernel.state import TaskState
from loom_core.store import db as dbmod
from loom_core.store.read.opener import snapshot

_FAILED = "json_extract(usage, '$.failed')"
# cost and turns of every attempt; tokens of failed attempts (the kernel's counters hold the delivered ones)
USAGE_SQL = ("SELECT sum(cost_usd), count(cost_usd), "
             + ", ".join(f"sum(CASE WHEN {_FAILED} THEN coalesce(json_extract(usage, '$.{k}'), 0) ELSE 0 END)"
                         for k in ("tokens_in", "tokens_out", "tokens_cached"))
             + f", sum(coalesce(json_extract(usage, '$.num_turns'), 0)), sum(CASE WHEN {_FAILED} THEN 1 ELSE 0 END) "
             "FROM transcripts")


@dataclass(frozen=True)
class Usage:
    """Totals over every transcript, failed attempts counted: the cost (None when no attempt recorded
    one) and turns of all attempts, and the tokens of the failed ones (the kernel's counters hold the
    delivered ones)."""

    cost_usd: float | None = None
    failed_tokens_in: int = 0
    failed_tokens_out: int = 0
    failed_tokens_cached: int = 0
    turns: int = 0
    failed_attempts: int = 0


@dataclass(frozen=True)
class Activity:
    """The time of the last committed tick (None before the first) and the usage totals."""

    last_tick: str | None
    usage: Usage


@dataclass(frozen=True)
class StatusFacts:
    """``state`` holds pipeline, counters, driver (flow, step, pending answer), phases, pending agents
    and the open blocking findings only."""

    state: TaskState
    tick_seq: int
    activity: Activity


def activity(conn: sqlite3.Connection) -> Activity:
    """Last tick and usage over an open connection (an open ``StateStore``'s, or a snapshot's)."""
    last = conn.execute("SELECT ts FROM audit WHERE type = 'tick' ORDER BY id DESC LIMIT 1").fetchone()
    c = conn.execute(USAGE_SQL).fetchone()
    cost = round(c[0], 6) if c and c[1] else None
    return Activity(last[0] if last else None,
                    Usage(cost, int(c[2] or 0), int(c[3] or 0), int(c[4] or 0), int(c[5] or 0), int(c[6] or 0)))


_CACHE: dict[str, tuple[tuple, StatusFacts | None]] = {}
CACHE_SIZE = 1024


def _stat(path: str) -> tuple | None:
    """(inode, size, mtime) of a file by ``stat`` alone (opening it could drop this process's SQLite locks:
    see ``db.open_descriptor``); None when it does not exist."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


SETTLE_NS = 1_000_000_000  # a file untouched for 1 s cannot be written again under the same mtime


def _signature(path: Path) -> tuple[tuple, bool] | None:
    """The identity, size and mtime of the database, its WAL and the WAL's index, and whether they can be
    trusted to show the next commit: only once every mtime is a second old, so that a later write gets
    another mtime even with a coarse clock. A store in use (recent mtimes) is simply read each time."""
    name = os.fspath(path)
    try:
        sig = (_stat(name), _stat(name + "-wal"), _stat(name + "-shm"))
    except OSError:
        return None
    now = time.time_ns()
    settled = sig[0] is not None and all(s is None or now - s[2] >= SETTLE_NS for s in sig)
    return sig, settled


def status_facts(path: Path, *, cached: bool = True) -> StatusFacts | None:
    """The status facts in one read-only snapshot; None when the slot holds no task.

    With ``cached`` (pollers: the fleet every 2 s), a store whose files have not changed since the last
    read is not read again. The signature is taken before the read, so a commit racing it only makes the
    next poll read once more; it never hides a change. An empty slot is not remembered: it is cheap to
    read and is what a store being created looks like."""
    path = Path(path)
    got = _signature(path) if cached else None
    key = str(path)
    if got is not None:
        hit = _CACHE.get(key)
        if hit is not None and hit[0] == got[0]:
            return hit[1]
    facts = snapshot(path, _facts)
    if got is not None and got[1] and facts is not None:
        if len(_CACHE) >= CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = (got[0], facts)
    else:
        _CACHE.pop(key, None)
    return facts


def _facts(conn: sqlite3.Connection) -> StatusFacts | None:
    versions = {v for (v,) in conn.execute("SELECT version FROM kernel_schema_versions")}
    if versions and max(versions) > dbmod.LATEST_SCHEMA:
        raise SchemaTooNew(f"the state file was written by a newer loom (schema {max(versions)} > "
                           f"{dbmod.LATEST_SCHEMA}); upgrade loom to open it; nothing was changed")
    p = conn.execute("SELECT * FROM pipeline_state").fetchone()
    if p is None:
        return None
    s = TaskState()
    s.pipeline = {k: p[k] for k in p.keys()}
    s.pipeline["decisions"] = json.loads(p["decisions"])
    c = conn.execute("SELECT * FROM pipeline_counters").fetchone()
    s.counters = {k: c[k] for k in c.keys()} if c else {}
    d = conn.execute("SELECT flow_name, step_index, pending_user_answer, tick_seq FROM driver_state").fetchone()
    if d is None:
        raise StateCorrupt("the state file's driver_state row is missing (edited behind loom's back)")
    s.driver = {"flow_name": d["flow_name"], "step_index": d["step_index"],
                "pending_user_answer": json.loads(d["pending_user_answer"]) if d["pending_user_answer"] else None}
    s.phases = {r["name"]: {"status": r["status"]} for r in conn.execute("SELECT name, status FROM phases")}
    s.pending = {r["agent_run_id"]: dict(r) for r in conn.execute("SELECT * FROM pending_agents")}
    s.findings = {r["id"]: dict(r) for r in conn.execute(
        "SELECT id, status, superseded_by_iteration, severity, phase, origin FROM findings "
        "WHERE severity = 'blocking' AND status = 'open'")}
    return StatusFacts(s, d["tick_seq"], activity(conn))
