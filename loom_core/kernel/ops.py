"""The Ops recorder: the one façade step bodies and the interpreter write through.

Every write is a typed op, applied to the working snapshot at once and recorded on the ``Tick``
for the store; invariants are checked at each stage boundary (``Ops.checkpoint``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from . import invariants as invmod
from . import now as nowmod
from .errors import InvariantViolation, KernelError
from .ids import IdSource
from .state import TaskState, View
from .types import Bundle, Directive, Invariant

KERNEL_AUDIT_TYPES = frozenset({
    "pipeline_run_task", "pipeline_continue_task", "pipeline_answer", "pipeline_recover",
    "gate-decided", "gate-asked", "phase-settled", "findings-accepted-by-human", "schema-retry",
    "fanout-budget", "flow-switched", "hook-failure", "tool-call", "invariant-refusal",
})


@dataclass
class Tick:
    state: TaskState
    ops: list[tuple] = field(default_factory=list)
    audit: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    ledger: list[str] = field(default_factory=list)  # extra ledger keys written by this tick
    directive: Directive | None = None
    touched: set[str] = field(default_factory=set)


class Ops:
    """The façade step bodies and the interpreter write through: every write is a typed op,
    applied to the working snapshot at once and recorded for the store."""

    def __init__(self, bundle: Bundle, state: TaskState, now: str, ids: IdSource,
                 invariants: Sequence[Invariant] | invmod.InvariantSet) -> None:
        self.bundle = bundle
        self.state = state
        self.now = now
        self.ids = ids
        self.tick = Tick(state=state)
        self.invariants = invariants if isinstance(invariants, invmod.InvariantSet) else invmod.InvariantSet(invariants)
        self.audit_types = KERNEL_AUDIT_TYPES | frozenset(bundle.audit_types)
        self._stage_touched: set[str] = set()

    # raw ops ------------------------------------------------------------------
    def _op(self, op: tuple) -> None:
        self.state.apply(op)
        self.tick.ops.append(op)
        self.tick.touched.add(op[1])
        self._stage_touched.add(op[1])

    def set(self, table: str, **fields: Any) -> None:
        self._op(("set", table, fields))

    def put(self, table: str, key: str, row: dict[str, Any]) -> None:
        self._op(("put", table, key, row))

    def delete(self, table: str, key: str) -> None:
        self._op(("del", table, key))

    def add(self, table: str, row: dict[str, Any]) -> None:
        self._op(("add", table, row))

    def ledger(self, key: str) -> None:
        self.tick.ledger.append(key)
        self.state.ledger_keys = self.state.ledger_keys | {key}
        self.tick.touched.add("ledger")
        self._stage_touched.add("ledger")

    # domain ops ---------------------------------------------------------------
    def set_decision(self, key: str, value: Any) -> None:
        self.set("pipeline", decisions={**self.state.decisions, key: value})

    def set_bundle_state(self, key: str, value: Any) -> None:
        self.set("pipeline", bundle_state={**self.state.bundle_state, key: value})

    def set_scratch(self, **values: Any) -> None:
        scratch = dict(self.state.scratch)
        for k, v in values.items():
            if v is None:
                scratch.pop(k, None)
            else:
                scratch[k] = v
        self.set("driver", scratch=scratch)

    def record_files(self, modified: Sequence[str] = (), created: Sequence[str] = ()) -> None:
        p = self.state.pipeline
        fm = list(p.get("files_modified") or [])
        fc = list(p.get("files_created") or [])
        changed = False
        for src, dst in ((modified, fm), (created, fc)):
            for f in src:
                if f not in dst:
                    dst.append(f)
                    changed = True
        if changed:
            self.set("pipeline", files_modified=fm, files_created=fc)

    def record_finding(self, agent: str, phase: str, finding: dict[str, Any], origin: str = "code") -> str:
        fid = f"f-{nowmod.day(self.now)}-{self.ids.hex(6)}"
        row = {
            "id": fid, "task_id": self.state.pipeline.get("task_id"), "agent": agent,
            "iteration": phase_round(self.state, phase), "phase": phase,
            "file": finding.get("file"), "line_start": finding.get("line_start"),
            "line_end": finding.get("line_end"), "severity": finding["severity"],
            "category": finding.get("category") or "general", "summary": finding.get("summary") or "",
            "evidence_excerpt": finding.get("evidence_excerpt"), "suggested_fix": finding.get("suggested_fix"),
            "status": "open", "recorded_at": self.now, "superseded_by_iteration": None, "origin": origin,
        }
        self.put("findings", fid, row)
        return fid

    def update_finding_status(self, fid: str, status: str) -> None:
        row = self.state.findings.get(fid)
        if row is not None and row["status"] != status:
            self.put("findings", fid, {**row, "status": status})

    def audit(self, type_: str, payload: dict[str, Any] | None = None) -> None:
        if type_ not in self.audit_types:
            raise KernelError("VOCAB_UNKNOWN", f"audit type '{type_}' is not in the vocabulary")
        self.tick.audit.append((type_, payload or {}))

    # invariants -----------------------------------------------------------------
    def checkpoint(self) -> None:
        """Check, at a stage boundary, the rules whose inputs changed since the last boundary.

        A tick commits as one transaction, but every stage boundary inside it is a state the
        machine passed through (the reference commits each one); a rule broken at any of them
        vetoes the whole tick, even if a later stage would have hidden the breach (e.g. a
        walk-back superseding the finding an acceptance PASS was given over)."""
        touched = self._stage_touched | ({"now"} if self.state.pending else set())
        self._stage_touched = set()
        if not touched:
            return
        violations = invmod.check(View(self.state, self.now, self.bundle), self.invariants, touched)
        if violations:
            raise InvariantViolation(violations)

    def view(self) -> View:
        return View(self.state, self.now, self.bundle)


def phase_round(state: TaskState, phase: str) -> int:
    return int(state.scratch.get(f"phase_iter_{phase}", 1))

