"""Reads over a store's audit: its recorded ticks (for stepping through and replaying a run), its
head, and the facts ``loom verify`` checks — each in one read-only snapshot."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loom_core.store.audit import GENESIS, ChainReport
from loom_core.store.integrity import check_store
from loom_core.store.read.fields import TASK_FIELDS
from loom_core.store.read.opener import snapshot


@dataclass(frozen=True)
class Tick:
    """One recorded tick: its audit row id and time, and its payload (parsed)."""

    id: int
    ts: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class Recording:
    """What replay re-feeds: the store's bundle and its tick payloads as written (unparsed, in order)."""

    bundle: str | None
    payloads: tuple[Any, ...]


@dataclass(frozen=True)
class VerifyFacts:
    """One snapshot's chain report, its task row (the history index's fields; None without a task)
    and every audit hash it holds."""

    report: ChainReport
    task: dict[str, Any] | None
    hashes: frozenset[str]


def ticks(path: Path) -> list[Tick]:
    rows = snapshot(Path(path), lambda conn: conn.execute(
        "SELECT id, ts, payload FROM audit WHERE type = 'tick' ORDER BY id").fetchall(), empty=[])
    return [Tick(r["id"], r["ts"], json.loads(r["payload"])) for r in rows or []]


def recording(path: Path) -> Recording:
    def read(conn: sqlite3.Connection) -> Recording:
        row = conn.execute("SELECT bundle FROM pipeline_state WHERE id = 1").fetchone()
        payloads = tuple(p for (p,) in conn.execute("SELECT payload FROM audit WHERE type = 'tick' ORDER BY id"))
        return Recording(row[0] if row else None, payloads)

    return snapshot(Path(path), read) or Recording(None, ())


def task_id(path: Path) -> str | None:
    """The task id a store records; None when it has no task row (or there is no store)."""
    row = snapshot(Path(path), lambda conn: conn.execute(
        "SELECT task_id FROM pipeline_state WHERE id = 1").fetchone())
    return row[0] if row else None


def head(path: Path) -> str | None:
    """The store's audit head (its last row's hash); None without a chain."""
    row = snapshot(Path(path), lambda conn: conn.execute(
        "SELECT hash FROM audit ORDER BY id DESC LIMIT 1").fetchone())
    return row[0] if row else None


def chain_report(path: Path) -> ChainReport:
    """The store's chain, anchors and state digest, read in one snapshot (a run writing the store
    meanwhile is never mistaken for tampering); an intact empty chain when there is no store."""
    report = snapshot(Path(path), check_store)
    return report if report is not None else ChainReport(True, 0, GENESIS)


def verify_facts(path: Path) -> VerifyFacts | None:
    """What ``loom verify`` checks, in one snapshot; None when there is no store."""
    def read(conn: sqlite3.Connection) -> VerifyFacts:
        report = check_store(conn)
        row = conn.execute(f"SELECT {', '.join(TASK_FIELDS)} FROM pipeline_state WHERE id = 1").fetchone()
        info = dict(zip(TASK_FIELDS, tuple(row), strict=True)) if row else None
        return VerifyFacts(report, info, frozenset(h for (h,) in conn.execute("SELECT hash FROM audit")))

    return snapshot(Path(path), read)
