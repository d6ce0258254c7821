"""The stage interpreters (spawn, fan-out, gate, step, finalize) and ``run_fsm``, the loop that
runs them until the machine needs the world."""

from __future__ import annotations

from typing import Any

from . import gates as gatesmod
from . import invariants as invmod
from . import now as nowmod
from .errors import KernelError
from .flow import (
    complete_directive,
    current_flow,
    end_task,
    progress_phases,
    resolve_model,
    stage_at,
    sweep,
    work_result,
)
from .ops import Ops, phase_round
from .state import View
from .types import (
    ADVANCE,
    Directive,
    Fanout,
    Finalize,
    Gate,
    GateDecision,
    Intent,
    Spawn,
    StageResult,
    Step,
    complete,
    halt,
)

DUPLICATE_WINDOW_S = 5 * 60
MAX_STAGES_PER_TICK = 500


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
                         options=gate.options or gatesmod.DEFAULT_OPTIONS)
    approved = decision.type == "auto-approve"
    ops.put("gates", gate.name, {"name": gate.name, "status": "auto-approved" if approved else "auto-rejected",
                                 "decided_by": "auto-policy", "feedback": decision.feedback or decision.reason,
                                 "decided_at": ops.now})
    ops.audit("gate-decided", {"gate": gate.name, "role": role, "decision": decision.type, "reason": decision.reason})
    answer = {"decision": "accept"} if approved else {
        "decision": "reject", "reject_intent": decision.reject_intent or "revise",
        "message": decision.feedback or decision.reason}
    return resume_gate(ops, gate, answer)


def resume_gate(ops: Ops, gate: Gate, answer: dict[str, Any]) -> StageResult:
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
    sweep(ops, "swept by finalize")
    ops.set("pipeline", status="completed", verdict=verdict, work_result=work_result(ops.state), ended_at=ops.now)
    return complete_directive(ops.state, verdict)


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
            return complete_directive(ops.state, ops.state.pipeline.get("verdict"))
        _maybe_switch_flow(ops)
        flow = current_flow(ops.bundle, ops.state)
        idx = ops.state.driver["step_index"]
        stage = stage_at(ops.bundle, ops.state)
        progress_phases(ops, flow, idx, stage)
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
        if apply_stage_result(ops, res, stage):
            continue
        return result_directive(ops, res)
    return Directive("error", code="STAGE_LOOP_LIMIT", message=f"more than {MAX_STAGES_PER_TICK} stages in one tick")


def apply_stage_result(ops: Ops, res: StageResult, stage: Any) -> bool:
    """Apply a stage result; True when the loop should continue."""
    if res.kind == "advance":
        ops.set("driver", step_index=ops.state.driver["step_index"] + 1)
        return True
    if res.kind == "walk_back":
        _walk_back(ops, res.target or "", stage.name if isinstance(stage, Gate) else None)
        return True
    if res.kind == "complete":
        verdict = res.verdict or "rejected"
        end_task(ops, "completed", verdict, f"task ended ({verdict})")
        return False
    return False


def result_directive(ops: Ops, res: StageResult) -> Directive:
    if res.kind == "complete":
        return complete_directive(ops.state, ops.state.pipeline.get("verdict"))
    return Directive("error", code=res.code or "HALTED", message=res.message)

