"""The one write path: invariant vetoes roll back byte-for-byte, the ledger dedups deliveries."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3

import pytest

from loom_core.bundles.spec import BUNDLE
from loom_core.engine.engine import Engine
from loom_core.errors import InvariantViolation
from loom_core.kernel.types import AgentResult
from tests.support.scripts import BLOCKER, happy

# a gate-less flow: a reviewer's blocker would reach finalize with verdict accepted
GATELESS = dataclasses.replace(BUNDLE, flows={"spec": ("init", "draft", "review-spec", "finalize")})


def _files_digest(project) -> dict[str, str]:
    d = project / ".loom"
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.glob("state.db*"))}


def _dump(project) -> list[str]:
    conn = sqlite3.connect(project / ".loom" / "state.db")
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def _to_review(engine: Engine):
    r = engine.create("spec the login limiter")
    (draft,) = r.directive.intents
    return engine.deliver(AgentResult(draft.agent_run_id, "# Goal\n"))


def test_vetoed_delivery_leaves_database_byte_for_byte_and_is_audited_after(project, clock):
    engine = Engine(project, bundle=GATELESS, clock=clock)
    r = _to_review(engine)
    intents = r.directive.intents
    assert [i.agent for i in intents] == ["spec-reviewer", "testability-reviewer"]
    results = [AgentResult(i.agent_run_id, BLOCKER if i.agent == "testability-reviewer" else happy(i))
               for i in intents]
    engine.store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before_files = _files_digest(project)
    before_rows = _dump(project)
    # run the refused transition without the refusal record, to compare raw bytes
    engine_no_audit = Engine(project, bundle=GATELESS, clock=clock)
    engine_no_audit._record_refusal = lambda *a, **k: None
    with pytest.raises(InvariantViolation) as info:
        engine_no_audit.deliver(results)
    assert "INV_008" in info.value.ids
    assert _files_digest(project) == before_files
    assert _dump(project) == before_rows
    engine_no_audit.close()

    # the real engine records the refusal afterwards, in its own transaction
    with pytest.raises(InvariantViolation):
        engine.deliver(results)
    after = _dump(project)
    added = [line for line in after if line not in before_rows]
    # only the refusal's audit row and the chain head on driver_state
    assert sorted(line.split('"')[1] for line in added) == ["audit", "driver_state"]
    conn = sqlite3.connect(project / ".loom" / "state.db")
    row = conn.execute("SELECT type, verdict, error_class, payload FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    conn.close()
    assert row[:3] == ("invariant-refusal", "error", "invariant-violation")
    payload = json.loads(row[3])
    assert payload["violations"][0]["id"] == "INV_008"
    assert payload["event"]["kind"] == "agents-results"  # the refused output is kept, nothing lost
    st = engine.state()
    assert st.status == "in_progress" and len(st.pending) == 2 and not st.findings
    assert engine.store.verify_chain().ok
    engine.close()


def test_redelivery_returns_identical_response_and_changes_nothing(engine, project):
    r = engine.create("spec it")
    first = engine.answer(r.directive.gate_event_id, "accept")
    (research,) = first.directive.intents
    out = engine.deliver(AgentResult(research.agent_run_id, happy(research), tokens_in=10, tokens_out=5))
    before = _dump(project)
    again = engine.deliver(AgentResult(research.agent_run_id, "entirely different text", tokens_in=99))
    assert again.replayed is True and out.replayed is False
    assert again.wire == out.wire
    assert _dump(project) == before
    assert engine.state().counters["total_tokens_in"] == 10
    # a duplicate gate answer is a replay too, and the create key as well
    ans = engine.answer(out.directive.gate_event_id, "accept")
    assert engine.answer(out.directive.gate_event_id, "reject").wire == ans.wire


def test_same_client_key_create_is_idempotent(project, clock):
    e = Engine(project, bundle=BUNDLE, clock=clock)
    a = e.create("spec it", client_key="k1")
    b = e.create("spec it", client_key="k1")
    assert b.replayed and b.wire == a.wire
    e.close()


def test_json_columns_refuse_invalid_json(engine, project):
    engine.create("spec it")
    conn = sqlite3.connect(project / ".loom" / "state.db")
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("UPDATE pipeline_state SET decisions = '{not json' WHERE id = 1")
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO pipeline_state (id, schema_version, project_dir, bundle, task_id, task, "
                     "driver_state_id, status, started_at) VALUES (2, 1, '', 'b', 't', 't', 'd', 'in_progress', 'x')")
    conn.close()


def test_store_snapshot_matches_database_after_every_tick(project, clock):
    """The in-memory state the kernel saw equals what a fresh reader loads from disk."""
    from loom_core.store.state import StateStore

    e = Engine(project, bundle=BUNDLE, clock=clock)
    r = e.create("spec it")
    steps = 0
    while r.directive.kind != "complete":
        if r.directive.kind == "ask-user":
            r = e.answer(r.directive.gate_event_id, "accept")
        else:
            res = [AgentResult(i.agent_run_id, happy(i)) for i in r.directive.intents]
            r = e.deliver(res if len(res) > 1 else res[0])
        fresh = StateStore.for_project(project)
        assert fresh.state() == e.state()
        fresh.close()
        steps += 1
    assert steps >= 5
    e.close()
