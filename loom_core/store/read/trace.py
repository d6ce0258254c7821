"""A task's trace (spec §5.4 "Trace"): its summary, every recorded agent run in order, every finding,
verdict and gate, and the token totals. One read-only snapshot (``db.read_snapshot``); an archived store
is read as it is, never migrated."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loom_core.store.read.opener import snapshot
from loom_core.store.read.runs import Gate


@dataclass(frozen=True)
class TraceSummary:
    task_id: str | None
    status: str | None
    verdict: str | None
    started_at: str | None
    ended_at: str | None
    task: str | None
    completion_summary: Any


@dataclass(frozen=True)
class TraceAgent:
    agent_run_id: str
    agent: str
    phase: str
    model: str | None
    output_kind: str | None
    tokens_in: int
    tokens_out: int
    tokens_cached: int
    recorded_at: str


@dataclass(frozen=True)
class TraceFinding:
    id: str
    agent: str
    phase: str
    iteration: int
    file: str | None
    line_start: int | None
    line_end: int | None
    severity: str
    category: str
    summary: str
    status: str
    recorded_at: str


@dataclass(frozen=True)
class TraceVerdict:
    phase: str
    agent: str
    iteration: int
    verdict: str
    summary_line: str | None
    blocking_issues: int
    warn_issues: int
    info_issues: int
    recorded_at: str


@dataclass(frozen=True)
class Trace:
    summary: TraceSummary
    agents: tuple[TraceAgent, ...]
    findings: tuple[TraceFinding, ...]
    verdicts: tuple[TraceVerdict, ...]
    gates: tuple[Gate, ...]

    @property
    def token_totals(self) -> dict[str, int]:
        return {"tokens_in": sum(a.tokens_in for a in self.agents),
                "tokens_out": sum(a.tokens_out for a in self.agents),
                "tokens_cached": sum(a.tokens_cached for a in self.agents)}


def _cols(cls: type) -> str:
    return ", ".join(cls.__dataclass_fields__)


def _rows(conn: sqlite3.Connection, cls: type, sql: str) -> tuple[Any, ...]:
    return tuple(cls(**{k: r[k] for k in cls.__dataclass_fields__}) for r in conn.execute(sql))


def trace(path: Path) -> Trace | None:
    """The trace of one store; None when there is no store or it holds no task. A run's model is the
    transcript's (what answered) when one was kept, else the recorded one; gates in decision order."""
    def read(conn: sqlite3.Connection) -> Trace | None:
        task = conn.execute("SELECT task_id, status, verdict, started_at, ended_at, task, bundle_state "
                            "FROM pipeline_state").fetchone()
        if task is None or not task["task_id"]:
            return None
        state = json.loads(task["bundle_state"]) if task["bundle_state"] else {}
        summary = TraceSummary(**{k: task[k] for k in ("task_id", "status", "verdict", "started_at", "ended_at",
                                                       "task")},
                               completion_summary=state.get("completion_summary") if isinstance(state, dict) else None)
        agents = tuple(TraceAgent(**{k: r[k] for k in TraceAgent.__dataclass_fields__}) for r in conn.execute(
            "SELECT r.agent_run_id, r.agent, r.phase, COALESCE(NULLIF(t.model, ''), NULLIF(r.model, '')) AS model, "
            "r.output_kind, r.tokens_in, r.tokens_out, r.tokens_cached, r.recorded_at FROM agent_records r "
            "LEFT JOIN transcripts t ON t.agent_run_id = r.agent_run_id ORDER BY r.seq"))
        findings = _rows(conn, TraceFinding, f"SELECT {_cols(TraceFinding)} FROM findings ORDER BY recorded_at, id")
        verdicts = _rows(conn, TraceVerdict, f"SELECT {_cols(TraceVerdict)} FROM agent_verdicts ORDER BY id")
        gates = _rows(conn, Gate, f"SELECT {_cols(Gate)} FROM gates "
                                       "ORDER BY decided_at IS NULL, decided_at, name")
        return Trace(summary, agents, findings, verdicts, gates)

    return snapshot(Path(path), read)
