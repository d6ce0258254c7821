"""Read models for the surfaces (console, HTTP): a task's agent chain, one run in detail, the
sandbox diff, the history, and a recorded run's ticks for step-by-step replay. Plain dicts over the
store's typed reads (``loom_core.store.read``): read-only, never created or migrated."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from loom_core.kernel import now as nowmod
from loom_core.store import db as dbmod
from loom_core.store import read
from loom_core.store.archive import history
from loom_core.store.locate import task_store_or_none


def store_path(project: Path, task_id: str | None = None) -> Path | None:
    """The store of ``task_id`` (the live one when None) by ``store.locate.task_store``; None when the
    project has none."""
    return task_store_or_none(project, task_id)


def chain(path: Path) -> dict[str, Any]:
    """The agent-chain timeline of one store: every run in order with model, tokens, duration,
    findings count and verdict, plus the gates."""
    got = read.chain(path)
    return {"task": asdict(got.task) if got.task else {}, "runs": [asdict(r) for r in got.runs],
            "gates": [asdict(g) for g in got.gates]}


def run_detail(path: Path, agent_run_id: str) -> dict[str, Any]:
    """One run: prompt, output, findings, verdicts, files it changed."""
    got = read.run(path, agent_run_id)
    out = asdict(got)
    out["files_modified"], out["files_created"] = list(got.files_modified), list(got.files_created)
    out["findings"], out["verdicts"] = [asdict(f) for f in got.findings], [asdict(v) for v in got.verdicts]
    return out


def gate_view(project: Path) -> dict[str, Any] | None:
    """What a person needs at an open gate: role, why, blockers, the output being approved
    (the latest producing — non-review — agent's output, e.g. the plan or the implementation
    report), and the sandbox diff."""
    path = dbmod.state_path(Path(project))
    if not path.exists():
        return None
    got = read.gate(path)
    if got is None:
        return None
    return {"gate": got.gate, "role": got.role, "gate_event_id": got.gate_event_id, "message": got.message,
            "blockers": [asdict(b) for b in got.blockers], "agent": got.agent, "output": got.output,
            "diff": sandbox_diff(Path(project))}


def work_dirs(project: Path) -> list[Path]:
    """The task's ``.loom/work`` in the sandbox (also for a project in a subfolder of a repo)."""
    from loom_core.workspace import WORK_DIR, Workspace
    from loom_core.workspace import discover as _discover

    project = Path(project).resolve()
    base = Workspace.sandbox_path(project)
    dirs = []
    found = _discover(project)
    if found and project != found[0]:
        dirs.append(base / project.relative_to(found[0]) / WORK_DIR)
    dirs.append(base / WORK_DIR)
    return dirs


def sandbox_diff(project: Path) -> str:
    try:
        candidates = work_dirs(Path(project))
    except Exception:
        return ""
    for d in candidates:
        if (d / "diff.txt").is_file():
            return (d / "diff.txt").read_text(encoding="utf-8", errors="replace")
    return ""


def archived(project: Path) -> list[dict[str, Any]]:
    out = []
    for row in reversed(history(Path(project))):
        if "raw" in row:
            continue
        elapsed = None
        if isinstance(row.get("started_at"), str) and isinstance(row.get("ended_at"), str):
            try:
                elapsed = nowmod.seconds_between(row["started_at"], row["ended_at"])
            except (ValueError, TypeError):  # a hand-edited index line: shown without a duration
                elapsed = None
        out.append({**row, "elapsed_s": elapsed})
    return out


def ticks(path: Path) -> list[dict[str, Any]]:
    """A recorded run's ticks, for stepping through it (time travel over the audit)."""
    out = []
    for t in read.ticks(path):
        p = t.payload
        ev = p.get("event", {})
        out.append({"seq": p.get("seq"), "ts": t.ts, "event": ev.get("kind"), "directive": p.get("directive"),
                    "notes": p.get("notes", []), "agent_run_id": ev.get("agent_run_id"),
                    "decision": ev.get("decision"), "state_hash": p.get("state_hash")})
    return out
