"""Replay an archived (or live) run through the kernel, and verify its audit chain.

Replay re-feeds the recorded events with their recorded NowTokens into a fresh store and
compares each tick's directive and chained state hash with the record. With an extra or
changed invariant set it reports the first tick whose commit the new rule would have vetoed.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..bundles import load_bundle
from ..errors import InvariantViolation, LoomError, StateCorrupt, StateError
from ..kernel import codec
from ..kernel.types import Bundle, Invariant
from ..store import db as dbmod
from ..store.audit import GENESIS, ChainReport, verify_rows  # noqa: F401  (re-exported)
from ..store.integrity import check_store
from .clock import FixedClock
from .engine import Engine


def _ro(path: Path) -> sqlite3.Connection:
    path = Path(path)
    if not path.exists():
        raise StateError(f"no state file at {path}")
    with path.open("rb") as fh:
        if fh.read(16) != dbmod.SQLITE_MAGIC:
            raise StateCorrupt(f"{path} is not an SQLite database; nothing was changed")
    try:
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise dbmod.map_error(exc, path) from exc


def _ticks(conn: sqlite3.Connection) -> tuple[str | None, list[dict[str, Any]]]:
    row = conn.execute("SELECT bundle FROM pipeline_state WHERE id = 1").fetchone()
    ticks = [json.loads(p) for (p,) in conn.execute("SELECT payload FROM audit WHERE type = 'tick' ORDER BY id")]
    return (row[0] if row else None), ticks


def read_ticks(path: Path) -> tuple[str | None, list[dict[str, Any]]]:
    return dbmod.read_snapshot(path, _ticks, empty=(None, []))


@dataclass
class ReplayReport:
    ticks: int
    replayed: int
    identical: bool
    divergence: dict[str, Any] | None = None
    stopped: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        if self.stopped:
            s = self.stopped
            return [f"the changed rules would have stopped the run at tick {s['seq']} of {self.ticks} "
                    f"({s['event']} at {s['now']}): " + "; ".join(f"{v['id']}: {v['message']}" for v in s["violations"])]
        if self.identical:
            return [f"replay identical: {self.replayed} tick(s), every directive and state hash matched"]
        d = self.divergence or {}
        return [f"replay DIVERGED at tick {d.get('seq')}: {d.get('what')}"]


def _fold(path: Path, bundle: Bundle | None = None, extra_invariants: Sequence[Invariant] = ()):
    """Re-apply a store's recorded ticks one by one into a fresh temporary store.

    Yields ``(record, response, engine)`` after each tick (the engine's store holds the state as of
    that tick); an ``InvariantViolation`` propagates with ``record`` attached as ``exc.record``.
    The temporary store is removed when the generator closes."""
    name, ticks = read_ticks(path)
    if not ticks:
        raise LoomError(f"{path} holds no recorded ticks to replay", code="REPLAY_EMPTY")
    bundle = bundle or load_bundle(name or "")
    work = Path(tempfile.mkdtemp(prefix="loom-replay-"))
    engine = Engine(work, bundle=bundle, clock=FixedClock(), extra_invariants=extra_invariants)
    try:
        for rec in ticks:
            event = codec.decode(rec["event"])
            try:
                resp = engine.apply_recorded(event, list(rec.get("keys", [])), rec["now"], bundle=bundle)
            except InvariantViolation as exc:
                exc.record = rec  # type: ignore[attr-defined]
                exc.event_kind = event.kind  # type: ignore[attr-defined]
                raise
            yield rec, resp, engine
    finally:
        engine.close()
        shutil.rmtree(work, ignore_errors=True)


def replay(path: Path, *, extra_invariants: Sequence[Invariant] = (), bundle: Bundle | None = None) -> ReplayReport:
    name, ticks = read_ticks(path)
    if not ticks:
        raise LoomError(f"{path} holds no recorded ticks to replay", code="REPLAY_EMPTY")
    report = ReplayReport(ticks=len(ticks), replayed=0, identical=True)
    folded = _fold(path, bundle, extra_invariants)
    try:
        for rec, resp, engine in folded:
            report.replayed += 1
            book = engine.store.bookkeeping()
            if resp.wire["directive"] != rec["directive"]:
                report.identical = False
                report.divergence = {"seq": rec["seq"], "what": "directive differs",
                                     "recorded": rec["directive"], "replayed": resp.wire["directive"]}
                return report
            if book["state_hash"] != rec["state_hash"]:
                report.identical = False
                report.divergence = {"seq": rec["seq"], "what": "state hash differs (different mutations)"}
                return report
        return report
    except InvariantViolation as exc:
        rec = exc.record  # type: ignore[attr-defined]
        report.identical = False
        report.stopped = {"seq": rec["seq"], "event": exc.event_kind, "now": rec["now"],  # type: ignore[attr-defined]
                          "violations": [{"id": v.id, "message": v.message} for v in exc.violations]}
        return report
    finally:
        folded.close()


def _plain(state: Any) -> dict[str, Any]:
    """A TaskState as plain containers (copies; safe to hand to another thread)."""
    return json.loads(json.dumps({
        "pipeline": state.pipeline, "counters": state.counters, "driver": state.driver,
        "phases": state.phases, "pending": state.pending, "findings": state.findings, "gates": state.gates,
        "gate_counters": state.gate_counters, "agent_records": state.agent_records, "verdicts": state.verdicts,
    }, default=str))


def states(path: Path, upto: int | None = None) -> dict[int, dict[str, Any]]:
    """The state after every recorded tick (``seq`` → plain dict), in one replay pass; stops after
    tick ``upto`` when given. For stepping through a run (time travel over its audit)."""
    out: dict[int, dict[str, Any]] = {}
    folded = _fold(path)
    try:
        for rec, _resp, engine in folded:
            out[rec["seq"]] = _plain(engine.store.state())
            if upto is not None and rec["seq"] >= upto:
                break
    finally:
        folded.close()
    return out


def state_at(path: Path, seq: int) -> dict[str, Any]:
    """The task state as of tick ``seq`` (after it committed), replayed from the recorded events
    into a temporary store. Keys: pipeline, counters, driver, phases, pending, findings, gates,
    gate_counters, agent_records, verdicts."""
    got = states(path, upto=seq)
    if seq not in got:
        raise LoomError(f"{path} has no tick {seq} (it records {len(got)})", code="REPLAY_NO_TICK")
    return got[seq]


def verify(path: Path) -> ChainReport:
    """The store's chain, anchors and state digest, read in one snapshot (a run writing the store
    meanwhile is never mistaken for tampering)."""
    report = dbmod.read_snapshot(path, check_store)
    return report if report is not None else ChainReport(True, 0, GENESIS)
