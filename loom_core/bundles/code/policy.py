"""Gates, the policy resolver and the invariants of the code bundle (pure)."""

from __future__ import annotations

from typing import Any

from loom_core.kernel.gates import PolicyContext
from loom_core.kernel.state import View
from loom_core.kernel.types import ADVANCE, GateDecision, Invariant, StageResult, complete, walk_back


def _blockers(view: View, phase: str | None = None, limit: int = 8) -> list[str]:
    out = []
    for f in view.state.live_findings(phase=phase, severity="blocking")[:limit]:
        line = f":{f['line_start']}" if f.get("line_start") is not None else ""
        loc = f" {f['file']}{line}" if f.get("file") else ""
        out.append(f"- [{f['category']}]{loc} ({f['agent']}): {f['summary']}")
    return out


def classify_message(view: View) -> str:
    d = view.decisions
    return (f"Classification: complexity {d.get('complexity')}, tests {d.get('tests_mode')}, "
            f"change kind {d.get('change_kind') or 'unknown'}. Proceed with this scope?")


def plan_message(view: View) -> str:
    lines = ["Approve the plan (.loom/work/plan.md)?"]
    verdicts = [v for v in view.verdicts if v["phase"] == "planning"][-3:]
    lines += [f"- {v['agent']}: {v['verdict']} — {v['summary_line']}" for v in verdicts]
    blockers = _blockers(view, "planning")
    if blockers:
        lines += ["Open blockers:", *blockers]
    return "\n".join(lines)


def final_message(view: View) -> str:
    bs = view.bundle_state
    snap = bs.get("diff_snapshot") or {}
    lines = [f"Accept the change? {snap.get('modified_count', 0)} modified, {snap.get('created_count', 0)} new file(s)."]
    for key, label in (("test_run", "tests"), ("lint_result", "lint"), ("typecheck", "typecheck")):
        entry = bs.get(key) or {}
        st = entry.get("status")
        if st == "preexisting":
            lines.append(f"- {label}: failing before the change too ({len(entry.get('preexisting') or [])} "
                         "pre-existing failure(s), not blocking)")
        elif st in ("unverified", "skipped") and entry.get("reason"):
            lines.append(f"- {label}: {st.upper() if st == 'unverified' else st} — {entry['reason']}")
        elif st:
            lines.append(f"- {label}: {st}")
    unchecked = checks_evidence(view)
    if unchecked:
        lines.append(f"- {unchecked}")
    acc = view.state.latest_verdict("acceptance")
    if acc:
        lines.append(f"- acceptance: {acc['verdict']} — {acc['summary_line']}")
    touched = bs.get("test_files_modified_by_implementer") or []
    if touched:
        lines.append("- the implementer changed test files: " + ", ".join(touched[:6]))
    blockers = _blockers(view)
    if blockers:
        lines += ["Open blockers:", *blockers]
    return "\n".join(lines)


def resume_plan(view: View, answer: dict[str, Any]) -> StageResult:
    if answer["decision"] in ("accept", "auto-apply"):
        return ADVANCE
    if answer.get("reject_intent") == "abandon":
        return complete("rejected")
    return walk_back("plan-deep" if view.driver.get("flow_name") == "complex" else "plan")


def resume_final(view: View, answer: dict[str, Any]) -> StageResult:
    if answer["decision"] in ("accept", "auto-apply"):
        return ADVANCE
    if answer.get("reject_intent") == "abandon":
        return complete("rejected")
    target = "implement"
    return walk_back(target)


def resolver(view: View, role: str, ctx: PolicyContext) -> GateDecision:
    s = view.state
    if role == "classify":
        return GateDecision("auto-approve", reason="classification accepted")
    if role == "plan":
        if s.count_blocking(phase="planning", origin="harness"):
            return GateDecision("human-required", reason=_harness_reason(view, "planning"))
        n = s.count_blocking(phase="planning", origin="code")
        if n:
            return GateDecision("auto-reject", reason=f"{n} blocking plan finding(s)", reject_intent="revise",
                                feedback="revise the plan to address the open blockers",
                                counts_against_replan_cap=True)
        return GateDecision("auto-approve", reason="plan review found no blocker")
    if role == "final":
        if s.count_blocking(origin="harness"):
            return GateDecision("human-required", reason=_harness_reason(view))
        acc = ctx.latest_verdict("acceptance")
        n = s.count_blocking(origin="code")
        if n or (acc and acc["verdict"] == "FAIL"):
            why = f"{n} blocking finding(s)" if n else "acceptance FAILED"
            return GateDecision("auto-reject", reason=why, reject_intent="revise",
                                feedback="fix the open blockers", counts_against_replan_cap=True)
        unchecked = checks_evidence(view)
        if unchecked:
            return GateDecision("human-required", reason=unchecked)
        return GateDecision("auto-approve", reason="checks, review and acceptance passed")
    return GateDecision("human-required", reason=f"role '{role}' is decided by a person")


def _harness_reason(view: View, phase: str | None = None) -> str:
    """Why a harness blocker (a fact about a spawn, not a model's opinion) sends the gate to a person."""
    live = view.state.live_findings(phase=phase, origin="harness", severity="blocking")
    agents = sorted({f["agent"] for f in live if f["category"] == "role-violation"})
    if agents:
        return f"{', '.join(agents)} changed files its role does not allow (reverted): a person decides"
    return "an agent returned output loom could not read"


def checks_evidence(view: View) -> str | None:
    """Why the checks are no evidence for an automatic final approval, or None when they are.

    A code change is auto-approved only over checks that actually ran on the sandbox: at least one
    check ended ``ok`` or ``preexisting``, and none is ``unverified``. A project that configured
    ``checks: none`` opted out on purpose. A task with no file change needs no checks."""
    bs = view.bundle_state
    snap = bs.get("diff_snapshot") or {}
    if not snap.get("modified_count") and not snap.get("created_count"):
        return None
    meta = bs.get("checks_meta") or {}
    if meta.get("disabled"):
        return None
    statuses = {key: (bs.get(key) or {}).get("status") for key in ("test_run", "lint_result", "typecheck")}
    unverified = [k for k, st in statuses.items() if st == "unverified"]
    if unverified:
        why = meta.get("env_problem") or (bs.get(unverified[0]) or {}).get("reason") or "resolution not proven"
        return f"checks unverified ({why}): a person decides"
    missing = [bs.get(k) or {} for k, st in statuses.items() if st == "skipped" and (bs.get(k) or {}).get("expected")]
    if missing:
        return f"a check the project has could not run ({missing[0].get('reason') or 'skipped'}): a person decides"
    if not any(st in ("ok", "preexisting") for st in statuses.values()):
        return "no check actually ran on the change (none found or all skipped): a person decides"
    return None


# --------------------------------------------------------------------------- invariants

def _gate(view: View, name: str) -> dict[str, Any] | None:
    return view.gates.get(name)


def _approved(row: dict[str, Any] | None) -> bool:
    return bool(row) and row["status"] in ("approved", "auto-approved")


def _inv_101(view: View) -> str | None:
    if _approved(_gate(view, "gate-plan")):
        st = view.phases.get("planning", {}).get("status")
        if st not in ("pending", "in_progress", "completed", "skipped"):
            return f"plan approved while planning is {st}"
    return None


def _inv_102(view: View) -> str | None:
    g = _gate(view, "gate-final")
    if _approved(g) and g["decided_by"] != "human":
        for ph in ("implementation", "validation"):
            if view.phases.get(ph, {}).get("status") == "skipped":
                return f"automatic final approval while {ph} was skipped"
    return None


def _inv_103(view: View) -> str | None:
    g = _gate(view, "gate-final")
    touched = view.bundle_state.get("test_files_modified_by_implementer") or []
    if _approved(g) and g["decided_by"] != "human" and touched:
        return ("the implementer changed test files (" + ", ".join(touched[:4]) +
                "); only a person may approve this change")
    return None


def _inv_104(view: View) -> str | None:
    acc = view.state.latest_verdict("acceptance")
    if acc and acc["verdict"] in ("PASS", "PASS_WITH_WARNINGS"):
        live = view.state.count_blocking(phase="implementation")
        if live:
            return f"acceptance passed while {live} implementation blocker(s) are open"
    return None


def _auto_final(view: View) -> bool:
    g = _gate(view, "gate-final")
    return bool(g) and g["status"] == "auto-approved" and view.effective_policy("final") == "auto"


def _inv_105(view: View) -> str | None:
    if _auto_final(view):
        snap = view.bundle_state.get("diff_snapshot") or {}
        if not snap.get("modified_count") and not snap.get("created_count"):
            return "autonomous approval of an empty change"
    return None


def _floor(key: str, label: str):
    def check(view: View) -> str | None:
        if _auto_final(view):
            st = (view.bundle_state.get(key) or {}).get("status")
            if st not in ("ok", "preexisting", "skipped", "disabled"):
                return f"autonomous approval needs {label} ok (is {st or 'missing'})"
        return None

    return check


_lint, _tests, _types = _floor("lint_result", "lint"), _floor("test_run", "tests"), _floor("typecheck", "typecheck")


def _safety_floor(view: View) -> str | None:
    for fn in (_tests, _lint, _types):
        msg = fn(view)
        if msg:
            return msg
    g = _gate(view, "gate-final")
    if g and g["status"] == "auto-approved":  # any automatic approval, whatever the policy
        return checks_evidence(view)
    return None


READS = ("gates", "pipeline", "phases")
INVARIANTS = (
    Invariant("INV_CODE_101", ("gates", "phases"), _inv_101, "plan approval only over a settled planning phase"),
    Invariant("INV_CODE_102", ("gates", "phases"), _inv_102, "no automatic final approval over skipped phases"),
    Invariant("INV_CODE_103", ("gates", "pipeline"), _inv_103, "tests touched by the implementer need a human"),
    Invariant("INV_CODE_104", ("verdicts", "findings"), _inv_104, "acceptance cannot pass over open blockers"),
    Invariant("INV_CODE_105", READS, _inv_105, "no autonomous approval of an empty diff"),
    Invariant("INV_lint_clean", READS, _lint, "autonomous approval needs lint ok"),
    Invariant("INV_tests_pass", READS, _tests, "autonomous approval needs tests ok"),
    Invariant("INV_typecheck_clean", READS, _types, "autonomous approval needs typecheck ok"),
    Invariant("INV_safety_floor_final", READS, _safety_floor, "deterministic safety floor for final: auto"),
)
