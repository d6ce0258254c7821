"""Engine: the boundary every surface talks to.

Each call is one ``BEGIN IMMEDIATE`` transaction that checks the idempotency ledger first,
runs one kernel tick on the committed snapshot and co-commits the mutations, the audit rows,
the tick log and the ledger rows. A duplicate delivery returns the stored response verbatim,
flagged ``replayed``, and ticks nothing.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loom_core.bundles import load_bundle
from loom_core.crash import crashpoint
from loom_core.engine.clock import Clock, SystemClock
from loom_core.errors import InvariantViolation, KernelRefusal, NoActiveTask
from loom_core.kernel import codec, fsm
from loom_core.kernel import invariants as invmod
from loom_core.kernel.ids import IdSource, task_id_for, task_suffix
from loom_core.kernel.now import day
from loom_core.kernel.prompt import render
from loom_core.kernel.state import TaskState
from loom_core.kernel.types import (
    Advance,
    AgentResult,
    AgentResults,
    Bundle,
    Create,
    Directive,
    Event,
    Intent,
    Invariant,
    Recover,
    UserAnswer,
)
from loom_core.store import db as dbmod
from loom_core.store.state import StateStore


@dataclass
class Response:
    wire: dict[str, Any]
    directive: Directive | None = None
    replayed: bool = False
    seq: int | None = None

    @property
    def kind(self) -> str:
        return self.wire["directive"]["kind"]


@dataclass
class Refusal:
    """A transition the invariants refused (already audited)."""

    violations: list[Any] = field(default_factory=list)


def random_id() -> str:
    """The default id source: a random UUID as text."""
    return str(uuid.uuid4())


def sequential_ids(start: int = 1) -> Callable[[], str]:
    """An id source counting up (``00000000-0000-0000-0000-000000000001``, …), for reproducible runs."""
    counter = itertools.count(start)
    return lambda: str(uuid.UUID(int=next(counter)))


class Engine:
    """``new_id`` mints the ids the engine and its driver invent outside the kernel (driver state id,
    idempotency and recovery keys, failed-attempt transcripts): a random UUID by default, a fixed
    sequence for reproducible pictures and tests."""

    def __init__(self, project: Path | str, *, bundle: Bundle | None = None, clock: Clock | None = None,
                 busy_ms: int = dbmod.DEFAULT_BUSY_MS, extra_invariants: Sequence[Invariant] = (),
                 store: StateStore | None = None, create: bool = True,
                 new_id: Callable[[], str] = random_id) -> None:
        self.project = Path(project).resolve()
        if store is None:
            dbmod.check_kind(dbmod.state_path(self.project))  # lstat first: never open a FIFO, name a dead link
        if store is None and not create and not dbmod.state_path(self.project).exists():
            raise NoActiveTask(f"no active task in {self.project}")
        self.store = store or StateStore.for_project(self.project, busy_ms=busy_ms, create=create)
        self.clock = clock or SystemClock()
        self.new_id = new_id
        self._bundle = bundle
        self.extra_invariants = tuple(extra_invariants)
        self._invsets: dict[str, invmod.InvariantSet] = {}

    def close(self) -> None:
        self.store.close()

    def _no_task(self) -> NoActiveTask:
        from loom_core.store.slot import lost_task

        lost = lost_task(self.project)
        return NoActiveTask(lost or f"no active task in {self.project}", code="TASK_STATE_LOST" if lost else None)

    def rotate(self, *, reason: str = "auto-rotate", force: bool = False) -> Path | None:
        """Archive the slot's task into .loom/history and reopen an empty store."""
        from loom_core.store.archive import archive

        dest = archive(self.project, reason=reason, now=self.clock.now(), force=force, store=self.store)
        self.store = StateStore.for_project(self.project, busy_ms=self.store.busy_ms)
        return dest

    # ------------------------------------------------------------------ reads
    def state(self) -> TaskState:
        return self.store.state()

    def bundle_for(self, state: TaskState) -> Bundle:
        name = state.pipeline.get("bundle")
        if self._bundle is not None and (name is None or name == self._bundle.name):
            return self._bundle
        if name is None:
            raise NoActiveTask(f"no active task in {self.project}")
        self._bundle = load_bundle(name)
        return self._bundle

    @property
    def bundle(self) -> Bundle:
        return self.bundle_for(self.state())

    def invariants(self, bundle: Bundle) -> invmod.InvariantSet:
        cached = self._invsets.get(bundle.name)
        if cached is None:
            cached = self._invsets[bundle.name] = invmod.InvariantSet(
                invmod.all_for(bundle.invariants, self.extra_invariants))
        return cached

    def render_intent(self, intent: Intent, state: TaskState | None = None) -> Intent:
        """Fill the prompt from current state (prompts are never stored, only re-rendered)."""
        state = state or self.state()
        bundle = self.bundle_for(state)
        agent = bundle.agents[intent.agent]
        return Intent(agent=intent.agent, agent_run_id=intent.agent_run_id, phase=intent.phase, model=intent.model,
                      prompt=render(bundle, state, agent), system_prompt=intent.system_prompt,
                      extras={**intent.extras, "template": agent.name})

    def resume_directive(self) -> Directive | None:
        state = self.state()
        if not state.exists:
            return None
        return fsm.resume_directive(self.bundle_for(state), state)

    # ------------------------------------------------------------------ writes
    def create(self, task: str, *, bundle: Bundle | None = None, client_key: str | None = None,
               gate_policies: dict[str, str] | None = None, initial_decisions: dict[str, Any] | None = None,
               ) -> Response:
        if bundle is not None:
            self._bundle = bundle
        if self._bundle is None:
            raise KernelRefusal("no bundle chosen for the new task", code="NO_ENABLED_BUNDLE")
        key = f"task-create:{client_key or 'cidem-' + self.new_id()}"
        probe_now = self.clock.now()
        dsid, task_id = self._mint_task_id(task, day(probe_now))
        event = Create(task=task, task_id=task_id,
                       driver_state_id=dsid, project_dir=str(self.project),
                       gate_policies=dict(gate_policies or {}), initial_decisions=dict(initial_decisions or {}))
        resp = self._transact(event, [key], bundle=self._bundle, now=probe_now)
        task_id = self.store.state().pipeline.get("task_id")
        if task_id:
            from loom_core.store.slot import mark

            mark(self.project, task_id)
        return resp

    def _mint_task_id(self, task: str, today: str) -> tuple[str, str]:
        """A fresh driver_state_id and the task id derived from it, never one the project's history holds
        (so ``loom/<task_id>`` names a new branch and every archive has its own id)."""
        from loom_core.store.archive import history

        taken = {str(e.get("task_id")) for e in history(self.project)}
        while True:
            dsid = f"d-{self.new_id()}"
            task_id = task_id_for(today, task, self._bundle.task_id_prefix, task_suffix(dsid))
            if task_id not in taken:
                return dsid, task_id

    def deliver(self, result: AgentResult | Sequence[AgentResult]) -> Response:
        if isinstance(result, AgentResult):
            return self._transact(result, [f"agent-result:{result.agent_run_id}"])
        results = tuple(result)
        return self._transact(AgentResults(results), [f"agent-result:{r.agent_run_id}" for r in results])

    def answer(self, gate_event_id: str, decision: str, *, reject_intent: str | None = None,
               message: str | None = None) -> Response:
        return self._transact(UserAnswer(gate_event_id, decision, reject_intent, message),
                              [f"user-answer:{gate_event_id}"])

    def recover(self, choice: str, recovery_id: str | None = None) -> Response:
        state = self.state()
        if not state.exists:
            raise self._no_task()
        rid = recovery_id or f"rec-{self.new_id()}"
        dsid = state.pipeline["driver_state_id"]
        return self._transact(Recover(choice, rid), [f"recovery:{dsid}:{choice}:{rid}"])

    def advance(self) -> Response:
        """Resume: re-shuttle pending runs / re-ask an open gate without ticking, else tick."""
        state = self.state()
        if not state.exists:
            raise self._no_task()
        d = fsm.resume_directive(self.bundle_for(state), state)
        if d is not None:
            return Response({"directive": d.to_wire()}, d, replayed=False)
        return self._transact(Advance(), [])

    def apply_recorded(self, event: Event, keys: list[str], now: str, bundle: Bundle | None = None) -> Response:
        """Re-apply a recorded event at its recorded NowToken (replay)."""
        return self._transact(event, keys, bundle=bundle, now=now)

    # ------------------------------------------------------------------ core
    def _transact(self, event: Event, keys: list[str], *, bundle: Bundle | None = None,
                  now: str | None = None) -> Response:
        now = now or self.clock.now()
        crashpoint("before-tx")
        try:
            with self.store.transaction() as txn:
                stored = txn.ledger_response(keys)
                if stored is not None:
                    return Response(stored, None, replayed=True, seq=stored.get("seq"))
                state = txn.state
                b = bundle or self.bundle_for(state)
                dsid = event.driver_state_id if isinstance(event, Create) else state.pipeline.get("driver_state_id")
                ids = IdSource(f"{dsid}/{txn.book['tick_seq'] + 1}")
                t = fsm.tick(b, state, event, now, ids, self.invariants(b), keys)
                crashpoint("ticked")
                wire = t.directive.to_wire()
                seq = txn.book["tick_seq"] + 1
                response = {"directive": wire, "seq": seq}
                txn.write_tick(after=t.state, ops=t.ops, now=now, audit=t.audit,
                               tick_payload={"event": codec.encode(event), "keys": keys, "now": now,
                                             "directive": wire},
                               ledger_keys=keys, response=response, extra_ledger=t.ledger, crash=crashpoint)
                crashpoint("pre-commit")
        except InvariantViolation as exc:
            self._record_refusal(now, event, exc)
            raise
        crashpoint("committed")
        return Response(response, t.directive, replayed=False, seq=seq)

    def _record_refusal(self, now: str, event: Event, exc: InvariantViolation) -> None:
        payload = {"event": codec.encode(event),
                   "violations": [{"id": v.id, "message": v.message} for v in exc.violations]}
        self.store.record_refusal(now, "invariant-refusal", payload, "invariant-violation")
