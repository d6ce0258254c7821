"""A task's agent runs as the surfaces show them: the chain of runs, one run in detail, and the facts
of an open gate. Every read is one read-only snapshot (``db.read_snapshot``)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loom_core.store import codec
from loom_core.store.read.fields import TASK_FIELDS
from loom_core.store.read.opener import snapshot


@dataclass(frozen=True)
class TaskSummary:
    task_id: str | None = None
    task: str | None = None
    task_short: str | None = None
    status: str | None = None
    verdict: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    completion_summary: Any = None


@dataclass(frozen=True)
class ChainRun:
    """One agent run of the chain: ``state`` is ``done`` (recorded) or ``running`` (pending)."""

    agent_run_id: str
    seq: int | None
    agent: str
    phase: str
    model: str | None
    output_kind: str | None
    tokens_in: int
    tokens_out: int
    tokens_cached: int
    duration_ms: int | None
    cost_usd: float | None
    findings: int
    verdict: str | None
    state: str
    recorded_at: str | None


@dataclass(frozen=True)
class Gate:
    name: str
    status: str
    decided_by: str | None
    feedback: str | None
    decided_at: str | None


@dataclass(frozen=True)
class Chain:
    """``task`` is None for a store without a task (or no store at all)."""

    task: TaskSummary | None
    runs: tuple[ChainRun, ...]
    gates: tuple[Gate, ...]


@dataclass(frozen=True)
class RunFinding:
    severity: str
    category: str
    file: str | None
    line_start: int | None
    summary: str
    status: str
    iteration: int
    origin: str


@dataclass(frozen=True)
class RunVerdict:
    verdict: str
    summary_line: str | None
    blocking_issues: int
    warn_issues: int
    info_issues: int
    iteration: int


@dataclass(frozen=True)
class RunDetail:
    """One run: its transcript (empty when none was recorded), and every finding and verdict of its
    agent in its phase."""

    agent_run_id: str
    agent: str | None
    phase: str | None
    model: str | None
    prompt: str
    output: str
    usage: dict[str, Any]
    cost_usd: float | None
    duration_ms: int | None
    files_modified: tuple[str, ...]
    files_created: tuple[str, ...]
    findings: tuple[RunFinding, ...]
    verdicts: tuple[RunVerdict, ...]
    running: bool


@dataclass(frozen=True)
class Blocker:
    agent: str
    severity: str
    category: str
    file: str | None
    line_start: int | None
    summary: str
    origin: str


@dataclass(frozen=True)
class GateFacts:
    """An open gate: the pending question, the live blocking findings, and the output being approved
    (the latest producing — non-review — agent's, else the latest successful transcript's)."""

    gate: str
    role: str | None
    gate_event_id: str
    message: str
    blockers: tuple[Blocker, ...]
    agent: str | None
    output: str


def _pick(cls: type, row: sqlite3.Row) -> Any:
    return cls(**{k: row[k] for k in cls.__dataclass_fields__})


def chain(path: Path) -> Chain:
    """Every run of one store in order (recorded, then pending), each with its model, tokens, duration,
    cost, findings count and verdict (the n-th run of an (agent, phase) gave its n-th verdict), and the gates."""
    def read(conn: sqlite3.Connection):
        task = conn.execute(f"SELECT {', '.join(TASK_FIELDS)}, bundle_state FROM pipeline_state").fetchone()
        recs = conn.execute("SELECT * FROM agent_records ORDER BY seq").fetchall()
        pend = conn.execute("SELECT * FROM pending_agents ORDER BY started_at").fetchall()
        trans = {r["agent_run_id"]: r for r in conn.execute(
            "SELECT agent_run_id, model, cost_usd, duration_ms FROM transcripts")}
        verdicts = conn.execute("SELECT agent, phase, verdict FROM agent_verdicts ORDER BY id").fetchall()
        findings = conn.execute("SELECT agent, phase FROM findings").fetchall()
        gates = tuple(_pick(Gate, r) for r in conn.execute("SELECT * FROM gates ORDER BY decided_at"))
        return task, recs, pend, trans, verdicts, findings, gates

    got = snapshot(path, read)
    if got is None:
        return Chain(None, (), ())
    task, recs, pend, trans, verdicts, findings, gates = got
    vq: dict[tuple[str, str], list[str]] = {}
    for v in verdicts:
        vq.setdefault((v["agent"], v["phase"]), []).append(v["verdict"])
    runs = []
    for r in recs:
        t = trans.get(r["agent_run_id"])
        queue = vq.get((r["agent"], r["phase"])) or []
        runs.append(ChainRun(
            agent_run_id=r["agent_run_id"], seq=r["seq"], agent=r["agent"], phase=r["phase"],
            model=(t["model"] if t else None) or r["model"], output_kind=r["output_kind"],
            tokens_in=r["tokens_in"], tokens_out=r["tokens_out"], tokens_cached=r["tokens_cached"],
            duration_ms=t["duration_ms"] if t else None, cost_usd=t["cost_usd"] if t else None,
            findings=sum(1 for f in findings if f["agent"] == r["agent"] and f["phase"] == r["phase"]),
            verdict=queue.pop(0) if queue else None, state="done", recorded_at=r["recorded_at"]))
    for p in pend:
        runs.append(ChainRun(
            agent_run_id=p["agent_run_id"], seq=None, agent=p["agent"], phase=p["phase"], model=p["model"],
            output_kind=None, tokens_in=0, tokens_out=0, tokens_cached=0, duration_ms=None, cost_usd=None,
            findings=0, verdict=None, state="running", recorded_at=p["started_at"]))
    summary = None
    if task is not None and task["bundle_state"]:
        summary = json.loads(task["bundle_state"]).get("completion_summary")
    info = None if task is None else TaskSummary(**{k: task[k] for k in TASK_FIELDS}, completion_summary=summary)
    return Chain(info, tuple(runs), gates)


def run(path: Path, agent_run_id: str) -> RunDetail:
    """One run in detail (a run nobody recorded reads as an empty, not running, one)."""
    def read(conn: sqlite3.Connection):
        t = conn.execute("SELECT * FROM transcripts WHERE agent_run_id = ?", (agent_run_id,)).fetchone()
        rec = conn.execute("SELECT * FROM agent_records WHERE agent_run_id = ?", (agent_run_id,)).fetchone()
        pend = conn.execute("SELECT * FROM pending_agents WHERE agent_run_id = ?", (agent_run_id,)).fetchone()
        base = rec or pend
        agent = base["agent"] if base else (t["agent"] if t else None)
        phase = base["phase"] if base else (t["phase"] if t else None)
        findings = tuple(_pick(RunFinding, r) for r in conn.execute(
            "SELECT severity, category, file, line_start, summary, status, iteration, origin FROM findings "
            "WHERE agent = ? AND phase = ? ORDER BY recorded_at", (agent, phase)))
        verdicts = tuple(_pick(RunVerdict, r) for r in conn.execute(
            "SELECT verdict, summary_line, blocking_issues, warn_issues, info_issues, iteration "
            "FROM agent_verdicts WHERE agent = ? AND phase = ? ORDER BY id", (agent, phase)))
        return t, pend, base, agent, phase, findings, verdicts

    t, pend, base, agent, phase, findings, verdicts = snapshot(path, read) or (
        None, None, None, None, None, (), ())
    files = json.loads(t["files"]) if t else {}
    return RunDetail(
        agent_run_id=agent_run_id, agent=agent, phase=phase,
        model=(t["model"] if t else None) or (base["model"] if base else None),
        prompt=codec.unpack(t["prompt"]) if t else "", output=codec.unpack(t["output"]) if t else "",
        usage=json.loads(t["usage"]) if t else {}, cost_usd=t["cost_usd"] if t else None,
        duration_ms=t["duration_ms"] if t else None, files_modified=tuple(files.get("modified", [])),
        files_created=tuple(files.get("created", [])), findings=findings, verdicts=verdicts,
        running=pend is not None)


def gate(path: Path) -> GateFacts | None:
    """The open gate of a store; None when no gate is open (or there is no store)."""
    def read(conn: sqlite3.Connection):
        d = conn.execute("SELECT pending_user_answer FROM driver_state").fetchone()
        pua = json.loads(d["pending_user_answer"]) if d and d["pending_user_answer"] else None
        if not pua:
            return None
        blockers = tuple(_pick(Blocker, r) for r in conn.execute(
            "SELECT agent, severity, category, file, line_start, summary, origin FROM findings "
            "WHERE status = 'open' AND superseded_by_iteration IS NULL AND severity = 'blocking' "
            "ORDER BY recorded_at"))
        last = conn.execute(
            "SELECT t.agent, t.output FROM transcripts t JOIN agent_records r "
            "ON r.agent_run_id = t.agent_run_id WHERE r.output_kind = 'nonreview' "
            "ORDER BY r.seq DESC LIMIT 1").fetchone() or conn.execute(
            "SELECT agent, output FROM transcripts WHERE json_extract(usage, '$.failed') IS NULL "
            "ORDER BY recorded_at DESC, rowid DESC LIMIT 1").fetchone()
        return GateFacts(gate=pua["gate"], role=pua.get("role"), gate_event_id=pua["gate_event_id"],
                         message=pua["message"], blockers=blockers,
                         agent=last["agent"] if last else None, output=codec.unpack(last["output"]) if last else "")

    return snapshot(Path(path), read)
