"""On a terminal, `loom run` in a folder that is not a git repository asks first, saying what will
happen; no is exit 2 with nothing touched, yes runs in place (tmux gives the command a real terminal)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys

import pytest

from loom_core.agents.executors.demo import write_demo_project
from tests.conftest import ROOT
from tests.e2e.test_terminal import _tmux, _wait_for

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")


@pytest.mark.parametrize("answer", ["n", "y"])
def test_a_non_git_folder_asks_before_running_in_place(tmp_path, answer):
    proj = tmp_path / "plain"
    proj.mkdir()
    write_demo_project(proj)
    original = (proj / "shop" / "pricing.py").read_text()
    session = f"loominplace{os.getpid()}{answer}"
    env = f"TMPDIR={shlex.quote(str(tmp_path))} PYTHONPATH={shlex.quote(str(ROOT))}"
    cmd = f"cd {shlex.quote(str(proj))} && {env} {shlex.quote(sys.executable)} -m loom_core.surfaces.cli run reject bad " \
          f"discounts --backend demo --policy auto; echo EXIT=$?; sleep 30"
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "200", "-y", "50", cmd], check=True)
    try:
        screen = _wait_for(session, "Run there anyway?")
        assert f"agents will edit files in {proj} directly" in screen
        assert "no isolation, no diff review and no branch" in screen
        _tmux("send-keys", "-t", session, answer, "Enter")
        if answer == "n":
            screen = _wait_for(session, "EXIT=")
            assert "EXIT=2" in screen and "git init" in screen and "--in-place" in screen
            assert (proj / "shop" / "pricing.py").read_text() == original
            assert not (proj / ".loom" / "state.db").exists()
        else:
            screen = _wait_for(session, "EXIT=", timeout=90)
            assert "EXIT=0" in screen and "IN PLACE (no isolation)" in screen
            assert "percent <= 100" in (proj / "shop" / "pricing.py").read_text()
    finally:
        _tmux("kill-session", "-t", session)
