"""Budgets through the real CLI on the offline demo backend: `loom run --max-tokens` stops before the spawn
that could pass it (exit 3, resumable), `loom status` names it with spent / budget, `loom proceed
--max-tokens` raises it (kept in task-exec.json) and the task finishes; the daemon announces the stop as
a parked gate through the notification channels."""

from __future__ import annotations

import json

import pytest

from loom_core.agents.executors.demo import DEMO_TASK
from loom_core.agents.executors.demo_project import create_demo_project
from tests.conftest import ROOT, run_loom

ENV = {"PYTHONPATH": str(ROOT)}


@pytest.fixture
def demo(tmp_path):
    proj = tmp_path / "demo"
    create_demo_project(proj)
    return proj


def test_run_stops_at_the_token_budget_status_says_so_and_proceed_raises_it(demo):
    run = run_loom("run", "--backend", "demo", "--policy", "auto", "--max-tokens", "20000", DEMO_TASK, cwd=demo, env=ENV)
    assert run.returncode == 3, run.stdout + run.stderr
    assert "over budget — stopped before the " in run.stdout and "(BUDGET_EXCEEDED)" in run.stdout
    assert "of the 20k-token budget is left" in run.stdout and "loom proceed --max-tokens" in run.stdout

    out = run_loom("status", cwd=demo, env=ENV).stdout
    assert "over budget — stopped before a spawn" in out and "BUDGET_EXCEEDED: stopped before the " in out
    assert "/ 20k tokens spent" in out
    st = json.loads(run_loom("status", "--json", cwd=demo, env=ENV).stdout)
    assert (st["status"], st["code"], st["budget"]["max_tokens"]) == ("over-budget", "BUDGET_EXCEEDED", 20000)
    assert 0 < st["budget"]["spent_tokens"] <= 20000

    bad = run_loom("proceed", "--max-tokens", "-1", cwd=demo, env=ENV)
    assert bad.returncode == 2 and "--max-tokens must be 0 (no budget) or more" in bad.stderr
    done = run_loom("proceed", "--max-tokens", "1000000", cwd=demo, env=ENV)
    assert done.returncode == 0 and "done — accepted" in done.stdout, done.stdout + done.stderr
    assert json.loads((demo / ".loom" / "task-exec.json").read_text())["max_tokens"] == 1_000_000
    st = json.loads(run_loom("status", "--json", cwd=demo, env=ENV).stdout)
    assert st["budget"]["stopped"] is None and st["budget"]["text"].endswith("/ 1M tokens")


def test_the_daemon_announces_a_budget_stop_like_a_parked_gate(demo, tmp_path):
    events = tmp_path / "events.txt"
    env = {**ENV, "LOOM_NOTIFY_SCRIPT": f"sh -c 'echo \"$LOOM_NOTIFY_TEXT\" >> {events}'"}
    proc = run_loom("daemon", "start", "--backend", "demo", "--policy", "auto", "--max-cost", "0.01", DEMO_TASK,
                    cwd=demo, env=env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = events.read_text().splitlines()
    assert len(lines) == 1 and "parked at budget: stopped before the " in lines[0], lines
    assert "of the $0.01 budget is left" in lines[0]
    from loom_core.surfaces.daemon.log import log_path

    assert '"event": "budget-stop"' in log_path(demo).read_text().replace('"event":"', '"event": "')
    st = json.loads(run_loom("status", "--json", cwd=demo, env=ENV).stdout)
    assert st["status"] == "over-budget" and st["budget"]["max_cost_usd"] == 0.01
