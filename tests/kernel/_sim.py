"""A tiny in-memory driver for the pure kernel: no store, no files, no clock.

Each tick gets its own NowToken (one second after the previous one) and its own
``IdSource(f"{seed}/{n}")``, exactly like a driver would mint them, so two Sims fed the same
events produce the same ops and directives.
"""

from __future__ import annotations

import json
from typing import Any

from loom_core.bundles.spec import BUNDLE as SPEC
from loom_core.kernel import fsm
from loom_core.kernel.ids import IdSource
from loom_core.kernel.now import shift
from loom_core.kernel.state import TaskState
from loom_core.kernel.types import (
    Agent,
    AgentResult,
    AgentResults,
    Bundle,
    Create,
    Finalize,
    Gate,
    Spawn,
    UserAnswer,
)

START = "2026-01-01T00:00:00.000Z"
TASK = "Specify a CSV export for the monthly billing report"


def reviewer_output(verdict: str = "APPROVE", findings: list[dict[str, Any]] | None = None,
                    summary: str = "reviewed") -> str:
    header = {"verdict": verdict, "summary_line": summary, "findings": findings or []}
    return f"I read the spec carefully.\n\n```json\n{json.dumps(header)}\n```\n\nThat is all.\n"


RESEARCH_OUTPUT = '```json\n{"notes": ["billing runs monthly"], "open_questions": ["which columns?"]}\n```'
SPEC_OUTPUT = "# Spec\n\n**Goal** export CSV.\n\n**Steps**\n1. does: write it; depends on: none; acceptance: file exists\n"

BLOCKER = {"severity": "blocking", "category": "acceptance-missing", "file": "spec.md", "line_start": 12,
           "summary": "Step 3 has no observable acceptance check"}


class Sim:
    def __init__(self, bundle: Bundle = SPEC, *, seed: str = "seed", start: str = START) -> None:
        self.bundle = bundle
        self.seed = seed
        self.start = start
        self.state = TaskState()
        self.n = 0
        self.ticks: list[fsm.Tick] = []
        self.directive = None

    # ------------------------------------------------------------------ core
    def now(self) -> str:
        return shift(self.start, seconds=self.n)

    def step(self, event, invariants=None) -> fsm.Tick:
        self.n += 1
        t = fsm.tick(self.bundle, self.state, event, self.now(), IdSource(f"{self.seed}/{self.n}"),
                     invariants=invariants)
        self.state = t.state
        self.directive = t.directive
        self.ticks.append(t)
        return t

    # ------------------------------------------------------------------ events
    def create(self, task: str = TASK, *, gate_policies: dict[str, str] | None = None,
               task_id: str = "t-2026-01-01-csv-export") -> fsm.Tick:
        return self.step(Create(task=task, task_id=task_id, driver_state_id="ds-0001", project_dir="/proj",
                                gate_policies=gate_policies or {}))

    def run_id(self, agent: str) -> str:
        ids = [r["agent_run_id"] for r in self.state.pending.values() if r["agent"] == agent]
        assert len(ids) == 1, f"expected one pending run of {agent}, have {self.state.pending}"
        return ids[0]

    def deliver(self, agent: str, output: str, **kw: Any) -> fsm.Tick:
        return self.step(AgentResult(agent_run_id=self.run_id(agent), output=output, **kw))

    def deliver_all(self, outputs: dict[str, str]) -> fsm.Tick:
        return self.step(AgentResults(tuple(AgentResult(agent_run_id=self.run_id(a), output=o)
                                            for a, o in outputs.items())))

    def answer(self, decision: str = "accept", *, reject_intent: str | None = None, message: str | None = None,
               gate_event_id: str | None = None) -> fsm.Tick:
        gev = gate_event_id if gate_event_id is not None else self.directive.gate_event_id
        return self.step(UserAnswer(gate_event_id=gev, decision=decision, reject_intent=reject_intent,
                                    message=message))

    # ------------------------------------------------------------------ spec bundle walks
    def to_review(self, **create_kw: Any) -> fsm.Tick:
        """create → accept scope → research → accept consult → draft; returns the fan-out tick."""
        t = self.create(**create_kw)
        assert t.directive.kind == "ask-user" and t.directive.gate == "gate-scope", t.directive
        t = self.answer("accept")
        assert t.directive.kind == "shuttle", t.directive
        assert [i.agent for i in t.directive.intents] == ["researcher"]
        t = self.deliver("researcher", RESEARCH_OUTPUT)
        assert t.directive.kind == "ask-user" and t.directive.gate == "gate-consult", t.directive
        t = self.answer("accept", message="columns: date, amount")
        assert [i.agent for i in t.directive.intents] == ["spec-writer"], t.directive
        return self.redraft()

    def redraft(self) -> fsm.Tick:
        t = self.deliver("spec-writer", SPEC_OUTPUT)
        assert t.directive.kind == "shuttle", t.directive
        assert sorted(i.agent for i in t.directive.intents) == ["spec-reviewer", "testability-reviewer"]
        return t

    def review(self, spec: str = "", testability: str = "") -> fsm.Tick:
        return self.deliver_all({"spec-reviewer": spec or reviewer_output(),
                                 "testability-reviewer": testability or reviewer_output()})


# ---------------------------------------------------------------------- tiny custom bundles
def lone_reviewer_bundle(*, with_gate: bool = False, **bundle_kw: Any) -> Bundle:
    """Spawn one reviewer, (optionally a human gate), then finalize."""
    stages: dict[str, Any] = {"review": Spawn("review", "checker", "review")}
    if with_gate:
        stages["sign"] = Gate("sign", "review", message="sign off?")
    stages["finalize"] = Finalize()
    return Bundle(
        name="tiny", version="1", phases=("review",), default_flow="main",
        flows={"main": tuple(stages)}, stages=stages,
        agents={"checker": Agent("checker", "reviewer", "Check {{task}}.", "fast")},
        **bundle_kw,
    )
