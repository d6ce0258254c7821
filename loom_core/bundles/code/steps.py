"""Deterministic step bodies and spawn predicates of the code bundle (pure: they read the view
and write through the kernel's ops façade only)."""

from __future__ import annotations

import re
from typing import Any

from loom_core.kernel.state import View

DOC_EXT = (".md", ".mdx", ".markdown", ".txt", ".rst", ".adoc", ".rdoc")
UI_EXT = (".tsx", ".jsx", ".vue", ".svelte", ".css", ".scss", ".html")
SECURITY_WORDS = ("auth", "login", "password", "secret", "token", "crypto", "session", "permission", "acl", "jwt")
RUNTIME_CATEGORIES = {
    "race-condition", "unhandled-async", "unbounded-recursion-or-loop", "ordering-assumption",
    "leak-or-cleanup-missing", "regression-risk", "concurrency", "downstream-failure", "atomicity",
    "cross-request-state", "retry-replay", "empty-input", "memory-leak", "cache-stampede", "hot-key",
    "re-render-storm",
}
HOT_BASENAMES = ("index", "main", "app", "server", "router", "routes", "middleware", "auth", "bootstrap")
TEST_PATTERNS = (
    re.compile(r"(^|/)(tests?|specs?|__tests__)/"),
    re.compile(r"(^|/)[^/]+\.(test|spec)\.[^/]+$"),
    re.compile(r"(^|/)test_[^/]+\.py$"),
    re.compile(r"(^|/)[^/]+_test\.(py|go)$"),
    re.compile(r"(^|/)conftest\.py$"),
)
IMPLEMENTATION_REVIEWERS = (
    "logic-reviewer", "logic-reviewer-deep", "challenger-reviewer", "challenger-reviewer-deep", "style-reviewer",
    "security", "performance", "ui-consistency", "playwright", "api-contract",
)


def is_test_path(path: str) -> bool:
    return any(p.search(path) for p in TEST_PATTERNS)


def changed_files(view: View) -> list[str]:
    p = view.pipeline
    return list(dict.fromkeys((p.get("files_modified") or []) + (p.get("files_created") or [])))


# --------------------------------------------------------------------------- steps

def classify(view: View, ops: Any) -> None:
    d = view.decisions
    text = (view.pipeline.get("task") or "").lower()
    if not (d.get("complexity_pinned") and d.get("complexity") in ("trivial", "simple", "medium", "complex",
                                                                    "question")):
        if len(text) > 400 or re.search(r"refactor|migrat|architecture|redesign|rewrite|scaffold|bootstrap|"
                                        r"monorepo|set ?up|initiali[sz]e", text):
            level = "complex"
        elif len(text) < 120 and re.search(r"typo|rename|bump|comment|\bdocs?\b|readme|wording", text):
            level = "simple"
        else:
            level = "medium"
        ops.set_decision("complexity", level)
    if "tests_mode" not in d:
        ops.set_decision("tests_mode", "tdd" if re.search(r"\btdd\b|tests? first", text) else "regression-only")


def stack_to_bundle_state(view: View, ops: Any) -> None:
    stack = view.decisions.get("stack")
    if isinstance(stack, dict):
        ops.set_bundle_state("stack", stack)


def remember_baseline(view: View, ops: Any) -> None:
    """``git-stash`` marker: remember which files existed as changes before implementation
    (tests written by the test-first agent are not the implementer's)."""
    if "pre_implement_files" not in view.bundle_state:
        ops.set_bundle_state("pre_implement_files", changed_files(view))


def note_escalation(view: View, ops: Any) -> None:
    if escalate(view) and not view.decisions.get("implementer_escalated"):
        ops.set_decision("implementer_escalated", True)


def git_diff(view: View, ops: Any) -> None:
    p = view.pipeline
    fm, fc = list(p.get("files_modified") or []), list(p.get("files_created") or [])
    ops.set_bundle_state("diff_snapshot", {"files_modified": fm, "files_created": fc, "modified_count": len(fm),
                                           "created_count": len(fc)})


CHECK_KEYS = {"typecheck": "typecheck", "lint": "lint_result", "test": "test_run"}
# statuses a check may end in (checks envelope): only "fail" blocks; "unverified" and a run with no
# check at all are never an automatic pass (see policy.checks_evidence)
RAN_STATUSES = ("ok", "fail", "preexisting")


def _failure_key(loc: dict[str, Any]) -> str:
    return f"{loc.get('file')}: {loc.get('message') or ''}".strip()


def apply_checks(view: View, ops: Any) -> None:
    d = view.decisions
    envelope = d.get("checks")
    if not isinstance(envelope, list):
        return  # already applied (compacted) or never ran
    disabled = bool(d.get("checks_disabled"))
    env = d.get("checks_env") if isinstance(d.get("checks_env"), dict) else None
    seen: dict[str, dict[str, Any]] = {}
    failed: list[str] = []
    for entry in envelope:
        name = entry.get("name")
        if name not in CHECK_KEYS:
            continue
        seen[name] = entry
        status = entry.get("status")
        pre = [str(k) for k in (entry.get("preexisting") or [])][:20]
        new = [str(k) for k in (entry.get("new_failures") or [])][:20]
        ops.set_bundle_state(CHECK_KEYS[name], {
            "status": status, "exit_code": entry.get("exit_code"), "command": entry.get("command"),
            "output_tail": (entry.get("output_tail") or "")[-2000:], "reason": (entry.get("reason") or "")[:300],
            "scope": entry.get("scope"), "new_failures": new, "preexisting": pre,
            "expected": bool(entry.get("expected"))})
        if status == "preexisting":
            ops.record_finding("checks-runner", "implementation", {
                "severity": "info", "category": "pre-existing-failure", "file": None,
                "summary": f"`{name}` already failed before the change ({len(pre)} failure(s)); not blocking"[:200],
                "evidence_excerpt": "\n".join(pre)[:400]})
        elif status == "unverified":
            ops.record_finding("checks-runner", "implementation", {
                "severity": "warn", "category": "unverified-check", "file": None,
                "summary": f"`{name}` could not be shown to test the sandbox: {entry.get('reason') or 'unknown'}"[:200],
                "suggested_fix": "a person decides at the final gate"})
        if status != "fail":
            continue
        failed.append(name)
        head = entry.get("output_head") or ""
        first = head.strip().splitlines()[0][:200] if head.strip() else ""
        ops.record_finding("checks-runner", "implementation", {
            "severity": "blocking", "category": "failed-check", "file": None,
            "summary": f"`{name}` check failed: `{entry.get('command')}` exited {entry.get('exit_code')}"
                       + (f" ({len(new)} new failure(s))" if new else ""),
            "evidence_excerpt": ("\n".join(new) or head)[:400],
            "suggested_fix": f"see .loom/work/check-failures.txt; {first}"[:300]})
        old = set(pre)
        locs = [loc for loc in (entry.get("locations") or []) if _failure_key(loc) not in old]
        for loc in locs[:10]:
            ops.record_finding("checks-runner", "implementation", {
                "severity": "blocking", "category": "failed-check", "file": loc.get("file"),
                "line_start": loc.get("line"), "line_end": loc.get("line"),
                "summary": f"{name}: {loc.get('message') or 'failure reported here'}"[:200]})
    for name, key in CHECK_KEYS.items():
        if name not in seen:
            ops.set_bundle_state(key, {"status": "disabled" if disabled else "skipped", "exit_code": None,
                                       "output_tail": ""})
    changed = [str(p) for p in (d.get("checks_tree_changes") or [])][:20]
    if changed:
        ops.record_finding("checks-runner", "implementation", {
            "severity": "warn", "category": "check-changed-tree", "file": changed[0],
            "summary": f"a check changed {len(changed)} file(s) in the sandbox; the changes were reverted"[:200],
            "evidence_excerpt": "\n".join(changed)[:400]})
    ops.set_bundle_state("checks_meta", {
        "disabled": disabled, "ran": sorted(n for n, e in seen.items() if e.get("status") in RAN_STATUSES),
        "interpreter": env.get("interpreter") if env else None, "verified": env.get("verified") if env else None,
        "env_problem": env.get("problem") if env else None, "tree_changes": changed,
        "tree": d.get("checks_tree") if isinstance(d.get("checks_tree"), str) else None})
    raw_keys = ("checks_env", "checks_tree_changes", "checks_disabled", "checks_tree")
    ops.set("pipeline", decisions={k: v for k, v in ops.state.decisions.items() if k not in raw_keys})
    ops.set_decision("checks_ok", not failed)
    ops.set_decision("checks", {"ok": not failed, "failed": failed})
    ops.audit("checks-recorded", {"failed": failed, "ran": sorted(seen)})


def apply_rechecks(view: View, ops: Any) -> None:
    """After a ``recheck`` before the final gate: the change as it stands now, and its checks."""
    if isinstance(view.decisions.get("checks"), list):
        git_diff(view, ops)
        apply_checks(view, ops)


def pre_review(view: View, ops: Any) -> None:
    files = changed_files(view)
    low = [f.lower() for f in files]
    ops.set_decision("ui_touched", any(f.endswith(UI_EXT) or re.search(r"(^|/)components?/", f) for f in low))
    ops.set_decision("api_touched", any(
        re.search(r"(^|/)(api|routes?|controllers?|endpoints?|handlers?)(/|$)", f) or f.endswith((".proto",
                                                                                                ".graphql"))
        or "openapi" in f or "schema" in f for f in low))
    if any(w in f for f in low for w in SECURITY_WORDS):
        ops.set_decision("security_needed", True)
    ops.set_decision("source_changed", bool(files) and not all(f.endswith(DOC_EXT) for f in low))


def sacred_tests(view: View, ops: Any) -> None:
    before = set(view.bundle_state.get("pre_implement_files") or [])
    touched = sorted(f for f in changed_files(view) if f not in before and is_test_path(f))
    if touched != (view.bundle_state.get("test_files_modified_by_implementer") or []):
        ops.set_bundle_state("test_files_modified_by_implementer", touched)
    ops.audit("sacred-tests-checked", {"test_files_modified_by_implementer": touched})


def reconcile(view: View, ops: Any) -> None:
    markers = [f for f in view.findings.values() if f["agent"] == "adjudicator"
               and f["category"] in ("runtime-confirmed", "runtime-refuted") and f.get("superseded_by_iteration") is None
               and not view.scratch.get(f"reconciled_{f['id']}")]
    applied = []
    for m in markers:
        for f in view.state.live_findings(phase="implementation", severity="blocking"):
            if f["category"] in RUNTIME_CATEGORIES and f.get("file") == m.get("file") \
                    and f.get("line_start") == m.get("line_start"):
                if m["category"] == "runtime-refuted":
                    ops.put("findings", f["id"], {**f, "severity": "info"})
                applied.append({"finding": f["id"], "marker": m["category"]})
        ops.set_scratch(**{f"reconciled_{m['id']}": True})
    if applied:
        ops.audit("adjudication-applied", {"applied": applied})


def apply_answer(view: View, ops: Any) -> None:
    answer = view.decisions.get("answer")
    text = answer.strip() if isinstance(answer, str) else ""
    ops.set_bundle_state("answer", text or "The responder recorded no answer.")
    ops.set_decision("answer", bool(text))
    ops.audit("answer-recorded", {"chars": len(text)})


def finish_summary(view: View, ops: Any) -> None:
    bs = view.bundle_state
    if bs.get("answer"):
        summary = bs["answer"]
    else:
        p = view.pipeline
        fm, fc = p.get("files_modified") or [], p.get("files_created") or []
        if fm or fc:
            files = ", ".join((fc + fm)[:8]) + (" …" if len(fc) + len(fm) > 8 else "")
            summary = (f"Touched {len(fc)} new, {len(fm)} changed file(s). Files: {files} "
                       f"(complexity {view.decisions.get('complexity')}, tests {view.decisions.get('tests_mode')})")
        else:
            summary = "No file changes were recorded."
        if re.search(r"\bcommit|\bpush|\bpr\b|\bmr\b|publish|release|\btag\b|deploy", (p.get("task") or "").lower()):
            summary += " Note: loom never commits to your branch, pushes, tags or deploys; the work is on " \
                       "branch loom/<task>."
    ops.set_bundle_state("completion_summary", summary)
    ops.audit("finish-summary", {"chars": len(summary)})


# --------------------------------------------------------------------------- predicates

def blocking_impl_iterations(view: View) -> set[int]:
    return {v["iteration"] for v in view.verdicts if v["phase"] == "implementation" and v["blocking_issues"] > 0}


def escalate(view: View) -> bool:
    return len(blocking_impl_iterations(view)) >= 2


def not_pinned_classifier(view: View) -> bool:
    d = view.decisions
    return not (d.get("complexity_pinned") and d.get("complexity") in ("trivial", "simple", "medium", "complex",
                                                                        "question"))


def _latest_impl_round(view: View) -> list[dict[str, Any]]:
    rows = [v for v in view.verdicts if v["phase"] == "implementation" and v["agent"] in IMPLEMENTATION_REVIEWERS]
    if not rows:
        return []
    last = max(v["iteration"] for v in rows)
    return [v for v in rows if v["iteration"] == last]


def panel_member(agent: str):
    """applies_to for a review-fanout member: self-gates plus the differentiated rework panel."""

    def applies(view: View) -> bool:
        d = view.decisions
        if d.get("checks_ok") is False:
            return False
        if agent in ("logic-reviewer", "logic-reviewer-deep", "challenger-reviewer", "challenger-reviewer-deep",
                     "style-reviewer", "performance") and d.get("source_changed") is False:
            return False
        if agent == "security" and d.get("security_needed") is False:
            return False
        if agent in ("ui-consistency", "playwright") and d.get("ui_touched") is not True:
            return False
        if agent == "api-contract" and d.get("api_touched") is not True:
            return False
        last = _latest_impl_round(view)
        blockers = {v["agent"] for v in last if v["blocking_issues"] > 0}
        if last and blockers:
            return agent in blockers
        return True

    applies.__name__ = f"applies_{agent}"
    return applies


def should_adjudicate(view: View) -> bool:
    live = [f for f in view.state.live_findings(phase="implementation", severity="blocking")
            if f["category"] in RUNTIME_CATEGORIES]
    if not live:
        return False
    last = _latest_impl_round(view)
    verdicts = {v["verdict"] for v in last}
    split = bool(verdicts & {"APPROVE", "PASS", "WARN"}) and bool(verdicts & {"REQUEST_CHANGES", "FAIL"})
    hot = any(re.search(r"(^|/)(" + "|".join(HOT_BASENAMES) + r")\.[^/]+$", f) or "pages/api/" in f or "app/api/" in f
              for f in changed_files(view))
    return split or hot


def tree_changed_since_checks(view: View) -> bool:
    """Run the checks again before the final gate: an agent that may edit files (bundle extra
    ``edits_files``) delivered after the last checks run, or a read-only agent changed the tree (a
    ``role-violation``: reverted, but possibly not all of it). Read-only agents cannot change the tree
    otherwise (the driver reverts them), so the final gate sees the tree the checks saw."""
    agents = getattr(view.bundle, "agents", {}) or {}
    recs = view.state.agent_records
    last = max((r["seq"] for r in recs if r["agent"] == "checks-runner"), default=None)
    if last is None:
        return False
    if any(r["seq"] > last and (agents.get(r["agent"]) and agents[r["agent"]].extras.get("edits_files"))
           for r in recs):
        return True
    return any(f["category"] == "role-violation" and f["phase"] in ("implementation", "validation")
               for f in view.state.live_findings(origin="harness", severity="blocking"))


def no_live_impl_blocker(view: View) -> bool:
    return view.state.count_blocking(phase="implementation") == 0
