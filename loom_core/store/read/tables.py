"""Raw rows of the allow-listed task-store tables, and the counts of the state summary (MCP
``pipeline_state_get``). One read snapshot per call; table names never come from the caller's text."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from loom_core.store.read.opener import snapshot

# table -> (order column, timestamp column for ``since`` or None)
TABLES: dict[str, tuple[str, str | None]] = {
    "pipeline_state": ("id", None), "pipeline_counters": ("id", None), "pipeline_gate_counters": ("role", None),
    "driver_state": ("id", None), "phases": ("name", "updated_at"), "agent_records": ("seq", "recorded_at"),
    "pending_agents": ("started_at", "started_at"), "agent_verdicts": ("id", "recorded_at"),
    "findings": ("recorded_at", "recorded_at"), "gates": ("name", "decided_at"), "audit": ("id", "ts")}
EXTRA = ("installed_extensions",)  # named by the spec; a loom store has none (always empty)
SINCE = ("audit", "findings")  # ``since`` filters these (the spec's rule)


def table_rows(path: Path, table: str, *, since: str | None = None, limit: int = 100) -> tuple[list[str], list[dict]]:
    """``(columns, rows)`` of ``table`` (newest ``limit`` rows of audit, else the first ``limit``)."""
    if table in EXTRA:
        return [], []
    order, stamp = TABLES[table]
    where, args = "", []
    if since and table in SINCE and stamp:
        where, args = f" WHERE {stamp} > ?", [since]

    def read(conn: sqlite3.Connection) -> tuple[list[str], list[dict]]:
        if table == "audit":
            q = f"SELECT * FROM (SELECT * FROM audit{where} ORDER BY id DESC LIMIT ?) ORDER BY id"
        else:
            q = f"SELECT * FROM {table}{where} ORDER BY {order} LIMIT ?"
        cur = conn.execute(q, [*args, limit])
        cols = [d[0] for d in cur.description]
        return cols, [dict(zip(cols, tuple(r), strict=True)) for r in cur.fetchall()]

    return snapshot(path, read, empty=([], [])) or ([], [])


def counts(path: Path) -> dict[str, int]:
    """Rows pending, gates, audit rows and findings of the store (zeros without one)."""
    def read(conn: sqlite3.Connection) -> dict[str, int]:
        one = lambda q: int(conn.execute(q).fetchone()[0])  # noqa: E731
        return {"pending_agent_count": one("SELECT count(*) FROM pending_agents"),
                "gate_count": one("SELECT count(*) FROM gates"),
                "audit_row_count": one("SELECT count(*) FROM audit"),
                "finding_count": one("SELECT count(*) FROM findings")}

    zero = {"pending_agent_count": 0, "gate_count": 0, "audit_row_count": 0, "finding_count": 0}
    return snapshot(path, read, empty=zero) or zero
