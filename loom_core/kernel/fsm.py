"""The tick: ``tick(bundle, state, event, now, ids) -> Tick``.

Pure. Applies one event to a copy of the snapshot, interprets stages until the machine needs
the world (a spawn, a human, the end) and returns the typed mutations, the audit entries and
the directive. Invariants are checked in memory at every stage boundary of the tick (the rules whose inputs
changed); a violation raises ``InvariantViolation`` and the caller commits nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from . import gates as gatesmod
from . import invariants as invmod
from . import now as nowmod
from .errors import InvariantViolation, KernelError
from .ids import IdSource
from .parse import Parsed, excerpt, parse_output
from .state import TERMINAL_PHASE, TaskState, View
from .types import (
    ADVANCE,
    AgentResult,
    AgentResults,
    AnswerOption,
    Bundle,
    Create,
    Directive,
    Event,
    Fanout,
    Finalize,
    Gate,
    GateDecision,
    Intent,
    Invariant,
    Recover,
    Spawn,
    StageResult,
    Step,
    UserAnswer,
    complete,
    halt,
)

KERNEL_AUDIT_TYPES = frozenset({
    "pipeline_run_task", "pipeline_continue_task", "pipeline_answer", "pipeline_recover",
    "gate-decided", "gate-asked", "phase-settled", "findings-accepted-by-human", "schema-retry",
    "fanout-budget", "flow-switched", "hook-failure", "tool-call", "invariant-refusal",
})
KERNEL_OUTPUT_KINDS = frozenset({"reviewer", "validator", "classifier", "nonreview"})
DUPLICATE_WINDOW_S = 5 * 60
MAX_STAGES_PER_TICK = 500
DEFAULT_OPTIONS = (
    AnswerOption(("approve", "accept", "yes", "y", "lgtm"), "Approve", "accept"),
    AnswerOption(("revise", "reject", "changes", "rework"), "Request changes", "reject", "revise", True),
    AnswerOption(("abandon", "stop", "cancel"), "Abandon the task", "reject", "abandon"),
)


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


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def phase_round(state: TaskState, phase: str) -> int:
    return int(state.scratch.get(f"phase_iter_{phase}", 1))


def current_flow(bundle: Bundle, state: TaskState) -> tuple[str, ...]:
    name = state.driver.get("flow_name")
    flow = bundle.flows.get(name)
    if flow is None:
        raise KernelError("FLOW_NOT_REGISTERED", f"flow '{name}' is not registered in bundle '{bundle.name}'")
    return flow


def stage_at(bundle: Bundle, state: TaskState) -> Any:
    flow = current_flow(bundle, state)
    idx = state.driver["step_index"]
    if idx >= len(flow):
        raise KernelError("FLOW_OVERFLOW", f"step {idx} is past the end of flow '{state.driver['flow_name']}'")
    stage = bundle.stages.get(flow[idx])
    if stage is None:
        raise KernelError("STAGE_NOT_REGISTERED", f"stage '{flow[idx]}' is not registered")
    return stage


def resolve_model(bundle: Bundle, agent_name: str) -> str:
    agent = bundle.agents[agent_name]
    tier = agent.default_model
    return bundle.default_model_tiers.get(tier, tier) or "default"


def work_result(state: TaskState) -> str:
    return "blocked" if state.count_blocking(origin="code") else "clean"


# ---------------------------------------------------------------------------
# phase progression
# ---------------------------------------------------------------------------

def _settle(ops: Ops, phase: str) -> None:
    row = ops.state.phases.get(phase)
    if not row or row["status"] != "in_progress":
        return
    if any(r["phase"] == phase for r in ops.state.agent_records):
        ops.put("phases", phase, {**row, "status": "completed", "updated_at": ops.now})
    else:
        ops.put("phases", phase, {**row, "status": "skipped", "skipped_reason": "no agents ran in this phase",
                                  "updated_at": ops.now})


def _progress_phases(ops: Ops, flow: tuple[str, ...], idx: int, stage: Any) -> None:
    cur = stage.phase
    if idx > 0:
        prev = ops.bundle.stages.get(flow[idx - 1])
        if prev is not None and prev.phase and prev.phase != cur:
            _settle(ops, prev.phase)
    if cur:
        row = ops.state.phases.get(cur)
        if row and row["status"] in ("pending", "completed"):
            ops.put("phases", cur, {**row, "status": "in_progress", "updated_at": ops.now})


def _sweep(ops: Ops, reason: str) -> None:
    for name, row in list(ops.state.phases.items()):
        if row["status"] not in TERMINAL_PHASE:
            if row["status"] == "in_progress" and any(r["phase"] == name for r in ops.state.agent_records):
                ops.put("phases", name, {**row, "status": "completed", "updated_at": ops.now})
            else:
                ops.put("phases", name, {**row, "status": "skipped", "skipped_reason": reason, "updated_at": ops.now})


def _terminal(ops: Ops, status: str, verdict: str | None, reason: str, **extra: Any) -> None:
    for rid in list(ops.state.pending):
        ops.delete("pending", rid)
    _sweep(ops, reason)
    ops.set("driver", pending_user_answer=None)
    ops.set("pipeline", status=status, verdict=verdict, work_result=work_result(ops.state),
            ended_at=ops.now, **extra)


def _complete_directive(state: TaskState, verdict: str | None) -> Directive:
    summary = f"task complete (verdict={verdict or 'rejected'}, work={state.pipeline.get('work_result')})"
    extra = state.bundle_state.get("completion_summary")
    if extra:
        summary += f" — {extra}"
    return Directive("complete", task_id=state.pipeline.get("task_id"), verdict=verdict or "rejected",
                     summary=summary)


# ---------------------------------------------------------------------------
# stage interpreters
# ---------------------------------------------------------------------------

def _spawn_one(ops: Ops, agent_name: str, phase: str, check_duplicate: bool) -> Intent | None:
    bundle, state = ops.bundle, ops.state
    agent = bundle.agents[agent_name]
    if check_duplicate:
        window_start = nowmod.shift(ops.now, seconds=-DUPLICATE_WINDOW_S)
        for row in state.pending.values():
            if row["agent"] == agent_name and row["phase"] == phase and row["started_at"] > window_start:
                raise KernelError("DUPLICATE_SPAWN", f"agent '{agent_name}' already pending in phase '{phase}'")
    run_id = ops.ids.mint("ar")
    model = resolve_model(bundle, agent_name)
    ops.put("pending", run_id, {"agent_run_id": run_id, "agent": agent_name, "phase": phase, "model": model,
                                "started_at": ops.now})
    ops.ledger(f"provider-call:{run_id}")
    return Intent(agent=agent_name, agent_run_id=run_id, phase=phase, model=model, prompt="",
                  system_prompt=agent.system_prompt, extras=dict(agent.extras))


def _interpret_spawn(ops: Ops, stage: Spawn) -> StageResult | Directive:
    agent = ops.bundle.agents.get(stage.agent)
    if agent is None:
        return halt("AGENT_NOT_REGISTERED", f"agent '{stage.agent}' is not registered")
    view = ops.view()
    if agent.applies_to and not agent.applies_to(view):
        return ADVANCE
    if stage.when and not stage.when(view):
        return ADVANCE
    intent = _spawn_one(ops, stage.agent, stage.phase, check_duplicate=True)
    return Directive("shuttle", intents=(intent,))


def _interpret_fanout(ops: Ops, stage: Fanout) -> StageResult | Directive:
    if not stage.agents:
        return ADVANCE
    key = f"fanout_iter_{stage.name}"
    n = int(ops.state.scratch.get(key, 0))
    cap = min(stage.iteration_budget, 10)
    if n >= cap:
        ops.audit("fanout-budget", {"stage": stage.name, "iterations": n, "action": stage.on_exhaustion})
        if stage.on_exhaustion == "human":
            return halt("FANOUT_ITERATION_BUDGET_EXHAUSTED", f"stage '{stage.name}' ran {n} times")
        if stage.on_exhaustion == "abandon":
            return complete("rejected")
        return ADVANCE
    ops.set_scratch(**{key: n + 1})
    view = ops.view()
    kind = ops.state.decisions.get("change_kind")
    intents = []
    for name in stage.agents:
        agent = ops.bundle.agents.get(name)
        if agent is None:
            return halt("AGENT_NOT_REGISTERED", f"agent '{name}' is not registered")
        if stage.filter_by_change_kind and isinstance(kind, str) and agent.relevant_for_change_kinds is not None \
                and kind not in agent.relevant_for_change_kinds:
            continue
        if agent.applies_to and not agent.applies_to(view):
            continue
        intents.append(_spawn_one(ops, name, stage.phase, check_duplicate=False))
    if not intents:
        return ADVANCE
    return Directive("shuttle", intents=tuple(intents))


def _stall_breaker(ops: Ops, decision: GateDecision) -> GateDecision:
    live = [f for f in ops.state.live_findings(severity="blocking", origin="code")]
    fp = sorted(f"{f['category']}|{f.get('file')}|{f.get('line_start')}|{f['agent']}" for f in live)
    scratch = ops.state.scratch
    count = int(scratch.get("stall_blocker_count", 0)) + 1 if fp and fp == scratch.get("stall_blocker_fp") else 1
    ops.set_scratch(stall_blocker_fp=fp, stall_blocker_count=count)
    if count >= 2:
        listing = "; ".join(f"{f['category']} {f.get('file') or ''}:{f.get('line_start') or ''} {f['summary']}"
                            for f in live[:5])
        return GateDecision("human-required", reason=f"the same blockers survived {count} rework rounds: {listing}")
    return decision


def _dry_run_approval(ops: Ops, gate: Gate) -> list[invmod.Violation]:
    trial = ops.state.clone()
    trial.apply(("put", "gates", gate.name, {"name": gate.name, "status": "auto-approved",
                                             "decided_by": "auto-policy", "feedback": None, "decided_at": ops.now}))
    return invmod.check(View(trial, ops.now, ops.bundle), ops.invariants.all)


def _gate_message(gate: Gate, view: View) -> str:
    return gate.message(view) if callable(gate.message) else (gate.message or f"gate '{gate.name}'")


def _interpret_gate(ops: Ops, gate: Gate) -> StageResult | Directive:
    bundle = ops.bundle
    role = bundle.gate_roles.get(gate.name, gate.name)
    decision = gatesmod.decide(bundle, ops.view(), gate)
    if decision.type == "auto-reject" and decision.counts_against_replan_cap:
        decision = _stall_breaker(ops, decision)
        if decision.type == "auto-reject":
            row = ops.state.gate_counters.get(role) or {"role": role, "human_revisions": 0, "auto_rejections": 0}
            ops.put("gate_counters", role, {**row, "auto_rejections": int(row["auto_rejections"]) + 1})
    if decision.type == "auto-approve":
        vetoes = _dry_run_approval(ops, gate)
        if vetoes:
            decision = GateDecision("human-required", reason="automatic approval refused by " + "; ".join(
                f"{v.id}: {v.message}" for v in vetoes))
    if decision.type == "human-required":
        gev = ops.ids.mint("gev")
        message = _gate_message(gate, ops.view())
        if decision.reason:
            message = f"{message}\n\nWhy you are asked: {decision.reason}"
        ops.set("driver", pending_user_answer={"gate": gate.name, "message": message, "gate_event_id": gev,
                                               "role": role, "asked_at": ops.now})
        ops.put("gates", gate.name, {"name": gate.name, "status": "pending", "decided_by": None,
                                     "feedback": decision.reason or None, "decided_at": None})
        ops.audit("gate-asked", {"gate": gate.name, "role": role, "gate_event_id": gev, "reason": decision.reason})
        return Directive("ask-user", gate=gate.name, gate_event_id=gev, message=message,
                         options=gate.options or DEFAULT_OPTIONS)
    approved = decision.type == "auto-approve"
    ops.put("gates", gate.name, {"name": gate.name, "status": "auto-approved" if approved else "auto-rejected",
                                 "decided_by": "auto-policy", "feedback": decision.feedback or decision.reason,
                                 "decided_at": ops.now})
    ops.audit("gate-decided", {"gate": gate.name, "role": role, "decision": decision.type, "reason": decision.reason})
    answer = {"decision": "accept"} if approved else {
        "decision": "reject", "reject_intent": decision.reject_intent or "revise",
        "message": decision.feedback or decision.reason}
    return _resume_gate(ops, gate, answer)


def _resume_gate(ops: Ops, gate: Gate, answer: dict[str, Any]) -> StageResult:
    if gate.on_resume is not None:
        res = gate.on_resume(ops.view(), answer)
    elif answer["decision"] in ("accept", "auto-apply"):
        res = ADVANCE
    else:
        res = StageResult("walk_back", target=gate.name)
    if res.kind == "advance":
        ops.set_scratch(open_blockers=None, stall_blocker_fp=None, stall_blocker_count=None, gate_feedback=None)
    elif res.kind not in ("walk_back", "complete", "halt"):
        raise KernelError("UNSUPPORTED_GATE_RESUME_RESULT", f"gate '{gate.name}' resumed with '{res.kind}'")
    return res


def _walk_back(ops: Ops, target: str, from_gate: str | None) -> None:
    flow = current_flow(ops.bundle, ops.state)
    if target not in flow:
        raise KernelError("WALK_BACK_TARGET_NOT_FOUND", f"walk-back target '{target}' is not in the flow")
    t_idx = flow.index(target)
    cur_idx = ops.state.driver["step_index"]
    if from_gate is not None and t_idx <= cur_idx:
        live = ops.state.live_findings(severity="blocking", origin="code")
        ops.set_scratch(open_blockers=[{k: f.get(k) for k in ("file", "line_start", "category", "summary",
                                                             "suggested_fix", "agent")} for f in live] or None)
        phases = []
        for name in flow[t_idx:cur_idx + 1]:
            ph = ops.bundle.stages[name].phase
            if ph and ph not in phases:
                phases.append(ph)
        for ph in phases:
            old = phase_round(ops.state, ph)
            ops.set_scratch(**{f"phase_iter_{ph}": old + 1})
            for f in list(ops.state.findings.values()):
                if f["phase"] == ph and f["status"] == "open" and f.get("superseded_by_iteration") is None \
                        and f["iteration"] <= old:
                    ops.put("findings", f["id"], {**f, "superseded_by_iteration": old + 1})
    ops.set("driver", step_index=t_idx)


def _interpret_step(ops: Ops, stage: Step) -> StageResult:
    if stage.applies_to and not stage.applies_to(ops.view()):
        return ADVANCE
    if stage.run is not None:
        stage.run(ops.view(), ops)
    return ADVANCE


def _finalize(ops: Ops) -> Directive:
    verdict = ops.state.pipeline.get("verdict") or "accepted"
    _sweep(ops, "swept by finalize")
    ops.set("pipeline", status="completed", verdict=verdict, work_result=work_result(ops.state), ended_at=ops.now)
    return _complete_directive(ops.state, verdict)


def _maybe_switch_flow(ops: Ops) -> None:
    cf = ops.bundle.complexity_flows
    if cf is None or ops.state.scratch.get("flow_switched"):
        return
    flow = current_flow(ops.bundle, ops.state)
    if cf.after_stage not in flow or ops.state.driver["step_index"] != flow.index(cf.after_stage) + 1:
        return
    value = ops.state.decisions.get(cf.decision_key)
    target = cf.map.get(value) if isinstance(value, str) else None
    ops.set_scratch(flow_switched=True)
    if target and target in ops.bundle.flows and target != ops.state.driver["flow_name"]:
        ops.set("driver", flow_name=target)
        ops.audit("flow-switched", {"to": target, "decision": value})


def run_fsm(ops: Ops) -> Directive:
    for _ in range(MAX_STAGES_PER_TICK):
        ops.checkpoint()  # the state the previous stage (or the delivery/answer) left
        if ops.state.status != "in_progress":
            return _complete_directive(ops.state, ops.state.pipeline.get("verdict"))
        _maybe_switch_flow(ops)
        flow = current_flow(ops.bundle, ops.state)
        idx = ops.state.driver["step_index"]
        stage = stage_at(ops.bundle, ops.state)
        _progress_phases(ops, flow, idx, stage)
        if isinstance(stage, Spawn):
            res = _interpret_spawn(ops, stage)
        elif isinstance(stage, Fanout):
            res = _interpret_fanout(ops, stage)
        elif isinstance(stage, Gate):
            res = _interpret_gate(ops, stage)
        elif isinstance(stage, Step):
            res = _interpret_step(ops, stage)
        elif isinstance(stage, Finalize):
            res = _finalize(ops)
        else:
            raise KernelError("STAGE_KIND_UNKNOWN", f"stage '{stage.name}' has an unknown kind")
        if isinstance(res, Directive):
            return res
        if _apply_stage_result(ops, res, stage):
            continue
        return _result_directive(ops, res)
    return Directive("error", code="STAGE_LOOP_LIMIT", message=f"more than {MAX_STAGES_PER_TICK} stages in one tick")


def _apply_stage_result(ops: Ops, res: StageResult, stage: Any) -> bool:
    """Apply a stage result; True when the loop should continue."""
    if res.kind == "advance":
        ops.set("driver", step_index=ops.state.driver["step_index"] + 1)
        return True
    if res.kind == "walk_back":
        _walk_back(ops, res.target or "", stage.name if isinstance(stage, Gate) else None)
        return True
    if res.kind == "complete":
        verdict = res.verdict or "rejected"
        _terminal(ops, "completed", verdict, f"task ended ({verdict})")
        return False
    return False


def _result_directive(ops: Ops, res: StageResult) -> Directive:
    if res.kind == "complete":
        return _complete_directive(ops.state, ops.state.pipeline.get("verdict"))
    return Directive("error", code=res.code or "HALTED", message=res.message)


# ---------------------------------------------------------------------------
# deliveries
# ---------------------------------------------------------------------------

def _persist_result(ops: Ops, res: AgentResult, in_fanout: bool) -> bool:
    """Persist one agent result. Returns True if a schema retry was requested."""
    state, bundle = ops.state, ops.bundle
    pending = state.pending.get(res.agent_run_id)
    if pending is None:
        raise KernelError("PENDING_AGENT_NOT_FOUND", f"no pending agent run '{res.agent_run_id}'")
    agent = bundle.agents.get(pending["agent"])
    if agent is None:
        raise KernelError("AGENT_NOT_REGISTERED", f"agent '{pending['agent']}' is not registered")
    kinds = KERNEL_OUTPUT_KINDS | frozenset(bundle.output_kinds)
    if agent.output_kind not in kinds:
        raise KernelError("VOCAB_UNKNOWN", f"output kind '{agent.output_kind}' is not in the vocabulary")
    phase = pending["phase"]
    for f in res.harness_findings:
        ops.record_finding(agent.name, phase, {**dict(f), "severity": "blocking"}, origin="harness")
    parsed = parse_output(agent.output_kind, res.output)
    if parsed.ok and agent.contract is not None:
        try:
            parsed = Parsed(True, header=agent.contract(parsed.header))
        except ValueError as exc:
            parsed = Parsed(False, failure="schema-field", detail=str(exc), excerpt=excerpt(res.output))
    if not parsed.ok and agent.output_kind not in ("reviewer", "validator"):
        # forensic only: the run is recorded, nothing of the output is merged
        ops.audit("schema-retry", {"agent": agent.name, "agent_run_id": res.agent_run_id, "forensic": True,
                                   "reason": f"{parsed.failure}: {parsed.detail}"})
    retry_key = f"schema_retry_{phase}_{agent.name}"
    if not parsed.ok and agent.output_kind in ("reviewer", "validator"):
        reason = f"{parsed.failure}: {parsed.detail}"
        if not in_fanout and not state.scratch.get(retry_key):
            ops.delete("pending", res.agent_run_id)
            ops.set_scratch(**{retry_key: 1, f"rework_{agent.name}": f"{reason}\nExcerpt: {parsed.excerpt}"})
            ops.audit("schema-retry", {"agent": agent.name, "agent_run_id": res.agent_run_id, "reason": reason})
            return True
        ops.set_scratch(**{retry_key: None, f"rework_{agent.name}": None})
        _add_record(ops, res, pending, agent.output_kind)
        ops.record_finding(agent.name, phase, {
            "severity": "blocking", "category": "unparseable-output", "file": None,
            "summary": f"{agent.name} returned output loom could not read ({reason})",
            "evidence_excerpt": parsed.excerpt}, origin="harness")
        _add_verdict(ops, agent.name, phase, "REQUEST_CHANGES" if agent.output_kind == "reviewer" else "FAIL",
                     [{"severity": "blocking", "category": "unparseable-output"}], f"unreadable output: {reason}")
        return False
    if state.scratch.get(retry_key) or state.scratch.get(f"rework_{agent.name}"):
        ops.set_scratch(**{retry_key: None, f"rework_{agent.name}": None})
    _add_record(ops, res, pending, agent.output_kind)
    header = parsed.header if parsed.ok else {}
    if agent.output_kind in ("reviewer", "validator") and parsed.ok:
        for f in header["findings"]:
            ops.record_finding(agent.name, phase, f)
        verdict = header["verdict"]
        blocking = sum(1 for f in header["findings"] if f["severity"] == "blocking")
        if agent.output_kind == "reviewer" and verdict == "REQUEST_CHANGES" and blocking == 0:
            verdict = "APPROVE"
        _add_verdict(ops, agent.name, phase, verdict, header["findings"],
                     str(header.get("summary_line") or header.get("summary") or "")[:500])
    elif agent.output_kind == "classifier" and parsed.ok:
        merged = dict(state.decisions)
        for k, v in header.items():
            if k not in ("verdict", "summary", "findings"):
                merged[k] = v
        ops.set("pipeline", decisions=merged)
        short = header.get("task_short")
        if isinstance(short, str) and short.strip() and not state.pipeline.get("task_short"):
            ops.set("pipeline", task_short=short.strip()[:120])
    elif agent.output_kind in kinds - KERNEL_OUTPUT_KINDS and parsed.ok:
        ops.set_bundle_state(f"output_{agent.name}", header)
    return False


def _add_record(ops: Ops, res: AgentResult, pending: dict[str, Any], kind: str) -> None:
    ops.delete("pending", res.agent_run_id)
    ops.add("agent_records", {"seq": ops.state.counters["agents_count"] + 1, "phase": pending["phase"], "agent": pending["agent"], "agent_run_id": res.agent_run_id,
                              "model": pending["model"], "output_kind": kind, "tokens_in": res.tokens_in,
                              "tokens_out": res.tokens_out, "tokens_cached": res.tokens_cached,
                              "recorded_at": ops.now})
    c = ops.state.counters
    ops.set("counters", agents_count=c["agents_count"] + 1, total_tokens_in=c["total_tokens_in"] + res.tokens_in,
            total_tokens_out=c["total_tokens_out"] + res.tokens_out,
            total_tokens_cached=c["total_tokens_cached"] + res.tokens_cached)
    ops.record_files(res.files_modified, res.files_created)


def _add_verdict(ops: Ops, agent: str, phase: str, verdict: str, findings: Sequence[dict[str, Any]],
                 summary: str) -> None:
    counts = {s: sum(1 for f in findings if f["severity"] == s) for s in ("blocking", "warn", "info")}
    ops.add("verdicts", {"phase": phase, "agent": agent, "iteration": phase_round(ops.state, phase),
                         "verdict": verdict, "summary_line": summary, "blocking_issues": counts["blocking"],
                         "warn_issues": counts["warn"], "info_issues": counts["info"],
                         "categories_seen": sorted({f.get("category") or "general" for f in findings}),
                         "recorded_at": ops.now})


def _deliver(ops: Ops, results: Sequence[AgentResult]) -> Directive:
    if ops.state.status != "in_progress":
        raise KernelError("TASK_NOT_IN_PROGRESS", "the task is no longer in progress")
    stage = stage_at(ops.bundle, ops.state)
    in_fanout = isinstance(stage, Fanout) or len(results) > 1
    retry = False
    # canonical order: the records of a batch never depend on the order a transport returned it
    pend = ops.state.pending
    for r in sorted(results, key=lambda r: (pend[r.agent_run_id]["agent"] if r.agent_run_id in pend else "",
                                            r.agent_run_id)):
        retry = _persist_result(ops, r, in_fanout) or retry
    if not ops.state.pending and not retry:
        ops.set("driver", step_index=ops.state.driver["step_index"] + 1)
    elif ops.state.pending:
        return resume_directive(ops.bundle, ops.state)  # siblings still out
    return run_fsm(ops)


def _answer(ops: Ops, ans: UserAnswer) -> Directive:
    state = ops.state
    pua = state.driver.get("pending_user_answer")
    if state.status != "in_progress" or not pua:
        raise KernelError("NO_PENDING_GATE", "there is no gate waiting for an answer")
    if pua["gate_event_id"] != ans.gate_event_id:
        raise KernelError("GATE_EVENT_STALE", f"gate event {ans.gate_event_id} is stale "
                                              f"(the open gate is {pua['gate_event_id']})")
    if ans.decision not in ("accept", "reject", "auto-apply"):
        raise KernelError("ANSWER_INVALID", f"unknown decision '{ans.decision}'")
    gate = ops.bundle.stages.get(pua["gate"])
    if not isinstance(gate, Gate):
        raise KernelError("STAGE_NOT_REGISTERED", f"gate '{pua['gate']}' is not registered")
    role = pua.get("role") or ops.bundle.gate_roles.get(gate.name, gate.name)
    accepted = ans.decision in ("accept", "auto-apply")
    ops.put("gates", gate.name, {"name": gate.name, "status": "approved" if accepted else "rejected",
                                 "decided_by": "human", "feedback": ans.message, "decided_at": ops.now})
    if accepted:
        # the person saw these blockers (code and harness alike) and approved over them
        live = state.live_findings(severity="blocking")
        for f in live:
            ops.update_finding_status(f["id"], "accepted_by_human")
        if live:
            ops.audit("findings-accepted-by-human", {"gate": gate.name, "findings": [f["id"] for f in live]})
        if ans.decision == "auto-apply":
            roles = set(ops.bundle.gate_roles.values())
            ops.set("pipeline", gate_policies={**(state.pipeline.get("gate_policies") or {}),
                                               **{r: "auto" for r in roles}})
    elif (ans.reject_intent or "revise") == "revise":
        row = state.gate_counters.get(role) or {"role": role, "human_revisions": 0, "auto_rejections": 0}
        ops.put("gate_counters", role, {**row, "human_revisions": int(row["human_revisions"]) + 1})
        if ans.message:  # the person's note travels to the agents that redo the work
            ops.set_scratch(gate_feedback={"gate": gate.name, "message": ans.message})
    ops.audit("pipeline_answer", {"gate": gate.name, "decision": ans.decision, "reject_intent": ans.reject_intent,
                                  "message": ans.message})
    ops.set("driver", pending_user_answer=None)
    answer = {"decision": "accept" if accepted else "reject", "reject_intent": ans.reject_intent or
              (None if accepted else "revise"), "message": ans.message}
    res = _resume_gate(ops, gate, answer)
    if _apply_stage_result(ops, res, gate):
        return run_fsm(ops)
    return _result_directive(ops, res)


def _recover(ops: Ops, rec: Recover) -> Directive:
    state = ops.state
    terminal = state.status != "in_progress"
    ops.audit("pipeline_recover", {"choice": rec.choice, "recovery_id": rec.recovery_id})
    if rec.choice in ("abandon", "force-close"):
        if terminal:
            return _complete_directive(state, state.pipeline.get("verdict"))
        if rec.choice == "abandon":
            _terminal(ops, "abandoned", None, "abandoned")
        else:
            _terminal(ops, "completed", "failed_force_closed", "force-closed", pipeline_violation="force-close")
        return _complete_directive(ops.state, ops.state.pipeline.get("verdict"))
    if terminal:
        raise KernelError("RECOVERY_TERMINAL", f"the task already ended ({state.status})")
    if rec.choice == "retry":
        if state.pending:
            raise KernelError("RECOVERY_INVALID", "agents are still pending; use retry-failed or cancel-pending")
        if state.driver.get("pending_user_answer"):
            raise KernelError("RECOVERY_INVALID", "a gate is waiting for your answer; answer it instead")
        return run_fsm(ops)
    if rec.choice == "retry-failed":
        if not state.pending:
            raise KernelError("RECOVERY_INVALID", "nothing is pending to retry")
        return resume_directive(ops.bundle, state)
    if rec.choice == "cancel-pending":
        for rid in list(state.pending):
            ops.delete("pending", rid)
        ops.set("pipeline", pipeline_violation="pending-cancel")
        ops.set("driver", step_index=state.driver["step_index"] + 1)
        return run_fsm(ops)
    raise KernelError("RECOVERY_INVALID", f"unknown recovery choice '{rec.choice}'")


def _create(ops: Ops, ev: Create) -> Directive:
    if ops.state.exists:
        raise KernelError("PROJECT_TASK_ACTIVE", f"the project already holds task {ops.state.pipeline['task_id']}")
    b = ops.bundle
    ops.set("pipeline", schema_version=1, project_dir=ev.project_dir, bundle=b.name, task_id=ev.task_id,
            task=ev.task, task_short=None, driver_state_id=ev.driver_state_id, status="in_progress", verdict=None,
            work_result=None, started_at=ops.now, ended_at=None, gate_policies=dict(ev.gate_policies),
            decisions=dict(ev.initial_decisions), bundle_state={}, files_created=[], files_modified=[],
            pipeline_violation=None)
    ops.set("counters", agents_count=0, total_tokens_in=0, total_tokens_out=0, total_tokens_cached=0)
    ops.set("driver", flow_name=b.default_flow, step_index=0, pending_user_answer=None, scratch={})
    for name in b.phases:
        ops.put("phases", name, {"name": name, "status": "pending", "skipped_reason": None, "extension": None,
                                 "updated_at": ops.now})
    ops.audit("pipeline_run_task", {"task": ev.task, "task_id": ev.task_id})
    return run_fsm(ops)


# ---------------------------------------------------------------------------
# public entry points
# ---------------------------------------------------------------------------

def resume_directive(bundle: Bundle, state: TaskState) -> Directive | None:
    """What to do next without mutating: re-shuttle pending runs (same ids), re-ask an open
    gate (same event id), report a finished task, or None (run the machine)."""
    if not state.exists:
        return None
    if state.status != "in_progress":
        return _complete_directive(state, state.pipeline.get("verdict"))
    if state.pending:
        intents = []
        for row in sorted(state.pending.values(), key=lambda r: r["agent_run_id"]):
            agent = bundle.agents.get(row["agent"])
            intents.append(Intent(agent=row["agent"], agent_run_id=row["agent_run_id"], phase=row["phase"],
                                  model=row["model"], prompt="",
                                  system_prompt=agent.system_prompt if agent else None,
                                  extras=dict(agent.extras) if agent else {}))
        return Directive("shuttle", intents=tuple(intents))
    pua = state.driver.get("pending_user_answer")
    if pua:
        gate = bundle.stages.get(pua["gate"])
        options = (gate.options if isinstance(gate, Gate) and gate.options else DEFAULT_OPTIONS)
        return Directive("ask-user", gate=pua["gate"], gate_event_id=pua["gate_event_id"], message=pua["message"],
                         options=options)
    return None


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
        directive = _create(ops, event)
    elif not state.exists:
        raise KernelError("NO_ACTIVE_TASK", "there is no task in this project")
    elif isinstance(event, AgentResult):
        directive = _deliver(ops, (event,))
    elif isinstance(event, AgentResults):
        directive = _deliver(ops, event.results)
    elif isinstance(event, UserAnswer):
        directive = _answer(ops, event)
    elif isinstance(event, Recover):
        directive = _recover(ops, event)
    else:
        if state.status != "in_progress":
            directive = _complete_directive(state, state.pipeline.get("verdict"))
        else:
            directive = resume_directive(bundle, state) or run_fsm(ops)
    ops.checkpoint()
    ops.tick.directive = directive
    return ops.tick
