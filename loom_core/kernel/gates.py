"""Gate policies as data: a registry of pure functions, never a switch on a policy name."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .state import View
from .types import AnswerOption, Bundle, Gate, GateDecision

PolicyFn = Callable[[View, str, "PolicyContext"], GateDecision]

# the answers a gate offers when it names none of its own
DEFAULT_OPTIONS = (
    AnswerOption(("approve", "accept", "yes", "y", "lgtm"), "Approve", "accept"),
    AnswerOption(("revise", "reject", "changes", "rework"), "Request changes", "reject", "revise", True),
    AnswerOption(("abandon", "stop", "cancel"), "Abandon the task", "reject", "abandon"),
)

HUMAN = GateDecision("human-required", reason="policy human: a person decides")


class PolicyContext:
    def __init__(self, bundle: Bundle, view: View) -> None:
        self.bundle = bundle
        self.view = view

    def role_phase(self, role: str) -> str | None:
        for stage in self.bundle.stages.values():
            if isinstance(stage, Gate) and self.bundle.gate_roles.get(stage.name, stage.name) == role:
                return stage.phase
        return None

    def latest_verdict(self, agent: str) -> dict[str, Any] | None:
        return self.view.state.latest_verdict(agent)

    def resolve(self, role: str) -> GateDecision:
        resolver = self.bundle.policy_resolver
        if resolver is None:
            return GateDecision("human-required", reason="no policy resolver in this bundle")
        return resolver(self.view, role, self)


def human(view: View, role: str, ctx: PolicyContext) -> GateDecision:
    return HUMAN


def on_blockers(view: View, role: str, ctx: PolicyContext) -> GateDecision:
    phase = ctx.role_phase(role)
    n = view.state.count_blocking(phase=phase)
    if n > 0:
        where = f"phase '{phase}'" if phase else "the task"
        return GateDecision("human-required", reason=f"{n} open blocking finding(s) in {where}")
    return ctx.resolve(role) if ctx.bundle.policy_resolver else GateDecision("auto-approve", reason="no blockers")


def auto(view: View, role: str, ctx: PolicyContext) -> GateDecision:
    return ctx.resolve(role)


BUILTIN_POLICIES: Mapping[str, PolicyFn] = {"human": human, "on-blockers": on_blockers, "auto": auto}

# operator presets: flag -> role map
PRESETS: Mapping[str, Mapping[str, str]] = {
    "full-supervised": {"classify": "human", "plan": "human", "final": "human"},
    "review-plan-only": {"classify": "auto", "plan": "human", "final": "auto"},
    "review-final-only": {"classify": "auto", "plan": "auto", "final": "human"},
    "gates-on-blockers": {"classify": "on-blockers", "plan": "on-blockers", "final": "on-blockers"},
    "full-autonomous": {"classify": "auto", "plan": "auto", "final": "auto"},
    "demo-gates": {"classify": "on-blockers", "plan": "human", "final": "human"},
}


def policy_registry(bundle: Bundle) -> dict[str, PolicyFn]:
    reg = dict(BUILTIN_POLICIES)
    for name, fn in bundle.policy_factories.items():
        if name in BUILTIN_POLICIES:
            raise ValueError(f"bundle policy '{name}' may not shadow a built-in policy")
        reg[name] = fn
    return reg


def decide(bundle: Bundle, view: View, gate: Gate) -> GateDecision:
    role = bundle.gate_roles.get(gate.name, gate.name)
    counters = view.state.gate_counters
    total = sum(int(r.get("auto_rejections", 0)) for r in counters.values())
    cap = min(bundle.replan_budget.max_iterations, 10)
    if total >= cap:
        on_ex = bundle.replan_budget.on_exhaustion
        if on_ex == "audit-only":
            return GateDecision("auto-approve", reason=f"replan budget ({cap}) exhausted: audit only")
        if on_ex == "abandon":
            return GateDecision("auto-reject", reason=f"replan budget ({cap}) exhausted", reject_intent="abandon")
        return GateDecision("human-required", reason=f"replan budget exhausted: {total} automatic rework round(s)")
    name = view.effective_policy(role)
    reg = policy_registry(bundle)
    if name not in reg:
        from .errors import KernelError

        raise KernelError("POLICY_UNRESOLVED", f"gate policy '{name}' for role '{role}' is not registered")
    return reg[name](view, role, PolicyContext(bundle, view))
