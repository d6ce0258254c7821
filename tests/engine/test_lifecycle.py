"""One task per slot, rotation into history, reset, recovery verbs, stall detection."""

from __future__ import annotations

import json

import pytest

from loom_core.agents.executors import ScriptedExecutor
from loom_core.bundles.spec import BUNDLE
from loom_core.control.status import project_status
from loom_core.engine.clock import FixedClock
from loom_core.engine.drive import Driver
from loom_core.engine.engine import Engine
from loom_core.engine.runner import ProjectLock
from loom_core.errors import KernelRefusal
from loom_core.kernel.types import AgentResult
from loom_core.store.archive import history
from tests.conftest import ROOT, run_loom
from tests.support import scripts
from tests.support.fixtures import finished_task, parked_task


def test_finished_task_rotates_into_history_when_the_next_starts(project):
    first = finished_task(project, task="first spec")
    assert (project / ".loom" / "state.db").exists()
    second = finished_task(project, task="second spec")
    assert second.verdict == "accepted"
    rows = history(project)
    assert [r["task_id"] for r in rows] == [first.task_id]
    assert rows[0]["reason"] == "auto-rotate" and rows[0]["verdict"] == "accepted"
    assert (project / rows[0]["db_file"]).exists()
    out = run_loom("history", cwd=project, env={"PYTHONPATH": str(ROOT)})
    assert first.task_id in out.stdout and "  accepted  " in out.stdout and "/accepted" not in out.stdout
    data = json.loads(run_loom("history", "--json", cwd=project).stdout)
    assert data[0]["task_id"] == first.task_id


def test_in_progress_slot_refuses_a_second_task_unless_replaced(project, clock):
    parked_task(project, clock)
    engine = Engine(project, bundle=BUNDLE, clock=clock)
    driver = Driver(engine, ScriptedExecutor(scripts.happy))
    with pytest.raises(KernelRefusal) as info:
        driver.start("another")
    assert info.value.code == "PROJECT_TASK_ACTIVE"
    out = driver.start("another", replace=True)
    assert out.kind == "paused"
    assert history(project)[0]["reason"] == "discarded"
    engine.close()


def test_reset_refuses_in_progress_without_force(project):
    parked_task(project)
    dry = run_loom("reset", "--dry-run", cwd=project)
    assert dry.returncode == 0 and "would refuse" in dry.stdout
    proc = run_loom("reset", cwd=project)
    assert proc.returncode == 1 and "--force" in proc.stderr
    assert (project / ".loom" / "state.db").exists()
    proc = run_loom("reset", "--force", cwd=project)
    assert proc.returncode == 0 and "archived" in proc.stdout
    assert not (project / ".loom" / "state.db").exists()
    assert run_loom("status", cwd=project).stdout.startswith("no active task")


def _at_research(project, clock):
    engine = Engine(project, bundle=BUNDLE, clock=clock)
    r = engine.create("spec it")
    r = engine.answer(r.directive.gate_event_id, "accept")
    return engine, r.directive.intents[0]


def test_recovery_retry_failed_reuses_the_same_run_id(project, clock):
    engine, intent = _at_research(project, clock)
    r = engine.recover("retry-failed")
    assert [i.agent_run_id for i in r.directive.intents] == [intent.agent_run_id]
    r = engine.deliver(AgentResult(intent.agent_run_id, scripts.happy(intent)))
    assert r.directive.kind == "ask-user"
    engine.close()


def test_recovery_force_close_and_abandon(project, clock, tmp_path):
    engine, _ = _at_research(project, clock)
    r = engine.recover("force-close")
    assert r.wire["directive"]["verdict"] == "failed_force_closed"
    st = engine.state()
    assert st.status == "completed" and not st.pending
    assert all(p["status"] in ("completed", "skipped") for p in st.phases.values())
    again = engine.recover("force-close")  # terminal: a no-op
    assert again.wire["directive"]["kind"] == "complete"
    engine.close()

    other = tmp_path / "other"
    other.mkdir()
    e2, _ = _at_research(other, FixedClock())
    e2.close()
    proc = run_loom("recover", "abandon", cwd=other)
    assert proc.returncode == 0 and "task ended" in proc.stdout
    st = json.loads(run_loom("status", "--json", cwd=other).stdout)
    assert st["state"] == "abandoned" and st["verdict"] is None


def test_cancel_pending_moves_on(project, clock):
    engine, intent = _at_research(project, clock)
    r = engine.recover("cancel-pending")
    assert r.directive.kind == "ask-user" and r.directive.gate == "gate-consult"
    assert engine.state().pipeline["pipeline_violation"] == "pending-cancel"
    engine.close()


def test_stall_detection(project):
    clock = FixedClock("2026-03-01T10:00:00.000Z")
    engine, intent = _at_research(project, clock)
    engine.close()
    lock = ProjectLock(project).acquire()  # stalled means a driver is alive but makes no progress
    fresh = project_status(project, "2026-03-01T10:05:00.000Z")
    assert fresh["status"] == "running" and fresh["stalled"] is None
    late = project_status(project, "2026-03-01T10:51:00.000Z")
    assert late["status"] == "stalled" and "agent pending for 50 min" in late["stalled"]
    custom = project_status(project, "2026-03-01T10:05:00.000Z", stall_after_min=2)
    assert custom["status"] == "stalled"
    proc = run_loom("status", "--stall-minutes", "0.01", cwd=project)
    assert "STALLED" in proc.stdout
    lock.release()
    assert project_status(project, "2026-03-01T10:51:00.000Z")["status"] == "stopped"


def test_parked_task_is_not_stalled(project):
    parked_task(project, FixedClock("2026-03-01T10:00:00.000Z"))
    st = project_status(project, "2026-03-02T10:00:00.000Z")
    assert st["status"] == "parked" and st["gate"] == "gate-scope" and st["stalled"] is None


def test_status_json_reports_the_store_facts(project):
    finished_task(project)
    data = json.loads(run_loom("status", "--json", cwd=project).stdout)
    engine = Engine(project)
    st = engine.state()
    assert data["task_id"] == st.pipeline["task_id"]
    assert data["state"] == st.status == "completed"
    assert data["verdict"] == st.pipeline["verdict"] == "accepted"
    assert data["spawns"] == st.counters["agents_count"] == len(st.agent_records)
    assert data["flow"] == st.driver["flow_name"]
    engine.close()
