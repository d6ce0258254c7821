"""The code bundle on the real kernel and store: gates, blockers, safety floor, rework, caps."""

from __future__ import annotations

import dataclasses

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loom_core.agents.executors import ExecResult, ScriptedExecutor
from loom_core.bundles.code import BUNDLE, STAGES
from loom_core.engine.clock import FixedClock
from loom_core.engine.drive import DriveOptions, Driver
from loom_core.engine.engine import Engine
from loom_core.kernel.types import Spawn
from tests.support.code_agents import CodeAgents, blocker, fence


def _drive(project, agents: CodeAgents, *, policy: str | None = None, bundle=BUNDLE, cap: int = 40,
           complexity: str | None = None):
    engine = Engine(project, bundle=bundle, clock=FixedClock())
    driver = Driver(engine, ScriptedExecutor(agents), options=DriveOptions(max_total_spawns=cap))
    gp = {"classify": policy, "plan": policy, "final": policy} if policy else {}
    init = {"complexity": complexity, "complexity_pinned": True} if complexity else {}
    outcome = driver.start("make f handle empty input", gate_policies=gp, initial_decisions=init)
    return engine, driver, outcome


def test_clean_run_completes_accepted_through_every_medium_stage(project):
    agents = CodeAgents()
    engine, _, outcome = _drive(project, agents)
    assert outcome.kind == "complete" and outcome.verdict == "accepted", outcome
    st = engine.state()
    assert st.driver["flow_name"] == "medium"
    for agent in ("classifier", "code-analyzer", "planner", "logic-reviewer", "implementer", "checks-runner",
                  "challenger-reviewer", "acceptance"):
        assert agent in agents.calls
    assert st.bundle_state["test_run"]["status"] == "ok"
    assert st.phases["implementation"]["status"] == "completed"
    engine.close()


def test_reviewer_blocker_parks_at_the_final_gate(project):
    agents = CodeAgents()
    agents.on["challenger-reviewer"] = lambda i: blocker("challenger-reviewer")
    engine, _, outcome = _drive(project, agents)
    # the blocker walks back to implement, survives the rework round, and the stall breaker asks a human
    assert outcome.kind == "paused" and outcome.gate == "gate-final"
    assert "app/core.py:3" in outcome.message and "empty input crashes" in outcome.message
    st = engine.state()
    assert st.pipeline["verdict"] is None and st.status == "in_progress"
    assert "acceptance" not in agents.calls  # acceptance never ran over an open blocker
    assert agents.calls.count("implementer") == 2
    engine.close()


def test_acceptance_over_an_open_blocker_is_rolled_back(project):
    """Even if acceptance were spawned with a blocker open, its PASS cannot commit."""
    stages = dict(STAGES)
    stages["final-checks"] = Spawn("final-checks", "acceptance", "validation")  # no `when` guard
    bundle = dataclasses.replace(BUNDLE, stages=stages)
    agents = CodeAgents()
    agents.on["challenger-reviewer"] = lambda i: blocker("challenger-reviewer")
    engine, _, outcome = _drive(project, agents, bundle=bundle)
    assert outcome.kind == "parked" and outcome.code == "INVARIANT_VIOLATION"
    assert {v["id"] for v in outcome.violations} >= {"INV_CODE_104"}
    st = engine.state()
    assert not any(v["agent"] == "acceptance" for v in st.verdicts)  # the PASS never landed
    assert any(r["agent"] == "acceptance" for r in st.pending.values())  # still pending: retry or force-close
    last = engine.store.conn.execute("SELECT type, payload FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    assert last[0] == "invariant-refusal" and "INV_CODE_104" in last[1]
    engine.close()


def test_touching_a_test_file_forces_a_human_final_gate_under_auto(project):
    agents = CodeAgents()
    agents.on["implementer"] = lambda i: ExecResult(output="edited", files_modified=("app/core.py",),
                                                    files_created=("tests/test_core.py",))
    engine, _, outcome = _drive(project, agents, policy="auto")
    assert outcome.kind == "paused" and outcome.gate == "gate-final"
    assert "INV_CODE_103" in outcome.message and "tests/test_core.py" in outcome.message
    gev = outcome.gate_event_id
    resp = engine.answer(gev, "accept")
    assert resp.directive.kind == "complete" and resp.directive.verdict == "accepted"
    assert engine.state().gates["gate-final"]["decided_by"] == "human"
    engine.close()


def test_auto_requires_the_safety_floor(project):
    agents = CodeAgents()
    agents.on["checks-runner"] = lambda i: '{"checks": [{"name": "test", "status": "fail", "exit_code": 1, ' \
                                           '"command": "pytest", "output_head": "E   assert 1 == 2", ' \
                                           '"locations": [{"file": "tests/test_a.py", "line": 7, ' \
                                           '"message": "assert 1 == 2"}]}]}'
    engine, _, outcome = _drive(project, agents, policy="auto", cap=60)
    st = engine.state()
    failed = [f for f in st.findings.values() if f["category"] == "failed-check"]
    assert any(f["file"] == "tests/test_a.py" and f["line_start"] == 7 for f in failed)
    assert outcome.kind == "paused" and outcome.gate == "gate-final"  # never auto-approved over a failing test
    assert st.bundle_state["test_run"]["status"] == "fail"
    engine.close()


def test_plan_blocker_asks_at_the_plan_gate_under_on_blockers(project):
    agents = CodeAgents()
    agents.on["logic-reviewer"] = lambda i: blocker("logic-reviewer", file="plan.md", line=4) \
        if i.phase == "planning" else fence({"verdict": "APPROVE", "findings": []})
    engine, _, outcome = _drive(project, agents)
    assert outcome.kind == "paused" and outcome.gate == "gate-plan"
    resp = engine.answer(outcome.gate_event_id, "reject", reject_intent="revise", message="split step 2")
    assert resp.directive.kind == "shuttle" and resp.directive.intents[0].agent == "planner"
    engine.close()


def test_pinned_fast_lane_and_answer_flow(project, tmp_path):
    agents = CodeAgents()
    engine, _, outcome = _drive(project, agents, complexity="trivial")
    assert outcome.verdict == "accepted" and engine.state().driver["flow_name"] == "trivial"
    assert "classifier" not in agents.calls and "planner" not in agents.calls
    engine.close()
    other = tmp_path / "q"
    other.mkdir()
    agents = CodeAgents()
    engine, _, outcome = _drive(other, agents, complexity="question")
    assert outcome.verdict == "accepted" and "app/core.py:1" in outcome.summary
    assert "implementer" not in agents.calls
    engine.close()


def test_schema_invalid_output_gets_a_rework_request_quoting_the_error(project):
    agents = CodeAgents()
    prompts = []

    def acceptance(intent):
        prompts.append(intent.prompt)
        if len(prompts) == 1:
            return fence({"summary_line": "forgot the verdict", "findings": []})
        return fence({"verdict": "PASS", "findings": []})

    agents.on["acceptance"] = acceptance
    engine, _, outcome = _drive(project, agents)
    assert outcome.verdict == "accepted"
    assert len(prompts) == 2
    assert "Your previous output was rejected" in prompts[1] and "verdict" in prompts[1]
    engine.close()


def test_twice_invalid_output_parks_with_a_readable_reason(project):
    agents = CodeAgents()
    agents.on["acceptance"] = lambda i: "I think it is fine, ship it."
    engine, _, outcome = _drive(project, agents)
    assert outcome.kind == "paused" and outcome.gate == "gate-final"
    assert "could not read" in outcome.message
    harness = [f for f in engine.state().findings.values() if f["origin"] == "harness"]
    assert harness and harness[0]["category"] == "unparseable-output" and "no-json" in harness[0]["summary"]
    engine.close()


def test_spawn_cap(project):
    agents = CodeAgents()
    engine, _, outcome = _drive(project, agents, cap=3)
    assert outcome.kind == "error" and outcome.code == "DRIVE_SPAWN_CAP_EXCEEDED"
    assert "more than 3" in outcome.message and engine.state().status == "in_progress"
    engine.close()


JSONISH = st.one_of(
    st.text(max_size=300),
    st.builds(lambda s, n: s[:n], st.sampled_from([
        fence({"verdict": "PASS", "findings": [{"severity": "warn", "summary": "x"}]}),
        '{"verdict": "APPROVE", "findings": [{"severity": "nope"}]}',
        '{"verdict": 3, "findings": {}}', '{"findings": []}', "```json\n{\"verdict\": \"PASS\"",
    ]), st.integers(min_value=0, max_value=120)),
    st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                 lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
                 max_leaves=10).map(lambda v: fence({"verdict": v}) if not isinstance(v, dict) else fence(v)),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
          derandomize=True)
@given(reviewer=JSONISH, validator=JSONISH)
def test_malformed_outputs_never_crash_the_driver(tmp_path_factory, reviewer, validator):
    project = tmp_path_factory.mktemp("fuzz")
    agents = CodeAgents()
    agents.on["logic-reviewer"] = lambda i: reviewer
    agents.on["acceptance"] = lambda i: validator
    engine, _, outcome = _drive(project, agents, cap=60)
    try:
        assert outcome.kind in ("complete", "paused", "parked", "error")
        if outcome.kind == "error":
            assert outcome.code and outcome.message  # a typed, readable reason
        if outcome.kind == "paused":
            assert outcome.message
        assert engine.store.verify_chain().ok
    finally:
        engine.close()


def test_a_human_rejection_note_reaches_the_agents_that_redo_the_work(project):
    agents = CodeAgents()
    prompts: list[str] = []

    def planner(intent):
        prompts.append(intent.prompt)
        return "plan written"

    agents.on["planner"] = planner
    engine, _, outcome = _drive(project, agents, policy="human")
    assert outcome.gate == "gate-classify"
    engine.answer(outcome.gate_event_id, "accept")
    driver = Driver(engine, ScriptedExecutor(agents))
    outcome = driver.resume()
    assert outcome.gate == "gate-plan"
    driver.run(engine.answer(outcome.gate_event_id, "reject", reject_intent="revise",
                             message="split step 2 into a migration and a backfill"))
    assert len(prompts) == 2
    assert "Feedback from the person at gate-plan" in prompts[1]
    assert "split step 2 into a migration and a backfill" in prompts[1]
    assert "split step 2" not in prompts[0]
    engine.close()


def _envelope(*entries: dict, **extra) -> str:
    import json

    return json.dumps({"checks": list(entries), **extra})


def test_no_check_that_actually_ran_means_a_person_decides_even_under_auto(project):
    """All checks skipped (nothing found, pytest missing) is no evidence: the final gate asks a person."""
    agents = CodeAgents()
    agents.on["checks-runner"] = lambda i: _envelope(
        {"name": "test", "status": "skipped", "reason": "pytest is not installed in /p/.venv"},
        {"name": "lint", "status": "skipped", "reason": "no lint command found"})
    for policy in ("auto", None):  # auto, and the default on-blockers
        engine, _, outcome = _drive(project, agents, policy=policy)
        assert outcome.kind == "paused" and outcome.gate == "gate-final", outcome
        assert "no check actually ran" in outcome.message
        assert "pytest is not installed in /p/.venv" in outcome.message
        resp = engine.answer(outcome.gate_event_id, "accept")
        assert resp.directive.verdict == "accepted"
        engine.close()
        import shutil

        shutil.rmtree(project / ".loom")


def test_unverified_checks_are_never_an_automatic_pass(project):
    agents = CodeAgents()
    agents.on["checks-runner"] = lambda i: _envelope(
        {"name": "test", "status": "unverified", "exit_code": 0, "command": ".venv/bin/python -m pytest",
         "reason": "package 'pkg' resolves to /home/u/proj/src/pkg, outside the sandbox"},
        environment={"interpreter": "/home/u/proj/.venv/bin/python", "verified": False,
                     "problem": "package 'pkg' resolves outside the sandbox"})
    engine, _, outcome = _drive(project, agents, policy="auto")
    assert outcome.kind == "paused" and outcome.gate == "gate-final"
    assert "unverified" in outcome.message and "outside the sandbox" in outcome.message
    st = engine.state()
    assert st.bundle_state["checks_meta"]["verified"] is False
    assert any(f["category"] == "unverified-check" and f["severity"] == "warn" for f in st.findings.values())
    assert "checks_env" not in st.decisions  # folded into the bundle state, not left in every prompt
    engine.close()


def test_preexisting_failures_are_listed_but_do_not_block(project):
    agents = CodeAgents()
    agents.on["checks-runner"] = lambda i: _envelope(
        {"name": "test", "status": "ok", "exit_code": 0, "command": "pytest"},
        {"name": "lint", "status": "preexisting", "exit_code": 1, "command": "ruff check --no-fix",
         "preexisting": ["src/pkg/old.py: F401 `os` imported but unused"],
         "locations": [{"file": "src/pkg/old.py", "line": 1, "message": "F401 `os` imported but unused"}]},
        tree_changes=[])
    engine, _, outcome = _drive(project, agents, policy="auto")
    assert outcome.kind == "complete" and outcome.verdict == "accepted", outcome
    st = engine.state()
    assert st.bundle_state["lint_result"]["status"] == "preexisting"
    pre = [f for f in st.findings.values() if f["category"] == "pre-existing-failure"]
    assert pre and pre[0]["severity"] == "info" and "F401" in pre[0]["evidence_excerpt"]
    assert not [f for f in st.findings.values() if f["severity"] == "blocking"]
    engine.close()


def test_new_failure_blocks_but_preexisting_locations_are_not_findings(project):
    agents = CodeAgents()
    agents.on["checks-runner"] = lambda i: _envelope(
        {"name": "lint", "status": "fail", "exit_code": 1, "command": "ruff check --no-fix",
         "new_failures": ["src/pkg/new.py: F821 undefined name `x`"],
         "preexisting": ["src/pkg/old.py: F401 `os` imported but unused"],
         "locations": [{"file": "src/pkg/old.py", "line": 1, "message": "F401 `os` imported but unused"},
                       {"file": "src/pkg/new.py", "line": 3, "message": "F821 undefined name `x`"}]})
    engine, _, outcome = _drive(project, agents, policy="auto", cap=60)
    assert outcome.kind == "paused" and outcome.gate == "gate-final"
    files = {f["file"] for f in engine.state().findings.values() if f["category"] == "failed-check"}
    assert "src/pkg/new.py" in files and "src/pkg/old.py" not in files
    engine.close()


def test_checks_none_is_an_explicit_opt_out(project):
    agents = CodeAgents()
    agents.on["checks-runner"] = lambda i: _envelope(disabled=True)
    engine, _, outcome = _drive(project, agents, policy="auto")
    assert outcome.kind == "complete" and outcome.verdict == "accepted", outcome
    assert engine.state().bundle_state["test_run"]["status"] == "disabled"
    engine.close()


def test_a_check_that_changed_the_tree_is_reported(project):
    agents = CodeAgents()
    agents.on["checks-runner"] = lambda i: _envelope(
        {"name": "test", "status": "ok", "exit_code": 0, "command": "pytest"}, tree_changes=["src/pkg/fmt.py"])
    engine, _, outcome = _drive(project, agents, policy="auto")
    assert outcome.verdict == "accepted"
    f = [f for f in engine.state().findings.values() if f["category"] == "check-changed-tree"]
    assert f and f[0]["file"] == "src/pkg/fmt.py" and "reverted" in f[0]["summary"]
    engine.close()
