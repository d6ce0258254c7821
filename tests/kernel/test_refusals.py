"""Inputs the kernel refuses: a KernelRefusal with a stable code, and nothing changes."""

from __future__ import annotations

import copy

import pytest

from loom_core.errors import KernelRefusal
from loom_core.kernel.types import AgentResult, UserAnswer

from ._sim import RESEARCH_OUTPUT, Sim


def refused(sim: Sim, event) -> KernelRefusal:
    before = copy.deepcopy(sim.state)
    with pytest.raises(KernelRefusal) as exc:
        sim.step(event)
    assert sim.state == before  # the refused tick left the snapshot alone
    return exc.value


def test_stale_gate_event_id_is_refused():
    sim = Sim()
    sim.create()
    scope_gev = sim.directive.gate_event_id
    sim.answer("accept")
    sim.deliver("researcher", RESEARCH_OUTPUT)
    assert sim.directive.gate == "gate-consult"
    consult_gev = sim.directive.gate_event_id
    assert consult_gev != scope_gev

    err = refused(sim, UserAnswer(gate_event_id=scope_gev, decision="accept"))
    assert err.code == "GATE_EVENT_STALE"
    assert scope_gev in err.message and consult_gev in err.message

    # the live event id still works
    t = sim.answer("accept", gate_event_id=consult_gev)
    assert t.directive.kind == "shuttle"


def test_unknown_agent_run_id_is_refused():
    sim = Sim()
    sim.create()
    sim.answer("accept")
    assert sim.directive.kind == "shuttle"
    err = refused(sim, AgentResult(agent_run_id="ar-00000000-0000-0000-0000-000000000000", output="{}"))
    assert err.code == "PENDING_AGENT_NOT_FOUND"


def test_delivering_the_same_run_twice_is_refused():
    sim = Sim()
    sim.create()
    sim.answer("accept")
    run_id = sim.run_id("researcher")
    sim.deliver("researcher", RESEARCH_OUTPUT)
    err = refused(sim, AgentResult(agent_run_id=run_id, output=RESEARCH_OUTPUT))
    assert err.code == "PENDING_AGENT_NOT_FOUND"


def test_creating_twice_is_refused():
    sim = Sim()
    sim.create()
    task_id = sim.state.pipeline["task_id"]
    with pytest.raises(KernelRefusal) as exc:
        sim.create(task="another task", task_id="t-2026-01-01-another")
    assert exc.value.code == "PROJECT_TASK_ACTIVE"
    assert sim.state.pipeline["task_id"] == task_id


def test_answer_without_an_open_gate_is_refused():
    sim = Sim()
    sim.create()
    gev = sim.directive.gate_event_id
    sim.answer("accept")
    err = refused(sim, UserAnswer(gate_event_id=gev, decision="accept"))
    assert err.code == "NO_PENDING_GATE"


def test_events_before_create_are_refused():
    sim = Sim()
    with pytest.raises(KernelRefusal) as exc:
        sim.step(AgentResult(agent_run_id="ar-x", output="{}"))
    assert exc.value.code == "NO_ACTIVE_TASK"
