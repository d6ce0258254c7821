"""Where the task stands in its flow: stage lookup, phase progression, the terminal sweep and
the directives that need no mutation (``resume_directive``)."""

from __future__ import annotations

from typing import Any

from . import gates as gatesmod
from .errors import KernelError
from .ops import Ops
from .state import TERMINAL_PHASE, TaskState
from .types import Bundle, Directive, Gate, Intent


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



def settle(ops: Ops, phase: str) -> None:
    row = ops.state.phases.get(phase)
    if not row or row["status"] != "in_progress":
        return
    if any(r["phase"] == phase for r in ops.state.agent_records):
        ops.put("phases", phase, {**row, "status": "completed", "updated_at": ops.now})
    else:
        ops.put("phases", phase, {**row, "status": "skipped", "skipped_reason": "no agents ran in this phase",
                                  "updated_at": ops.now})


def progress_phases(ops: Ops, flow: tuple[str, ...], idx: int, stage: Any) -> None:
    cur = stage.phase
    if idx > 0:
        prev = ops.bundle.stages.get(flow[idx - 1])
        if prev is not None and prev.phase and prev.phase != cur:
            settle(ops, prev.phase)
    if cur:
        row = ops.state.phases.get(cur)
        if row and row["status"] in ("pending", "completed"):
            ops.put("phases", cur, {**row, "status": "in_progress", "updated_at": ops.now})


def sweep(ops: Ops, reason: str) -> None:
    for name, row in list(ops.state.phases.items()):
        if row["status"] not in TERMINAL_PHASE:
            if row["status"] == "in_progress" and any(r["phase"] == name for r in ops.state.agent_records):
                ops.put("phases", name, {**row, "status": "completed", "updated_at": ops.now})
            else:
                ops.put("phases", name, {**row, "status": "skipped", "skipped_reason": reason, "updated_at": ops.now})


def end_task(ops: Ops, status: str, verdict: str | None, reason: str, **extra: Any) -> None:
    for rid in list(ops.state.pending):
        ops.delete("pending", rid)
    sweep(ops, reason)
    ops.set("driver", pending_user_answer=None)
    ops.set("pipeline", status=status, verdict=verdict, work_result=work_result(ops.state),
            ended_at=ops.now, **extra)


def complete_directive(state: TaskState, verdict: str | None) -> Directive:
    summary = f"task complete (verdict={verdict or 'rejected'}, work={state.pipeline.get('work_result')})"
    extra = state.bundle_state.get("completion_summary")
    if extra:
        summary += f" — {extra}"
    return Directive("complete", task_id=state.pipeline.get("task_id"), verdict=verdict or "rejected",
                     summary=summary)


def resume_directive(bundle: Bundle, state: TaskState) -> Directive | None:
    """What to do next without mutating: re-shuttle pending runs (same ids), re-ask an open
    gate (same event id), report a finished task, or None (run the machine)."""
    if not state.exists:
        return None
    if state.status != "in_progress":
        return complete_directive(state, state.pipeline.get("verdict"))
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
        options = (gate.options if isinstance(gate, Gate) and gate.options else gatesmod.DEFAULT_OPTIONS)
        return Directive("ask-user", gate=pua["gate"], gate_event_id=pua["gate_event_id"], message=pua["message"],
                         options=options)
    return None

