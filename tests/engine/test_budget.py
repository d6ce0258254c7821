"""Per-task budgets: a task stops BEFORE the spawn whose worst case could pass its cost or token budget,
says so in plain words on every surface (BUDGET_EXCEEDED, spent / budget), counts failed attempts, and
goes on once the budget is raised; kill -9 at any point never lets what was billed pass the budget by
more than one spawn's worst case."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading

import pytest

from loom_core.agents.executors import ExecResult, Usage
from loom_core.bundles.spec import BUNDLE
from loom_core.control.status import project_status
from loom_core.engine import budget
from loom_core.engine.clock import FixedClock
from loom_core.engine.drive import DriveOptions, Driver
from loom_core.engine.engine import Engine
from loom_core.errors import ExecutorError
from tests.conftest import ROOT, run_loom
from tests.support import scripts

NOW = "2026-01-01T00:00:01.000Z"
COST = 0.05  # what every scripted spawn reports


class Billing:
    """Scripted spec agents reporting a fixed cost and tokens; the researcher's first attempt can fail after
    billing ``fail_cost`` (as a real session that ends in an error does)."""

    name = "billing"
    label = "billing"
    idempotent = True

    def __init__(self, fail_cost: float | None = None) -> None:
        self.fail_cost = fail_cost
        self.agents: list[str] = []
        self.worst: list[budget.Spend] = []  # each spawn's worst case, as the driver saw it
        self._lock = threading.Lock()

    def execute(self, intent, cancel, log) -> ExecResult:
        with self._lock:
            self.agents.append(intent.agent)
            self.worst.append(budget.worst_case(intent))
            if self.fail_cost is not None and intent.agent == "researcher":
                cost, self.fail_cost = self.fail_cost, None
                raise ExecutorError("researcher: the session failed", usage=Usage(tokens_in=500, tokens_out=50,
                                                                                   cost_usd=cost))
        return ExecResult(output=scripts.happy(intent), usage=Usage(tokens_in=900, tokens_out=100, cost_usd=COST))


def _drive(engine: Engine, ex: Billing, limits: budget.Limits, *, start: bool = False):
    driver = Driver(engine, ex, options=DriveOptions(budget=limits))
    outcome = driver.start("spec the login limiter") if start else driver.resume()
    while outcome.kind == "paused":
        outcome = driver.run(engine.answer(outcome.gate_event_id, "accept"))
    return outcome


def _next_worst(engine: Engine) -> budget.Spend:
    d = engine.resume_directive()
    assert d is not None and d.kind == "shuttle"
    return sum((budget.worst_case(engine.render_intent(i)) for i in d.intents), budget.Spend())


def _status_json(project) -> dict:
    proc = run_loom("status", "--json", cwd=project, env={"PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_a_task_stops_before_the_spawn_that_could_pass_its_cost_budget_and_goes_on_when_raised(project):
    engine = Engine(project, bundle=BUNDLE, clock=FixedClock())
    ex = Billing()
    limit = budget.Limits(max_cost_usd=0.25)
    outcome = _drive(engine, ex, limit, start=True)
    assert (outcome.kind, outcome.code, outcome.exit_code) == ("parked", "BUDGET_EXCEEDED", 3)
    spent = COST * len(ex.agents)
    # exactly at the budget: every spawn run fitted, the next one could not
    assert ex.agents == ["researcher"]
    assert spent - COST + ex.worst[-1].cost_usd <= 0.25 < spent + _next_worst(engine).cost_usd
    assert outcome.message.startswith("stopped before the spec-writer: the next spawn could cost up to $")
    assert "of the $0.25 budget is left" in outcome.message and outcome.message.endswith("raise it with loom proceed --max-cost 0.3")
    assert engine.state().status == "in_progress"  # kept resumable

    st = project_status(project, NOW)
    assert (st["status"], st["code"]) == ("over-budget", "BUDGET_EXCEEDED") and st["stopped"] == outcome.message
    assert st["budget"]["text"] == "$0.05 / $0.25" and st["budget"]["spent_cost_usd"] == pytest.approx(spent)
    out = run_loom("status", cwd=project, env={"PYTHONPATH": str(ROOT)}).stdout
    assert "BUDGET_EXCEEDED: stopped before the spec-writer" in out and "budget:  $0.05 / $0.25 spent" in out
    assert _status_json(project)["status"] == "over-budget"

    again = _drive(engine, ex, limit)  # proceeding without raising it: stopped again, nothing spawned
    assert again.code == "BUDGET_EXCEEDED" and ex.agents == ["researcher"]

    done = _drive(engine, ex, budget.Limits(max_cost_usd=1.0))
    assert (done.kind, done.verdict) == ("complete", "accepted")
    st = project_status(project, NOW)
    assert st["budget"]["stopped"] is None and st["budget"]["text"] == f"${COST * len(ex.agents):.2f} / $1.00"
    engine.close()


def test_failed_attempts_count_toward_the_spend_and_a_retry_is_refused_past_the_budget(project):
    engine = Engine(project, bundle=BUNDLE, clock=FixedClock())
    ex = Billing(fail_cost=0.75)
    outcome = _drive(engine, ex, budget.Limits(max_cost_usd=0.8), start=True)
    # the failed attempt billed $0.75; the retry's worst case does not fit in what is left
    assert ex.agents == ["researcher"] and outcome.code == "BUDGET_EXCEEDED"
    assert outcome.message.startswith("stopped before the researcher:") and "(spent $0.75)" in outcome.message
    st = project_status(project, NOW)
    assert st["budget"]["spent_cost_usd"] == pytest.approx(0.75) and st["cost_usd"] == pytest.approx(0.75)
    assert st["status"] == "over-budget"
    done = _drive(engine, ex, budget.Limits(max_cost_usd=2.0))
    assert done.verdict == "accepted"
    assert project_status(project, NOW)["budget"]["spent_cost_usd"] == pytest.approx(0.75 + COST * (len(ex.agents) - 1))
    engine.close()


def test_a_token_budget_stops_a_batch_whose_worst_case_does_not_fit(project):
    engine = Engine(project, bundle=BUNDLE, clock=FixedClock())
    ex = Billing()
    outcome = _drive(engine, ex, budget.Limits(max_tokens=12_000), start=True)
    assert ex.agents == ["researcher", "spec-writer"] and outcome.code == "BUDGET_EXCEEDED"
    assert "the next 2 spawns could use up to" in outcome.message and "of the 12k-token budget" in outcome.message
    assert " and testability-reviewer:" in outcome.message and "--max-tokens " in outcome.message
    assert 2000 + _next_worst(engine).tokens > 12_000
    assert project_status(project, NOW)["budget"]["text"] == "2k / 12k tokens"
    engine.close()


KILL_COST = 0.04  # below every spawn's worst case here (the cheapest is a haiku reviewer's, about $0.041)


def _child(project, bill, budget_usd: float, delay: float, crash: str | None = None) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("LOOM_CRASH_AT", None)
    if crash:
        env["LOOM_CRASH_AT"] = crash
    return subprocess.Popen([sys.executable, "-m", "tests.support.budget_drive", str(project), str(bill),
                             str(budget_usd), str(KILL_COST), str(delay)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _billed(bill) -> float:
    return sum(float(line.split()[1]) for line in bill.read_text().splitlines()) if bill.exists() else 0.0


@pytest.mark.parametrize("crash", ["*:11", "*:19", "*:37", "spawn-start:2", "spawn-end:3", "before-deliver:2",
                                   "wall:1", "wall:3"])
def test_kill_9_near_the_limit_never_bills_past_the_budget_by_more_than_one_spawn(tmp_path, crash):
    """A real process drives under a $0.40 budget and is killed with SIGKILL (at a crash point, or while a
    spawn it was billed for works); fresh processes resume until the task ends or stops for its budget."""
    project, bill, limit = tmp_path / "p", tmp_path / "bill", 0.40
    project.mkdir()
    worst = 0.21  # the dearest spawn's worst case here (the spec writer on opus)
    if crash.startswith("wall:"):
        proc = _child(project, bill, limit, delay=1.0)  # killed within the billed spawn's second
        for _ in range(int(crash.split(":")[1])):
            line = proc.stdout.readline()
            assert line.startswith("billed"), (line, proc.stderr.read() if proc.poll() is not None else "")
        proc.send_signal(signal.SIGKILL)  # mid-spawn: billed, never settled
    else:
        proc = _child(project, bill, limit, delay=0, crash=crash)
    proc.wait(timeout=60)
    for _ in range(6):
        proc = _child(project, bill, limit, delay=0)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        end = json.loads(out.splitlines()[-1])
        if end["kind"] == "complete" or end["code"] == "BUDGET_EXCEEDED":
            break
    assert end["code"] == "BUDGET_EXCEEDED" or end["verdict"] == "accepted", end
    ledger = budget.read_ledger(project)
    assert ledger["inflight"] == {}
    assert _billed(bill) <= limit + worst  # never past the budget by more than one spawn's worst case
    assert ledger["cost_usd"] >= _billed(bill) - 1e-9  # a spawn killed mid-way still counts (at its worst case)


def test_budget_flags_refuse_bad_values_as_usage_errors(tmp_path):
    env = {"PYTHONPATH": str(ROOT)}
    for args in (["run", "--max-cost", "-1", "do it"], ["run", "--max-tokens", "-5", "do it"],
                 ["run", "--max-cost", "nan", "do it"], ["daemon", "start", "--max-cost", "-2", "do it"],
                 ["run", "--max-tokens", "lots", "do it"]):
        proc = run_loom(*args, "-C", str(tmp_path), cwd=tmp_path, env=env)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
    proc = run_loom("run", "--max-cost", "-1", "do it", "-C", str(tmp_path), cwd=tmp_path, env=env)
    assert "--max-cost must be 0 (no budget) or more" in proc.stderr
    proc = run_loom("run", "do it", "-C", str(tmp_path), cwd=tmp_path, env={**env, "LOOM_MAX_TOKENS": "-3"})
    assert proc.returncode == 2 and "LOOM_MAX_TOKENS" in proc.stderr
    assert not (tmp_path / ".loom" / "state.db").exists()  # refused before anything was written
