"""The offline demo backend: deterministic scripted agents.

Every agent returns an output that satisfies its contract. On the demo project (``loom demo``
writes it: a small shop package whose ``apply_discount`` accepts any percentage) the agents do
real work: the implementer edits the code, the challenger reads the edited file and blocks a
half-done fix, the next round completes it. Any other project is refused before a task starts
(``demo_project.require_demo_project``); the implementer refuses it too, should it get there.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from pathlib import Path

from loom_core.agents.executors import ExecResult, Usage
from loom_core.crash import crashpoint
from loom_core.kernel.ids import slug
from loom_core.kernel.types import Intent

LABEL = "demo (offline, scripted)"
DEMO_TASK = "Reject discount percentages outside 0-100 in apply_discount"
PRICING = Path("shop/pricing.py")
HALF_FIX = "    if percent > 100:\n        raise ValueError(f\"discount must be at most 100%, got {percent}\")\n"
FULL_FIX = ("    if not 0 <= percent <= 100:\n"
            "        raise ValueError(f\"discount must be between 0 and 100%, got {percent}\")\n")


def _fence(obj: dict) -> str:
    return "```json\n" + json.dumps(obj, indent=2) + "\n```\n"


def _approve(agent: str, summary: str) -> str:
    return _fence({"schema_version": "1.0", "agent": agent, "verdict": "APPROVE", "summary_line": summary,
                   "findings": []}) + f"\n{summary}\n"


def _validator(agent: str, verdict: str, summary: str) -> str:
    return _fence({"schema_version": "1.0", "agent": agent, "verdict": verdict, "summary_line": summary,
                   "findings": []}) + f"\n{summary}\n"


def _task(intent: Intent) -> str:
    m = re.search(r"### Task description\n(.*?)\n\n###", intent.prompt, re.S)
    return m.group(1).strip() if m else "the task"


def _python_files(root: Path, limit: int = 40) -> list[Path]:
    out = []
    for p in sorted(root.rglob("*.py")):
        rel = p.relative_to(root)
        if any(part.startswith(".") or part in ("node_modules", "__pycache__", "venv") for part in rel.parts):
            continue
        out.append(rel)
        if len(out) >= limit:
            break
    return out


class DemoExecutor:
    name = "demo"
    label = LABEL
    idempotent = True

    def __init__(self, *, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s  # a small pause makes the demo watchable in the console

    def execute(self, intent: Intent, cancel: threading.Event, log: Callable[[str], None]) -> ExecResult:
        root = Path(intent.extras.get("workdir") or ".")
        handler = getattr(self, "_" + intent.agent.replace("-", "_"), None)
        if handler is None:
            handler = self._generic
        log("working (demo backend, offline)")
        if self.delay_s and cancel.wait(self.delay_s):
            from loom_core.errors import ExecutorError

            raise ExecutorError("cancelled", code="EXECUTOR_ABORTED")
        output = handler(intent, root, log)
        return ExecResult(output=output, model="demo",
                          usage=Usage(tokens_in=len(intent.prompt) // 4, tokens_out=len(output) // 4))

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _is_demo(root: Path) -> bool:
        p = root / PRICING
        return p.is_file() and "def apply_discount" in p.read_text(encoding="utf-8")

    @staticmethod
    def _work(root: Path) -> Path:
        w = root / ".loom" / "work"
        w.mkdir(parents=True, exist_ok=True)
        return w

    # ------------------------------------------------------------------ agents
    def _classifier(self, intent: Intent, root: Path, log) -> str:
        task = _task(intent)
        question = task.rstrip().endswith("?")
        has_py = bool(_python_files(root, 1))
        return _fence({
            "schema_version": "1.1", "agent": "classifier", "task_short": slug(task, 60),
            "complexity": "question" if question else "medium", "tests_mode": "regression-only",
            "security_needed": False, "change_kind": None if question else "logic",
            "stack": {"language": "python" if has_py else None, "package_manager": "pip" if has_py else None,
                      "test_command": "python -m unittest" if has_py else None, "lint_command": None,
                      "build_command": None, "project_type": "library" if has_py else None},
            "refs_to_load": []})

    def _code_analyzer(self, intent: Intent, root: Path, log) -> str:
        lines = ["# Context", "", "Python modules and their top-level definitions:", ""]
        for rel in _python_files(root):
            try:
                text = (root / rel).read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            for n, line in enumerate(text.splitlines(), 1):
                if line.startswith(("def ", "class ")):
                    lines.append(f"- `{rel.as_posix()}:{n}` {line.split('(')[0].split(':')[0]}")
        (self._work(root) / "context-doc.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
        log("wrote .loom/work/context-doc.md")
        return "Wrote .loom/work/context-doc.md with the modules and definitions the task touches."

    _code_analyzer_light = _code_analyzer
    _architect = _code_analyzer

    def _planner(self, intent: Intent, root: Path, log) -> str:
        task = _task(intent)
        if self._is_demo(root):
            steps = ["1. `shop/pricing.py:apply_discount` — validate `percent` before computing; raise "
                     "`ValueError` naming the bad value.", "2. Keep existing behaviour for 0–100."]
            acs = ["AC-1: percentages below 0 or above 100 raise ValueError", "AC-2: existing tests still pass"]
        else:
            steps = ["1. (the demo backend plans only for its demo project)"]
            acs = ["AC-1: none"]
        plan = "\n".join([f"# Plan: {task}", "", "## Complexity", "medium", "", "## Acceptance Criteria", *acs, "",
                          "## Implementation Steps", *steps, "", "## Not In Scope", "Anything else.", ""])
        (self._work(root) / "plan.md").write_text(plan, encoding="utf-8")
        log("wrote .loom/work/plan.md")
        return f"Plan written to .loom/work/plan.md: {len(steps)} step(s), {len(acs)} acceptance criteria. " \
               "No open questions."

    _planner_deep = _planner

    def _plan_grounding_check(self, intent: Intent, root: Path, log) -> str:
        return _validator("plan-grounding-check", "GROUNDED", "every cited path exists")

    def _context_doc_verifier(self, intent: Intent, root: Path, log) -> str:
        return _validator("context-doc-verifier", "VERIFIED", "claims match the code")

    def _implementer(self, intent: Intent, root: Path, log) -> str:
        if self._is_demo(root):
            path = root / PRICING
            text = path.read_text(encoding="utf-8")
            if "### Open blockers" in intent.prompt or HALF_FIX in text:
                text = text.replace(HALF_FIX, "")
                fix, what = FULL_FIX, "validated the full 0–100 range"
            else:
                fix, what = HALF_FIX, "rejected percentages above 100"
            if fix not in text:
                text, n = re.subn(r'(def apply_discount\([^)]*\)[^:\n]*:\n(?:    """.*?"""\n)?)',
                                  lambda m: m.group(1) + fix, text, count=1, flags=re.S)
                if not n:
                    return "## Report\nCould not find `apply_discount` to edit; no change made.\n"
                with open(path, "w", encoding="utf-8") as fh:  # truncated here: a kill now leaves 0 bytes
                    crashpoint("demo-mid-write")
                    fh.write(text)
                crashpoint("demo-wrote")
            log(f"edited {PRICING}: {what}")
            return f"## Report\n- Edited `{PRICING}`: {what}.\n- Tests: existing suite unchanged.\n"
        from loom_core.errors import ExecutorError

        raise ExecutorError(f"the demo backend only edits loom's demo project; {root} is not one",
                            code="DEMO_FOREIGN_PROJECT")

    _implementer_escalated = _implementer

    def _challenger_reviewer(self, intent: Intent, root: Path, log) -> str:
        agent = intent.agent
        if self._is_demo(root):
            text = (root / PRICING).read_text(encoding="utf-8")
            if HALF_FIX in text:
                line = text.splitlines().index(HALF_FIX.splitlines()[0]) + 1
                return _fence({"schema_version": "1.0", "agent": agent, "verdict": "REQUEST_CHANGES",
                               "summary_line": "negative percentages still pass validation", "findings": [{
                                   "severity": "blocking", "category": "empty-input", "file": PRICING.as_posix(),
                                   "line_start": line, "line_end": line + 1,
                                   "summary": "apply_discount(100, -20) returns 120: a negative discount raises "
                                              "the price",
                                   "suggested_fix": "check 0 <= percent <= 100 instead of percent > 100"}]})
        return _approve(agent, "no adversarial case breaks the change")

    _challenger_reviewer_deep = _challenger_reviewer

    def _acceptance(self, intent: Intent, root: Path, log) -> str:
        return _validator("acceptance", "PASS", "acceptance criteria met, checks green")

    def _test(self, intent: Intent, root: Path, log) -> str:
        return _validator("test", "RED", "no new failing tests were needed for the demo")

    def _adjudicator(self, intent: Intent, root: Path, log) -> str:
        return _validator("adjudicator", "APPROVE", "nothing to settle")

    def _responder(self, intent: Intent, root: Path, log) -> str:
        files = ", ".join(f"`{p.as_posix()}`" for p in _python_files(root, 8)) or "no Python files"
        return _fence({"schema_version": "1.0", "agent": "responder",
                       "answer": f"(demo backend) The repository contains {files}. A real backend would read "
                                 f"them and answer: {_task(intent)}"})

    def _generic(self, intent: Intent, root: Path, log) -> str:
        if intent.agent in ("ui-consistency", "playwright", "api-contract"):
            return _validator(intent.agent, "PASS", "nothing to flag")
        if intent.agent.endswith("reviewer") or intent.agent in ("security", "performance", "style-reviewer",
                                                                  "logic-reviewer-deep"):
            return _approve(intent.agent, "the change looks correct")
        return f"{intent.agent}: done (demo backend)."


# ---------------------------------------------------------------------- demo project

PRICING_SRC = '''"""Prices for the demo shop."""


def apply_discount(price: float, percent: float) -> float:
    """Return ``price`` reduced by ``percent`` per cent, rounded to cents."""
    return round(price * (1 - percent / 100), 2)


def total(prices: list[float]) -> float:
    """Sum of ``prices``, rounded to cents."""
    return round(sum(prices), 2)
'''

TESTS_SRC = '''import unittest

from shop.pricing import apply_discount, total


class ApplyDiscountTest(unittest.TestCase):
    def test_ten_percent(self):
        self.assertEqual(apply_discount(200.0, 10), 180.0)

    def test_no_discount(self):
        self.assertEqual(apply_discount(99.99, 0), 99.99)

    def test_full_discount(self):
        self.assertEqual(apply_discount(50.0, 100), 0.0)


class TotalTest(unittest.TestCase):
    def test_sum(self):
        self.assertEqual(total([1.10, 2.20]), 3.3)


if __name__ == "__main__":
    unittest.main()
'''


def write_demo_project(root: Path) -> None:
    """A small Python package with a real test suite (unittest, so it runs without extras)."""
    (root / "shop").mkdir(parents=True, exist_ok=True)
    (root / "tests").mkdir(exist_ok=True)
    (root / "shop" / "__init__.py").write_text('"""Demo shop."""\n', encoding="utf-8")
    (root / "shop" / "pricing.py").write_text(PRICING_SRC, encoding="utf-8")
    (root / "tests" / "__init__.py").write_text("", encoding="utf-8")
    (root / "tests" / "test_pricing.py").write_text(TESTS_SRC, encoding="utf-8")
    (root / "README.md").write_text("# demo shop\n\nA tiny package loom's demo works on. Run the tests with\n"
                                    "`python -m unittest discover -s tests -t .`\n", encoding="utf-8")
    (root / ".gitignore").write_text("__pycache__/\n.loom/\n", encoding="utf-8")
    loom = root / ".loom"
    loom.mkdir(exist_ok=True)
    (loom / "loom.json").write_text(json.dumps({"checks": {
        "test": "{python} -m unittest discover -s tests -t . -q"}}, indent=2) + "\n", encoding="utf-8")
