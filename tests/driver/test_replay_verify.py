"""Replay reproduces an archived run exactly; a changed rule names the tick it would stop;
the audit chain detects edits, inserts and deletions made behind loom's back."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess

import pytest

from loom_core.driver.replay import replay, verify
from loom_core.store.archive import archive, find_archive
from tests.conftest import run_loom
from tests.support.fixtures import finished_task

RULES = '''
from loom_core.kernel.types import Invariant

def _no_premium(view):
    for row in view.pending.values():
        if row["model"] == "opus":
            return f"agent {row['agent']} would run on opus"
    return None

NO_PREMIUM = Invariant("INV_TEAM_no_premium", ("pending",), _no_premium, "no premium models")
'''


@pytest.fixture
def archived(project):
    outcome = finished_task(project)
    assert outcome.kind == "complete" and outcome.verdict == "accepted"
    archive(project, reason="auto-rotate", now="2026-02-01T00:00:00.000Z")
    path = find_archive(project, outcome.task_id)
    assert path is not None and path.name == f"{outcome.task_id}.db"
    return project, outcome.task_id, path


def test_replay_reproduces_an_archived_run(archived):
    project, task_id, path = archived
    report = replay(path)
    assert report.identical and report.replayed == report.ticks >= 8
    proc = run_loom("replay", task_id, cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert "replay identical" in proc.stdout


def test_replay_detects_a_changed_kernel_behaviour(archived, monkeypatch):
    project, task_id, path = archived
    import loom_core.kernel.fsm as fsm

    monkeypatch.setattr(fsm, "DEFAULT_OPTIONS", fsm.DEFAULT_OPTIONS[:1])  # the asked options change
    report = replay(path)
    assert not report.identical and report.divergence["seq"] == 1
    assert report.divergence["what"] == "directive differs"


def test_changed_invariants_name_the_stopping_tick(archived, tmp_path):
    project, task_id, path = archived
    (tmp_path / "team_rules.py").write_text(RULES)
    proc = run_loom("replay", task_id, "-C", str(project), "--invariants", "team_rules:NO_PREMIUM", "--json",
                    cwd=tmp_path, env={"PYTHONPATH": str(tmp_path)})
    assert proc.returncode == 1, proc.stderr
    data = json.loads(proc.stdout)
    stopped = data["stopped"]
    # the spec-writer (premium tier -> opus) is spawned by the answer at gate-consult: tick 4
    assert stopped["seq"] == 4 and stopped["event"] == "user-answer"
    assert stopped["violations"][0]["id"] == "INV_TEAM_no_premium"
    assert "spec-writer" in stopped["violations"][0]["message"]
    text = run_loom("replay", task_id, "-C", str(project), "--invariants", "team_rules:NO_PREMIUM", cwd=tmp_path,
                    env={"PYTHONPATH": str(tmp_path)})
    assert "stopped the run at tick 4" in text.stdout and "INV_TEAM_no_premium" in text.stdout


def test_verify_passes_on_a_fresh_run(project):
    finished_task(project)
    proc = run_loom("verify", cwd=project)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("audit chain intact:")
    assert len(proc.stdout.strip().splitlines()) == 1


def _sqlite(db, sql):
    subprocess.run(["sqlite3", str(db), sql], check=True, capture_output=True, text=True)


@pytest.mark.skipif(shutil.which("sqlite3") is None, reason="sqlite3 shell not installed")
def test_verify_names_the_row_edited_with_the_sqlite3_shell(archived):
    project, task_id, path = archived
    assert run_loom("verify", "--task", task_id, cwd=project).returncode == 0
    _sqlite(path, "UPDATE audit SET payload = json_set(payload, '$.decision', 'reject') WHERE id = 5")
    proc = run_loom("verify", "--task", task_id, cwd=project)
    assert proc.returncode == 1
    assert "BROKEN at row 5" in proc.stdout and "edited" in proc.stdout


@pytest.mark.skipif(shutil.which("sqlite3") is None, reason="sqlite3 shell not installed")
@pytest.mark.parametrize("sql,row", [
    ("DELETE FROM audit WHERE id = 3", 4),
    ("INSERT INTO audit (ts, type, payload, prev_hash, hash) SELECT ts, type, payload, prev_hash, hash "
     "FROM audit WHERE id = 2", None),
])
def test_verify_detects_deleted_and_inserted_rows(archived, sql, row):
    project, task_id, path = archived
    _sqlite(path, sql)
    proc = run_loom("verify", "--task", task_id, cwd=project)
    assert proc.returncode == 1, proc.stdout
    assert "BROKEN" in proc.stdout
    if row:
        assert f"row {row}" in proc.stdout


def test_verify_live_store_after_edit(project):
    finished_task(project)
    db = project / ".loom" / "state.db"
    conn = sqlite3.connect(db)
    conn.execute("UPDATE audit SET ts = '2020-01-01T00:00:00.000Z' WHERE id = 2")
    conn.commit()
    conn.close()
    assert verify(db).broken_row == 2
    proc = run_loom("verify", cwd=project)
    assert proc.returncode == 1 and "row 2" in proc.stdout
