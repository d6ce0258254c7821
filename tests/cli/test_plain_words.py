"""What run, proceed, answer, recover, history and status print is plain words: no engine tokens
(``next: shuttle``, ``verdict=failed_force_closed``, ``[abandoned/None]``, ``loom run failed``), and
``recover abandon``, ``status`` and ``history`` say the same word."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from loom_core.agents.executors.demo_project import create_demo_project
from tests.conftest import ROOT, run_loom

TOKENS = re.compile(r"next: (shuttle|ask-user|complete|error)|verdict[= ]|work=|\bNone\b|failed_force_closed|"
                    r"\[[a-z_]+/[A-Za-z_]+\]|loom run failed|retrying \(\d/")


def cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return run_loom(*args, cwd=cwd, timeout=120, env={"PYTHONPATH": str(ROOT), **env})


def plain(proc: subprocess.CompletedProcess) -> str:
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out
    assert not TOKENS.search(out), (TOKENS.search(out).group(0), out)
    return out


def parked(proj: Path, task: str) -> None:
    proc = cli("run", "--backend", "demo", "-p", "human", task, cwd=proj)
    assert proc.returncode == 3, proc.stdout + proc.stderr  # parked at the first gate (no terminal: no prompt)
    plain(proc)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    proj = tmp_path_factory.mktemp("words") / "demo"
    create_demo_project(proj)
    return proj


def test_abandon_reads_abandoned_in_recover_status_history_and_proceed(demo):
    parked(demo, "add a subtract function")
    ended = cli("recover", "abandon", cwd=demo)
    assert ended.returncode == 0 and plain(ended).strip() == "task ended — abandoned"
    status = cli("status", cwd=demo)
    assert "status:  ended — abandoned" in plain(status)
    assert cli("projects", "add", str(demo), cwd=demo).returncode == 0
    assert "  ended — abandoned  " in plain(cli("projects", "list", cwd=demo))
    again = cli("proceed", cwd=demo)
    assert again.returncode == 1 and "was abandoned; there is nothing to continue" in plain(again)
    retry = cli("recover", "retry", cwd=demo)
    assert retry.returncode == 1 and "already ended (abandoned)" in plain(retry)
    assert cli("reset", cwd=demo).returncode == 0
    history = plain(cli("history", cwd=demo))
    assert re.search(r"  abandoned +add-a-subtract-function", history), history


def test_force_close_reads_force_closed(demo):
    parked(demo, "add a multiply function")
    ended = cli("recover", "force-close", cwd=demo)
    assert ended.returncode == 0 and plain(ended).strip() == "task ended — force-closed"
    assert "status:  ended — force-closed" in plain(cli("status", cwd=demo))
    again = cli("proceed", cwd=demo)
    assert again.returncode == 1 and "task ended — force-closed" in plain(again)
    assert "nothing changed" in plain(cli("recover", "abandon", cwd=demo))  # ending an ended task: said, not done
    assert cli("reset", cwd=demo).returncode == 0
    assert re.search(r"  force-closed +add-a-multiply-function", plain(cli("history", cwd=demo)))


def test_a_recovery_that_keeps_the_task_says_what_comes_next(demo):
    parked(demo, "add a divide function")
    proc = cli("recover", "cancel-pending", cwd=demo)
    assert proc.returncode == 0
    out = plain(proc)
    assert out.startswith("cancel-pending: done; ") and "continue with 'loom proceed'" in out
    refused = cli("answer", "abandon", cwd=demo)  # the classify gate offers accept or reject only
    assert refused.returncode == 1 and "offers accept or reject, not abandon" in plain(refused)
    assert "'loom recover abandon'" in refused.stderr
    assert "awaiting your answer at gate 'gate-classify'" in plain(cli("status", cwd=demo))  # nothing was sent
    assert cli("reset", "--force", cwd=demo).returncode == 0


def test_a_failing_agent_on_run_and_proceed_reads_plainly(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "a.txt").write_text("x\n")
    subprocess.run(["git", "-C", str(repo), "add", "."], check=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "i"],
                   check=True)
    fake = tmp_path / "claude"
    fake.write_text('#!/bin/sh\nif [ "$1" = "--version" ]; then echo "2.1.0 (Claude Code)"; exit 0; fi\n'
                    'echo "boom: something broke" >&2\nexit 7\n')
    fake.chmod(0o755)
    env = {"LOOM_CLAUDE_BIN": str(fake)}
    for args in (["run", "--backend", "claude-code", "-p", "auto", "--no-docker", "add a thing"], ["proceed"]):
        proc = cli(*args, cwd=repo, **env)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        out = plain(proc)
        assert "stopped by an error — " in out and "boom: something broke" in out and "(EXECUTOR_FAILED)" in out
        assert "an agent failed: " in out and "trying again (1 of 2)" in out
        assert "to go on: loom recover retry-failed (re-run the agents that failed)" in out


def test_notifications_and_the_bot_use_the_same_words():
    from loom_core.surfaces.bot.views import status_text
    from loom_core.surfaces.notify.text import format_text

    text = format_text({"event": "complete", "task_id": "t-1", "project_id": "shop", "verdict": "failed_force_closed"})
    assert text.endswith("complete — force-closed") and "failed_force_closed" not in text
    shown = status_text("shop", {"has_task": True, "status": "abandoned", "verdict": None, "task": "x"}, None)
    assert "ended (abandoned)" in shown and "None" not in shown


def test_the_plain_gate_prompt_offers_abandon_only_where_the_gate_has_it(tmp_path, monkeypatch):
    import io
    from types import SimpleNamespace

    from rich.console import Console

    from loom_core.surfaces import plain as plain_mode

    proj = tmp_path / "demo"
    create_demo_project(proj)
    parked(proj, "add a subtract function")  # at the classify gate: accept or reject only
    approve_revise = [{"decision": "accept", "reject_intent": None}, {"decision": "reject", "reject_intent": "revise"}]
    for options, typed, expected in ((approve_revise, ["x", "a"], ("accept", None)),
                                     ([*approve_revise, {"decision": "reject", "reject_intent": "abandon"}], ["x"],
                                      ("abandon", None))):
        out = io.StringIO()
        console = Console(file=out, width=120, force_terminal=False)
        prompts: list[str] = []
        answers = iter(typed)
        monkeypatch.setattr(console, "input", lambda prompt, _a=answers, _p=prompts: (_p.append(prompt), next(_a))[1])
        monkeypatch.chdir(proj)
        got = plain_mode.ask_gate(console, proj, SimpleNamespace(gate="gate-classify", message="classified",
                                                                  options=options))
        assert got == expected
        offers_x = len(options) == 3
        assert ("abandon[/] (x)" in prompts[0]) == offers_x
        assert ("loom recover abandon" in out.getvalue()) == (not offers_x)
