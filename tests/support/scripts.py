"""Scripted agent outputs for the spec bundle (instant, deterministic)."""

from __future__ import annotations

import json

from loom_core.kernel.types import Intent

APPROVE = json.dumps({"verdict": "APPROVE", "summary_line": "fine", "findings": []})
BLOCKER = json.dumps({"verdict": "REQUEST_CHANGES", "summary_line": "step 2 cannot be checked", "findings": [
    {"severity": "blocking", "category": "testability", "file": None, "summary": "step 2 has no observable check",
     "suggested_fix": "add a command that proves step 2"}]})


def happy(intent: Intent) -> str:
    if intent.agent == "researcher":
        return '```json\n{"claims": [{"statement": "login has no limit", "source": "task text", "confidence": "high"}],' \
               ' "open_questions": []}\n```'
    if intent.agent == "spec-writer":
        return "# Goal\nLimit login attempts.\n\n# Steps\n1. does: add a counter; acceptance: test passes\n"
    return APPROVE


def one_rework(intent: Intent) -> str:
    """The testability reviewer blocks the first draft and approves once blockers were handed back."""
    if intent.agent == "testability-reviewer" and "### Open blockers" not in intent.prompt:
        return BLOCKER
    return happy(intent)
