"""The facade verbs behind the tools, in process: fan-out prompts by reference, gate answers as a host sends
them (verbs, a missing message, a stale or repeated answer), and what the store keeps of a host's run."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pytest

from loom_core.agents.executors.demo import DemoExecutor
from loom_core.control import LocalControl, create_demo_project, demo_task, shuttle_host
from loom_core.errors import LoomError
from loom_core.kernel.types import Intent


def host_result(spawn: dict) -> dict:
    req = spawn["spawn_request"]
    out = DemoExecutor().execute(Intent(spawn["agent"], spawn["agent_run_id"], "", req["model"], req["prompt"] or "",
                                        extras=req["extras"]), threading.Event(), lambda line: None)
    return {"agent_run_id": spawn["agent_run_id"], "agent_output": out.output}


@pytest.fixture
def task(tmp_path):
    proj = tmp_path / "shop"
    create_demo_project(proj)
    ctl = LocalControl()
    out = ctl.shuttle_start(proj, demo_task(), client_key=str(uuid.uuid4()), policy="full-supervised")
    return ctl, proj, out["driver_state_id"], out["response"]


def test_a_large_fan_out_passes_its_prompts_by_reference(task, monkeypatch):
    ctl, proj, dsid, resp = task
    monkeypatch.setattr(shuttle_host, "PROMPTS_BY_REFERENCE_CHARS", 100)
    while resp["kind"] != "spawn-agents-parallel":
        if resp["kind"] == "ask-user":
            resp = ctl.shuttle_continue(proj, dsid, {"kind": "user-answer", "gate_event_id": resp["gate_event_id"],
                                                     "decision": "approve"})["response"]
        else:
            resp = ctl.shuttle_continue(proj, dsid, {"kind": "agent-result", **host_result(resp)})["response"]
    assert resp["prompts_by_reference"] is True
    assert all(s["spawn_request"]["prompt"] is None for s in resp["spawns"])
    fetched = [dict(s, spawn_request={**s["spawn_request"], "prompt": ctl.shuttle_prompt(
        proj, dsid, s["agent_run_id"])["prompt"]}) for s in resp["spawns"]]
    assert all(len(s["spawn_request"]["prompt"]) > 100 for s in fetched)
    partial = ctl.shuttle_continue(proj, dsid, {"kind": "agents-results", "results": [host_result(fetched[0])]})
    # one sibling alone is delivered (the other stays pending and is asked for again)
    assert partial["response"]["kind"] == "spawn-agent"
    assert partial["response"]["agent_run_id"] == fetched[1]["agent_run_id"]


def test_gate_answers_as_a_host_sends_them(task):
    ctl, proj, dsid, resp = task
    resp = ctl.shuttle_continue(proj, dsid, {"kind": "agent-result", **host_result(resp)})["response"]
    assert resp["kind"] == "ask-user" and resp["valid_answers"] == ["approve", "revise"]
    ans = {"kind": "user-answer", "gate_event_id": resp["gate_event_id"]}
    bad = ctl.shuttle_continue(proj, dsid, {**ans, "decision": "maybe"})["response"]
    assert bad["kind"] == "ask-user" and bad["gate_event_id"] == resp["gate_event_id"]  # asked again
    assert bad["answer_refused"]["code"] == "ANSWER_INVALID" and "approve, revise" in bad["answer_refused"]["message"]
    bare = ctl.shuttle_continue(proj, dsid, {**ans, "decision": "revise"})["response"]
    assert bare["kind"] == "ask-user" and bare["answer_refused"]["code"] == "ANSWER_MESSAGE_REQUIRED"
    with pytest.raises(LoomError) as stale:
        ctl.shuttle_continue(proj, dsid, {**ans, "gate_event_id": "gev-old", "decision": "approve"})
    assert stale.value.code == "GATE_EVENT_STALE"
    first = ctl.shuttle_continue(proj, dsid, {**ans, "decision": "YES"})  # any of the option's verbs
    again = ctl.shuttle_continue(proj, dsid, {**ans, "decision": "approve"})
    assert first["response"]["kind"] == "spawn-agent" and again["replayed"] is True
    assert again["response"]["agent_run_id"] == first["response"]["agent_run_id"]


def test_the_store_keeps_the_hosts_run(task):
    ctl, proj, dsid, resp = task
    result = host_result(resp)
    ctl.shuttle_continue(proj, dsid, {"kind": "agent-result", **result, "tokens": {"in": 120, "out": 30}})
    run = ctl.run_detail(proj, resp["agent_run_id"])
    assert run["output"] == result["agent_output"] and "### Task description" in run["prompt"]
    st = ctl.status(proj)
    assert st["tokens"]["in"] >= 120 and st["spawns"] == 1
    assert Path(resp["spawn_request"]["extras"]["workdir"]).is_dir()


def test_calls_at_once_queue_instead_of_failing(task):
    from concurrent.futures import ThreadPoolExecutor

    ctl, proj, dsid, resp = task
    with ThreadPoolExecutor(12) as pool:
        got = list(pool.map(lambda _: ctl.shuttle_prompt(proj, dsid, resp["agent_run_id"]), range(12)))
    assert all(g.get("prompt") and "error" not in g for g in got)


@pytest.mark.parametrize("bad", [{"tokens": {"in": "many"}}, {"tokens": [1, 2]}, {"files_modified": "a.py"},
                                 {"files_created": [1]}, {"agent_output": None}])
def test_a_malformed_result_is_refused_before_anything_happens(task, bad):
    ctl, proj, dsid, resp = task
    with pytest.raises(LoomError) as err:
        ctl.shuttle_continue(proj, dsid, {"kind": "agent-result", **host_result(resp), **bad})
    assert err.value.code == "BAD_INPUT"
    assert ctl.shuttle_resume(proj, dsid)["response"]["agent_run_id"] == resp["agent_run_id"]  # still pending
