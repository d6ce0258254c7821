"""Byte-stable spawn prompt rendering (pure)."""

from __future__ import annotations

import json

from .state import TaskState
from .types import Agent, Bundle


def _value(v: object) -> str:
    return v if isinstance(v, str) else json.dumps(v, sort_keys=True, ensure_ascii=False)


def active_agents(bundle: Bundle, flow: str) -> list[str]:
    names: set[str] = set()
    for stage_name in bundle.flows.get(flow, ()):
        st = bundle.stages.get(stage_name)
        agent = getattr(st, "agent", None)
        if agent:
            names.add(agent)
        names.update(getattr(st, "agents", ()) or ())
    return sorted(names)


def render(bundle: Bundle, state: TaskState, agent: Agent, extra_sections: dict[str, str] | None = None) -> str:
    p = state.pipeline
    body = agent.prompt
    for key, val in (("{{task}}", p.get("task", "")), ("{{project_dir}}", p.get("project_dir", "")),
                     ("{{task_short}}", p.get("task_short") or "")):
        body = body.replace(key, val or "")
    if agent.system_prompt == "body":
        body = ""
    parts = [body.rstrip()] if body.strip() else []
    if "## Spawn context" in body:
        return "\n".join(parts) + "\n"
    parts.append("## Spawn context")
    parts.append("### Canonical identifiers")
    parts.append(f"- task_id: {p.get('task_id')}\n- driver_state_id: {p.get('driver_state_id')}")
    parts.append("### Task description\n" + (p.get("task") or ""))
    if p.get("task_short"):
        parts.append("### Task (short)\n" + p["task_short"])
    parts.append("### Project\n" + (p.get("project_dir") or ""))
    decisions = state.decisions
    lines = [f"- {k}: {_value(decisions[k])}" for k in sorted(decisions)] or ["(none yet)"]
    parts.append("### Decisions so far\n" + "\n".join(lines))
    blockers = state.scratch.get("open_blockers") or []
    if blockers:
        rows = []
        for b in blockers:
            loc = f"{b.get('file')}:{b.get('line_start')}" if b.get("file") else "(no file)"
            fix = f" — fix: {b['suggested_fix']}" if b.get("suggested_fix") else ""
            rows.append(f"- [{b.get('category')}] {loc} ({b.get('agent')}): {b.get('summary')}{fix}")
        parts.append("### Open blockers\n" + "\n".join(rows))
    feedback = state.scratch.get("gate_feedback")
    if feedback:
        parts.append(f"### Feedback from the person at {feedback.get('gate')}\n{feedback.get('message')}")
    rework = state.scratch.get(f"rework_{agent.name}")
    if rework:
        parts.append("### Your previous output was rejected\n" + rework +
                     "\nReturn the required JSON header again, corrected.")
    parts.append("### Active agents\n" + "\n".join(f"- {a}" for a in active_agents(bundle, state.driver.get("flow_name", ""))))
    for title, text in (extra_sections or {}).items():
        parts.append(f"### {title}\n{text}")
    return "\n\n".join(parts) + "\n"
