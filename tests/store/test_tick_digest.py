"""The state digest a tick records is computed incrementally (only changed rows re-normalised); it must be
byte-for-byte the digest ``loom verify`` recomputes from the stored tables."""

from __future__ import annotations

from loom_core.agents.executors import ScriptedExecutor
from loom_core.bundles.spec import BUNDLE
from loom_core.engine.drive import Driver
from loom_core.engine.engine import Engine
from loom_core.kernel.state import TaskState
from loom_core.store import integrity
from tests.support import scripts


def _full(state: TaskState) -> str:
    return integrity.digest(integrity.memory_tables(state))


def test_every_tick_records_the_full_digest_of_its_state(tmp_path):
    engine = Engine(tmp_path, bundle=BUNDLE)
    seen: list[tuple[str, str, int]] = []
    cached = engine.store.digest

    def checked(state: TaskState) -> str:
        got = cached(state)
        seen.append((got, _full(state), len(state.findings)))
        return got

    engine.store.digest = checked
    driver = Driver(engine, ScriptedExecutor(scripts.one_rework))
    outcome = driver.start("write a spec for rate limiting on login")
    while outcome.kind == "paused":
        outcome = driver.run(engine.answer(outcome.gate_event_id, "accept"))
    assert outcome.kind == "complete"
    assert len(seen) >= 8 and any(n for _, _, n in seen)  # a rework: findings rows came and changed
    assert [a for a, _, _ in seen] == [b for _, b, _ in seen]
    assert engine.store.verify_chain().ok  # the stored tables match the last recorded digest
    engine.close()


def test_changed_rows_change_the_digest_and_odd_values_normalise_alike():
    d = integrity.SnapshotDigest()
    s = TaskState(pipeline={"task": "é ✓", "n": 5, "flag": True, "ratio": 2.0, "half": 0.5, "nested": {"k": [1, None]}},
                  driver={"step_index": 1, "scratch": {"a": 1}, "tick_seq": 9, "state_hash": "x"},
                  phases={"a": {"name": "a", "status": "pending"}, "b": {"name": "b", "status": "pending"}},
                  agent_records=[{"seq": 1, "phase": "a"}])
    first = d(s)
    assert first == _full(s)
    assert d(s) == first  # all cached
    s.phases["b"] = {"name": "b", "status": "completed"}  # an op replaces a row
    assert d(s) == _full(s) != first
    s.phases["b"] = {"name": "b", "status": "pending"}  # an equal row, a new object
    assert d(s) == first
    del s.phases["a"]
    s.agent_records.append({"seq": 2, "phase": "b"})
    s.driver = {**s.driver, "tick_seq": 10, "state_hash": "y"}  # bookkeeping is not state
    assert d(s) == _full(s)
    s.pipeline = {**s.pipeline, "n": "5", "flag": 1, "ratio": 2}  # the same values as SQLite may return them
    assert d(s) == _full(s)
