"""The task tools: start, continue, resume, recover a task whose agents the host runs (spec surfaces §8.2).

Each answers with ``{"response": <directive>, …}``: ``spawn-agent`` / ``spawn-agents-parallel`` (run the
agent with the prompt and model given, in ``spawn_request.extras.workdir``, then deliver its output with
``pipeline_continue_task`` under the same ``agent_run_id``), ``ask-user`` (show ``message`` and
``valid_answers`` verbatim, deliver the user's pick), ``complete`` or ``error`` (``recovery_options``).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from loom_core.surfaces.mcp.common import call, control

Project = Annotated[str, Field(description="Absolute path of the project (must be in ~/.loom/projects.allow).")]
Client = Annotated[str | None, Field(description="Who is calling (audit only, not verified).")]
Dsid = Annotated[str, Field(description="The task's driver_state_id, as the last response gave it.")]


def pipeline_run_task(
    project_dir: Project,
    task: Annotated[str, Field(description="The task in the user's words, verbatim (a leading policy flag such as "
                                           "--review-plan-only is honoured when policy_preset is not given).")],
    client_idempotency_uuid: Annotated[str, Field(description="One fresh uuid per /task; reuse it on a transport "
                                                              "retry (the same uuid replays the creation).")] = "",
    policy_preset: Annotated[str | None, Field(description="A gate policy or preset (see pipeline_meta's "
                                                           "flag_vocabulary).")] = None,
    gate_policies: Annotated[dict[str, str] | None, Field(description="Per gate role: human, on-blockers or "
                                                                      "auto.")] = None,
    complexity_hint: Annotated[str | None, Field(description="Pin the flow: trivial, simple, medium, complex or "
                                                             "question.")] = None,
    initial_decisions: dict[str, Any] | None = None,
    owner_id: Annotated[str | None, Field(description="Accepted; loom keeps no owners (any session may "
                                                      "continue a task).")] = None,
    on_active_task: Annotated[str, Field(description="A task still in progress: refuse (default: "
                                                     "PROJECT_TASK_ACTIVE with options), resume it, or archive it "
                                                     "and start this one.")] = "refuse",
    client_identifier_unverified: Client = None,
) -> str:
    """Start a loom task in the project; its agents run in this host. Returns {response, task_id,
    driver_state_id, warnings?}; response is the first directive (usually spawn-agent)."""
    nulls = {"task_id": None, "driver_state_id": None}
    return call(project_dir, "response", lambda p: control().shuttle_start(
        p, task, client_key=client_idempotency_uuid or "", on_active_task=on_active_task, policy=policy_preset,
        gate_policies=gate_policies, complexity=complexity_hint, initial_decisions=initial_decisions), nulls)


def pipeline_continue_task(
    project_dir: Project,
    driver_state_id: Dsid,
    input: Annotated[dict[str, Any], Field(description=(
        "One of: {kind: 'agent-result', agent_run_id, agent_output, files_modified?, files_created?, "
        "tokens?: {in, out, cached?}} | {kind: 'agents-results', results: [agent-result…]} (every sibling of a "
        "spawn-agents-parallel at once) | {kind: 'user-answer', gate_event_id, decision (one of the "
        "valid_answers), message? (required to revise)}"))],
    client_identifier_unverified: Client = None,
) -> str:
    """Deliver an agent's output or the user's gate answer; returns {response} with the next directive.
    A duplicate delivery replays (replayed: true) without changing anything."""
    return call(project_dir, "response", lambda p: control().shuttle_continue(p, driver_state_id, input))


def pipeline_get_spawn_prompt(project_dir: Project, driver_state_id: Dsid,
                              agent_run_id: Annotated[str, Field(description="A pending run's id.")],
                              client_identifier_unverified: Client = None) -> str:
    """The full prompt of a pending agent run (for resumed spawns and prompts passed by reference):
    {prompt, agent, model}, or nulls and an error."""
    nulls = {"prompt": None, "agent": None, "model": None}
    return call(project_dir, "error", lambda p: control().shuttle_prompt(p, driver_state_id, agent_run_id), nulls)


def pipeline_recover(
    project_dir: Project,
    driver_state_id: Dsid,
    choice: Annotated[str, Field(description="retry, retry-failed, cancel-pending, force-close or abandon (one of "
                                             "the error's recovery_options, as the user picked).")],
    agent_run_ids: list[str] | None = None,
    recovery_id: Annotated[str | None, Field(description="Pass back the recovery_id of a first attempt to "
                                                         "retry it safely.")] = None,
    owner_id: str | None = None,
    marker: dict[str, Any] | None = None,
    client_identifier_unverified: Client = None,
) -> str:
    """Recover a stuck or failed task with the user's choice; returns {response, recovery_id}."""
    return call(project_dir, "response", lambda p: control().shuttle_recover(
        p, driver_state_id, choice, recovery_id=recovery_id, agent_run_ids=agent_run_ids), {"recovery_id": None})


def pipeline_resume(project_dir: Project,
                    driver_state_id: Annotated[str | None, Field(description="Optional: the task expected.")] = None,
                    client_identifier_unverified: Client = None) -> str:
    """The task's current directive (/proceed): pending spawns again with the same ids and prompt null (fetch
    each with pipeline_get_spawn_prompt), an open gate asked again, or complete; NO_ACTIVE_TASK when none."""
    return call(project_dir, "response", lambda p: control().shuttle_resume(p, driver_state_id))


TOOLS = (pipeline_run_task, pipeline_continue_task, pipeline_get_spawn_prompt, pipeline_recover, pipeline_resume)
