"""Replay reproduces an archived run exactly; a changed rule names the tick it would stop;
the audit chain detects edits, inserts and deletions made behind loom's back."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from loom_core.engine.replay import replay, verify
from loom_core.store.archive import archive, find_archive
from tests.conftest import ROOT, run_loom
from tests.support.archives import unpacked
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
    import loom_core.kernel.gates as gates

    monkeypatch.setattr(gates, "DEFAULT_OPTIONS", gates.DEFAULT_OPTIONS[:1])  # the asked options change
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
    with unpacked(path) as db:
        _sqlite(db, "UPDATE audit SET payload = json_set(payload, '$.decision', 'reject') WHERE id = 5")
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
    with unpacked(path) as db:
        _sqlite(db, sql)
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


# ------------------------------------------------------------------ holes an editor could slip through
def _edit(db, *sql):
    conn = sqlite3.connect(db)
    for stmt in sql:
        conn.execute(stmt)
    conn.commit()
    conn.close()


HOLES = {
    "all rows deleted, count set to 0": (
        "DELETE FROM audit", "UPDATE driver_state SET audit_rows = 0, audit_head = ''"),
    "driver_state row deleted": ("DELETE FROM driver_state",),
    "last rows cut off, both anchors rewritten": (
        "DELETE FROM audit WHERE id > (SELECT max(id) - 2 FROM audit)",
        "UPDATE driver_state SET audit_rows = (SELECT count(*) FROM audit), "
        "audit_head = (SELECT hash FROM audit ORDER BY id DESC LIMIT 1)"),
    "pipeline verdict flipped": ("UPDATE pipeline_state SET verdict = 'rejected'",),
    "a finding dismissed": ("UPDATE findings SET status = 'dismissed'",),
}


@pytest.mark.parametrize("hole", sorted(HOLES))
def test_verify_sees_edits_that_keep_the_chain_itself_intact(archived, hole):
    project, task_id, path = archived
    assert verify(path).ok
    with unpacked(path) as db:
        _edit(db, *HOLES[hole])
    report = verify(path)
    assert not report.ok, f"{hole}: {report.line('archive')}"
    proc = run_loom("verify", "--task", task_id, cwd=project, env={"PYTHONPATH": str(ROOT)})
    assert proc.returncode == 1 and "BROKEN" in proc.stdout, (proc.stdout, proc.stderr)


def test_verify_sees_a_flipped_verdict_in_the_live_store(project):
    finished_task(project)
    db = project / ".loom" / "state.db"
    assert verify(db).ok
    _edit(db, "UPDATE pipeline_state SET verdict = 'rejected'")
    report = verify(db)
    assert not report.ok and "state tables" in report.reason


def test_verify_sees_a_flipped_verdict_in_the_history_index(archived):
    project, task_id, path = archived
    index = project / ".loom" / "history" / "index.jsonl"
    assert run_loom("verify", "--task", task_id, cwd=project, env={"PYTHONPATH": str(ROOT)}).returncode == 0
    lines = [json.loads(raw) for raw in index.read_text().splitlines()]
    lines[-1]["verdict"] = "rejected"
    index.write_text("".join(json.dumps(row) + "\n" for row in lines))
    proc = run_loom("verify", "--task", task_id, cwd=project, env={"PYTHONPATH": str(ROOT)})
    assert proc.returncode == 1, proc.stdout
    assert "index" in proc.stdout and "verdict" in proc.stdout


VERIFY_LOOP = """
import sys, time
from loom_core.engine.replay import verify
db, until = sys.argv[1], float(sys.argv[2])
n = bad = 0
while time.time() < until:
    r = verify(db)
    n += 1
    if not r.ok:
        bad += 1
        print(r.line("live"), flush=True)
print("checked", n, "broken", bad)
"""


def test_verify_while_a_task_runs_in_another_process_never_says_broken(project):
    """Rows and anchors are read in one snapshot, so a commit landing between them is no tampering."""
    import sys
    import time

    finished_task(project)
    db = project / ".loom" / "state.db"
    until = time.time() + 3.0
    checker = subprocess.Popen([sys.executable, "-c", VERIFY_LOOP, str(db), str(until)], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    n = 0
    while time.time() < until:
        finished_task(project, task=f"spec round {n}")  # every tick of a run, then a rotation
        n += 1
    out, err = checker.communicate(timeout=60)
    assert checker.returncode == 0, err
    assert "broken 0" in out, out[-2000:]
    assert n >= 3 and int(out.split("checked ")[1].split()[0]) >= 20, out


# ------------------------------------------------------------------ the anchor outside the file
def _recompute_chain(db, edit_sql: str) -> None:
    """What an attacker with the source does: edit a row, then recompute every hash and both anchors."""
    from loom_core.store.audit import GENESIS, row_hash

    conn = sqlite3.connect(db)
    conn.execute(edit_sql)
    prev = GENESIS
    rows = conn.execute("SELECT id, ts, type, task_id, driver_state_id, payload, verdict, error_class FROM audit "
                        "ORDER BY id").fetchall()
    for rid, ts, type_, tid, dsid, payload, verdict, err in rows:
        h = row_hash(prev, ts, type_, tid, dsid, payload, verdict, err)
        conn.execute("UPDATE audit SET prev_hash = ?, hash = ? WHERE id = ?", (prev, h, rid))
        prev = h
    conn.execute("UPDATE driver_state SET audit_head = ?, audit_rows = ?", (prev, len(rows)))
    conn.commit()
    conn.close()


@pytest.fixture(scope="module")
def landed(tmp_path_factory):
    """A real git project whose accepted task landed on loom/<task> (demo backend, no gates)."""
    from loom_core.agents.executors.demo_project import create_demo_project
    from loom_core.engine.runner import demo_task

    tmp = tmp_path_factory.mktemp("landed")
    proj = tmp / "shop"
    create_demo_project(proj)
    env = {"PYTHONPATH": str(ROOT), "TMPDIR": str(tmp), "LOOM_HOME": str(tmp / "home")}
    proc = run_loom("run", demo_task(), "--backend", "demo", "--policy", "auto", cwd=proj, env=env, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    task_id = json.loads(run_loom("status", "--json", cwd=proj, env=env).stdout)["task_id"]
    return proj, task_id, env


def test_the_branch_commit_carries_the_audit_head_and_verify_cross_checks_it(landed, tmp_path):
    import pygit2

    src, task_id, env = landed
    proj = tmp_path / "shop"
    shutil.copytree(src, proj, symlinks=True)
    db = proj / ".loom" / "state.db"
    head = sqlite3.connect(db).execute("SELECT hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()[0]
    tip = pygit2.Repository(str(proj)).references[f"refs/heads/loom/{task_id}"].peel(pygit2.Commit)
    assert f"Loom-Audit-Head: {head}" in tip.message
    assert re.search(r"^Loom-Audit-Mac: [0-9a-f]{64}$", tip.message, re.MULTILINE), tip.message
    ok = run_loom("verify", "--task", task_id, cwd=proj, env=env)
    assert ok.returncode == 0 and f"matches the signed audit head on loom/{task_id}" in ok.stdout, ok.stdout
    _recompute_chain(db, "UPDATE audit SET ts = '2020-01-01T00:00:00.000Z' WHERE id = 1")
    assert verify(db).ok  # the file alone cannot tell: every hash was recomputed
    for args in (("verify",), ("verify", "--task", task_id)):
        proc = run_loom(*args, cwd=proj, env=env)
        assert proc.returncode == 1, proc.stdout
        assert "BROKEN" in proc.stdout and f"loom/{task_id}" in proc.stdout and "rewritten" in proc.stdout


@pytest.mark.parametrize("flow", ["clean", "blocker"])
def test_verify_holds_after_every_tick_of_a_code_task(project, flow):
    """The digest a tick records of the state equals what a reader computes from the tables (no false
    alarm from SQLite's column types), on the code bundle's findings, verdicts and gates."""
    from loom_core.agents.executors import ScriptedExecutor
    from loom_core.bundles.code import BUNDLE as CODE
    from loom_core.engine.clock import FixedClock
    from loom_core.engine.drive import Driver
    from loom_core.engine.engine import Engine
    from tests.support.code_agents import CodeAgents, blocker

    agents = CodeAgents()
    if flow == "blocker":
        agents.on["challenger-reviewer"] = lambda i: blocker("challenger-reviewer")
    engine = Engine(project, bundle=CODE, clock=FixedClock())
    checked = []
    original = engine._transact

    def transact(*a, **kw):
        resp = original(*a, **kw)
        report = engine.store.verify_chain()
        assert report.ok, report.line(f"after tick {resp.seq}")
        checked.append(resp.seq)
        return resp

    engine._transact = transact
    outcome = Driver(engine, ScriptedExecutor(agents)).start("make f handle empty input")
    while outcome.kind == "paused":
        outcome = Driver(engine, ScriptedExecutor(agents)).run(engine.answer(outcome.gate_event_id, "accept"))
    assert outcome.kind == "complete" and len(checked) >= 8
    assert verify(project / ".loom" / "state.db").ok
    engine.close()


@pytest.mark.parametrize("mac", ["kept", "dropped"])
def test_rewriting_the_branch_commit_too_is_caught_by_the_signature(landed, tmp_path, mac):
    """The attacker also amends the loom/<task> commit to carry the recomputed head: the HMAC with the
    user's key (in the loom home, 0600) no longer matches, and dropping it is refused too."""
    import pygit2

    src, task_id, env = landed
    proj = tmp_path / "shop"
    shutil.copytree(src, proj, symlinks=True)
    db = proj / ".loom" / "state.db"
    _recompute_chain(db, "UPDATE audit SET ts = '2020-01-01T00:00:00.000Z' WHERE id = 1")
    new_head = sqlite3.connect(db).execute("SELECT hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()[0]
    repo = pygit2.Repository(str(proj))
    ref = repo.references[f"refs/heads/loom/{task_id}"]
    tip = ref.peel(pygit2.Commit)
    message = re.sub(r"^Loom-Audit-Head: .*$", f"Loom-Audit-Head: {new_head}", tip.message, flags=re.MULTILINE)
    if mac == "dropped":
        message = re.sub(r"^Loom-Audit-Mac: .*\n", "", message, flags=re.MULTILINE)
    forged = repo.create_commit(None, tip.author, tip.committer, message, tip.tree_id, tip.parent_ids)
    ref.set_target(forged)
    assert (Path(env["LOOM_HOME"]) / "audit.key").stat().st_mode & 0o777 == 0o600
    proc = run_loom("verify", "--task", task_id, cwd=proj, env=env)
    assert proc.returncode == 1 and "BROKEN" in proc.stdout, proc.stdout
    assert ("not signed" if mac == "kept" else "carries no Loom-Audit-Mac") in proc.stdout, proc.stdout
