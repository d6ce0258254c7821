"""Replay an archived (or live) run through the kernel, and verify its audit chain.

Replay re-feeds the recorded events with their recorded NowTokens into a fresh store and
compares each tick's directive and chained state hash with the record. With an extra or
changed invariant set it reports the first tick whose commit the new rule would have vetoed.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loom_core.bundles import load_bundle
from loom_core.engine.clock import FixedClock
from loom_core.engine.engine import Engine
from loom_core.errors import InvariantViolation, LoomError
from loom_core.kernel import codec
from loom_core.kernel.types import Bundle, Invariant
from loom_core.store import read
from loom_core.store.audit import GENESIS, ChainReport, verify_rows  # noqa: F401  (re-exported)

TICK_FIELDS = {"event": dict, "now": str, "seq": int, "directive": dict, "state_hash": str}


class ReplayDamaged(LoomError):
    """A recorded tick cannot be re-applied as recorded: the store was changed after it was written."""

    code = "REPLAY_DAMAGED"


def _record(n: int, payload: Any) -> dict[str, Any]:
    """A tick's recorded payload, checked for the fields replay needs (a tampered one is refused by name)."""
    try:
        rec = json.loads(payload)
    except (TypeError, ValueError, RecursionError):
        raise ReplayDamaged(f"recorded tick {n} is not readable JSON; the store was changed after it was "
                            "written (see 'loom verify')") from None
    problem = None if isinstance(rec, dict) else f"a {type(rec).__name__}, not an object"
    for key, kind in TICK_FIELDS.items():
        if problem is None and not isinstance(rec.get(key), kind):
            problem = f"field '{key}' is missing or not {kind.__name__}"
    if problem is None:
        try:
            rec["_event"] = codec.decode(rec["event"])
        except Exception as exc:  # noqa: BLE001 - any malformed event is the same finding
            problem = f"event cannot be decoded: {type(exc).__name__}: {' '.join(str(exc).split())[:120]}"
    if problem is not None:
        raise ReplayDamaged(f"recorded tick {n} is damaged ({problem}); the store was changed after it was "
                            "written (see 'loom verify')")
    return rec


class RuleRaised(LoomError):
    """A rule given to replay raised instead of returning a message or None."""

    code = "INVARIANT_RAISED"


def _guarded(inv: Invariant) -> Invariant:
    """``inv`` whose exceptions become a typed error naming the rule (the user's code, not the record's)."""

    def check(view: Any) -> str | None:
        try:
            return inv.check(view)
        except Exception as exc:  # noqa: BLE001 - the user's rule: report it, whatever it raised
            raise RuleRaised(f"the rule '{inv.id}' raised {type(exc).__name__}: "
                             f"{' '.join(str(exc).split())[:200]}; fix the rule and replay again") from exc

    return Invariant(id=inv.id, reads=inv.reads, check=check, description=inv.description)


def read_ticks(path: Path) -> tuple[str | None, list[dict[str, Any]]]:
    """The store's bundle name and its recorded ticks, each checked for what replay needs."""
    rec = read.recording(path)
    return rec.bundle, [_record(n, p) for n, p in enumerate(rec.payloads, start=1)]


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
    engine = Engine(work, bundle=bundle, clock=FixedClock(),
                    extra_invariants=[_guarded(inv) for inv in extra_invariants])
    try:
        for rec in ticks:
            event = rec["_event"]
            keys = rec.get("keys", [])
            try:
                resp = engine.apply_recorded(event, list(keys) if isinstance(keys, list) else [], rec["now"],
                                             bundle=bundle)
            except InvariantViolation as exc:
                exc.record = rec  # type: ignore[attr-defined]
                exc.event_kind = event.kind  # type: ignore[attr-defined]
                raise
            except RuleRaised as exc:
                raise RuleRaised(f"{exc.message} (at tick {rec['seq']})") from exc
            except Exception as exc:  # noqa: BLE001 - a recorded event the kernel refuses or cannot re-apply
                raise ReplayDamaged(f"recorded tick {rec['seq']} cannot be re-applied ({type(exc).__name__}: "
                                    f"{' '.join(str(exc).split())[:160]}); the store was changed after it was "
                                    "written (see 'loom verify')") from exc
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
    return read.chain_report(path)
