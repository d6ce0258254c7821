"""Read models for the surfaces (console, HTTP): a task's agent chain, one run in detail, the
sandbox diff, the history, and a recorded run's ticks for step-by-step replay. Read-only:
stores are opened with ``mode=ro`` and never migrated."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from loom_core.kernel import now as nowmod
from loom_core.store import db as dbmod
from loom_core.store.archive import find_archive, history


def store_path(project: Path, task_id: str | None = None) -> Path | None:
    project = Path(project)
    if task_id:
        found = find_archive(project, task_id)
        if found:
            return found
    live = dbmod.state_path(project)
    return live if live.exists() else None


def chain(path: Path) -> dict[str, Any]:
    """The agent-chain timeline of one store: every run in order with model, tokens, duration,
    findings count and verdict, plus the gates."""
    def read(conn: sqlite3.Connection):
        task = conn.execute("SELECT task_id, task, task_short, status, verdict, started_at, ended_at, "
                            "bundle_state FROM pipeline_state").fetchone()
        recs = conn.execute("SELECT * FROM agent_records ORDER BY seq").fetchall()
        pend = conn.execute("SELECT * FROM pending_agents ORDER BY started_at").fetchall()
        trans = {r["agent_run_id"]: r for r in conn.execute(
            "SELECT agent_run_id, model, cost_usd, duration_ms, recorded_at, usage FROM transcripts")}
        verdicts = conn.execute("SELECT * FROM agent_verdicts ORDER BY id").fetchall()
        findings = conn.execute("SELECT agent, phase, iteration, severity, status FROM findings").fetchall()
        gates = [dict(r) for r in conn.execute("SELECT * FROM gates ORDER BY decided_at")]
        return task, recs, pend, trans, verdicts, findings, gates

    got = dbmod.read_snapshot(path, read)
    task, recs, pend, trans, verdicts, findings, gates = got or (None, [], [], {}, [], [], [])
    runs = []
    vq: dict[tuple[str, str], list[sqlite3.Row]] = {}
    for v in verdicts:
        vq.setdefault((v["agent"], v["phase"]), []).append(v)
    for r in recs:
        t = trans.get(r["agent_run_id"])
        queue = vq.get((r["agent"], r["phase"])) or []
        verdict = queue.pop(0)["verdict"] if queue else None
        nf = sum(1 for f in findings if f["agent"] == r["agent"] and f["phase"] == r["phase"])
        runs.append({"agent_run_id": r["agent_run_id"], "seq": r["seq"], "agent": r["agent"], "phase": r["phase"],
                     "model": (t["model"] if t else None) or r["model"], "output_kind": r["output_kind"],
                     "tokens_in": r["tokens_in"], "tokens_out": r["tokens_out"], "tokens_cached": r["tokens_cached"],
                     "duration_ms": t["duration_ms"] if t else None, "cost_usd": t["cost_usd"] if t else None,
                     "findings": nf, "verdict": verdict, "state": "done", "recorded_at": r["recorded_at"]})
    for p in pend:
        runs.append({"agent_run_id": p["agent_run_id"], "seq": None, "agent": p["agent"], "phase": p["phase"],
                     "model": p["model"], "output_kind": None, "tokens_in": 0, "tokens_out": 0, "tokens_cached": 0,
                     "duration_ms": None, "cost_usd": None, "findings": 0, "verdict": None, "state": "running",
                     "recorded_at": p["started_at"]})
    info = dict(task) if task else {}
    if info.get("bundle_state"):
        info["completion_summary"] = json.loads(info["bundle_state"]).get("completion_summary")
    info.pop("bundle_state", None)
    return {"task": info, "runs": runs, "gates": gates}


def run_detail(path: Path, agent_run_id: str) -> dict[str, Any]:
    """One run: prompt, output, findings, verdicts, files it changed."""
    def read(conn: sqlite3.Connection):
        t = conn.execute("SELECT * FROM transcripts WHERE agent_run_id = ?", (agent_run_id,)).fetchone()
        rec = conn.execute("SELECT * FROM agent_records WHERE agent_run_id = ?", (agent_run_id,)).fetchone()
        pend = conn.execute("SELECT * FROM pending_agents WHERE agent_run_id = ?", (agent_run_id,)).fetchone()
        base = rec or pend
        agent = base["agent"] if base else (t["agent"] if t else None)
        phase = base["phase"] if base else (t["phase"] if t else None)
        findings = [dict(r) for r in conn.execute(
            "SELECT severity, category, file, line_start, summary, status, iteration, origin FROM findings "
            "WHERE agent = ? AND phase = ? ORDER BY recorded_at", (agent, phase))]
        verdicts = [dict(r) for r in conn.execute(
            "SELECT verdict, summary_line, blocking_issues, warn_issues, info_issues, iteration "
            "FROM agent_verdicts WHERE agent = ? AND phase = ? ORDER BY id", (agent, phase))]
        return t, pend, base, agent, phase, findings, verdicts

    t, pend, base, agent, phase, findings, verdicts = dbmod.read_snapshot(path, read) or (
        None, None, None, None, None, [], [])
    files = json.loads(t["files"]) if t else {}
    return {"agent_run_id": agent_run_id, "agent": agent, "phase": phase,
            "model": (t["model"] if t else None) or (base["model"] if base else None),
            "prompt": t["prompt"] if t else "", "output": t["output"] if t else "",
            "usage": json.loads(t["usage"]) if t else {}, "cost_usd": t["cost_usd"] if t else None,
            "duration_ms": t["duration_ms"] if t else None, "files_modified": files.get("modified", []),
            "files_created": files.get("created", []), "findings": findings, "verdicts": verdicts,
            "running": pend is not None}


def gate_view(project: Path) -> dict[str, Any] | None:
    """What a person needs at an open gate: role, why, blockers, the output being approved
    (the latest producing — non-review — agent's output, e.g. the plan or the implementation
    report), and the sandbox diff."""
    path = dbmod.state_path(Path(project))
    if not path.exists():
        return None
    def read(conn: sqlite3.Connection):
        d = conn.execute("SELECT pending_user_answer FROM driver_state").fetchone()
        pua = json.loads(d["pending_user_answer"]) if d and d["pending_user_answer"] else None
        if not pua:
            return None
        blockers = [dict(r) for r in conn.execute(
            "SELECT agent, severity, category, file, line_start, summary, origin FROM findings "
            "WHERE status = 'open' AND superseded_by_iteration IS NULL AND severity = 'blocking' "
            "ORDER BY recorded_at")]
        last = conn.execute(
            "SELECT t.agent, t.output, t.agent_run_id FROM transcripts t JOIN agent_records r "
            "ON r.agent_run_id = t.agent_run_id WHERE r.output_kind = 'nonreview' "
            "ORDER BY r.seq DESC LIMIT 1").fetchone() or conn.execute(
            "SELECT agent, output, agent_run_id FROM transcripts WHERE json_extract(usage, '$.failed') IS NULL "
            "ORDER BY recorded_at DESC, rowid DESC "
            "LIMIT 1").fetchone()
        return pua, blockers, last

    got = dbmod.read_snapshot(path, read)
    if got is None:
        return None
    pua, blockers, last = got
    return {"gate": pua["gate"], "role": pua.get("role"), "gate_event_id": pua["gate_event_id"],
            "message": pua["message"], "blockers": blockers,
            "agent": last["agent"] if last else None, "output": last["output"] if last else "",
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
    rows = dbmod.read_snapshot(path, lambda conn: conn.execute(
        "SELECT id, ts, payload FROM audit WHERE type = 'tick' ORDER BY id").fetchall(), empty=[])
    out = []
    for r in rows:
        p = json.loads(r["payload"])
        ev = p.get("event", {})
        out.append({"seq": p.get("seq"), "ts": r["ts"], "event": ev.get("kind"), "directive": p.get("directive"),
                    "notes": p.get("notes", []), "agent_run_id": ev.get("agent_run_id"),
                    "decision": ev.get("decision"), "state_hash": p.get("state_hash")})
    return out
