"""``--debug`` / ``LOOM_DEBUG=1`` write ``$XDG_STATE_HOME/loom/loom-debug.log`` (and say where, once);
without them no file is made."""

from __future__ import annotations

import pytest

from loom_core.agents.executors.demo_project import create_demo_project
from tests.conftest import ROOT, run_loom


def cli(*args: str, cwd, state, **env: str):
    return run_loom(*args, cwd=cwd, timeout=120,
                    env={"PYTHONPATH": str(ROOT), "XDG_STATE_HOME": str(state), **env})


@pytest.fixture
def demo(tmp_path):
    proj = tmp_path / "demo"
    create_demo_project(proj)
    return proj


def test_debug_flag_writes_the_log_and_says_where_once(tmp_path):
    state = tmp_path / "state"
    proc = cli("--debug", "status", cwd=tmp_path, state=state)
    assert proc.returncode == 0, proc.stderr
    log = state / "loom" / "loom-debug.log"
    assert log.is_file()
    assert "started: loom status (pid" in log.read_text()
    assert proc.stderr.count(f"debug log: {log}") == 1, proc.stderr


def test_loom_debug_env_logs_the_engine_steps_and_spawns(demo, tmp_path):
    state = tmp_path / "state"
    proc = cli("run", "--backend", "demo", "-p", "auto", "add a subtract function", cwd=demo, state=state,
               LOOM_DEBUG="1")
    assert proc.returncode == 0, proc.stderr
    text = (state / "loom" / "loom-debug.log").read_text()
    for step in ("next step: shuttle", "spawn-start {'agent': 'classifier'", "spawn-end {'agent': 'implementer'",
                 "verdict {'verdict': 'accepted'"):
        assert step in text, step


def test_an_error_lands_in_the_log_with_its_traceback(tmp_path):
    state = tmp_path / "state"
    proc = cli("--debug", "proceed", cwd=tmp_path, state=state)
    assert proc.returncode != 0
    text = (state / "loom" / "loom-debug.log").read_text()
    assert "error:" in text and "Traceback (most recent call last)" in text
    assert "Traceback" not in proc.stderr  # a user error stays one line on the terminal


def test_without_the_flag_no_file_is_made(tmp_path):
    state = tmp_path / "state"
    for env in ({}, {"LOOM_DEBUG": "0"}):
        proc = cli("status", cwd=tmp_path, state=state, **env)
        assert proc.returncode == 0, proc.stderr
        assert "debug log" not in proc.stderr
    assert not state.exists()
