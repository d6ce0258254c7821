"""Started without a terminal (a pipe, a cron job, CI), the console says so instead of writing escape codes
into the pipe and waiting for keys; `loom demo` runs plain."""

from __future__ import annotations

import subprocess

from tests.conftest import run_loom


def test_bare_loom_into_a_pipe_says_it_needs_a_terminal_and_exits_2(tmp_path):
    out = run_loom(cwd=tmp_path, timeout=30)  # stdout captured: a pipe
    assert out.returncode == 2
    assert "needs a terminal" in out.stderr and "loom status" in out.stderr
    assert "\x1b[" not in out.stdout + out.stderr
    console = run_loom("console", cwd=tmp_path, timeout=30)
    assert console.returncode == 2 and "needs a terminal" in console.stderr


def test_loom_demo_into_a_pipe_runs_plain_to_its_first_gate(tmp_path):
    out = run_loom("demo", str(tmp_path / "shop"), cwd=tmp_path, timeout=120)
    assert out.returncode == 3, out.stderr  # parked at a gate, as a plain run says
    assert "running plain" in out.stderr and "parked at gate 'gate-plan'" in out.stdout
    assert "\x1b[?1049h" not in out.stdout  # no alternate screen, no escape codes
    log = subprocess.run(["git", "branch", "--list"], cwd=tmp_path / "shop", capture_output=True, text=True)
    assert "main" in log.stdout  # the user's branch is where it was
