"""The spec bundle: a deliberately non-code domain on the unchanged kernel.

Flow: init → gate-scope → research → gate-consult → draft → review-spec (fan-out) → readiness
→ gate-approval → finalize. Roles the kernel never heard of (scope, consult, spec-approval),
a bundle-defined output kind (``research-note``), findings without files, and an ``auto``
sign-off admitted only with a name-matched safety floor.
"""

from __future__ import annotations

from importlib import resources

from loom_core.kernel.gates import PolicyContext
from loom_core.kernel.state import View
from loom_core.kernel.types import (
    ADVANCE,
    Agent,
    Bundle,
    Fanout,
    Finalize,
    Gate,
    GateDecision,
    Invariant,
    ReplanBudget,
    Spawn,
    StageResult,
    Step,
    complete,
    walk_back,
)


def _prompt(name: str) -> str:
    return resources.files(__name__).joinpath("prompts", f"{name}.md").read_text(encoding="utf-8")


def _init(view: View, ops) -> None:
    ops.set_decision("intake_ready", True)


def _readiness(view: View, ops) -> None:
    blocking = view.state.count_blocking(phase="review-spec")
    ops.set_bundle_state("spec_readiness", {"status": "ok" if blocking == 0 else "blocked",
                                            "blocking": blocking})


def _resolver(view: View, role: str, ctx: PolicyContext) -> GateDecision:
    if role == "spec-approval":
        n = view.state.count_blocking()
        if n:
            return GateDecision("auto-reject", reason=f"{n} blocking review finding(s)", reject_intent="revise",
                                feedback="address the open review findings", counts_against_replan_cap=True)
        return GateDecision("auto-approve", reason="review found no blocking defect")
    return GateDecision("human-required", reason=f"role '{role}' is decided by a person")


def _approval_resume(view: View, answer) -> StageResult:
    if answer["decision"] in ("accept", "auto-apply"):
        return ADVANCE
    if answer.get("reject_intent") == "abandon":
        return complete("rejected")
    return walk_back("draft")


def _scope_message(view: View) -> str:
    return f"Is this the right scope for the spec?\n\n{view.pipeline.get('task')}"


def _approval_message(view: View) -> str:
    verdicts = [f"- {v['agent']}: {v['verdict']} ({v['blocking_issues']} blocking)" for v in view.verdicts[-2:]]
    return "Sign off the specification?\n" + "\n".join(verdicts)


def _inv_201(view: View) -> str | None:
    gate = view.gates.get("gate-approval")
    if gate and gate["status"] in ("approved", "auto-approved"):
        ph = view.phases.get("review-spec", {}).get("status")
        if ph not in ("completed", "skipped", "in_progress"):
            return f"sign-off while review-spec is {ph}"
    return None


def _inv_floor(view: View) -> str | None:
    gate = view.gates.get("gate-approval")
    if gate and gate["status"] == "auto-approved" and view.effective_policy("spec-approval") == "auto":
        status = (view.bundle_state.get("spec_readiness") or {}).get("status")
        if status != "ok":
            return f"autonomous sign-off needs spec_readiness ok (is {status!r})"
    return None


AGENTS = {
    "researcher": Agent("researcher", "research-note", _prompt("researcher"), "balanced"),
    "spec-writer": Agent("spec-writer", "nonreview", _prompt("spec-writer"), "premium"),
    "spec-reviewer": Agent("spec-reviewer", "reviewer", _prompt("spec-reviewer"), "balanced"),
    "testability-reviewer": Agent("testability-reviewer", "reviewer", _prompt("testability-reviewer"), "fast"),
}

STAGES = {
    "init": Step("init", "intake", run=_init),
    "gate-scope": Gate("gate-scope", "intake", message=_scope_message),
    "research": Spawn("research", "researcher", "research"),
    "gate-consult": Gate("gate-consult", "research",
                         message="Research is done. Answer its open questions (as a note) and continue?"),
    "draft": Spawn("draft", "spec-writer", "draft"),
    "review-spec": Fanout("review-spec", ("spec-reviewer", "testability-reviewer"), "review-spec",
                          iteration_budget=3),
    "readiness": Step("readiness", "review-spec", run=_readiness),
    "gate-approval": Gate("gate-approval", "review-spec", message=_approval_message, on_resume=_approval_resume),
    "finalize": Finalize(),
}

BUNDLE = Bundle(
    name="spec",
    version="1",
    phases=("intake", "research", "draft", "review-spec", "finalize"),
    default_flow="spec",
    flows={"spec": tuple(STAGES)},
    stages=STAGES,
    agents=AGENTS,
    gate_roles={"gate-scope": "scope", "gate-consult": "consult", "gate-approval": "spec-approval"},
    default_gate_policies={"scope": "human", "consult": "human", "spec-approval": "auto"},
    policy_resolver=_resolver,
    replan_budget=ReplanBudget(2, "human"),
    default_model_tiers={"fast": "haiku", "balanced": "sonnet", "premium": "opus"},
    invariants=(
        Invariant("INV_SPEC_201", ("gates", "phases"), _inv_201, "sign-off only after the review settled"),
        Invariant("INV_safety_floor_spec-approval", ("gates", "pipeline"), _inv_floor,
                  "autonomous sign-off requires readiness ok"),
    ),
    output_kinds=("research-note",),
    gate_roles_extra=("scope", "consult", "spec-approval"),
)
