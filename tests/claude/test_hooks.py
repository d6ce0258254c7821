"""The hooks `loom setup --hooks` registers, run exactly as Claude Code runs them (the registered command,
the hook JSON on stdin): the PreToolUse guard denies shell commands that would damage .loom/state.db and
allows the rest; the Stop hint prints one line about an open task and nothing without one."""

from __future__ import annotations

import json
import os
import shlex
import subprocess

import pytest

from loom_core.surfaces.claude.hooks.stop_hint import hint
from tests.conftest import ROOT, run_loom
from tests.support.fixtures import parked_task


@pytest.fixture(scope="module")
def hooks(tmp_path_factory) -> dict[str, list[str]]:
    """The registered hook commands (argv), from a real `loom setup --hooks` into a temp HOME."""
    home = tmp_path_factory.mktemp("home")
    got = run_loom("setup", "--hooks", cwd=home, env={"HOME": str(home), "PYTHONPATH": str(ROOT)})
    assert got.returncode == 0, got.stderr
    settings = json.loads((home / ".claude" / "settings.json").read_text())["hooks"]
    return {event: shlex.split(settings[event][0]["hooks"][0]["command"]) for event in ("PreToolUse", "Stop")}


def run_hook(argv: list[str], doc: dict, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(argv, input=json.dumps(doc), capture_output=True, text=True, cwd=cwd, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def bash(command: str) -> dict:
    return {"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"command": command}}


@pytest.mark.parametrize("command", ["rm .loom/state.db", "rm -f /p/.loom/state.db-wal", "mv .loom/state.db /tmp/x",
                                     "echo > .loom/state.db", "sed -i 's/a/b/' .loom/state.db",
                                     "cd /p && sudo rm -rf .loom/state.db"])
def test_the_guard_denies_damage_to_the_store(hooks, tmp_path, command):
    got = run_hook(hooks["PreToolUse"], bash(command), tmp_path)
    assert got.returncode == 2, (command, got.stdout, got.stderr)
    deny = json.loads(got.stdout)["hookSpecificOutput"]
    assert deny["hookEventName"] == "PreToolUse" and deny["permissionDecision"] == "deny"
    assert "pipeline_recover" in deny["permissionDecisionReason"] and "pipeline_recover" in got.stderr


@pytest.mark.parametrize("command", ["ls", "ls -l .loom/state.db", "sqlite3 .loom/state.db .tables",
                                     "cp .loom/state.db /tmp/backup.db", "rm 'unbalanced"])
def test_the_guard_allows_the_rest(hooks, tmp_path, command):
    got = run_hook(hooks["PreToolUse"], bash(command), tmp_path)
    assert got.returncode == 0 and got.stdout == "" and got.stderr == "", (command, got)


def test_the_guard_allows_what_it_cannot_read(hooks, tmp_path):
    got = subprocess.run(hooks["PreToolUse"], input="not json", capture_output=True, text=True, cwd=tmp_path)
    assert got.returncode == 0 and got.stdout == ""


def test_the_stop_hint_for_a_parked_task(hooks, tmp_path):
    proj = tmp_path / "proj"
    proj.mkdir()
    got = run_hook(hooks["Stop"], {"hook_event_name": "Stop", "cwd": str(proj)}, tmp_path)
    assert got.returncode == 0 and got.stdout == ""  # no loom task here: silent
    outcome = parked_task(proj)
    got = run_hook(hooks["Stop"], {"hook_event_name": "Stop", "cwd": str(proj), "stop_hook_active": False}, tmp_path)
    assert got.returncode == 0, got.stderr
    lines = got.stdout.splitlines()
    assert len(lines) == 1
    message = json.loads(lines[0])["systemMessage"]
    assert message.startswith("loom: task ") and f"waits at gate {outcome.gate}" in message and "/proceed" in message


def test_the_stop_hint_lines():
    assert hint({"task_id": None}) is None
    assert "finished (accepted)" in hint({"task_id": "t", "state": "completed", "verdict": "accepted"})
    assert "/done" in hint({"task_id": "t", "state": "completed", "verdict": "accepted"})
    two = [{"age_s": 30}, {"age_s": 60}]
    assert "in flight (2 agents)" in hint({"task_id": "t", "state": "in_progress", "pending": two})
    stale = hint({"task_id": "t", "state": "in_progress", "pending": [{"age_s": 3600}]})
    assert "paused mid-flight ~60 min — likely a dropped transport; resume with /proceed" in stale
