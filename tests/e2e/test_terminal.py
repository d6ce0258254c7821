"""The interactive gate in a real terminal (tmux): view the diff, accept, reach the end."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=False).stdout


def _wait_for(session: str, text: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = _tmux("capture-pane", "-p", "-J", "-S", "-2000", "-t", session)
        if text in screen:
            return screen
        time.sleep(0.2)
    raise AssertionError(f"{text!r} did not appear; screen:\n{screen}")


def test_demo_gates_in_a_real_terminal(tmp_path):
    session = f"loomtest{os.getpid()}"
    target = tmp_path / "demo"
    env = f"TMPDIR={shlex.quote(str(tmp_path))} PYTHONPATH={shlex.quote(str(ROOT))}"
    cmd = f"cd {shlex.quote(str(tmp_path))} && {env} {shlex.quote(sys.executable)} -m loom_core.surfaces.cli demo " \
          f"{shlex.quote(str(target))} --plain; echo EXIT=$?; sleep 30"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "40", cmd], check=True)
    try:
        screen = _wait_for(session, "view diff (d)")
        assert "gate 'gate-plan'" in screen and "output of planner" in screen
        _tmux("send-keys", "-t", session, "a", "Enter")
        # the final gate opens with the challenger's blocker on the half-done fix: send it back
        screen = _wait_for(session, "gate 'gate-final'")
        flat = "".join(ch for ch in screen if not ch.isspace() and ch not in "│╭╮╰╯─")
        assert "apply_discount(100,-20)returns120" in flat
        _wait_for(session, "view diff (d)")
        time.sleep(0.3)
        _tmux("send-keys", "-t", session, "r", "Enter")
        _wait_for(session, "what should change?")
        time.sleep(0.3)
        _tmux("send-keys", "-t", session, "reject negative percentages too", "Enter")
        # the implementer reworks, the challenger re-reviews, and the final gate opens again
        _wait_for(session, "validated the full 0–100 range")
        deadline = time.monotonic() + 30
        while _tmux("capture-pane", "-p", "-J", "-S", "-2000", "-t", session).count("view diff (d)") < 3:
            assert time.monotonic() < deadline, "the final gate did not open again"
            time.sleep(0.2)
        time.sleep(0.3)
        _tmux("send-keys", "-t", session, "d", "Enter")
        screen = _wait_for(session, "+    if not 0 <= percent <= 100:")
        _tmux("send-keys", "-t", session, "a", "Enter")
        screen = _wait_for(session, "EXIT=")
        assert "done — accepted" in screen and "EXIT=0" in screen
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
