"""The tick: ``tick(bundle, state, event, now, ids) -> Tick``.

Pure. Applies one event to a copy of the snapshot, interprets stages until the machine needs
the world (a spawn, a human, the end) and returns the typed mutations, the audit entries and
the directive. Invariants are checked in memory at every stage boundary of the tick (the rules whose inputs
changed); a violation raises ``InvariantViolation`` and the caller commits nothing.

The parts: ``ops`` (the recorder), ``flow`` (stage lookup, phases, resume), ``stages`` (the stage
interpreters and ``run_fsm``), ``handlers`` (one per event kind).
"""

from __future__ import annotations

from collections.abc import Sequence

from . import invariants as invmod
from . import now as nowmod
from .errors import KernelError
from .flow import complete_directive, resume_directive
from .handlers import KERNEL_OUTPUT_KINDS, on_answer, on_create, on_recover, on_results
from .ids import IdSource
from .ops import KERNEL_AUDIT_TYPES, Ops, Tick
from .stages import run_fsm
from .state import TaskState
from .types import AgentResult, AgentResults, Bundle, Create, Event, Invariant, Recover, UserAnswer

__all__ = ["KERNEL_AUDIT_TYPES", "KERNEL_OUTPUT_KINDS", "Ops", "Tick", "resume_directive", "run_fsm", "tick"]


def tick(bundle: Bundle, state: TaskState, event: Event, now: str, ids: IdSource,
         invariants: Sequence[Invariant] | invmod.InvariantSet | None = None, keys: Sequence[str] = ()) -> Tick:
    """One transition. ``state`` is not modified; the returned ``Tick.state`` is the new one.
    ``keys`` are the event's ledger keys, which the caller commits with the tick."""
    if not nowmod.is_now_token(now):
        raise KernelError("NOW_TOKEN_INVALID", f"not a NowToken: {now!r}")
    invs = invariants if invariants is not None else invmod.all_for(bundle.invariants)
    ops = Ops(bundle, state.clone(), now, ids, invs)
    if keys:
        ops.state.ledger_keys = ops.state.ledger_keys | frozenset(keys)
        ops.tick.touched.add("ledger")
        ops._stage_touched.add("ledger")
    if isinstance(event, Create):
        directive = on_create(ops, event)
    elif not state.exists:
        raise KernelError("NO_ACTIVE_TASK", "there is no task in this project")
    elif isinstance(event, AgentResult):
        directive = on_results(ops, (event,))
    elif isinstance(event, AgentResults):
        directive = on_results(ops, event.results)
    elif isinstance(event, UserAnswer):
        directive = on_answer(ops, event)
    elif isinstance(event, Recover):
        directive = on_recover(ops, event)
    else:
        if state.status != "in_progress":
            directive = complete_directive(state, state.pipeline.get("verdict"))
        else:
            directive = resume_directive(bundle, state) or run_fsm(ops)
    ops.checkpoint()
    ops.tick.directive = directive
    return ops.tick
