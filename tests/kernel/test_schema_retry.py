"""Unreadable reviewer output: one re-issue on a lone spawn, a harness blocker after that,
and an immediate harness blocker inside a fan-out."""

from __future__ import annotations

import pytest

from loom_core.errors import InvariantViolation
from loom_core.kernel.prompt import render

from ._sim import Sim, lone_reviewer_bundle, reviewer_output

REJECTION = "### Your previous output was rejected"


def test_bad_output_on_a_lone_spawn_is_reissued_with_the_error_in_the_prompt():
    bundle = lone_reviewer_bundle()
    sim = Sim(bundle)
    t = sim.create()
    first = sim.run_id("checker")
    assert REJECTION not in render(bundle, sim.state, bundle.agents["checker"])

    t = sim.deliver("checker", "Looks fine to me, no issues.")

    assert t.directive.kind == "shuttle"
    (intent,) = t.directive.intents
    assert intent.agent == "checker"
    assert intent.agent_run_id != first
    assert list(sim.state.pending) == [intent.agent_run_id]
    assert ("schema-retry", {"agent": "checker", "agent_run_id": first,
                             "reason": "no-json: no JSON object in output"}) in t.audit
    assert sim.state.findings == {}
    assert sim.state.agent_records == []  # the bad attempt is not a finished run
    prompt = render(bundle, sim.state, bundle.agents["checker"])
    assert REJECTION in prompt
    section = prompt.split(REJECTION, 1)[1]
    assert "no-json: no JSON object in output" in section
    assert "Looks fine to me" in section  # the excerpt of what was rejected


def test_good_output_after_a_retry_clears_the_rework_note_and_completes():
    bundle = lone_reviewer_bundle()
    sim = Sim(bundle)
    sim.create()
    sim.deliver("checker", '{"verdict": "APPROVE"')  # truncated JSON
    assert "json-parse" in sim.state.scratch["rework_checker"]
    t = sim.deliver("checker", reviewer_output())
    assert t.directive.kind == "complete" and t.directive.verdict == "accepted"
    assert "rework_checker" not in sim.state.scratch
    assert not any(k.startswith("schema_retry_") for k in sim.state.scratch)


def test_second_bad_output_records_a_harness_blocker():
    bundle = lone_reviewer_bundle(with_gate=True)
    sim = Sim(bundle)
    sim.create()
    sim.deliver("checker", "no json here")
    t = sim.deliver("checker", '{"verdict": 42, "findings": []}')

    assert t.directive.kind == "ask-user"  # not re-issued a second time
    assert sim.state.pending == {}
    (finding,) = sim.state.findings.values()
    assert finding["category"] == "unparseable-output"
    assert finding["origin"] == "harness"
    assert finding["severity"] == "blocking"
    assert finding["status"] == "open"
    assert "schema-field" in finding["summary"]
    verdict = sim.state.latest_verdict("checker")
    assert verdict["verdict"] == "REQUEST_CHANGES" and verdict["blocking_issues"] == 1
    assert "rework_checker" not in sim.state.scratch


def test_second_bad_output_on_a_gateless_flow_cannot_be_accepted():
    bundle = lone_reviewer_bundle()
    sim = Sim(bundle)
    sim.create()
    sim.deliver("checker", "no json here")
    with pytest.raises(InvariantViolation) as exc:
        sim.deliver("checker", "still no json")
    assert exc.value.ids == ["INV_008"]
    assert "unparseable-output" in str(exc.value)


def test_bad_output_in_the_fanout_records_a_harness_blocker_at_once():
    sim = Sim()
    t = sim.to_review()
    sibling = sim.run_id("testability-reviewer")

    t = sim.deliver("spec-reviewer", "The spec reads well.")

    # no re-issue: the sibling is still out and is re-shuttled with its own id
    assert t.directive.kind == "shuttle"
    assert [(i.agent, i.agent_run_id) for i in t.directive.intents] == [("testability-reviewer", sibling)]
    assert not any(a == "schema-retry" for a, _ in t.audit)
    (finding,) = sim.state.findings.values()
    assert (finding["category"], finding["origin"], finding["severity"]) == \
        ("unparseable-output", "harness", "blocking")
    assert finding["agent"] == "spec-reviewer" and finding["phase"] == "review-spec"

    # the blocker makes the automatic sign-off send the draft back
    t = sim.deliver("testability-reviewer", reviewer_output())
    assert t.directive.kind == "shuttle"
    assert [i.agent for i in t.directive.intents] == ["spec-writer"]
    assert sim.state.gates["gate-approval"]["status"] == "auto-rejected"


def test_bad_output_in_a_batched_fanout_delivery_records_harness_blocker():
    sim = Sim()
    sim.to_review()
    sim.deliver_all({"spec-reviewer": reviewer_output(), "testability-reviewer": "```json\n{oops}\n```"})
    harness = [f for f in sim.state.findings.values() if f["origin"] == "harness"]
    assert [(f["agent"], f["category"]) for f in harness] == [("testability-reviewer", "unparseable-output")]


def test_odd_line_number_in_reviewer_output_does_not_crash_the_tick():
    bundle = lone_reviewer_bundle(with_gate=True)
    sim = Sim(bundle)
    sim.create()
    out = reviewer_output("APPROVE", [{"severity": "info", "summary": "typo", "line_start": "²"}])
    t = sim.deliver("checker", out)
    assert t.directive.kind in ("ask-user", "shuttle")
