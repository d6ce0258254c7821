"""The spec bundle driven through pure kernel ticks: happy path, rework, stall breaker,
replan budget and human sign-off over open blockers."""

from __future__ import annotations

import pytest

from loom_core.kernel.prompt import render
from loom_core.kernel.state import TERMINAL_PHASE

from ._sim import BLOCKER, RESEARCH_OUTPUT, Sim, reviewer_output


def blocker(**over):
    return {**BLOCKER, **over}


def request_changes(*findings):
    return reviewer_output("REQUEST_CHANGES", list(findings), summary="needs work")


def assert_completed_accepted(sim: Sim, t) -> None:
    assert t.directive.kind == "complete"
    assert t.directive.verdict == "accepted"
    assert t.directive.task_id == "t-2026-01-01-csv-export"
    p = sim.state.pipeline
    assert p["status"] == "completed"
    assert p["verdict"] == "accepted"
    assert p["work_result"] == "clean"
    assert p["ended_at"] == sim.now()
    assert sim.state.pending == {}
    assert sim.state.driver["pending_user_answer"] is None
    for name, row in sim.state.phases.items():
        assert row["status"] in TERMINAL_PHASE, (name, row)
        if row["status"] == "skipped":
            assert row["skipped_reason"], (name, row)


# --------------------------------------------------------------------------- 1. happy path

def test_happy_path_completes_accepted_and_clean():
    sim = Sim()
    t = sim.create()
    assert t.directive.kind == "ask-user"
    assert t.directive.gate == "gate-scope"
    assert sim.directive.gate_event_id.startswith("gev-")
    assert "CSV export" in t.directive.message  # the scope message shows the task
    sim.answer("accept")
    sim.deliver("researcher", RESEARCH_OUTPUT)
    assert sim.state.bundle_state["output_researcher"]["open_questions"] == ["which columns?"]
    assert sim.directive.gate == "gate-consult"
    sim.answer("accept")
    t = sim.redraft()
    models = {i.agent: i.model for i in t.directive.intents}
    assert models == {"spec-reviewer": "sonnet", "testability-reviewer": "haiku"}

    t = sim.review()
    assert_completed_accepted(sim, t)
    phases = {n: r["status"] for n, r in sim.state.phases.items()}
    assert phases == {"intake": "skipped", "research": "completed", "draft": "completed",
                      "review-spec": "completed", "finalize": "skipped"}
    assert sim.state.counters["agents_count"] == 4
    assert sim.state.gates["gate-approval"]["status"] == "auto-approved"
    assert sim.state.bundle_state["spec_readiness"] == {"status": "ok", "blocking": 0}
    assert [v["verdict"] for v in sim.state.verdicts] == ["APPROVE", "APPROVE"]
    assert [a for a, _ in t.audit] == ["gate-decided"]


def test_completed_task_answers_advance_with_the_same_completion():
    from loom_core.kernel.types import Advance

    sim = Sim()
    sim.to_review()
    sim.review()
    before = sim.state
    t = sim.step(Advance())
    assert t.directive.kind == "complete" and t.directive.verdict == "accepted"
    assert t.ops == []
    assert t.state == before


# --------------------------------------------------------------------------- 3. rework loop

def test_blocking_review_walks_back_to_draft_then_completes():
    sim = Sim()
    sim.to_review()
    t = sim.review(spec=request_changes(BLOCKER))

    # the auto spec-approval gate rejected on its own and the machine re-spawned the writer
    assert t.directive.kind == "shuttle"
    assert [i.agent for i in t.directive.intents] == ["spec-writer"]
    flow = sim.bundle.flows["spec"]
    assert flow[sim.state.driver["step_index"]] == "draft"
    gate = sim.state.gates["gate-approval"]
    assert gate["status"] == "auto-rejected" and gate["decided_by"] == "auto-policy"
    assert sim.state.gate_counters["spec-approval"]["auto_rejections"] == 1
    assert sim.state.bundle_state["spec_readiness"] == {"status": "blocked", "blocking": 1}
    assert sim.state.pipeline["status"] == "in_progress"

    # the old finding is superseded by the next iteration, so it no longer counts
    (old,) = sim.state.findings.values()
    assert old["summary"] == BLOCKER["summary"]
    assert old["iteration"] == 1
    assert old["superseded_by_iteration"] == 2
    assert sim.state.count_blocking() == 0

    # the writer is told what to fix
    prompt = render(sim.bundle, sim.state, sim.bundle.agents["spec-writer"])
    assert "### Open blockers" in prompt
    blockers_section = prompt.split("### Open blockers", 1)[1].split("###", 1)[0]
    assert BLOCKER["summary"] in blockers_section
    assert "spec.md:12" in blockers_section

    sim.redraft()
    assert sim.state.scratch["fanout_iter_review-spec"] == 2
    t = sim.review()
    assert_completed_accepted(sim, t)
    assert sim.state.findings[old["id"]]["status"] == "open"  # superseded, not accepted
    assert "open_blockers" not in sim.state.scratch
    # after approval the writer prompt carries no stale blockers any more
    assert "### Open blockers" not in render(sim.bundle, sim.state, sim.bundle.agents["spec-writer"])


def test_request_changes_without_blocking_findings_counts_as_approval():
    sim = Sim()
    sim.to_review()
    nit = {"severity": "nit", "category": "style", "summary": "wording"}
    t = sim.review(spec=reviewer_output("REQUEST_CHANGES", [nit]))
    assert_completed_accepted(sim, t)
    assert sim.state.latest_verdict("spec-reviewer")["verdict"] == "APPROVE"
    assert sim.state.latest_verdict("spec-reviewer")["info_issues"] == 1


# --------------------------------------------------------------------------- 4. stall breaker, replan budget

def test_same_blocker_twice_turns_the_gate_into_a_human_question():
    sim = Sim()
    sim.to_review()
    t = sim.review(spec=request_changes(BLOCKER))
    assert t.directive.kind == "shuttle"  # first round: automatic rework
    sim.redraft()
    # same category / file / line / agent, reworded: still the same blocker
    t = sim.review(spec=request_changes(blocker(summary="Step 3 still lacks an acceptance check")))

    assert t.directive.kind == "ask-user"
    assert t.directive.gate == "gate-approval"
    assert t.directive.gate_event_id
    msg = t.directive.message
    assert "survived 2 rework rounds" in msg
    assert "acceptance-missing" in msg and "spec.md:12" in msg
    assert "Step 3 still lacks an acceptance check" in msg
    # the gate waits for a person instead of rejecting again
    assert sim.state.gates["gate-approval"]["status"] == "pending"
    assert sim.state.gate_counters["spec-approval"]["auto_rejections"] == 1
    assert sim.state.driver["pending_user_answer"]["gate_event_id"] == t.directive.gate_event_id
    assert sim.state.pending == {}


def test_different_blocker_on_the_second_round_is_reworked_automatically():
    sim = Sim()
    sim.to_review()
    sim.review(spec=request_changes(BLOCKER))
    sim.redraft()
    t = sim.review(spec=request_changes(blocker(line_start=40)))
    assert t.directive.kind == "shuttle"
    assert [i.agent for i in t.directive.intents] == ["spec-writer"]
    assert sim.state.gate_counters["spec-approval"]["auto_rejections"] == 2


def test_replan_budget_exhausted_asks_a_human():
    sim = Sim()
    assert sim.bundle.replan_budget.max_iterations == 2
    sim.to_review()
    sim.review(spec=request_changes(blocker(line_start=1)))
    sim.redraft()
    sim.review(testability=request_changes(blocker(category="untestable", line_start=2)))
    assert sim.state.gate_counters["spec-approval"]["auto_rejections"] == 2
    sim.redraft()
    t = sim.review(spec=request_changes(blocker(category="scope", line_start=3)))

    assert t.directive.kind == "ask-user"
    assert t.directive.gate == "gate-approval"
    assert "replan budget exhausted" in t.directive.message
    assert sim.state.gate_counters["spec-approval"]["auto_rejections"] == 2
    assert sim.state.gates["gate-approval"]["status"] == "pending"

    # the person gives up: the task ends rejected
    t = sim.answer("reject", reject_intent="abandon")
    assert t.directive.kind == "complete"
    assert t.directive.verdict == "rejected"
    assert sim.state.pipeline["status"] == "completed"
    assert sim.state.pipeline["work_result"] == "blocked"


# --------------------------------------------------------------------------- 5. human accept over blockers

@pytest.mark.parametrize("policy", ["human", "on-blockers"])
def test_human_accept_over_open_blocker_completes_accepted(policy):
    sim = Sim()
    sim.to_review(gate_policies={"spec-approval": policy})
    t = sim.review(spec=request_changes(BLOCKER))
    assert t.directive.kind == "ask-user"
    assert t.directive.gate == "gate-approval"
    (fid,) = sim.state.findings
    assert sim.state.count_blocking() == 1

    t = sim.answer("accept", message="known gap, ship it")

    assert sim.state.findings[fid]["status"] == "accepted_by_human"
    assert ("findings-accepted-by-human", {"gate": "gate-approval", "findings": [fid]}) in t.audit
    assert sim.state.gates["gate-approval"]["status"] == "approved"
    assert sim.state.gates["gate-approval"]["decided_by"] == "human"
    assert_completed_accepted(sim, t)


def test_human_accept_after_stall_breaker_completes_accepted():
    sim = Sim()
    sim.to_review()
    sim.review(spec=request_changes(BLOCKER))
    sim.redraft()
    sim.review(spec=request_changes(BLOCKER))
    assert sim.directive.kind == "ask-user"
    live = [f["id"] for f in sim.state.live_findings(severity="blocking")]
    assert len(live) == 1
    t = sim.answer("accept")
    assert sim.state.findings[live[0]]["status"] == "accepted_by_human"
    assert_completed_accepted(sim, t)


def test_human_revise_walks_back_to_draft_with_blockers_in_prompt():
    sim = Sim()
    sim.to_review(gate_policies={"spec-approval": "human"})
    sim.review(spec=request_changes(BLOCKER))
    t = sim.answer("reject", reject_intent="revise", message="tighten step 3")
    assert t.directive.kind == "shuttle"
    assert [i.agent for i in t.directive.intents] == ["spec-writer"]
    assert sim.state.gate_counters["spec-approval"]["human_revisions"] == 1
    assert sim.state.gates["gate-approval"]["feedback"] == "tighten step 3"
    prompt = render(sim.bundle, sim.state, sim.bundle.agents["spec-writer"])
    assert BLOCKER["summary"] in prompt.split("### Open blockers", 1)[1]


def test_human_accept_over_open_harness_blocker_completes_accepted():
    # Three rounds of unreadable review output: two automatic reworks exhaust the replan
    # budget, the third time the gate asks a person, who signs off anyway.
    sim = Sim()
    sim.to_review()
    for _ in range(2):
        t = sim.review(spec="I could not finish the review, sorry.")
        assert t.directive.kind == "shuttle"
        sim.redraft()
    t = sim.review(spec="I could not finish the review, sorry.")
    assert t.directive.kind == "ask-user" and t.directive.gate == "gate-approval"
    assert [f["origin"] for f in sim.state.live_findings(severity="blocking")] == ["harness"]
    t = sim.answer("accept")
    assert t.directive.kind == "complete" and t.directive.verdict == "accepted"
