"""Every tool over a real MCP session: the schemas a host sees, the allowlist gate on every tool, and the
structured refusals (never MCP errors) a host acts on."""

from __future__ import annotations

import os
import sqlite3
import uuid
from pathlib import Path

import pytest

from loom_core.control import create_demo_project, demo_task

TOOLS = {"pipeline_meta", "pipeline_state_get", "pipeline_extensions_list", "pipeline_run_task",
         "pipeline_continue_task", "pipeline_get_spawn_prompt", "pipeline_recover", "pipeline_archive_and_reset",
         "pipeline_resume", "pipeline_backup", "pipeline_restore"}
DSID = "d-00000000-0000-0000-0000-000000000000"
MINIMAL = {"pipeline_meta": {}, "pipeline_state_get": {"format": "json"}, "pipeline_extensions_list": {},
           "pipeline_run_task": {"task": "anything", "client_idempotency_uuid": "u-1"},
           "pipeline_continue_task": {"driver_state_id": DSID, "input": {"kind": "agent-result", "agent_run_id": "ar-1",
                                                                         "agent_output": "x"}},
           "pipeline_get_spawn_prompt": {"driver_state_id": DSID, "agent_run_id": "ar-1"},
           "pipeline_recover": {"driver_state_id": DSID, "choice": "abandon"},
           "pipeline_archive_and_reset": {"force": True}, "pipeline_resume": {},
           "pipeline_backup": {"to": "b.sql"}, "pipeline_restore": {"from": "b.sql", "confirm": True}}


def code_of(out: dict) -> str | None:
    return (out.get("response") or {}).get("code") or (out.get("error") or {}).get("code")


def test_the_tools_and_their_input_schemas(mcp):
    tools = {t.name: t for t in mcp.tools()}
    assert set(tools) == TOOLS
    for t in tools.values():
        assert "project_dir" in t.input_schema["required"] and t.description
    run = tools["pipeline_run_task"].input_schema
    assert set(run["required"]) == {"project_dir", "task"}
    assert {"client_idempotency_uuid", "policy_preset", "on_active_task", "complexity_hint"} <= set(run["properties"])
    assert tools["pipeline_continue_task"].input_schema["properties"]["input"]["type"] == "object"
    assert "from" in tools["pipeline_restore"].input_schema["required"]


def test_a_project_not_allowlisted_is_refused_by_every_tool(mcp, tmp_path):
    proj = tmp_path / "outsider"
    create_demo_project(proj)
    assert set(MINIMAL) == TOOLS
    for tool, args in MINIMAL.items():
        out = mcp.call(tool, project_dir=str(proj), **args)
        assert code_of(out) == "PROJECT_DIR_NOT_ALLOWED", (tool, out)
        reason = (out.get("response") or out.get("error"))["reason"]
        assert reason in ("not-in-allowlist", "allowlist-missing")
    assert not (proj / ".loom" / "state.db").exists() and not (proj / "b.sql").exists()
    missing = mcp.call("pipeline_meta", project_dir=str(tmp_path / "nowhere"))
    assert code_of(missing) == "PROJECT_DIR_NOT_ALLOWED" and missing["error"]["reason"] == "input-path-unresolved"


def test_allowlisted_by_realpath_through_a_link(mcp, allow, tmp_path):
    proj = tmp_path / "real"
    proj.mkdir()
    allow(proj)
    (tmp_path / "link").symlink_to(proj)
    meta = mcp.call("pipeline_meta", project_dir=str(tmp_path / "link"))
    assert meta["server"]["name"] == "loom" and meta["sandbox"] == "in-place"
    assert "--review-plan-only" in meta["flag_vocabulary"] and len(meta["flag_vocabulary"]) == 5
    assert "code" in meta["bundles_available"] and meta["providers"]["active_default"] == "claude-code-shuttle"
    assert meta["versions"]["mcp_sdk"] and meta["sandbox_dir"] == str(proj)  # not git: agents work in place
    assert mcp.call("pipeline_state_get", project_dir=str(proj))["task_id"] is None
    assert not (proj / ".loom").exists()  # reads never create a store


@pytest.fixture
def started(mcp, allow, tmp_path):
    proj = tmp_path / "shop"
    create_demo_project(proj)
    allow(proj)
    out = mcp.call("pipeline_run_task", project_dir=str(proj), task=demo_task(),
                   client_idempotency_uuid=str(uuid.uuid4()))
    assert out["response"]["kind"] == "spawn-agent", out
    return proj, out


def test_an_empty_uuid_is_refused(mcp, allow, tmp_path):
    proj = allow(tmp_path)
    out = mcp.call("pipeline_run_task", project_dir=str(proj), task="do it", client_idempotency_uuid="  ")
    assert code_of(out) == "TASK_IDEMPOTENCY_REQUIRED" and out["task_id"] is None
    assert not (proj / ".loom" / "state.db").exists()


def test_a_task_in_progress_is_refused_with_resume_and_archive(mcp, started):
    proj, first = started
    again = mcp.call("pipeline_run_task", project_dir=str(proj), task="something else",
                     client_idempotency_uuid=str(uuid.uuid4()))
    err = again["response"]
    assert err["kind"] == "error" and err["code"] == "PROJECT_TASK_ACTIVE"
    assert [o["choice"] for o in err["recovery_options"]] == ["resume", "archive"]
    assert err["task_id"] == first["task_id"] and err["summary"]["pending_agents"] == ["classifier"]
    resumed = mcp.call("pipeline_run_task", project_dir=str(proj), task="something else", on_active_task="resume",
                       client_idempotency_uuid=str(uuid.uuid4()))
    assert resumed["task_id"] == first["task_id"]
    assert resumed["response"]["agent_run_id"] == first["response"]["agent_run_id"]  # the same pending run
    fresh = mcp.call("pipeline_run_task", project_dir=str(proj), task="Another task", on_active_task="archive",
                     client_idempotency_uuid=str(uuid.uuid4()))
    assert fresh["task_id"] != first["task_id"] and fresh["response"]["kind"] == "spawn-agent"
    assert (proj / ".loom" / "history" / f"{first['task_id']}.db").exists()


def test_refusals_of_continue(mcp, started):
    proj, first = started
    dsid, spawn = first["driver_state_id"], first["response"]
    cont = lambda delivery, d=dsid: mcp.call("pipeline_continue_task", project_dir=str(proj),  # noqa: E731
                                              driver_state_id=d, input=delivery)
    assert code_of(cont({"kind": "recovery", "choice": "abandon"})) == "RECOVERY_VIA_CONTINUE_REFUSED"
    assert code_of(cont({"kind": "agents-results", "partial": True, "results": []})) == "PARTIAL_FANOUT_REFUSED"
    assert code_of(cont({"kind": "agent-result", "agent_run_id": "ar-nope", "agent_output": "x"})) \
        == "PENDING_AGENT_NOT_FOUND"
    assert code_of(cont({"kind": "agent-result", "agent_run_id": spawn["agent_run_id"], "agent_output": "x"},
                        DSID)) == "DRIVER_STATE_MISMATCH"
    assert code_of(cont({"kind": "bogus"})) == "BAD_INPUT"
    # nothing above changed the task: the same spawn is still the current directive
    now = mcp.call("pipeline_resume", project_dir=str(proj))["response"]
    assert now["agent_run_id"] == spawn["agent_run_id"] and now["spawn_request"]["prompt"] is None  # placeholder
    full = mcp.call("pipeline_get_spawn_prompt", project_dir=str(proj), driver_state_id=dsid,
                    agent_run_id=spawn["agent_run_id"])
    assert full["agent"] == "classifier" and full["prompt"] == spawn["spawn_request"]["prompt"]


def test_recover_abandon_and_archive(mcp, started):
    proj, first = started
    dsid = first["driver_state_id"]
    busy = mcp.call("pipeline_archive_and_reset", project_dir=str(proj))
    assert busy["archived"] is False and busy["error"]["code"] == "PROJECT_TASK_ACTIVE"
    bad = mcp.call("pipeline_recover", project_dir=str(proj), driver_state_id=dsid, choice="explode")
    assert code_of(bad) == "RECOVERY_INVALID"
    out = mcp.call("pipeline_recover", project_dir=str(proj), driver_state_id=dsid, choice="abandon")
    rid = out["recovery_id"]
    assert rid.startswith("rec-") and out["response"]["kind"] == "complete"
    again = mcp.call("pipeline_recover", project_dir=str(proj), driver_state_id=dsid, choice="abandon",
                     recovery_id=rid)
    assert again["replayed"] is True and again["recovery_id"] == rid
    done = mcp.call("pipeline_archive_and_reset", project_dir=str(proj))
    assert done["archived"] is True, done
    assert done["task_id"] == first["task_id"] and Path(done["history_path"]).exists()
    assert code_of(mcp.call("pipeline_resume", project_dir=str(proj))) == "NO_ACTIVE_TASK"


def test_state_views_backup_and_restore(mcp, started):
    proj, first = started
    p = str(proj)
    summary = mcp.call("pipeline_state_get", project_dir=p)
    assert summary["task_id"] == first["task_id"] and summary["status"] == "in_progress"
    assert summary["pending_agent_count"] == 1 and summary["audit_row_count"] >= 1
    full = mcp.call("pipeline_state_get", project_dir=p, format="json")["state"]
    assert full["pipeline"]["driver_state_id"] == first["driver_state_id"]
    rows = mcp.call("pipeline_state_get", project_dir=p, format="jsonl", table="pending_agents")
    assert rows["row_count"] == 1 and first["response"]["agent_run_id"] in rows["text"]
    table = mcp.call("pipeline_state_get", project_dir=p, format="pretty-table", table="sqlite_master")
    assert table["table"] == "audit" and "note" in table and table["text"].splitlines()[1].startswith("---")
    exts = mcp.call("pipeline_extensions_list", project_dir=p, status="installed")["extensions"]
    assert [e["name"] for e in exts] == ["code"]

    assert code_of(mcp.call("pipeline_backup", project_dir=p, to="../escape.sql")) == "BACKUP_PATH_REJECTED"
    made = mcp.call("pipeline_backup", project_dir=p, to="backups/one.sql")
    assert made["bytes_written"] > 0 and Path(made["backup_path"]) == proj / "backups" / "one.sql"
    unconfirmed = mcp.call("pipeline_restore", project_dir=p, **{"from": "backups/one.sql"})
    assert unconfirmed["restored"] is False and unconfirmed["error"]["code"] == "CONFIRM_REQUIRED"
    # the task moves on, then the restore brings back the backed-up state
    mcp.call("pipeline_recover", project_dir=p, driver_state_id=first["driver_state_id"], choice="abandon")
    assert mcp.call("pipeline_state_get", project_dir=p)["status"] == "abandoned"
    assert mcp.call("pipeline_restore", project_dir=p, confirm=True, **{"from": "backups/one.sql"})["restored"]
    assert mcp.call("pipeline_state_get", project_dir=p)["status"] == "in_progress"
    (proj / "evil.sql").write_text("ATTACH DATABASE '/tmp/x.db' AS x;\n", encoding="utf-8")
    evil = mcp.call("pipeline_restore", project_dir=p, confirm=True, **{"from": "evil.sql"})
    assert evil["error"]["code"] == "RESTORE_REJECTED" and evil["restored"] is False
    binary = mcp.call("pipeline_restore", project_dir=p, confirm=True, format="binary", **{"from": "backups/one.sql"})
    assert binary["error"]["code"] == "RESTORE_REJECTED"
    assert sqlite3.connect(proj / ".loom" / "state.db").execute("SELECT status FROM pipeline_state").fetchone()[0] \
        == "in_progress"


def test_host_listed_files_count_and_a_read_only_agents_edit_is_reverted(mcp, started):
    import threading

    from loom_core.agents.executors.demo import DemoExecutor
    from loom_core.kernel.types import Intent

    proj, first = started
    spawn = first["response"]
    req = spawn["spawn_request"]
    workdir = Path(req["extras"]["workdir"])
    out = DemoExecutor().execute(Intent(spawn["agent"], spawn["agent_run_id"], "", req["model"], req["prompt"],
                                        extras=req["extras"]), threading.Event(), lambda line: None)
    pricing = workdir / "shop" / "pricing.py"
    before = pricing.read_text()
    pricing.write_text("# the classifier may not edit\n")  # a read-only agent changes the sandbox
    nxt = mcp.call("pipeline_continue_task", project_dir=str(proj), driver_state_id=first["driver_state_id"],
                   input={"kind": "agent-result", "agent_run_id": spawn["agent_run_id"], "agent_output": out.output,
                          "files_created": ["notes/host-listed.md"]})
    assert any("may not change files" in w for w in nxt["warnings"])
    assert nxt["response"]["kind"] == "ask-user"  # the blocking finding stops the flow at the next gate
    assert "open blocking finding" in nxt["response"]["message"]
    assert pricing.read_text() == before  # reverted
    state = mcp.call("pipeline_state_get", project_dir=str(proj), format="json")["state"]
    assert "notes/host-listed.md" in state["pipeline"]["files_created"]
    found = [f for f in state["findings"].values() if f["category"] == "role-violation"]
    assert found and found[0]["severity"] == "blocking" and "shop/pricing.py" in found[0]["summary"]


def test_a_leading_policy_flag_sets_the_gate_policies(mcp, allow, tmp_path):
    from loom_core.kernel.gates import PRESETS

    proj = tmp_path / "shop"
    create_demo_project(proj)
    allow(proj)
    out = mcp.call("pipeline_run_task", project_dir=str(proj), task="--full-autonomous " + demo_task(),
                   client_idempotency_uuid=str(uuid.uuid4()))
    assert "autonomous" not in out["task_id"]
    state = mcp.call("pipeline_state_get", project_dir=str(proj), format="json")["state"]["pipeline"]
    assert state["task"] == demo_task() and state["gate_policies"] == dict(PRESETS["full-autonomous"])


def test_a_project_another_drive_holds_is_busy_not_blocked(mcp, started):
    from loom_core.engine.lock import ProjectLock

    proj, first = started
    with ProjectLock(proj):
        out = mcp.call("pipeline_resume", project_dir=str(proj))
    assert code_of(out) == "PROJECT_BUSY" and f"pid {os.getpid()}" in out["response"]["message"]
    assert mcp.call("pipeline_resume", project_dir=str(proj))["response"]["kind"] == "spawn-agent"


def test_no_task_is_said_without_touching_the_project(mcp, allow, tmp_path):
    proj = allow(tmp_path)
    assert code_of(mcp.call("pipeline_resume", project_dir=str(proj))) == "NO_ACTIVE_TASK"
    got = mcp.call("pipeline_get_spawn_prompt", project_dir=str(proj), driver_state_id=DSID, agent_run_id="ar-1")
    assert got["prompt"] is None and got["error"]["code"] == "NO_ACTIVE_TASK"
    assert not (proj / ".loom").exists()


def test_loom_mcp_serve_is_the_same_server(mcp_home, tmp_path):
    import sys

    from tests.mcp.conftest import McpSession

    s = McpSession([sys.executable, "-m", "loom_core.surfaces.cli", "mcp", "serve"], mcp_home["env"], tmp_path)
    try:
        assert {t.name for t in s.tools()} == TOOLS
    finally:
        s.close()
