"""kill -9 the driver at every crash point of a whole task, resume in a fresh process, and
check the run is exactly the one an uninterrupted process produces."""

from __future__ import annotations

import json
import os
import queue
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.support.drive_fork import ForkDriver

pytestmark = pytest.mark.slow


def _drive(project: Path, env_extra: dict[str, str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOM_CRASH")}
    env.update(env_extra)
    return subprocess.run([sys.executable, "-m", "tests.support.drive_spec", str(project)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def _fingerprint(project: Path) -> dict:
    """Everything about the final state except random ids and wall-clock times."""
    conn = sqlite3.connect(project / ".loom" / "state.db")
    try:
        q = lambda sql: conn.execute(sql).fetchall()  # noqa: E731
        run_ids = [r[0] for r in q("SELECT agent_run_id FROM agent_records ORDER BY seq")]
        delivered = [r[0] for r in q("SELECT key FROM kernel_idempotency_ledger WHERE key LIKE 'agent-result:%'")]
        return {
            "pipeline": q("SELECT status, verdict, work_result, decisions, bundle_state, files_modified, "
                          "gate_policies FROM pipeline_state"),
            "phases": q("SELECT name, status, skipped_reason FROM phases ORDER BY name"),
            "records": q("SELECT agent, phase, output_kind FROM agent_records ORDER BY seq"),
            "verdicts": q("SELECT agent, phase, iteration, verdict, blocking_issues FROM agent_verdicts ORDER BY id"),
            "findings": sorted(q("SELECT agent, phase, iteration, severity, category, status, "
                                 "superseded_by_iteration FROM findings")),
            "gates": q("SELECT name, status, decided_by FROM gates ORDER BY name"),
            "gate_counters": q("SELECT role, human_revisions, auto_rejections FROM pipeline_gate_counters ORDER BY role"),
            "counters": q("SELECT agents_count FROM pipeline_counters"),
            "pending": q("SELECT count(*) FROM pending_agents"),
            "driver": q("SELECT flow_name, step_index, pending_user_answer FROM driver_state"),
            "ticks": q("SELECT count(*) FROM audit WHERE type = 'tick'"),
            "_run_ids": run_ids,
            "_delivered": delivered,
        }
    finally:
        conn.close()


def test_crash_matrix(tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    trace = tmp_path / "trace.txt"
    clean = _drive(base, {"LOOM_CRASH_AT": "*:1000000", "LOOM_CRASH_TRACE": str(trace)})
    assert clean.returncode == 0, clean.stderr
    assert json.loads(clean.stdout) == {"kind": "complete", "verdict": "accepted"}
    points = trace.read_text().split()
    assert len(points) >= 50, f"only {len(points)} crash points on the tick path"
    assert {"before-tx", "ticked", "audit-written", "state-written", "ledger-written", "pre-commit", "committed",
            "spawn-start", "before-deliver"} <= set(points)
    expected = _fingerprint(base)
    assert len(set(expected["_run_ids"])) == len(expected["_run_ids"])

    # each drive in a fresh process forked from a server that imported loom once (no store open in it):
    # killed for real, resumed in another fresh process, without ~150 interpreter start-ups
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOM_CRASH")}
    servers: queue.Queue[ForkDriver] = queue.Queue()
    workers = max(2, os.cpu_count() or 2)
    for _ in range(workers):
        servers.put(ForkDriver(ROOT, env))

    def forked(proj: Path, crash: str | None) -> subprocess.CompletedProcess:
        server = servers.get()
        try:
            return server.drive(proj, crash)
        finally:
            servers.put(server)

    def crash_then_resume(n: int) -> tuple[int, str, dict | str]:
        proj = tmp_path / f"crash-{n:03d}"
        proj.mkdir()
        first = forked(proj, f"*:{n}")
        if first.returncode != -9:
            return n, points[n - 1], f"expected SIGKILL at point {n}, got rc={first.returncode}: {first.stderr[-400:]}"
        second = forked(proj, None)
        if second.returncode != 0:
            return n, points[n - 1], f"resume failed rc={second.returncode}: {second.stderr[-800:]}"
        if json.loads(second.stdout) != {"kind": "complete", "verdict": "accepted"}:
            return n, points[n - 1], f"resume ended {second.stdout}"
        return n, points[n - 1], _fingerprint(proj)

    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(crash_then_resume, range(1, len(points) + 1)))
    finally:
        while not servers.empty():
            servers.get().close()

    failures = []
    for n, point, fp in results:
        if isinstance(fp, str):
            failures.append(f"#{n} ({point}): {fp}")
            continue
        # every agent run delivered exactly once: one record and one ledger key per run id
        if len(set(fp["_run_ids"])) != len(fp["_run_ids"]) or sorted(fp["_run_ids"]) != sorted(
                k.split(":", 1)[1] for k in fp["_delivered"]):
            failures.append(f"#{n} ({point}): a run was delivered more or less than once")
        same = {k: v for k, v in fp.items() if not k.startswith("_")} == \
            {k: v for k, v in expected.items() if not k.startswith("_")}
        if not same:
            diff = [k for k in expected if not k.startswith("_") and expected[k] != fp[k]]
            failures.append(f"#{n} ({point}): final state differs in {diff}")
    assert not failures, "\n".join(failures)


# ---------------------------------------------------------------------------- file effects

DEMO_TASK = "Reject discount percentages outside 0-100 in apply_discount"


def _loom(project: Path, *args: str, crash: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOM_CRASH")}
    if crash:
        env["LOOM_CRASH_AT"] = crash
    return subprocess.run([sys.executable, "-m", "loom_core.surfaces.cli", *args], cwd=project, env=env,
                          capture_output=True, text=True, timeout=120)


def _demo(path: Path) -> Path:
    from loom_core.agents.executors.demo_project import create_demo_project

    create_demo_project(path)
    return path


def _branch(project: Path) -> dict[str, str]:
    from tests.support.git import branch_files

    names = subprocess.run(["git", "branch", "--list", "loom/*", "--format=%(refname:short)"], cwd=project,
                           capture_output=True, text=True, check=True).stdout.split()
    assert len(names) == 1, names
    return branch_files(project, names[0])


def _agents(project: Path) -> list[tuple]:
    conn = sqlite3.connect(project / ".loom" / "state.db")
    try:
        return {"records": conn.execute("SELECT agent, phase FROM agent_records ORDER BY seq").fetchall(),
                "verdicts": conn.execute("SELECT agent, iteration, verdict, blocking_issues FROM agent_verdicts "
                                         "ORDER BY id").fetchall(),
                "pipeline": conn.execute("SELECT status, verdict, files_modified, files_created "
                                         "FROM pipeline_state").fetchall()}
    finally:
        conn.close()


def test_a_kill_inside_an_agents_file_effects_resumes_to_the_uninterrupted_result(tmp_path):
    """kill -9 after the implementer wrote its fix but before its result was delivered, and in the middle of
    writing the file (0 bytes on disk), in both implementation rounds of the demo task; `loom proceed` then
    ends exactly as an uninterrupted run: same agent runs and verdicts, same branch content."""
    base = _demo(tmp_path / "base")
    clean = _loom(base, "run", "--backend", "demo", "--policy", "auto", DEMO_TASK)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    expected_branch, expected_run = _branch(base), _agents(base)
    assert "raise ValueError" in expected_branch["shop/pricing.py"]
    assert sum(1 for a, _ in expected_run["records"] if a == "implementer") == 2  # a half fix, then the full one

    # the implementer is the 6th and 13th spawn, its results the 5th and 9th delivery
    points = ["demo-wrote:1", "demo-wrote:2", "demo-mid-write:1", "demo-mid-write:2", "spawn-end:6",
              "spawn-end:13", "before-deliver:5", "before-deliver:9"]

    # the kills and the resumes in fresh processes forked from a server that imported the CLI once (the
    # uninterrupted run above is a real `python -m loom_core.surfaces.cli`)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOM_CRASH")}
    servers: queue.Queue[ForkDriver] = queue.Queue()
    for _ in range(2):
        servers.put(ForkDriver(ROOT, env, cli=True))

    def forked(proj: Path, *argv: str, crash: str | None = None) -> subprocess.CompletedProcess:
        server = servers.get()
        try:
            return server.loom(proj, *argv, crash=crash)
        finally:
            servers.put(server)

    def crash_then_resume(point: str) -> str | None:
        proj = _demo(tmp_path / point.replace(":", "-"))
        first = forked(proj, "run", "--backend", "demo", "--policy", "auto", DEMO_TASK, crash=point)
        if first.returncode != -9:
            return f"{point}: expected SIGKILL, got rc={first.returncode}: {first.stdout[-600:]}{first.stderr[-600:]}"
        second = forked(proj, "proceed")
        if second.returncode != 0:
            return f"{point}: resume failed rc={second.returncode}: {second.stdout[-1500:]}{second.stderr[-600:]}"
        got_run, got_branch = _agents(proj), _branch(proj)
        if got_run != expected_run:
            return f"{point}: the resumed run differs: {got_run} != {expected_run}"
        if got_branch != expected_branch:
            return f"{point}: the branch differs: {got_branch.get('shop/pricing.py')!r}"
        return None

    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            failures = [f for f in pool.map(crash_then_resume, points) if f]
    finally:
        while not servers.empty():
            servers.get().close()
    assert not failures, "\n".join(failures)
