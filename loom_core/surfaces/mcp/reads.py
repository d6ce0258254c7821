"""The project tools besides the task loop: meta, state, extensions, archive, backup, restore (spec §8.2)."""

from __future__ import annotations

import inspect
from typing import Annotated, Any

from pydantic import Field

from loom_core.surfaces.mcp.common import call, control
from loom_core.surfaces.mcp.tasks import Client, Project


def pipeline_meta(project_dir: Project, client_capabilities: dict[str, Any] | None = None,
                  client_identifier_unverified: Client = None) -> str:
    """Server and protocol facts: version, flag_vocabulary (the policy flags a /task may start with),
    transports, providers, bundles_available, sandbox kind."""
    def run(p: str) -> dict[str, Any]:
        from importlib.metadata import version

        meta = control().shuttle_meta(p)
        meta["versions"]["mcp_sdk"] = version("mcp")
        return meta

    return call(project_dir, "error", run)


def pipeline_archive_and_reset(project_dir: Project,
                               force: Annotated[bool, Field(description="Archive a task still in progress too "
                                                                        "(as discarded).")] = False,
                               client_identifier_unverified: Client = None) -> str:
    """Archive the finished task into .loom/history and clear the slot: {archived, task_id, history_path, ts,
    error?}. A task in progress is refused (PROJECT_TASK_ACTIVE) unless force."""
    nulls = {"archived": False, "task_id": None, "history_path": None, "ts": None}

    def run(p: str) -> dict[str, Any]:
        ctl = control()
        st = ctl.shuttle_state(p)  # read fresh (a status poller's cache may lag this process's own commits)
        if st.get("task_id") and st.get("status") == "in_progress" and not force:
            return {**nulls, "task_id": st["task_id"], "ts": ctl.now(), "error": {
                "code": "PROJECT_TASK_ACTIVE", "message": f"task {st['task_id']} is still in progress; finish or "
                                                          "recover it first, or pass force: true to discard it"}}
        out = ctl.reset(p, force=force)
        return {"archived": out["archive"] is not None, "task_id": out["task_id"],
                "history_path": str(out["archive"]) if out["archive"] else None, "ts": ctl.now()}

    return call(project_dir, "error", run, nulls)


def pipeline_state_get(
    project_dir: Project,
    format: Annotated[str, Field(description="summary (counts), json (the full state), jsonl or pretty-table "
                                             "(one table's rows)")] = "summary",
    table: Annotated[str | None, Field(description="For jsonl / pretty-table: pipeline_state, pipeline_counters, "
                                                   "pipeline_gate_counters, driver_state, phases, agent_records, "
                                                   "pending_agents, agent_verdicts, findings, gates, audit, "
                                                   "installed_extensions (else audit).")] = None,
    since: Annotated[str | None, Field(description="ISO timestamp: only audit / findings rows after it.")] = None,
    limit: Annotated[int, Field(description="Rows (100 by default, at most 1000).")] = 100,
    client_identifier_unverified: Client = None,
) -> str:
    """The project's task store. summary: {task_id, status, verdict, work_result, owner_id, pending_agent_count,
    gate_count, audit_row_count, finding_count}; json: {state}; jsonl / pretty-table: {table, row_count, text}."""
    return call(project_dir, "error", lambda p: control().shuttle_state(p, format=format, table=table, since=since,
                                                                        limit=limit))


def pipeline_extensions_list(project_dir: Project, kind: str | None = None, status: str | None = None,
                             include_manifest: bool = False, client_identifier_unverified: Client = None) -> str:
    """loom's extensions (its workflow bundles): {extensions: [{id, kind, name, publisher, version, status,
    installed_at, updated_at, failure_reason?, manifest?}]}."""
    return call(project_dir, "error", lambda p: control().shuttle_extensions(
        p, kind=kind, status=status, include_manifest=include_manifest), {"extensions": []})


def pipeline_backup(project_dir: Project,
                    to: Annotated[str, Field(description="Where to write the SQL dump, relative to the project "
                                                         "(inside it).")],
                    client_identifier_unverified: Client = None) -> str:
    """A consistent SQL dump of the task store: {bytes_written, ts, backup_path}."""
    nulls = {"bytes_written": None, "ts": None, "backup_path": None}
    return call(project_dir, "error", lambda p: control().store_backup(p, to), nulls)


def _restore(project_dir: Project,
             from_: Annotated[str, Field(alias="from", description="The dump or store file, relative to the "
                                                                   "project.")],
             format: Annotated[str, Field(description="sql (a dump; only a loom store's statements are run) or "
                                                      "binary (a store file).")] = "sql",
             confirm: Annotated[bool, Field(description="Must be true: the task store is replaced.")] = False,
             client_identifier_unverified: Client = None) -> str:
    """Replace the task store from a backup: {restored, ts, error?}."""
    nulls = {"restored": False, "ts": None}
    return call(project_dir, "error", lambda p: control().store_restore(p, from_, format=format, confirm=confirm),
                nulls)


def pipeline_restore(**args: Any) -> str:
    # the argument is named ``from`` (a Python keyword): the SDK passes it by its alias
    args["from_"] = args.pop("from")
    return _restore(**args)


pipeline_restore.__signature__ = inspect.signature(_restore, eval_str=True)  # type: ignore[attr-defined]
pipeline_restore.__doc__ = _restore.__doc__

TOOLS = (pipeline_meta, pipeline_state_get, pipeline_extensions_list, pipeline_archive_and_reset, pipeline_backup,
         pipeline_restore)
