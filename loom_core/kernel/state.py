"""The in-memory task snapshot and the typed mutations a tick produces.

``TaskState`` mirrors the store's tables one to one. Rows are plain dicts that are never
mutated in place: an op replaces a row, so ``clone()`` only copies containers and a rolled
back tick leaves the previous snapshot intact.

Ops (applied identically here and by the store):
  ("set", table, fields)        single-row tables: pipeline, counters, driver
  ("put", table, key, row)      keyed upsert: phases, pending, findings, gates, gate_counters
  ("del", table, key)           keyed delete
  ("add", table, row)           append-only: agent_records, verdicts
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SINGLE = ("pipeline", "counters", "driver")
KEYED = {
    "phases": "name",
    "pending": "agent_run_id",
    "findings": "id",
    "gates": "name",
    "gate_counters": "role",
}
APPEND = ("agent_records", "verdicts")
# Keyed tables are kept in this order in memory, and the store loads them in the same order, so a
# snapshot iterates identically whether it was built tick by tick or reloaded from the database
# (ops produced by iterating a table — a finalize sweep, a walk-back — must not depend on that).
CANONICAL_ORDER = {
    "phases": lambda r: r["name"],
    "pending": lambda r: r["agent_run_id"],
    "findings": lambda r: (r.get("recorded_at") or "", r["id"]),
    "gates": lambda r: r["name"],
    "gate_counters": lambda r: r["role"],
}


def canonical_items(table: str, rows: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    key = CANONICAL_ORDER[table]
    return sorted(rows.items(), key=lambda kv: (key(kv[1]), kv[0]))

TERMINAL_PHASE = ("completed", "skipped")


@dataclass
class TaskState:
    pipeline: dict[str, Any] = field(default_factory=dict)
    counters: dict[str, Any] = field(default_factory=dict)
    driver: dict[str, Any] = field(default_factory=dict)
    phases: dict[str, dict[str, Any]] = field(default_factory=dict)
    pending: dict[str, dict[str, Any]] = field(default_factory=dict)
    findings: dict[str, dict[str, Any]] = field(default_factory=dict)
    gates: dict[str, dict[str, Any]] = field(default_factory=dict)
    gate_counters: dict[str, dict[str, Any]] = field(default_factory=dict)
    agent_records: list[dict[str, Any]] = field(default_factory=list)
    verdicts: list[dict[str, Any]] = field(default_factory=list)
    ledger_keys: frozenset[str] = frozenset()

    @property
    def exists(self) -> bool:
        return bool(self.pipeline)

    def clone(self) -> TaskState:
        return TaskState(
            pipeline=dict(self.pipeline),
            counters=dict(self.counters),
            driver=dict(self.driver),
            phases=dict(self.phases),
            pending=dict(self.pending),
            findings=dict(self.findings),
            gates=dict(self.gates),
            gate_counters=dict(self.gate_counters),
            agent_records=list(self.agent_records),
            verdicts=list(self.verdicts),
            ledger_keys=self.ledger_keys,
        )

    def apply(self, op: tuple) -> None:
        kind, table = op[0], op[1]
        if kind == "set":
            cur = getattr(self, table)
            cur.update(op[2])
        elif kind == "put":
            rows = getattr(self, table)
            key, row = op[2], op[3]
            order = CANONICAL_ORDER.get(table)
            if order is None:
                rows[key] = row
                return
            old = rows.get(key)
            last = next(reversed(rows), None) if old is None else None
            rows[key] = row
            if old is not None and order(old) == order(row):
                return  # same place in the order
            if old is None and (last is None or (order(rows[last]), last) < (order(row), key)):
                return  # a new row sorting last
            ordered = canonical_items(table, rows)
            if [k for k, _ in ordered] != list(rows):
                rows.clear()
                rows.update(ordered)
        elif kind == "del":
            getattr(self, table).pop(op[2], None)
        elif kind == "add":
            getattr(self, table).append(op[2])
        else:  # pragma: no cover - programming error
            raise ValueError(f"unknown op {kind}")

    # ----- convenience reads ------------------------------------------------
    @property
    def status(self) -> str | None:
        return self.pipeline.get("status")

    @property
    def scratch(self) -> dict[str, Any]:
        return self.driver.get("scratch") or {}

    @property
    def decisions(self) -> dict[str, Any]:
        return self.pipeline.get("decisions") or {}

    @property
    def bundle_state(self) -> dict[str, Any]:
        return self.pipeline.get("bundle_state") or {}

    def live_findings(self, *, phase: str | None = None, origin: str | None = None,
                      severity: str | None = None) -> list[dict[str, Any]]:
        out = []
        for f in self.findings.values():
            if f["status"] != "open" or f.get("superseded_by_iteration") is not None:
                continue
            if phase is not None and f["phase"] != phase:
                continue
            if origin is not None and f.get("origin", "code") != origin:
                continue
            if severity is not None and f["severity"] != severity:
                continue
            out.append(f)
        return out

    def count_blocking(self, *, phase: str | None = None, origin: str | None = None) -> int:
        return len(self.live_findings(phase=phase, origin=origin, severity="blocking"))

    def latest_verdict(self, agent: str) -> dict[str, Any] | None:
        for row in reversed(self.verdicts):
            if row["agent"] == agent:
                return row
        return None


class View:
    """Read-only face of a snapshot handed to bundle callables (predicates, policies,
    invariants, step bodies)."""

    __slots__ = ("_s", "now", "bundle")

    def __init__(self, state: TaskState, now: str, bundle: Any = None) -> None:
        self._s = state
        self.now = now
        self.bundle = bundle

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s, name)

    @property
    def state(self) -> TaskState:
        return self._s

    def effective_policy(self, role: str) -> str:
        overrides = self._s.pipeline.get("gate_policies") or {}
        if role in overrides:
            return overrides[role]
        if self.bundle is not None:
            return self.bundle.default_gate_policies.get(role, "human")
        return "human"
