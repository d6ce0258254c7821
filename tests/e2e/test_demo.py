"""`loom demo` and `loom run` end to end: real git repos, real subprocesses, real checks."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from loom_core.agents.executors.demo import write_demo_project
from loom_core.agents.executors.demo_project import create_demo_project
from tests.conftest import run_loom
from tests.support.git import branch_files, make_repo, user_side


@pytest.fixture
def sandboxes(tmp_path, monkeypatch):
    base = tmp_path / "tmpdir"
    base.mkdir()
    monkeypatch.setenv("TMPDIR", str(base))  # keep sandbox copies inside the test's tmp dir
    return {"TMPDIR": str(base)}


def test_demo_plain_auto_ends_accepted_on_a_loom_branch(tmp_path, sandboxes):
    target = tmp_path / "demo"
    proc = run_loom("demo", str(target), "--plain", "--policy", "auto", cwd=tmp_path, env=sandboxes, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "done — accepted" in proc.stdout
    assert "changes committed to branch loom/" in proc.stdout
    before_side = user_side(target)  # loom never touched the user's side: still the initial commit, clean
    assert before_side["branch"] == "main"
    st = json.loads(run_loom("status", "--json", cwd=target).stdout)
    assert st["state"] == "completed" and st["verdict"] == "accepted"
    branch = f"loom/{st['task_id']}"
    files = branch_files(target, branch)
    assert "if not 0 <= percent <= 100" in files["shop/pricing.py"]
    assert not any(p.startswith(".loom/") for p in files)
    # the branch's tests pass when run
    checkout = tmp_path / "checkout"
    for rel, text in files.items():
        (checkout / rel).parent.mkdir(parents=True, exist_ok=True)
        (checkout / rel).write_text(text)
    tests = subprocess.run([sys.executable, "-m", "unittest", "discover", "-s", "tests", "-t", "."], cwd=checkout,
                           capture_output=True, text=True)
    assert tests.returncode == 0, tests.stderr
    # the user's branch is unchanged: main still at the initial commit, pricing.py untouched
    assert "percent <= 100" not in (target / "shop" / "pricing.py").read_text()
    import pygit2

    repo = pygit2.Repository(str(target))
    assert len(list(repo.walk(repo.head.target))) == 1


def test_run_without_tty_parks_with_exit_3_then_answer_and_proceed_finish(tmp_path, sandboxes):
    proj = tmp_path / "app"
    create_demo_project(proj)
    before = user_side(proj)
    proc = run_loom("run", "reject", "bad", "discounts", "--backend", "demo", "--policy", "human",
                    cwd=proj, env=sandboxes)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "parked at gate 'gate-classify'" in proc.stdout and "loom answer accept" in proc.stdout
    gates = []
    for _ in range(6):
        st = json.loads(run_loom("status", "--json", cwd=proj).stdout)
        if st["state"] != "in_progress":
            break
        assert st["status"] == "parked"
        gates.append(st["gate"])
        ans = run_loom("answer", "accept", cwd=proj)
        assert ans.returncode == 0, ans.stderr
        proc = run_loom("proceed", cwd=proj, env=sandboxes)
        assert proc.returncode in (0, 3), proc.stdout + proc.stderr
    assert proc.returncode == 0 and "done — accepted" in proc.stdout
    assert gates == ["gate-classify", "gate-plan", "gate-final"]
    # status --json reports the store's facts
    st = json.loads(run_loom("status", "--json", cwd=proj).stdout)
    from loom_core.engine.engine import Engine

    engine = Engine(proj, create=False)
    s = engine.state()
    assert (st["task_id"], st["state"], st["verdict"], st["flow"], st["spawns"]) == (
        s.pipeline["task_id"], s.status, s.pipeline["verdict"], s.driver["flow_name"], s.counters["agents_count"])
    assert st["tokens"]["in"] == s.counters["total_tokens_in"] > 0
    engine.close()
    # the work the person accepted (the first round's fix) is on the loom branch; the user's side is untouched
    files = branch_files(proj, f"loom/{st['task_id']}")
    assert "if percent > 100" in files["shop/pricing.py"]
    assert user_side(proj) == before


def test_demo_backend_refuses_a_project_that_is_not_its_demo(tmp_path, sandboxes):
    proj = tmp_path / "app"
    make_repo(proj, {"app/__init__.py": "", "app/core.py": "def f():\n    return 1\n"})
    before = user_side(proj)
    proc = run_loom("run", "add", "a", "docstring", "--backend", "demo", cwd=proj, env=sandboxes)
    assert proc.returncode == 1
    assert "the demo backend only works on loom's demo project" in proc.stderr and "loom demo" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (proj / ".loom" / "state.db").exists()  # refused before any task was created
    assert user_side(proj) == before


def test_answer_without_a_gate_and_bad_usage(tmp_path, sandboxes):
    proj = tmp_path / "app"
    make_repo(proj, {"a.py": "x = 1\n"})
    proc = run_loom("answer", "accept", cwd=proj)
    assert proc.returncode == 1 and "no active task" in proc.stderr
    proc = run_loom("run", "x", "--fast", "--complexity", "medium", "--backend", "demo", cwd=proj)
    assert proc.returncode == 2 and "--fast" in proc.stderr
    proc = run_loom("run", "x", "--policy", "sometimes", "--backend", "demo", cwd=proj)
    assert proc.returncode == 2 and "--policy" in proc.stderr
    proc = run_loom("run", "x", cwd=proj)  # no backend configured: never a silent demo
    assert proc.returncode == 1 and "--backend demo" in proc.stderr
    assert not (proj / ".loom" / "state.db").exists()


def test_non_git_directory_is_refused_without_in_place(tmp_path, sandboxes):
    proj = tmp_path / "plain"
    proj.mkdir()
    write_demo_project(proj)
    before = {p: p.read_bytes() for p in proj.rglob("*") if p.is_file()}
    proc = run_loom("run", "reject", "bad", "discounts", "--backend", "demo", "--policy", "auto", cwd=proj,
                    env=sandboxes)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "not a git repository" in err and "no isolation, no diff review and no branch" in err
    assert "git init" in err and "--in-place" in err
    assert not (proj / ".loom" / "state.db").exists()  # refused before any task was created
    assert {p: p.read_bytes() for p in proj.rglob("*") if p.is_file()} == before


def test_non_git_directory_runs_in_place_after_a_warning(tmp_path, sandboxes):
    proj = tmp_path / "plain"
    proj.mkdir()
    write_demo_project(proj)  # the demo project's files, without git
    proc = run_loom("run", "reject", "bad", "discounts", "--backend", "demo", "--policy", "auto", "--in-place",
                    cwd=proj, env=sandboxes)
    assert "not a git repository" in proc.stdout + proc.stderr
    assert "IN PLACE (no isolation)" in proc.stdout
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "if not 0 <= percent <= 100" in (proj / "shop" / "pricing.py").read_text()  # in place, as announced
    assert "branch" not in proc.stdout.split("done —")[1].split("\n")[0] or "no branch" in proc.stdout


def test_spawn_cap_stops_a_runaway_flow(tmp_path, sandboxes):
    target = tmp_path / "demo"
    proc = run_loom("demo", str(target), "--plain", "--policy", "auto", cwd=tmp_path,
                    env={**sandboxes, "LOOM_MAX_SPAWNS": "4"}, timeout=120)
    assert proc.returncode == 1
    assert "DRIVE_SPAWN_CAP_EXCEEDED" in proc.stdout and "more than 4 agents" in proc.stdout
    st = json.loads(run_loom("status", "--json", cwd=target).stdout)
    assert st["state"] == "in_progress"  # the task is kept, not failed: proceed continues it
    proc = run_loom("proceed", cwd=target, env={**sandboxes, "LOOM_MAX_SPAWNS": "0"}, timeout=120)
    assert proc.returncode == 0 and "done — accepted" in proc.stdout


def test_plan_gate_in_plain_mode_shows_the_plan_not_a_missing_relative_path(tmp_path, sandboxes, monkeypatch):
    import re
    import tempfile
    from pathlib import Path
    from types import SimpleNamespace

    from rich.console import Console

    from loom_core.control.views import gate_view
    from loom_core.engine.runner import demo_task
    from loom_core.surfaces.plain import show_gate

    proj = tmp_path / "app"
    create_demo_project(proj)
    proc = run_loom("run", demo_task(), "--backend", "demo", "--policy", "demo-gates", cwd=proj, env=sandboxes)
    assert proc.returncode == 3 and "parked at gate 'gate-plan'" in proc.stdout, proc.stdout + proc.stderr
    assert not (proj / ".loom" / "work" / "plan.md").exists()  # the plan lives in the sandbox
    found = re.search(r"to read first: (\S+)", proc.stdout)
    assert found, proc.stdout
    plan = Path(found.group(1))
    assert plan.is_absolute() and plan.name == "plan.md" and plan.is_file()

    monkeypatch.setattr(tempfile, "tempdir", None)  # this process finds the sandbox under the test's TMPDIR
    view = gate_view(proj)
    console = Console(record=True, width=400)
    show_gate(console, proj, SimpleNamespace(gate=view["gate"], message=view["message"]))
    shown = console.export_text()
    assert str(plan) in shown and "(.loom/work/plan.md)" not in shown
    first = next(line for line in plan.read_text().splitlines() if line.strip())
    assert first.strip() in shown  # the plan itself is printed


def test_a_second_task_announces_only_its_own_branch(tmp_path, sandboxes):
    proj = tmp_path / "shop"
    create_demo_project(proj)
    first = run_loom("run", "reject", "bad", "discounts", "--backend", "demo", "--policy", "auto", cwd=proj,
                     env=sandboxes, timeout=120)
    assert first.returncode == 0, first.stdout + first.stderr
    second = run_loom("run", "reject", "bad", "discounts", "--backend", "demo", "--policy", "auto", cwd=proj,
                      env=sandboxes, timeout=120)
    assert second.returncode == 0, second.stdout + second.stderr
    announced = [line for line in second.stdout.splitlines() if "changes committed to branch" in line]
    assert len(announced) == 1, announced  # not the first task's branch again
    import pygit2

    branches = sorted(b for b in pygit2.Repository(str(proj)).branches.local if b.startswith("loom/"))
    assert len(branches) == 2 and branches[0] != branches[1]  # the same text twice: two tasks, two branches
    assert any(b in announced[0] for b in branches) and first.stdout.count(announced[0].split()[-3]) == 0
