"""The project tools besides the task loop: meta, state, extensions, archive, backup, restore (spec §8.2)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from loom_core.surfaces.mcp.common import call, control
from loom_core.surfaces.mcp.tasks import Client, Project


def pipeline_meta(project_dir: Project, client_capabilities: dict[str, Any] | None = None,
                  client_identifier_unverified: Client = None) -> str:
    """Server and protocol facts: version, flag_vocabulary (the policy flags a /task may start with),
    transports, providers, bundles_available, sandbox kind."""
    return call(project_dir, "error", lambda p: control().shuttle_meta(p))


def pipeline_archive_and_reset(project_dir: Project,
                               force: Annotated[bool, Field(description="Archive a task still in progress too "
                                                                        "(as discarded).")] = False,
                               client_identifier_unverified: Client = None) -> str:
    """Archive the finished task into .loom/history and clear the slot: {archived, task_id, history_path, ts,
    error?}. A task in progress is refused (PROJECT_TASK_ACTIVE) unless force."""
    nulls = {"archived": False, "task_id": None, "history_path": None, "ts": None}

    def run(p: str) -> dict[str, Any]:
        ctl = control()
        st = ctl.status(p)
        if st.get("task_id") and st.get("state") == "in_progress" and not force:
            return {**nulls, "task_id": st["task_id"], "ts": ctl.now(), "error": {
                "code": "PROJECT_TASK_ACTIVE", "message": f"task {st['task_id']} is still in progress; finish or "
                                                          "recover it first, or pass force: true to discard it"}}
        out = ctl.reset(p, force=force)
        return {"archived": out["archive"] is not None, "task_id": out["task_id"],
                "history_path": str(out["archive"]) if out["archive"] else None, "ts": ctl.now()}

    return call(project_dir, "error", run, nulls)


TOOLS = (pipeline_meta, pipeline_archive_and_reset)
