"""Kernel invariants: pure rules over a proposed post-transition state.

Each rule declares the state roots it reads; ``check`` skips rules none of whose roots were
touched by the transition (their verdict cannot have changed since the last commit, which
passed them). ``full=True`` runs every rule (replay, verification).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from . import now as nowmod
from .state import TERMINAL_PHASE, View
from .types import Invariant

PHASE_STATUSES = ("pending", "in_progress", "completed", "skipped")
LEDGER_OPS = (
    "task-create", "agent-result", "user-answer", "recovery", "side-effect-hook",
    "provider-call", "provider-stream-resume", "metric-finalize", "mcp-tool-call",
)
ZOMBIE_SECONDS = 50 * 60


@dataclass(frozen=True)
class Violation:
    id: str
    message: str


def _schema_state(v: View) -> str | None:
    p = v.pipeline
    if not p:
        return None
    for key in ("bundle", "task", "driver_state_id"):
        if not p.get(key):
            return f"pipeline_state.{key} is empty"
    if not nowmod.is_now_token(p.get("started_at")):
        return f"started_at {p.get('started_at')!r} is not an ISO-8601 UTC NowToken"
    if p.get("ended_at") is not None and not nowmod.is_now_token(p["ended_at"]):
        return f"ended_at {p.get('ended_at')!r} is not an ISO-8601 UTC NowToken"
    return None


def _inv001(v: View) -> str | None:
    if v.decisions.get("complexity") in ("medium", "complex") and v.counters.get("agents_count", 0) == 0:
        done = [n for n, p in v.phases.items() if p["status"] == "completed"]
        if done:
            return f"complexity {v.decisions['complexity']} but phase '{done[0]}' completed with no agent run"
    return None


def _inv002(v: View) -> str | None:
    ran: set[str] | None = None  # the phases agents ran in, gathered once (not once per phase)
    for name, p in v.phases.items():
        if p["status"] == "completed" and not (p.get("extension") or {}).get("allow_empty"):
            if ran is None:
                ran = {r["phase"] for r in v.agent_records}
            if name not in ran:
                return f"phase '{name}' is completed but no agent ran in it"
    return None


def _inv003(v: View) -> str | None:
    for name, p in v.phases.items():
        if p["status"] == "skipped" and not p.get("skipped_reason"):
            return f"phase '{name}' is skipped without a reason"
    return None


def _inv004(v: View) -> str | None:
    if len(v.verdicts) > v.counters.get("agents_count", 0):
        return f"{len(v.verdicts)} verdict rows but only {v.counters.get('agents_count', 0)} agent runs"
    return None


def _inv007(v: View) -> str | None:
    if v.pipeline.get("verdict") is None:
        return None
    for name, p in v.phases.items():
        if p["status"] not in TERMINAL_PHASE:
            return f"verdict set while phase '{name}' is still {p['status']}"
    return None


def _inv008(v: View) -> str | None:
    if v.pipeline.get("verdict") != "accepted":
        return None
    live = v.state.live_findings(severity="blocking")
    if live:
        f = live[0]
        where = f" at {f['file']}:{f['line_start']}" if f.get("file") else ""
        return f"cannot accept while {len(live)} blocking finding(s) are open (first: {f['category']}{where})"
    return None


def _inv010(v: View) -> str | None:
    for name, p in v.phases.items():
        if p["status"] not in PHASE_STATUSES:
            return f"phase '{name}' has unknown status {p['status']!r}"
    return None


def _inv011(v: View) -> str | None:
    for name, p in v.phases.items():
        if p["status"] == "pending":
            continue
        for pre in (p.get("extension") or {}).get("prereqs", []):
            if v.phases.get(pre, {}).get("status") not in TERMINAL_PHASE:
                return f"phase '{name}' started before its prerequisite '{pre}' settled"
    return None


def _inv012(v: View) -> str | None:
    for row in v.pending.values():
        ph = v.phases.get(row["phase"])
        if ph and ph["status"] in TERMINAL_PHASE:
            return f"phase '{row['phase']}' is {ph['status']} but agent run {row['agent_run_id']} is pending in it"
    return None


_well_formed: frozenset[str] = frozenset()  # the last key set found well-formed: a memo of this pure check


def _inv013(v: View) -> str | None:
    """Every tick adds keys to a task's ledger; only keys not in the last set found well-formed are
    parsed, so the check costs the new keys, not the whole (growing) ledger."""
    global _well_formed
    keys = v.ledger_keys
    for key in keys - _well_formed:
        op, sep, suffix = key.partition(":")
        if not sep or op not in LEDGER_OPS or not suffix:
            return f"ledger key {key!r} is not <known op>:<suffix>"
    _well_formed = keys if isinstance(keys, frozenset) else frozenset(keys)
    return None


def _inv014(v: View) -> str | None:
    for run_id in v.pending:
        if f"agent-result:{run_id}" in v.ledger_keys:
            return f"agent run {run_id} has a delivered result but is still pending"
    return None


def _inv015(v: View) -> str | None:
    for run_id, row in v.pending.items():
        if f"provider-call:{run_id}" not in v.ledger_keys \
                and nowmod.seconds_between(row["started_at"], v.now) > ZOMBIE_SECONDS:
            return f"agent run {run_id} pending over 50 min with no recorded dispatch"
    return None


KERNEL_INVARIANTS: tuple[Invariant, ...] = (
    Invariant("INV_SCHEMA_STATE", ("pipeline",), _schema_state, "identity columns present, timestamps are NowTokens"),
    Invariant("INV_001", ("pipeline", "counters", "phases"), _inv001, "no completed phase of a non-trivial task without agents"),
    Invariant("INV_002", ("phases", "agent_records"), _inv002, "a completed phase has an agent record"),
    Invariant("INV_003", ("phases",), _inv003, "a skipped phase has a reason"),
    Invariant("INV_004", ("verdicts", "counters"), _inv004, "no more verdicts than agent runs"),
    Invariant("INV_007", ("pipeline", "phases"), _inv007, "a verdict only once every phase settled"),
    Invariant("INV_008", ("pipeline", "findings"), _inv008, "no acceptance over an open blocking finding"),
    Invariant("INV_010", ("phases",), _inv010, "phase status is one of four values"),
    Invariant("INV_011", ("phases",), _inv011, "a phase starts only after its prerequisites settle"),
    Invariant("INV_012", ("phases", "pending"), _inv012, "a settled phase holds no pending agent"),
    Invariant("INV_013", ("ledger",), _inv013, "ledger keys are <known op>:<suffix>"),
    Invariant("INV_014", ("pending", "ledger"), _inv014, "a delivered agent run is not pending"),
    Invariant("INV_015", ("pending", "ledger", "now"), _inv015, "a long-pending agent has a recorded dispatch"),
)


class InvariantSet:
    """Invariants indexed by the roots they read, so a transition runs only the rules whose
    inputs it touched (``*`` readers always run)."""

    def __init__(self, invariants: Iterable[Invariant]) -> None:
        self.all = tuple(invariants)
        always = frozenset(i for i, inv in enumerate(self.all) if "*" in inv.reads)
        by_root: dict[str, set[int]] = {}
        for i, inv in enumerate(self.all):
            for root in inv.reads:
                by_root.setdefault(root, set()).add(i)
        self._always = always
        self._by_root = {root: frozenset(ix) for root, ix in by_root.items()}
        self._cache: dict[frozenset[str], tuple[Invariant, ...]] = {}

    def selected(self, touched: Iterable[str]) -> tuple[Invariant, ...]:
        key = touched if isinstance(touched, frozenset) else frozenset(touched)
        sel = self._cache.get(key)
        if sel is None:
            chosen = set(self._always)
            for root in key:
                chosen |= self._by_root.get(root, frozenset())
            sel = self._cache[key] = tuple(self.all[i] for i in sorted(chosen))
        return sel


def check(view: View, invariants: Iterable[Invariant] | InvariantSet,
          touched: set[str] | None = None) -> list[Violation]:
    """Run ``invariants``; with ``touched``, only those reading a touched root (``*`` always)."""
    if touched is None:
        chosen = invariants.all if isinstance(invariants, InvariantSet) else tuple(invariants)
    else:
        iset = invariants if isinstance(invariants, InvariantSet) else InvariantSet(invariants)
        chosen = iset.selected(touched)
    out: list[Violation] = []
    for inv in chosen:
        msg = inv.check(view)
        if msg:
            out.append(Violation(inv.id, msg))
    return out


def all_for(bundle_invariants: Sequence[Invariant], extra: Sequence[Invariant] = ()) -> tuple[Invariant, ...]:
    return tuple(KERNEL_INVARIANTS) + tuple(bundle_invariants) + tuple(extra)
