"""Invariants: a violating tick raises and leaves the input alone; an auto gate whose
approval an invariant would veto asks a person instead (dry-run rule)."""

from __future__ import annotations

import copy

import pytest

from loom_core.errors import InvariantViolation
from loom_core.kernel import fsm
from loom_core.kernel.ids import IdSource
from loom_core.kernel.types import (
    Agent,
    AgentResult,
    Bundle,
    Finalize,
    Gate,
    GateDecision,
    Invariant,
    Spawn,
)

from ._sim import BLOCKER, Sim, lone_reviewer_bundle, reviewer_output

# --------------------------------------------------------------------------- 8. INV_008 on a gate-less flow

def test_gateless_accept_over_a_blocker_raises_inv008_and_leaves_state_alone():
    bundle = lone_reviewer_bundle()
    sim = Sim(bundle)
    sim.create()
    state = sim.state
    run_id = sim.run_id("checker")
    before = copy.deepcopy(state)

    event = AgentResult(agent_run_id=run_id, output=reviewer_output("REQUEST_CHANGES", [BLOCKER]))
    with pytest.raises(InvariantViolation) as exc:
        fsm.tick(bundle, state, event, "2026-01-01T00:05:00.000Z", IdSource("seed/x"))

    assert "INV_008" in exc.value.ids
    assert "acceptance-missing at spec.md:12" in str(exc.value)
    assert state == before
    assert state.pending[run_id]["agent"] == "checker"
    assert state.findings == {} and state.verdicts == [] and state.agent_records == []
    assert state.pipeline["status"] == "in_progress" and state.pipeline["verdict"] is None


def test_gateless_flow_with_a_clean_review_completes():
    bundle = lone_reviewer_bundle()
    sim = Sim(bundle)
    sim.create()
    t = sim.deliver("checker", reviewer_output("APPROVE", [{"severity": "warn", "summary": "wordy"}]))
    assert t.directive.kind == "complete" and t.directive.verdict == "accepted"
    assert sim.state.phases["review"]["status"] == "completed"


def test_bundle_invariant_violation_rolls_back_the_whole_tick():
    def checker_never_runs(view):
        n = sum(1 for r in view.agent_records if r["agent"] == "checker")
        return "checker ran" if n >= 1 else None

    bundle = lone_reviewer_bundle(invariants=(Invariant("INV_T_1", ("agent_records",), checker_never_runs),))
    sim = Sim(bundle)
    sim.create()
    before = copy.deepcopy(sim.state)
    with pytest.raises(InvariantViolation) as exc:
        sim.deliver("checker", reviewer_output())
    assert exc.value.ids == ["INV_T_1"]
    assert sim.state == before


# --------------------------------------------------------------------------- 9. dry-run rule

def no_auto_sign(view):
    row = view.gates.get("sign")
    if row and row["status"] == "auto-approved":
        return "the sign-off gate may not approve itself"
    return None


def auto_gate_bundle(*, with_invariant: bool) -> Bundle:
    stages = {
        "review": Spawn("review", "checker", "review"),
        "sign": Gate("sign", "review", message="Sign off the work?"),
        "finalize": Finalize(),
    }
    invariants = (Invariant("INV_TEST_NO_AUTO_SIGN", ("gates",), no_auto_sign),) if with_invariant else ()
    return Bundle(
        name="auto-gate", version="1", phases=("review",), default_flow="main",
        flows={"main": tuple(stages)}, stages=stages,
        agents={"checker": Agent("checker", "reviewer", "Check {{task}}.")},
        gate_roles={"sign": "signoff"},
        default_gate_policies={"signoff": "auto"},
        policy_resolver=lambda view, role, ctx: GateDecision("auto-approve", reason="looks good"),
        invariants=invariants,
    )


def test_auto_gate_without_a_veto_approves_by_itself():
    sim = Sim(auto_gate_bundle(with_invariant=False))
    sim.create()
    t = sim.deliver("checker", reviewer_output())
    assert t.directive.kind == "complete" and t.directive.verdict == "accepted"
    assert sim.state.gates["sign"]["status"] == "auto-approved"


def test_auto_gate_vetoed_by_an_invariant_asks_a_person():
    sim = Sim(auto_gate_bundle(with_invariant=True))
    sim.create()
    t = sim.deliver("checker", reviewer_output())

    assert t.directive.kind == "ask-user"
    assert t.directive.gate == "sign"
    assert "INV_TEST_NO_AUTO_SIGN" in t.directive.message
    assert "may not approve itself" in t.directive.message
    assert sim.state.gates["sign"]["status"] == "pending"
    assert sim.state.pipeline["status"] == "in_progress"

    # a human approval is not what the invariant forbids: the task completes
    t = sim.answer("accept")
    assert t.directive.kind == "complete" and t.directive.verdict == "accepted"
    assert sim.state.gates["sign"]["status"] == "approved"
    assert sim.state.gates["sign"]["decided_by"] == "human"
