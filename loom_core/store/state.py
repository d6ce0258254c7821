"""StateStore: the one write path.

``commit_tick`` co-commits, in a single ``BEGIN IMMEDIATE`` transaction, a tick's typed
mutations, its audit rows (hash-chained), its tick-log row and its ledger rows, runs the
invariant guard before COMMIT and rolls everything back on a violation.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import peewee

from loom_core.errors import StateCorrupt, StateError
from loom_core.kernel.state import APPEND, CANONICAL_ORDER, KEYED, SINGLE, TaskState, canonical_items
from loom_core.store import codec, integrity, models
from loom_core.store import db as dbmod
from loom_core.store.audit import GENESIS, canonical, row_hash

TABLES = {
    "pipeline": "pipeline_state", "counters": "pipeline_counters", "driver": "driver_state",
    "phases": "phases", "pending": "pending_agents", "findings": "findings", "gates": "gates",
    "gate_counters": "pipeline_gate_counters", "agent_records": "agent_records", "verdicts": "agent_verdicts",
}
JSON_COLUMNS = {
    "pipeline": {"gate_policies", "decisions", "bundle_state", "files_created", "files_modified"},
    "driver": {"pending_user_answer", "scratch"},
    "phases": {"extension"},
    "verdicts": {"categories_seen"},
}
BOOKKEEPING = ("tick_seq", "state_hash", "audit_head", "audit_rows")


_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_OPS = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=repr)


def _dump(value: Any) -> str | None:
    return None if value is None else _COMPACT.encode(value)


@functools.cache
def _insert_sql(table: str, cols: tuple[str, ...]) -> str:
    return f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"


@functools.cache
def _update_sql(table: str, cols: tuple[str, ...]) -> str:
    return f"UPDATE {table} SET {', '.join(c + ' = ?' for c in cols)} WHERE id = 1"


@functools.cache
def _upsert_sql(table: str, pk: str, cols: tuple[str, ...]) -> str:
    sets = ", ".join(f"{c} = excluded.{c}" for c in cols if c != pk)
    return _insert_sql(table, cols) + f" ON CONFLICT({pk}) DO UPDATE SET {sets}"


TRANSCRIPT_SQL = ("INSERT OR REPLACE INTO transcripts (agent_run_id, agent, phase, model, prompt, output, files, "
                  "usage, cost_usd, duration_ms, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


@functools.cache
def _delete_sql(table: str, pk: str) -> str:
    return f"DELETE FROM {table} WHERE {pk} = ?"


def _load_json(text: Any, where: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except (TypeError, ValueError) as exc:
        raise StateCorrupt(f"unreadable JSON in {where}: {exc}") from exc


class StateStore:
    def __init__(self, path: Path, *, busy_ms: int = dbmod.DEFAULT_BUSY_MS, create: bool = True) -> None:
        self.path = Path(path)
        self.busy_ms = busy_ms
        self.db = dbmod.connect(self.path, busy_ms=busy_ms, create=create)
        self.m = models.bind(self.db)
        self._lock = threading.RLock()
        self._state: TaskState | None = None
        self._book: dict[str, Any] = {}
        self._data_version: int | None = None
        self._staged: list[tuple] = []  # transcripts waiting for the next commit (see stage_transcript)
        self._staged_lock = threading.Lock()
        self.digest = integrity.SnapshotDigest()  # the state digest each tick records

    @classmethod
    def for_project(cls, project: Path | str, **kw: Any) -> StateStore:
        return cls(dbmod.state_path(Path(project)), **kw)

    # ---------------------------------------------------------------- lifecycle
    def close(self, checkpoint: bool = True) -> None:
        if self._staged:
            with contextlib.suppress(Exception):
                self.flush_staged()
        if self.db.is_closed():
            return
        if checkpoint:
            dbmod.close_durably(self.db, self.path)
        else:
            self.db.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def conn(self) -> sqlite3.Connection:
        return self.db.connection()

    # ---------------------------------------------------------------- reads
    def _data_version_now(self) -> int:
        return self.conn.execute("PRAGMA data_version").fetchone()[0]

    def state(self) -> TaskState:
        """The committed snapshot (reloaded when another connection committed since)."""
        with self._lock, dbmod.mapped(self.path):
            dv = self._data_version_now()
            if self._state is None or dv != self._data_version:
                conn = self.conn
                conn.execute("BEGIN")  # one pinned read snapshot
                try:
                    self._state, self._book = self._load()
                finally:
                    conn.execute("COMMIT")
                self._data_version = dv
            return self._state

    def bookkeeping(self) -> dict[str, Any]:
        self.state()
        return dict(self._book)

    def _load(self) -> tuple[TaskState, dict[str, Any]]:
        m = self.m
        s = TaskState()
        book = {"tick_seq": 0, "state_hash": "", "audit_head": GENESIS, "audit_rows": 0}
        has_task = self.conn.execute("SELECT 1 FROM pipeline_state").fetchone() is not None
        row = m.PipelineState.select().dicts().first() if has_task else None
        if row is None:
            ledger = frozenset(k for (k,) in self.conn.execute("SELECT key FROM kernel_idempotency_ledger"))
            s.ledger_keys = ledger
            head = self.conn.execute("SELECT hash, (SELECT count(*) FROM audit) FROM audit ORDER BY id DESC LIMIT 1").fetchone()
            if head:
                book["audit_head"], book["audit_rows"] = head
            return s, book
        row.pop("id")
        for col in JSON_COLUMNS["pipeline"]:
            row[col] = _load_json(row[col], f"pipeline_state.{col}")
        s.pipeline = row
        c = m.PipelineCounters.select().dicts().first() or {}
        c.pop("id", None)
        s.counters = c
        d = m.DriverState.select().dicts().first()
        if d is None:
            raise StateCorrupt(f"{self.path}: driver_state row is missing")
        d.pop("id")
        for k in BOOKKEEPING:
            book[k] = d.pop(k)
        book["audit_head"] = book["audit_head"] or GENESIS
        for col in JSON_COLUMNS["driver"]:
            d[col] = _load_json(d[col], f"driver_state.{col}")
        s.driver = d
        for r in m.Phase.select().dicts():
            r["extension"] = _load_json(r["extension"], "phases.extension")
            s.phases[r["name"]] = r
        s.pending = {r["agent_run_id"]: r for r in m.PendingAgent.select().dicts()}
        s.findings = {r["id"]: r for r in m.Finding.select().dicts()}
        s.gates = {r["name"]: r for r in m.GateRow.select().dicts()}
        s.gate_counters = {r["role"]: r for r in m.GateCounter.select().dicts()}
        for table in CANONICAL_ORDER:  # the same iteration order as a snapshot built in memory
            setattr(s, table, dict(canonical_items(table, getattr(s, table))))
        recs = []
        for r in m.AgentRecord.select().order_by(m.AgentRecord.seq).dicts():
            recs.append(r)
        s.agent_records = recs
        verdicts = []
        for r in m.AgentVerdict.select().order_by(m.AgentVerdict.id).dicts():
            r.pop("id")
            r["categories_seen"] = _load_json(r["categories_seen"], "agent_verdicts.categories_seen")
            verdicts.append(r)
        s.verdicts = verdicts
        s.ledger_keys = frozenset(k for (k,) in self.conn.execute("SELECT key FROM kernel_idempotency_ledger"))
        return s, book

    # ---------------------------------------------------------------- writes
    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … COMMIT; any exception rolls back (busy → StateBusy)."""
        with self._lock:
            conn = self.conn
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise dbmod.map_error(exc, self.path) from exc
            staged = self._take_staged()
            try:
                yield conn
                if staged:
                    conn.executemany(TRANSCRIPT_SQL, staged)
                conn.execute("COMMIT")  # our own commit leaves PRAGMA data_version unchanged
            except BaseException as exc:
                self._restage(staged)
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    self.db.close()  # a failed rollback discards the connection
                self._state = None  # force a reload after any failed write
                if isinstance(exc, (sqlite3.Error, peewee.PeeweeException)):
                    raise dbmod.map_error(exc, self.path) from exc
                raise

    def _cols(self, name: str, row: dict[str, Any]) -> list[Any]:
        jc = JSON_COLUMNS.get(name)
        if jc is None:
            return list(row.values())
        return [_dump(v) if k in jc else v for k, v in row.items()]

    def apply_ops(self, conn: sqlite3.Connection, before: TaskState, after: TaskState, ops: list[tuple],
                  book: dict[str, Any]) -> None:
        """Write the net effect of ``ops``: final values only, rows of one table and shape in one batch."""
        touched_single: dict[str, set[str]] = {"driver": set()}
        touched_keys: dict[str, dict[str, None]] = {}
        appended: dict[str, int] = {}
        for op in ops:
            kind, table = op[0], op[1]
            if kind == "set":
                touched_single.setdefault(table, set()).update(op[2])
            elif kind == "add":
                appended[table] = appended.get(table, 0) + 1
            else:  # put / del
                touched_keys.setdefault(table, {})[op[2]] = None
        batches: dict[str, list[Any]] = {}  # statement -> parameter rows, in first-use order
        for name in SINGLE:
            fields = touched_single.get(name)
            if fields is None:
                continue
            row = getattr(after, name)
            table = TABLES[name]
            if not getattr(before, name):
                full = {k: row[k] for k in sorted(row)}
                if name == "driver":
                    full.update(book)
                batches.setdefault(_insert_sql(table, ("id",) + tuple(full)), []).append(
                    [1] + self._cols(name, full))
            else:
                values = {k: row[k] for k in sorted(fields)}
                if name == "driver":
                    values.update(book)
                batches.setdefault(_update_sql(table, tuple(values)), []).append(self._cols(name, values))
        for name in ("phases", "pending", "findings", "gates", "gate_counters"):
            keys = touched_keys.get(name)
            if not keys:
                continue
            table, pk = TABLES[name], KEYED[name]
            current = getattr(after, name)
            for key in keys:
                row = current.get(key)
                if row is None:
                    batches.setdefault(_delete_sql(table, pk), []).append((key,))
                else:
                    batches.setdefault(_upsert_sql(table, pk, tuple(row)), []).append(self._cols(name, row))
        for name in APPEND:
            n = appended.get(name)
            if n:
                table = TABLES[name]
                for row in getattr(after, name)[-n:]:
                    batches.setdefault(_insert_sql(table, tuple(row)), []).append(self._cols(name, row))
        for sql, rows in batches.items():
            if len(rows) == 1:
                conn.execute(sql, rows[0])
            else:
                conn.executemany(sql, rows)

    def append_audit(self, conn: sqlite3.Connection, book: dict[str, Any], ts: str, type_: str,
                     payload: dict[str, Any], *, task_id: str | None, dsid: str | None,
                     verdict: str = "ok", error_class: str | None = None) -> None:
        text = canonical(payload)
        prev = book["audit_head"] or GENESIS
        h = row_hash(prev, ts, type_, task_id, dsid, text, verdict, error_class)
        conn.execute("INSERT INTO audit (ts, type, task_id, driver_state_id, payload, verdict, error_class, "
                     "prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     (ts, type_, task_id, dsid, text, verdict, error_class, prev, h))
        book["audit_head"] = h
        book["audit_rows"] += 1

    def put_ledger(self, conn: sqlite3.Connection, rows: list[tuple[str, str | None]], now: str,
                   dsid: str | None, task_id: str | None) -> None:
        """Upsert (key, response) rows; a NULL response never overwrites a stored one."""
        if not rows:
            return
        conn.executemany(
            "INSERT INTO kernel_idempotency_ledger (key, first_seen_ts, last_seen_ts, response_blob, driver_state_id, "
            "task_id, now_token) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET "
            "last_seen_ts = excluded.last_seen_ts, response_blob = coalesce(excluded.response_blob, response_blob)",
            [(k, now, now, blob, dsid, task_id, now) for k, blob in rows])

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Txn]:
        """One write transaction holding the committed snapshot as of BEGIN IMMEDIATE."""
        with self._lock:
            with self.write() as conn:
                with dbmod.mapped(self.path):
                    dv = self._data_version_now()
                    if self._state is None or dv != self._data_version:
                        self._state, self._book = self._load()
                        self._data_version = dv
                txn = Txn(self, conn, self._state, dict(self._book))
                yield txn
            if txn.new_state is not None:
                self._state = txn.new_state
                self._book = txn.book

    def record_refusal(self, now: str, type_: str, payload: dict[str, Any], error_class: str) -> None:
        """A refused transition is audited afterwards, in its own transaction."""
        state = self.state()
        book = dict(self._book)
        with self.write() as conn:
            p = state.pipeline
            self.append_audit(conn, book, now, type_, payload, task_id=p.get("task_id"),
                              dsid=p.get("driver_state_id"), verdict="error", error_class=error_class)
            if state.exists:
                conn.execute("UPDATE driver_state SET audit_head = ?, audit_rows = ? WHERE id = 1",
                             (book["audit_head"], book["audit_rows"]))
        self._book = book

    # ---------------------------------------------------------------- driver-owned rows
    def save_transcript(self, row: dict[str, Any]) -> None:
        """Write a transcript now, in a transaction of its own (one more sync): for a caller with no tick to
        follow. A driver stages them instead (:meth:`stage_transcript`)."""
        self.stage_transcript(row)
        self.flush_staged()

    def stage_transcript(self, row: dict[str, Any]) -> None:
        """Queue a transcript for the next commit: the delivery tick that follows a spawn carries it, so a
        spawn costs one sync, not two. Safe from any thread (no connection is touched here); a store closed
        with transcripts still queued writes them then."""
        values = (row["agent_run_id"], row["agent"], row["phase"], row["model"], codec.pack(row["prompt"][:100_000]),
                  codec.pack(row["output"][:100_000]), _dump(row.get("files") or {}), _dump(row.get("usage") or {}),
                  row.get("cost_usd"), row.get("duration_ms"), row["recorded_at"])
        with self._staged_lock:
            self._staged.append(values)

    def flush_staged(self) -> None:
        """Commit queued transcripts now (nothing to do when none are queued)."""
        if self._staged:
            with self.write():
                pass

    def _take_staged(self) -> list[tuple]:
        with self._staged_lock:
            staged, self._staged = self._staged, []
        return staged

    def _restage(self, staged: list[tuple]) -> None:
        if staged:
            with self._staged_lock:
                self._staged[:0] = staged

    # ---------------------------------------------------------------- audit & ticks
    def audit_rows(self) -> list[tuple]:
        with dbmod.mapped(self.path):
            return self.conn.execute(
                "SELECT id, ts, type, task_id, driver_state_id, payload, verdict, error_class, prev_hash, hash "
                "FROM audit ORDER BY id").fetchall()

    def ticks(self) -> list[dict[str, Any]]:
        with dbmod.mapped(self.path):
            rows = self.conn.execute("SELECT payload FROM audit WHERE type = 'tick' ORDER BY id").fetchall()
        return [json.loads(r[0]) for r in rows]

    def verify_chain(self):
        """The audit chain, its anchors and the state digest, read in one transaction."""
        with self._lock, dbmod.mapped(self.path):
            conn = self.conn
            conn.execute("BEGIN")
            try:
                return integrity.check_store(conn)
            finally:
                conn.execute("COMMIT")


def open_existing(path: Path, *, busy_ms: int = dbmod.DEFAULT_BUSY_MS) -> StateStore:
    if not Path(path).exists():
        raise StateError(f"no state file at {path}", code="NO_ACTIVE_TASK")
    return StateStore(path, busy_ms=busy_ms, create=False)


class Txn:
    """What a caller may do inside ``StateStore.transaction()``."""

    def __init__(self, store: StateStore, conn: sqlite3.Connection, state: TaskState, book: dict[str, Any]) -> None:
        self.store = store
        self.conn = conn
        self.state = state
        self.book = book
        self.new_state: TaskState | None = None

    def ledger_response(self, keys: list[str]) -> dict[str, Any] | None:
        if not keys:
            return None
        marks = ",".join("?" * len(keys))
        q = f"SELECT response_blob FROM kernel_idempotency_ledger WHERE key IN ({marks}) AND response_blob IS NOT NULL"
        row = self.conn.execute(q, keys).fetchone()
        return json.loads(row[0]) if row else None

    def write_tick(self, *, after: TaskState, ops: list[tuple], now: str, audit: list[tuple[str, dict[str, Any]]],
                   tick_payload: dict[str, Any], ledger_keys: list[str], response: dict[str, Any],
                   extra_ledger: list[str], crash: Callable[[str], None] | None = None) -> dict[str, Any]:
        crash = crash or (lambda _p: None)
        store, conn, book = self.store, self.conn, self.book
        book["tick_seq"] += 1
        # the ops' content, canonicalised: a row's key order depends on whether the snapshot was built in
        # memory or reloaded from the DB (another connection committed), so repr(ops) is not stable
        ops_text = _OPS.encode(ops)
        h = hashlib.sha256((book["state_hash"] + ops_text).encode()).hexdigest()
        book["state_hash"] = h
        tick_payload = {**tick_payload, "seq": book["tick_seq"], "state_hash": h,
                        integrity.DIGEST_KEY: store.digest(after)}
        p = after.pipeline
        task_id, dsid = p.get("task_id"), p.get("driver_state_id")
        if audit:  # the kernel's own audit entries travel inside the tick row: one row per tick
            tick_payload["notes"] = [{"type": t, **p} for t, p in audit]
        store.append_audit(conn, book, now, "tick", tick_payload, task_id=task_id, dsid=dsid)
        crash("audit-written")
        store.apply_ops(conn, self.state, after, ops, book)
        crash("state-written")
        blob = canonical(response)
        store.put_ledger(conn, [(k, blob) for k in ledger_keys] + [(k, None) for k in extra_ledger], now, dsid,
                         task_id)
        crash("ledger-written")
        self.new_state = after
        return tick_payload
