"""Tokens, cost and turns count every attempt: a failed session is billed, so its usage reaches the
drive total, the transcripts and `loom status`; the plain-mode drive total covers drives on both
sides of a gate answered in the same process; turns are shown."""

from __future__ import annotations

import re
import threading

import pytest
import typer

from loom_core.agents.executors import ExecResult, Usage
from loom_core.agents.executors.claude_code import ClaudeCodeExecutor
from loom_core.bundles.spec import BUNDLE
from loom_core.control.status import project_status
from loom_core.engine.clock import FixedClock
from loom_core.engine.drive import Driver
from loom_core.engine.engine import Engine
from loom_core.errors import ExecutorError
from loom_core.kernel.types import Intent
from tests.agents.test_claude_code import make_fake
from tests.conftest import ROOT, run_loom
from tests.support import scripts

NOW = "2026-01-01T00:00:01.000Z"
OPUS_FAILURE = Usage(tokens_in=1200, tokens_out=300, tokens_cached=50, cost_usd=0.75, num_turns=9, duration_ms=4000)


class FlakyExecutor:
    """Scripted spec agents; the researcher's first attempt fails after billing (as a real CLI session
    that ends in an error does), or every attempt fails with ``permanent``."""

    name = "flaky"
    label = "flaky"
    idempotent = True

    def __init__(self, permanent: str | None = None) -> None:
        self.permanent = permanent
        self.failed = 0
        self._lock = threading.Lock()

    def execute(self, intent: Intent, cancel, log) -> ExecResult:
        with self._lock:
            if intent.agent == "researcher" and (self.permanent or not self.failed):
                self.failed += 1
                raise ExecutorError("researcher: Claude Code failed (is_error)", code=self.permanent or "EXECUTOR_FAILED",
                                    usage=Usage(**vars(OPUS_FAILURE)))
        return ExecResult(output=scripts.happy(intent), usage=Usage(tokens_in=100, tokens_out=10, num_turns=2,
                                                                    cost_usd=0.01))


def _drive(project, executor):
    engine = Engine(project, bundle=BUNDLE, clock=FixedClock())
    driver = Driver(engine, executor)
    outcome = driver.start("spec the login limiter")
    while outcome.kind == "paused":
        outcome = driver.run(engine.answer(outcome.gate_event_id, "accept"))
    counters = dict(engine.state().counters)
    engine.close()
    return outcome, counters


def test_a_failed_then_retried_spawn_is_billed_in_every_figure(project):
    outcome, counters = _drive(project, FlakyExecutor())
    assert outcome.kind == "complete"
    u = outcome.usage
    assert u.failed == 1
    assert u.tokens_in == counters["total_tokens_in"] + 1200 and u.tokens_out == counters["total_tokens_out"] + 300
    assert u.cost_usd == pytest.approx(0.75 + 0.01 * u.spawns)
    assert u.turns == 9 + 2 * u.spawns
    st = project_status(project, NOW)
    assert st["tokens"]["in"] == u.tokens_in and st["tokens"]["out"] == u.tokens_out
    assert st["tokens"]["cached"] == 50 and st["failed_attempts"] == 1
    assert st["cost_usd"] == pytest.approx(u.cost_usd) and st["turns"] == u.turns
    out = run_loom("status", cwd=project, env={"PYTHONPATH": str(ROOT)}).stdout
    assert "(+1 failed attempt(s))" in out and f"turns: {u.turns}" in out and f"{u.tokens_in} in" in out


def test_a_spawn_that_fails_for_good_is_billed_too(project):
    outcome, counters = _drive(project, FlakyExecutor(permanent="EXECUTOR_INVALID_MODEL"))
    assert outcome.kind == "error" and outcome.code == "EXECUTOR_INVALID_MODEL"
    assert outcome.usage.failed == 1 and outcome.usage.cost_usd == pytest.approx(0.75 + 0.01 * outcome.usage.spawns)
    st = project_status(project, NOW)
    assert st["tokens"]["in"] == counters["total_tokens_in"] + 1200 and st["failed_attempts"] == 1
    assert st["cost_usd"] == pytest.approx(outcome.usage.cost_usd)


def test_fallback_attempts_that_failed_before_the_answer_are_billed(project):
    class Fallback(FlakyExecutor):
        def execute(self, intent, cancel, log):
            res = ExecResult(output=scripts.happy(intent), usage=Usage(tokens_in=100, tokens_out=10, num_turns=1))
            if intent.agent == "researcher":
                res.attempts = [{"backend": "claude-code", "model": "opus", "code": "EXECUTOR_OVERLOADED",
                                 "error": "overloaded", "usage": {"tokens_in": 500, "tokens_out": 40, "num_turns": 3,
                                                                  "cost_usd": 0.2}}]
            return res

    outcome, counters = _drive(project, Fallback())
    assert outcome.usage.failed == 1 and outcome.usage.cost_usd == pytest.approx(0.2)
    st = project_status(project, NOW)
    assert st["tokens"]["in"] == counters["total_tokens_in"] + 500 and st["cost_usd"] == pytest.approx(0.2)


def test_claude_code_reports_what_a_failed_session_cost(tmp_path):
    fake = make_fake(tmp_path, """
        emit({"type": "result", "subtype": "error_during_execution", "is_error": True, "num_turns": 12,
              "total_cost_usd": 1.25, "usage": {"input_tokens": 4000, "output_tokens": 900,
                                                "cache_read_input_tokens": 70}, "result": "API Error: 500"})
        sys.exit(1)
        """)
    work = tmp_path / "work"
    work.mkdir()
    intent = Intent(agent="implementer", agent_run_id="run-1", phase="implement", model="claude-opus-4-1",
                    prompt="fix it", system_prompt=None, extras={"workdir": str(work), "edits_files": True})
    with pytest.raises(ExecutorError) as info:
        ClaudeCodeExecutor(str(fake)).execute(intent, threading.Event(), lambda line: None)
    u = info.value.detail["usage"]
    assert (u.tokens_in, u.tokens_out, u.tokens_cached, u.cost_usd, u.num_turns) == (4000, 900, 70, 1.25, 12)


def test_plain_drive_total_counts_the_drives_on_both_sides_of_a_gate(tmp_path, monkeypatch, capsys):
    from loom_core.agents.executors.demo_project import create_demo_project
    from loom_core.engine.runner import RunOptions, demo_task
    from loom_core.surfaces import plain
    from loom_core.surfaces.cli.tasks import drive_plain

    project = tmp_path / "demo"
    create_demo_project(project)
    opts = RunOptions(backend="demo", policy="demo-gates")
    answered: list[str] = []

    def accept(console, proj, outcome):
        answered.append(outcome.gate)
        return "accept", None

    monkeypatch.setattr(plain, "ask_gate", accept)

    with pytest.raises(typer.Exit):
        drive_plain(project, lambda control: control.submit(project, demo_task(), opts), interactive=True,
                    as_json=False, opts=opts)
    assert len(answered) >= 1
    out = capsys.readouterr().out
    m = re.search(r"drive total: (\d+) spawn\(s\), (\d+) in / (\d+) out tokens", out)
    assert m, out[-2000:]
    st = project_status(project, NOW)  # the task, finished, stays in the slot: its counters cover every drive
    assert st["state"] == "completed"
    assert int(m.group(1)) == st["spawns"]
    assert (int(m.group(2)), int(m.group(3))) == (st["tokens"]["in"], st["tokens"]["out"])
    assert re.search(r"out tokens, \d+ turn\(s\)", out)


def test_a_claude_code_session_stopped_at_its_timeout_is_billed_for_what_it_streamed(tmp_path):
    fake = make_fake(tmp_path, """
        for i, (tin, tout) in enumerate([(3000, 400), (3500, 600)]):
            for block in ("thinking", "tool"):  # one message arrives as several events sharing its usage
                emit({"type": "assistant", "message": {"id": f"msg_{i}", "model": "claude-opus-4-1",
                      "content": [{"type": "text", "text": block}],
                      "usage": {"input_tokens": tin, "output_tokens": tout, "cache_read_input_tokens": 10}}})
        time.sleep(30)
        """)
    work = tmp_path / "work"
    work.mkdir()
    intent = Intent(agent="implementer", agent_run_id="run-1", phase="implement", model="claude-opus-4-1",
                    prompt="fix it", system_prompt=None, extras={"workdir": str(work), "edits_files": True})
    with pytest.raises(ExecutorError) as info:
        ClaudeCodeExecutor(str(fake), session_timeout_s=1).execute(intent, threading.Event(), lambda line: None)
    assert info.value.code == "EXECUTOR_TIMEOUT"
    u = info.value.detail["usage"]
    assert (u.tokens_in, u.tokens_out, u.tokens_cached, u.num_turns) == (6500, 1000, 20, 2)
