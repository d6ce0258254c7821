"""The event handlers: agent results delivered, a gate answered, a recovery chosen, a task created.
Each applies its event through ``Ops`` and hands over to ``run_fsm``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .errors import KernelError
from .flow import complete_directive, end_task, resume_directive, stage_at
from .ops import Ops, phase_round
from .parse import Parsed, excerpt, parse_output
from .stages import apply_stage_result, result_directive, resume_gate, run_fsm
from .types import AgentResult, Create, Directive, Fanout, Gate, Recover, UserAnswer

KERNEL_OUTPUT_KINDS = frozenset({"reviewer", "validator", "classifier", "nonreview"})


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


def on_results(ops: Ops, results: Sequence[AgentResult]) -> Directive:
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


def on_answer(ops: Ops, ans: UserAnswer) -> Directive:
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
    res = resume_gate(ops, gate, answer)
    if apply_stage_result(ops, res, gate):
        return run_fsm(ops)
    return result_directive(ops, res)


def on_recover(ops: Ops, rec: Recover) -> Directive:
    state = ops.state
    terminal = state.status != "in_progress"
    ops.audit("pipeline_recover", {"choice": rec.choice, "recovery_id": rec.recovery_id})
    if rec.choice in ("abandon", "force-close"):
        if terminal:
            return complete_directive(state, state.pipeline.get("verdict"))
        if rec.choice == "abandon":
            end_task(ops, "abandoned", None, "abandoned")
        else:
            end_task(ops, "completed", "failed_force_closed", "force-closed", pipeline_violation="force-close")
        return complete_directive(ops.state, ops.state.pipeline.get("verdict"))
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


def on_create(ops: Ops, ev: Create) -> Directive:
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

