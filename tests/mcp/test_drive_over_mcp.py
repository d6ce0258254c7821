"""A whole task driven by hand over MCP (the official stdio client against the real server process), with
this test as the host: each spawn-agent directive is run by the demo backend's scripted agents in the
workdir the server names, its output delivered with pipeline_continue_task; gates are answered as a user
would. The result must equal the same task driven by ``loom run --backend demo``."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from loom_core.agents.executors.demo import DemoExecutor
from loom_core.control import LocalControl, create_demo_project, demo_task
from loom_core.kernel.types import Intent
from tests.conftest import run_loom

HOST = DemoExecutor()
REVISE = "negative percentages must be refused too"


def run_spawn(spawn: dict[str, Any]) -> dict[str, Any]:
    """The host's sub-agent: runs where the server says, with the prompt and model it gives."""
    req = spawn["spawn_request"]
    assert req["prompt"] and req["model"] and req["description"] and req["runner_hint"]
    assert Path(req["extras"]["workdir"]).is_dir()
    intent = Intent(spawn["agent"], spawn["agent_run_id"], "", req["model"], req["prompt"], extras=req["extras"])
    out = HOST.execute(intent, threading.Event(), lambda line: None)
    return {"agent_run_id": spawn["agent_run_id"], "agent_output": out.output, "tokens": {"in": 10, "out": 5}}


def summary(project: Path) -> dict[str, Any]:
    """What must agree between the two drives: verdict, the agents in order, the gates and their answers."""
    chain = LocalControl().chain(project)
    return {"verdict": chain["task"].get("verdict"), "status": chain["task"].get("status"),
            "agents": [r["agent"] for r in chain["runs"]],
            "gates": [(g["name"], g["status"], g["decided_by"]) for g in chain["gates"]],
            "blocking_findings": LocalControl().status(project).get("open_blockers")}


@pytest.fixture(scope="module")
def driven(mcp, mcp_home, tmp_path_factory):
    """Drive the demo task over MCP: plan approved, final gate revised once, then approved."""
    from loom_core.config import allowlist

    proj = tmp_path_factory.mktemp("over-mcp") / "shop"
    create_demo_project(proj)
    allowlist.add(proj, path=mcp_home["allow"])
    key = str(uuid.uuid4())
    first = mcp.call("pipeline_run_task", project_dir=str(proj), task=demo_task(),
                     client_idempotency_uuid=key, policy_preset="demo-gates")
    dsid = first["driver_state_id"]
    answers = iter([("approve", None), ("revise", REVISE), ("approve", None)])
    seen: list[dict[str, Any]] = [first["response"]]
    dup: dict[str, Any] = {}
    resp = first["response"]
    for _ in range(60):
        kind = resp["kind"]
        if kind == "spawn-agent":
            delivery = {"kind": "agent-result", **run_spawn(resp)}
            out = mcp.call("pipeline_continue_task", project_dir=str(proj), driver_state_id=dsid, input=delivery)
            if not dup:  # the first delivery goes twice: the second must replay, not tick
                dup = {"first": out, "again": mcp.call("pipeline_continue_task", project_dir=str(proj),
                                                       driver_state_id=dsid, input=delivery)}
        elif kind == "spawn-agents-parallel":
            assert not resp["prompts_by_reference"]
            results = [run_spawn(s) for s in resp["spawns"]]
            out = mcp.call("pipeline_continue_task", project_dir=str(proj), driver_state_id=dsid,
                           input={"kind": "agents-results", "results": results})
        elif kind == "ask-user":
            assert resp["valid_answers"] == ["approve", "revise", "abandon"] and resp["message"]
            word, note = next(answers)
            out = mcp.call("pipeline_continue_task", project_dir=str(proj), driver_state_id=dsid,
                           input={"kind": "user-answer", "gate_event_id": resp["gate_event_id"], "decision": word,
                                  "message": note})
        else:
            break
        resp = out["response"]
        seen.append(resp)
    state = mcp.call("pipeline_state_get", project_dir=str(proj), format="json")["state"]
    again = mcp.call("pipeline_run_task", project_dir=str(proj), task=demo_task(), client_idempotency_uuid=key)
    return {"project": proj, "first": first, "last": resp, "seen": seen, "dup": dup, "again": again, "dsid": dsid,
            "state": state}


@pytest.fixture(scope="module")
def by_cli(tmp_path_factory):
    """The same task with `loom run --backend demo` and `loom answer` / `loom proceed` in a terminal."""
    proj = tmp_path_factory.mktemp("by-cli") / "shop"
    create_demo_project(proj)
    steps = [("run", "--backend", "demo", "--policy", "demo-gates", demo_task()), ("answer", "accept"),
             ("proceed", "--backend", "demo"), ("answer", "reject", "--note", REVISE), ("proceed", "--backend", "demo"),
             ("answer", "accept"), ("proceed", "--backend", "demo")]
    for args in steps:
        cp = run_loom(*args, cwd=proj)
        assert cp.returncode in (0, 3), (args, cp.stdout[-800:], cp.stderr[-800:])
    return proj


def test_a_task_driven_by_hand_over_mcp_ends_as_loom_run_demo_does(driven, by_cli):
    last = driven["last"]
    assert last["kind"] == "complete" and last["verdict"] == "accepted", last
    assert last["landed"]["branch"] == f"loom/{last['task_id']}" and last["landed"]["files"] == ["shop/pricing.py"]
    kinds = [r["kind"] for r in driven["seen"]]
    assert {"spawn-agent", "spawn-agents-parallel", "ask-user", "complete"} <= set(kinds)
    over_mcp, in_terminal = summary(driven["project"]), summary(by_cli)
    assert over_mcp == in_terminal
    assert over_mcp["agents"].count("implementer") == 2  # the revise answer at the final gate sent it back once
    assert ("gate-final", "approved", "human") in over_mcp["gates"], over_mcp["gates"]
    assert "checks-runner" in over_mcp["agents"]  # deterministic checks ran in the server, never in the host
    assert not any(r.get("agent") == "checks-runner" for r in driven["seen"])
    # the host listed no files: the server's sandbox delta found the edit
    state = driven["state"]["pipeline"]
    assert state["files_modified"] == ["shop/pricing.py"]
    assert not [f for f in driven["state"]["findings"].values() if f["category"] == "role-violation"]
    # the landed fix is on the task's branch in the user's repository
    assert LocalControl().branch_exists(driven["project"], last["landed"]["branch"])
    # the task ended: Claude Code no longer drives it (supervisors and `loom proceed` may take the slot)
    assert "host" not in json.loads((driven["project"] / ".loom" / "task-exec.json").read_text())


def test_the_first_directive_names_the_task_and_the_sandbox(driven):
    first = driven["first"]
    assert first["task_id"].startswith("t-") and first["driver_state_id"].startswith("d-")
    spawn = first["response"]
    assert spawn["kind"] == "spawn-agent" and spawn["agent"] == "classifier"
    assert spawn["driver_state_id"] == first["driver_state_id"]
    workdir = Path(spawn["spawn_request"]["extras"]["workdir"])
    assert workdir != driven["project"] and workdir.name.startswith("wt-")  # the sandbox copy (gone once landed)
    assert str(workdir) in spawn["spawn_request"]["prompt"]
    assert "### Task description" in spawn["spawn_request"]["prompt"]


def test_a_duplicate_delivery_replays_the_cached_next_directive(driven):
    first, again = driven["dup"]["first"], driven["dup"]["again"]
    assert again["replayed"] is True and "replayed" not in first
    strip = {k: v for k, v in again["response"].items() if k != "replayed"}
    assert strip == first["response"]
    # nothing was counted twice: each agent ran once per round in the store (compared with the CLI above)


def test_the_same_uuid_replays_the_creation(driven):
    again = driven["again"]
    assert again["replayed"] is True
    assert again["task_id"] == driven["first"]["task_id"]
    assert again["response"]["kind"] == "complete" and again["response"]["verdict"] == "accepted"


def test_resume_and_spawn_prompt_after_the_end(mcp, driven):
    proj = str(driven["project"])
    out = mcp.call("pipeline_resume", project_dir=proj)
    assert out["response"]["kind"] == "complete" and out["response"]["verdict"] == "accepted"
    got = mcp.call("pipeline_get_spawn_prompt", project_dir=proj, driver_state_id=driven["dsid"], agent_run_id="ar-x")
    assert got["prompt"] is None and got["error"]["code"] == "PENDING_AGENT_NOT_FOUND"


def test_a_new_task_after_the_end_archives_the_finished_one(mcp, driven):
    """(Last in this module: it moves the driven project on.)"""
    proj = driven["project"]
    old = driven["last"]["task_id"]
    nxt = mcp.call("pipeline_run_task", project_dir=str(proj), task="Round totals to whole cents",
                   client_idempotency_uuid=str(uuid.uuid4()))
    assert nxt["task_id"] != old and nxt["response"]["kind"] == "spawn-agent"
    assert any("archived the previous task" in w for w in nxt["warnings"])
    assert (proj / ".loom" / "history" / f"{old}.db").exists()
    assert LocalControl().branch_exists(proj, f"loom/{old}")  # the landed branch stays
