"""Everything ``loom verify`` checks inside one store, read in one snapshot.

The audit chain (row hashes and links), its anchors in ``driver_state`` (head, row count, tick
sequence, chained state hash), and the live state tables against the digest the last tick
recorded of them: an edit to any state row (a flipped verdict) or rows cut off the end with the
anchors rewritten no longer match. An attacker who recomputes every hash is caught outside the
file (the ``Loom-Audit-Head`` trailer on the task's branch, see ``loom_core.engine.replay``).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from typing import Any

from loom_core.store.audit import ChainReport, verify_rows

DIGEST_KEY = "digest"
JSON_COLUMNS = {
    "pipeline_state": ("gate_policies", "decisions", "bundle_state", "files_created", "files_modified"),
    "driver_state": ("pending_user_answer", "scratch"),
    "phases": ("extension",),
    "agent_verdicts": ("categories_seen",),
}
BOOKKEEPING = ("tick_seq", "state_hash", "audit_head", "audit_rows")
KEYED = {"phases": ("phases", "name"), "pending": ("pending_agents", "agent_run_id"), "findings": ("findings", "id"),
         "gates": ("gates", "name"), "gate_counters": ("pipeline_gate_counters", "role")}
AUDIT_COLUMNS = "id, ts, type, task_id, driver_state_id, payload, verdict, error_class, prev_hash, hash"


def _norm(value: Any) -> Any:
    """One form for a value whether it was built in memory or read back from SQLite, whose column
    affinity may turn 5 into '5' (TEXT), '5' into 5 (INTEGER), 5 into 5.0 (REAL) or True into 1: every
    scalar becomes its text, so only a changed value changes the digest."""
    t = type(value)
    if t is str or value is None:
        return value
    if t is dict:
        return _norm_dict(value)
    if t is int:
        return str(value)
    if isinstance(value, dict):
        return {str(k): _norm(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _norm_dict(row: dict[Any, Any]) -> dict[str, Any]:
    """``_norm`` of a plain dict, its common values (text, NULL, integers) handled inline."""
    out = {}
    for k, v in row.items():
        t = type(v)
        out[k if type(k) is str else str(k)] = v if t is str or v is None else str(v) if t is int else _norm(v)
    return out


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _text(value: Any) -> str:
    return _ENCODER.encode(_norm(value))


def digest(tables: dict[str, Any]) -> str:
    return hashlib.sha256(_text(tables).encode("utf-8")).hexdigest()


class SnapshotDigest:
    """``digest(memory_tables(state))`` tick after tick, normalising only the rows that changed.

    A snapshot's rows, and the containers inside its single rows, are never mutated in place (an op
    replaces them), so each one's normalised form is kept by identity (the cache holds the object, so its
    id cannot be reused while cached) and the encoder is handed the same structure ``digest`` builds:
    the same bytes, without re-normalising the whole state every tick."""

    def __init__(self) -> None:
        self._old: dict[int, tuple[Any, Any]] = {}

    def __call__(self, state: Any) -> str:
        old: dict[int, tuple[Any, Any]] = self._old
        new: dict[int, tuple[Any, Any]] = {}

        def norm(obj: Any) -> Any:
            if type(obj) is str:
                return obj
            if obj is None or not isinstance(obj, dict | list | tuple):
                return _norm(obj)
            hit = old.get(id(obj))
            if hit is None or hit[0] is not obj:
                hit = (obj, _norm(obj))
            new[id(obj)] = hit
            return hit[1]

        def single(row: dict[str, Any], skip: tuple[str, ...] = ()) -> dict[str, Any]:
            out = {}
            for k, v in row.items():
                if skip and k in skip:
                    continue
                t = type(v)
                out[k if type(k) is str else str(k)] = v if t is str or v is None else str(v) if t is int else norm(v)
            return out

        tables: dict[str, Any] = {"pipeline": single(state.pipeline), "counters": single(state.counters),
                                  "driver": single(state.driver, BOOKKEEPING)}
        for name in KEYED:
            tables[name] = {str(k): norm(r) for k, r in getattr(state, name).items()}
        tables["agent_records"] = [norm(r) for r in state.agent_records]
        tables["verdicts"] = [norm(r) for r in state.verdicts]
        self._old = new
        return hashlib.sha256(_ENCODER.encode(tables).encode("utf-8")).hexdigest()


def memory_tables(state: Any) -> dict[str, Any]:
    """The state tables of an in-memory ``TaskState`` (bookkeeping excluded)."""
    return {"pipeline": state.pipeline, "counters": state.counters,
            "driver": {k: v for k, v in state.driver.items() if k not in BOOKKEEPING},
            "phases": state.phases, "pending": state.pending, "findings": state.findings, "gates": state.gates,
            "gate_counters": state.gate_counters, "agent_records": list(state.agent_records),
            "verdicts": list(state.verdicts)}


def _row(conn: sqlite3.Connection, table: str, row: Any, drop: tuple[str, ...] = ("id",)) -> dict[str, Any]:
    cols = [d[0] for d in conn.execute(f"SELECT * FROM {table} LIMIT 0").description]
    out = dict(zip(cols, tuple(row), strict=True))
    for col in drop:
        out.pop(col, None)
    for col in JSON_COLUMNS.get(table, ()):
        if out.get(col) is not None:
            try:
                out[col] = json.loads(out[col])
            except (TypeError, ValueError):
                pass  # left as text: the digest will not match, which is the finding
    return out


def stored_tables(conn: sqlite3.Connection) -> dict[str, Any]:
    """The same tables read from a store (in the caller's read transaction)."""
    def single(table: str, drop: tuple[str, ...] = ("id",)) -> dict[str, Any]:
        row = conn.execute(f"SELECT * FROM {table} WHERE id = 1").fetchone()
        return _row(conn, table, row, drop) if row is not None else {}

    out: dict[str, Any] = {"pipeline": single("pipeline_state"), "counters": single("pipeline_counters"),
                           "driver": single("driver_state", ("id",) + BOOKKEEPING)}
    for name, (table, pk) in KEYED.items():
        rows = [_row(conn, table, r, ()) for r in conn.execute(f"SELECT * FROM {table}")]
        out[name] = {r[pk]: r for r in rows}
    out["agent_records"] = [_row(conn, "agent_records", r, ()) for r in
                            conn.execute("SELECT * FROM agent_records ORDER BY seq")]
    out["verdicts"] = [_row(conn, "agent_verdicts", r) for r in conn.execute("SELECT * FROM agent_verdicts ORDER BY id")]
    return out


def check_store(conn: sqlite3.Connection) -> ChainReport:
    """Chain, anchors and state digest of one store; ``conn`` is inside one read transaction."""
    rows = [tuple(r) for r in conn.execute(f"SELECT {AUDIT_COLUMNS} FROM audit ORDER BY id")]
    task = conn.execute("SELECT task_id FROM pipeline_state WHERE id = 1").fetchone()
    driver = conn.execute("SELECT tick_seq, state_hash, audit_head, audit_rows FROM driver_state WHERE id = 1").fetchone()
    report = verify_rows(rows, driver[2] if driver else None, driver[3] if driver else None)
    if not report.ok:
        return report
    last_id = rows[-1][0] if rows else 0

    def broken(why: str, row: int | None = None) -> ChainReport:
        return ChainReport(False, len(rows), report.head, row if row is not None else last_id, why)

    ticks = []
    for r in rows:
        if r[2] != "tick":
            continue
        try:
            payload = json.loads(r[5])
        except (TypeError, ValueError, RecursionError):
            payload = None
        if not isinstance(payload, dict):
            return broken("its tick payload is not a JSON object (edited, with the chain recomputed)", r[0])
        ticks.append((r[0], payload))
    if task is not None and driver is None:
        return broken("the driver_state row is missing (deleted behind loom's back)")
    if task is None and driver is not None:
        return broken("the pipeline_state row is missing (deleted behind loom's back)")
    if task is not None and not ticks:
        return broken("the store holds a task but no recorded tick (audit rows deleted)")
    if task is None:
        if ticks:
            return broken(f"the audit records {len(ticks)} tick(s) but the store holds no task (state rows deleted)")
        return report
    tick_id, last = ticks[-1]
    if last.get("seq") != driver[0] or last.get("state_hash") != driver[1]:
        return broken(f"the last recorded tick is {last.get('seq')} but the store is at tick {driver[0]} "
                      "(ticks cut off the end, or the anchors edited)", tick_id)
    recorded = last.get(DIGEST_KEY)
    if recorded is None and any(DIGEST_KEY in t for _, t in ticks):
        return broken(f"tick {driver[0]} records no state digest although earlier ticks do (edited)", tick_id)
    if recorded is not None and recorded != digest(stored_tables(conn)):
        return broken(f"the state tables do not match what tick {driver[0]} recorded (a state row edited, "
                      "e.g. a verdict)", tick_id)
    return report
