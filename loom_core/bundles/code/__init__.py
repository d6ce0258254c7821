"""The code bundle: agents, stages, flows, gates and rules for changing a code repository.

Pure data over the kernel. Flows per complexity share the prefix
``initialize, classify, classify-agent, stack-to-bundle-state``; the classifier (or a pinned
``--complexity``) picks trivial / simple / medium / complex / answer after ``classify-agent``.
"""

from __future__ import annotations

from importlib import resources

from loom_core.bundles.code import contracts, policy, steps
from loom_core.kernel.types import (
    Agent,
    AnswerOption,
    Bundle,
    ComplexityFlows,
    Fanout,
    Finalize,
    Gate,
    ReplanBudget,
    Spawn,
    Step,
)

# agent -> (output kind, tier, contract, extras). Extras read by the driver: ``edits_files`` (gets
# file-editing tools), ``judges`` (the work under review goes into its prompt: the context doc, the
# plan or the diff, by phase), ``writes_doc`` (its answer is saved as that .loom/work/ document
# when the spawn did not write it), ``capability`` (a deterministic executor runs it).
_J: dict = {"judges": True}
_ROSTER: dict[str, tuple[str, str, object, dict]] = {
    "classifier": ("classifier", "balanced", contracts.CLASSIFIER, {}),
    "code-analyzer": ("nonreview", "balanced", None, {"repo_brief": True, "writes_doc": "context-doc.md"}),
    "code-analyzer-light": ("nonreview", "fast", None, {"repo_brief": True, "writes_doc": "context-doc.md"}),
    "context-doc-verifier": ("validator", "fast", contracts.VALIDATOR, _J),
    "architect": ("nonreview", "balanced", None, {"repo_brief": True, "writes_doc": "architecture-decisions.md"}),
    "planner": ("nonreview", "balanced", None, {"repo_brief": True, "writes_doc": "plan.md"}),
    "planner-deep": ("nonreview", "premium", None, {"repo_brief": True, "writes_doc": "plan.md"}),
    "plan-grounding-check": ("validator", "fast", contracts.VALIDATOR, _J),
    "logic-reviewer": ("reviewer", "balanced", contracts.REVIEWER, _J),
    "logic-reviewer-deep": ("reviewer", "premium", contracts.REVIEWER, _J),
    "challenger-reviewer": ("reviewer", "balanced", contracts.REVIEWER, _J),
    "challenger-reviewer-deep": ("reviewer", "premium", contracts.REVIEWER, _J),
    "style-reviewer": ("reviewer", "fast", contracts.REVIEWER, _J),
    "security": ("reviewer", "balanced", contracts.REVIEWER, _J),
    "performance": ("reviewer", "balanced", contracts.REVIEWER, _J),
    "ui-consistency": ("validator", "fast", contracts.VALIDATOR, _J),
    "playwright": ("validator", "fast", contracts.VALIDATOR, {"edits_files": True, "judges": True}),
    "api-contract": ("validator", "fast", contracts.VALIDATOR, _J),
    "test": ("validator", "fast", contracts.VALIDATOR, {"edits_files": True}),
    "implementer": ("nonreview", "premium", None, {"edits_files": True}),
    "implementer-escalated": ("nonreview", "premium", None, {"edits_files": True}),
    "checks-runner": ("classifier", "deterministic", contracts.CHECKS, {"capability": "checks"}),
    "adjudicator": ("validator", "balanced", contracts.VALIDATOR, _J),
    "acceptance": ("validator", "fast", contracts.VALIDATOR, _J),
    "responder": ("classifier", "balanced", contracts.RESPONDER, {}),
}
_CHANGE_KINDS = {
    "challenger-reviewer": ("logic", "perf-sensitive", "security-sensitive"),
    "challenger-reviewer-deep": ("logic", "perf-sensitive", "security-sensitive"),
    "style-reviewer": ("logic", "ui", "perf-sensitive", "security-sensitive"),
    "security": ("logic", "ui", "perf-sensitive", "security-sensitive", "config-only"),
    "performance": ("logic", "ui", "perf-sensitive", "security-sensitive"),
}


def _prompt(name: str) -> str:
    path = resources.files(__name__).joinpath("prompts", f"{name}.md")
    return path.read_text(encoding="utf-8") if path.is_file() else f"You are the {name} agent for: {{{{task}}}}\n"


def _agent(name: str) -> Agent:
    kind, tier, contract, extras = _ROSTER[name]
    applies = steps.panel_member(name) if name in steps.IMPLEMENTATION_REVIEWERS else None
    return Agent(name, kind, _prompt(name), tier, applies_to=applies,
                 relevant_for_change_kinds=_CHANGE_KINDS.get(name), extras=extras,
                 contract=contract)  # type: ignore[arg-type]


AGENTS = {name: _agent(name) for name in _ROSTER}

APPROVE_REVISE = (
    AnswerOption(("approve", "accept", "yes", "y", "lgtm"), "Approve", "accept"),
    AnswerOption(("revise", "changes", "rework", "reject"), "Request changes", "reject", "revise", True),
)
FULL_OPTIONS = APPROVE_REVISE + (AnswerOption(("abandon", "stop", "cancel"), "Abandon the task", "reject",
                                              "abandon"),)
REVIEW_PANEL = ("logic-reviewer", "challenger-reviewer", "style-reviewer", "security", "performance",
                "ui-consistency", "playwright", "api-contract")
DEEP_PANEL = ("logic-reviewer-deep", "challenger-reviewer-deep", "style-reviewer", "security", "performance",
              "ui-consistency", "playwright", "api-contract")

_stage_list = [
    Step("initialize", "context"),
    Step("classify", "context", run=steps.classify),
    Spawn("classify-agent", "classifier", "context", when=steps.not_pinned_classifier),
    Step("stack-to-bundle-state", "context", run=steps.stack_to_bundle_state),
    Gate("gate-classify", "context", message=policy.classify_message, options=APPROVE_REVISE),
    Spawn("enrich", "code-analyzer", "context"),
    Spawn("enrich-light", "code-analyzer-light", "context"),
    Spawn("context-verify", "context-doc-verifier", "context",
          when=lambda v: v.decisions.get("complexity") != "simple"),
    Spawn("architect", "architect", "planning", when=lambda v: v.decisions.get("complexity") == "complex"),
    Spawn("plan", "planner", "planning"),
    Spawn("plan-deep", "planner-deep", "planning"),
    Fanout("plan-review", ("plan-grounding-check", "logic-reviewer"), "planning", iteration_budget=2),
    Fanout("plan-review-deep", ("plan-grounding-check", "logic-reviewer-deep"), "planning", iteration_budget=2),
    Gate("gate-plan", "planning", message=policy.plan_message, options=FULL_OPTIONS, on_resume=policy.resume_plan),
    Spawn("test-first", "test", "test_first", when=lambda v: v.decisions.get("tests_mode") == "tdd"),
    Step("git-stash", "implementation", run=steps.remember_baseline),
    Spawn("implement", "implementer", "implementation", when=lambda v: not steps.escalate(v)),
    Spawn("implement-escalated", "implementer-escalated", "implementation", when=steps.escalate),
    Step("note-escalation", "implementation", run=steps.note_escalation),
    Step("git-diff", "implementation", run=steps.git_diff),
    Spawn("run-checks", "checks-runner", "implementation"),
    Step("apply-checks", "implementation", run=steps.apply_checks),
    Step("pre-review", "implementation", run=steps.pre_review),
    Step("sacred-tests", "implementation", run=steps.sacred_tests),
    Fanout("review", REVIEW_PANEL, "implementation", filter_by_change_kind=True, iteration_budget=3),
    Fanout("review-deep", DEEP_PANEL, "implementation", filter_by_change_kind=True, iteration_budget=3),
    Fanout("review-light", ("logic-reviewer",), "implementation", iteration_budget=3),
    Spawn("adjudicate", "adjudicator", "implementation", when=steps.should_adjudicate),
    Step("reconcile", "implementation", run=steps.reconcile),
    Step("iterate", "implementation"),
    Spawn("recheck", "checks-runner", "validation", when=steps.tree_changed_since_checks),
    Step("apply-rechecks", "validation", run=steps.apply_rechecks),
    Spawn("final-checks", "acceptance", "validation", when=steps.no_live_impl_blocker),
    Gate("gate-final", "validation", message=policy.final_message, options=FULL_OPTIONS,
         on_resume=policy.resume_final),
    Spawn("respond", "responder", "context"),
    Step("apply-answer", "validation", run=steps.apply_answer),
    Step("finish-summary", "validation", run=steps.finish_summary),
    Finalize(),
]
STAGES = {s.name: s for s in _stage_list}

PREFIX = ("initialize", "classify", "classify-agent", "stack-to-bundle-state")
EDIT_TAIL = ("git-diff", "run-checks", "apply-checks", "pre-review", "sacred-tests")
FLOWS = {
    "trivial": PREFIX + ("git-stash", "implement") + EDIT_TAIL + ("finish-summary", "finalize"),
    "answer": PREFIX + ("respond", "apply-answer", "finish-summary", "finalize"),
    "simple": PREFIX + ("enrich-light", "plan", "git-stash", "implement", "implement-escalated", "note-escalation")
    + EDIT_TAIL + ("review-light", "recheck", "apply-rechecks", "final-checks", "gate-final", "finish-summary",
                     "finalize"),
    "medium": PREFIX + ("gate-classify", "enrich", "plan", "plan-review", "gate-plan", "git-stash", "implement",
                        "implement-escalated", "note-escalation") + EDIT_TAIL
    + ("review", "adjudicate", "reconcile", "iterate", "recheck", "apply-rechecks", "final-checks", "gate-final",
       "finish-summary", "finalize"),
    "complex": PREFIX + ("gate-classify", "enrich", "context-verify", "architect", "plan-deep", "plan-review-deep",
                         "gate-plan", "test-first", "git-stash", "implement", "implement-escalated",
                         "note-escalation") + EDIT_TAIL
    + ("review-deep", "adjudicate", "reconcile", "iterate", "recheck", "apply-rechecks", "final-checks", "gate-final",
       "finish-summary", "finalize"),
}

BUNDLE = Bundle(
    name="code",
    version="1",
    phases=("context", "planning", "test_first", "implementation", "validation", "final"),
    default_flow="medium",
    flows=FLOWS,
    stages=STAGES,
    agents=AGENTS,
    gate_roles={"gate-classify": "classify", "gate-plan": "plan", "gate-final": "final"},
    default_gate_policies={"classify": "on-blockers", "plan": "on-blockers", "final": "on-blockers"},
    policy_resolver=policy.resolver,
    replan_budget=ReplanBudget(3, "human"),
    complexity_flows=ComplexityFlows("complexity", "classify-agent", {
        "trivial": "trivial", "simple": "simple", "medium": "medium", "complex": "complex", "question": "answer"}),
    default_model_tiers={"fast": "haiku", "balanced": "sonnet", "premium": "opus"},
    invariants=policy.INVARIANTS,
    audit_types=("sacred-tests-checked", "adjudication-applied", "checks-recorded", "answer-recorded",
                 "finish-summary"),
    gate_roles_extra=(),
)
