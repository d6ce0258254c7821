"""Kernel vocabulary: bundles, stages, events, directives.

Pure data. A bundle is a value the kernel interprets; it never imports a vendor or touches
the world. Stage callables receive a read-only ``View`` and return plain values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

# ---------------------------------------------------------------------------
# Bundle definition
# ---------------------------------------------------------------------------

Severity = Literal["blocking", "warn", "info"]


@dataclass(frozen=True)
class Agent:
    name: str
    output_kind: str  # reviewer | validator | classifier | nonreview | a bundle kind
    prompt: str = ""  # template body; {{task}}, {{task_short}}, {{project_dir}}
    default_model: str = "balanced"
    system_prompt: str | None = None
    applies_to: Callable[[Any], bool] | None = None
    relevant_for_change_kinds: tuple[str, ...] | None = None
    extras: Mapping[str, Any] = field(default_factory=dict)
    # contract(header) -> normalised header, or ValueError naming what is wrong (pure)
    contract: Callable[[dict[str, Any]], dict[str, Any]] | None = None


@dataclass(frozen=True)
class Spawn:
    name: str
    agent: str
    phase: str
    when: Callable[[Any], bool] | None = None
    kind: str = "spawn"


@dataclass(frozen=True)
class Fanout:
    name: str
    agents: tuple[str, ...]
    phase: str
    filter_by_change_kind: bool = False
    iteration_budget: int = 3
    on_exhaustion: str = "audit-only"  # audit-only | human | abandon
    max_concurrent_spawns: int = 8
    kind: str = "fanout"


@dataclass(frozen=True)
class AnswerOption:
    verbs: tuple[str, ...]
    label: str
    decision: str  # accept | reject | auto-apply
    reject_intent: str | None = None
    requires_message: bool = False


@dataclass(frozen=True)
class Gate:
    name: str
    phase: str
    message: Callable[[Any], str] | str = ""
    options: tuple[AnswerOption, ...] = ()
    # on_resume(view, answer) -> StageResult; None = accept advances, reject re-evaluates the gate
    on_resume: Callable[[Any, Mapping[str, Any]], StageResult] | None = None
    kind: str = "gate"


@dataclass(frozen=True)
class Step:
    name: str
    phase: str = ""
    run: Callable[[Any, Any], None] | None = None  # run(view, ops)
    applies_to: Callable[[Any], bool] | None = None
    kind: str = "step"


@dataclass(frozen=True)
class Finalize:
    name: str = "finalize"
    phase: str = ""
    kind: str = "finalize"


Stage = Spawn | Fanout | Gate | Step | Finalize


@dataclass(frozen=True)
class GateDecision:
    type: str  # auto-approve | auto-reject | human-required
    reason: str = ""
    feedback: str | None = None
    reject_intent: str | None = None  # revise | abandon
    counts_against_replan_cap: bool = False


@dataclass(frozen=True)
class ComplexityFlows:
    decision_key: str
    after_stage: str
    map: Mapping[str, str]


@dataclass(frozen=True)
class ReplanBudget:
    max_iterations: int = 3
    on_exhaustion: str = "human"  # human | audit-only | abandon


@dataclass(frozen=True)
class Invariant:
    """A pure rule over the post-transition state. ``reads`` names the state roots it
    looks at (``pipeline``, ``counters``, ``driver``, ``phases``, ``agent_records``,
    ``pending``, ``verdicts``, ``findings``, ``gates``, ``gate_counters``, ``ledger``, ``now``
    or ``*``); a rule whose roots a transition did not touch is not re-run."""

    id: str
    reads: tuple[str, ...]
    check: Callable[[Any], str | None]  # view -> violation message or None
    description: str = ""


@dataclass(frozen=True)
class Bundle:
    name: str
    version: str
    phases: tuple[str, ...]
    default_flow: str
    flows: Mapping[str, tuple[str, ...]]
    stages: Mapping[str, Stage]
    agents: Mapping[str, Agent]
    gate_roles: Mapping[str, str] = field(default_factory=dict)
    default_gate_policies: Mapping[str, str] = field(default_factory=dict)
    policy_resolver: Callable[[Any, str, Any], GateDecision] | None = None
    policy_factories: Mapping[str, Callable[..., GateDecision]] = field(default_factory=dict)
    replan_budget: ReplanBudget = ReplanBudget()
    complexity_flows: ComplexityFlows | None = None
    default_model_tiers: Mapping[str, str] = field(default_factory=dict)
    invariants: tuple[Invariant, ...] = ()
    audit_types: tuple[str, ...] = ()
    output_kinds: tuple[str, ...] = ()
    gate_roles_extra: tuple[str, ...] = ()
    task_id_prefix: str = "t"


# ---------------------------------------------------------------------------
# Events (what crosses into the kernel)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Create:
    task: str
    task_id: str
    driver_state_id: str
    project_dir: str = ""
    gate_policies: Mapping[str, str] = field(default_factory=dict)
    initial_decisions: Mapping[str, Any] = field(default_factory=dict)
    kind: str = "create"


@dataclass(frozen=True)
class AgentResult:
    agent_run_id: str
    output: str
    files_modified: tuple[str, ...] = ()
    files_created: tuple[str, ...] = ()
    tokens_in: int = 0
    tokens_out: int = 0
    tokens_cached: int = 0
    # blocking findings the driver observed about the spawn itself (not model text), e.g. a read-only
    # agent that changed the sandbox; recorded with origin "harness" (a person decides)
    harness_findings: tuple[Mapping[str, Any], ...] = ()
    kind: str = "agent-result"


@dataclass(frozen=True)
class AgentResults:
    results: tuple[AgentResult, ...]
    kind: str = "agents-results"


@dataclass(frozen=True)
class UserAnswer:
    gate_event_id: str
    decision: str  # accept | reject | auto-apply
    reject_intent: str | None = None
    message: str | None = None
    kind: str = "user-answer"


@dataclass(frozen=True)
class Recover:
    choice: str  # retry | retry-failed | abandon | force-close | cancel-pending
    recovery_id: str = ""
    kind: str = "recovery"


@dataclass(frozen=True)
class Advance:
    """Run the machine from where it stands (resume after a crash or a retry)."""

    kind: str = "advance"


Event = Create | AgentResult | AgentResults | UserAnswer | Recover | Advance


# ---------------------------------------------------------------------------
# Stage results and directives (what comes out)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StageResult:
    kind: str  # advance | shuttle | ask_user | complete | walk_back | halt
    target: str | None = None  # walk_back target
    verdict: str | None = None  # complete
    code: str | None = None  # halt
    message: str = ""


ADVANCE = StageResult("advance")


def walk_back(target: str) -> StageResult:
    return StageResult("walk_back", target=target)


def complete(verdict: str) -> StageResult:
    return StageResult("complete", verdict=verdict)


def halt(code: str, message: str) -> StageResult:
    return StageResult("halt", code=code, message=message)


@dataclass(frozen=True)
class Intent:
    agent: str
    agent_run_id: str
    phase: str
    model: str
    prompt: str
    system_prompt: str | None = None
    extras: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Directive:
    """``kind`` is one of shuttle | ask-user | complete | error."""

    kind: str
    intents: tuple[Intent, ...] = ()
    gate: str | None = None
    gate_event_id: str | None = None
    message: str = ""
    options: tuple[AnswerOption, ...] = ()
    task_id: str | None = None
    verdict: str | None = None
    summary: str = ""
    code: str | None = None

    def to_wire(self) -> dict[str, Any]:
        if self.kind == "shuttle":
            return {
                "kind": "shuttle",
                "intents": [
                    {"agent": i.agent, "agent_run_id": i.agent_run_id, "phase": i.phase, "model": i.model}
                    for i in self.intents
                ],
            }
        if self.kind == "ask-user":
            return {
                "kind": "ask-user",
                "gate": self.gate,
                "gate_event_id": self.gate_event_id,
                "message": self.message,
                "options": [
                    {"verbs": list(o.verbs), "label": o.label, "decision": o.decision,
                     "reject_intent": o.reject_intent, "requires_message": o.requires_message}
                    for o in self.options
                ],
            }
        if self.kind == "complete":
            return {"kind": "complete", "task_id": self.task_id, "verdict": self.verdict, "summary": self.summary}
        return {"kind": self.kind, "code": self.code, "message": self.message}
