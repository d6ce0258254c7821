"""The console in a real terminal (tmux): start-up, navigation and quit; `loom demo` through both gates.

Each test runs its own tmux server (``-L <unique socket>``) so it never touches a developer's
sessions, and kills only that server at the end.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")

KEY_GAP_S = 0.3  # leave the terminal time between key sends (a burst can be read as one escape sequence)


class Term:
    """One tmux server with one session running ``command``; the pane stays open after it exits."""

    def __init__(self, command: str, *, width: int, height: int) -> None:
        self.socket = f"loomtest-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.session = "console"
        self.screen = ""
        subprocess.run(["tmux", "-L", self.socket, "-f", "/dev/null", "new-session", "-d", "-x", str(width),
                        "-y", str(height), "-s", self.session, f"{command}; echo EXITED=$?; sleep 30"], check=True)

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True,
                              check=False).stdout

    def capture(self) -> str:
        self.screen = self.tmux("capture-pane", "-p", "-J", "-S", "-200", "-t", self.session)
        return self.screen

    def wait(self, what: str | Callable[[str], bool], timeout: float = 20.0, poll: float = 0.1) -> str:
        check = (lambda s: what in s) if isinstance(what, str) else what
        deadline = time.monotonic() + timeout
        while True:
            screen = self.capture()
            if check(screen):
                return screen
            if "Traceback (most recent call last)" in screen or time.monotonic() > deadline:
                raise AssertionError(f"waited for {what!r}; screen:\n{screen}")
            time.sleep(poll)

    def send(self, *keys: str, literal: bool = False) -> None:
        time.sleep(KEY_GAP_S)
        self.tmux("send-keys", "-t", self.session, *(["-l"] if literal else []), *keys)

    def close(self) -> None:
        socket = self.tmux("display-message", "-p", "#{socket_path}").strip()
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, check=False)
        if socket.endswith(self.socket):
            Path(socket).unlink(missing_ok=True)  # kill-server leaves the socket file behind


def loom_command(tmp_path: Path, home: Path, *args: str) -> str:
    """A shell command running ``python -m loom_core.surfaces.cli *args`` with its loom home and temp dir in tmp_path."""
    tmp = tmp_path / "tmp"
    tmp.mkdir(exist_ok=True)
    env = {"LOOM_HOME": str(home), "XDG_CONFIG_HOME": str(tmp_path / "xdg"), "TMPDIR": str(tmp),
           "PYTHONPATH": str(ROOT), "LOOM_THEME": "textual-dark"}
    assigns = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    argv = " ".join(shlex.quote(a) for a in (sys.executable, "-m", "loom_core.surfaces.cli", *args))
    # tmux may hand the pane a COLUMNS/LINES of the default 80x24 before it applies -x/-y; Textual
    # prefers those variables over the pty's real size, so drop them
    return f"cd {shlex.quote(str(tmp_path))} && env -u COLUMNS -u LINES {assigns} {argv}"


@pytest.fixture
def term():
    made: list[Term] = []

    def start(command: str, *, width: int, height: int) -> Term:
        t = Term(command, width=width, height=height)
        made.append(t)
        return t

    yield start
    for t in made:
        t.close()


def assert_clean_exit(t: Term) -> None:
    screen = t.wait("EXITED=", timeout=15)
    assert "EXITED=0" in screen, screen
    assert "Traceback" not in screen, screen


def test_console_starts_navigates_and_quits(tmp_path, term):
    from loom_core.agents.executors.demo_project import create_demo_project
    from loom_core.control.catalog import Catalog

    home = tmp_path / "home"
    proj = tmp_path / "acme-shop"
    create_demo_project(proj)
    Catalog([], home / "workspace.json").add(proj)

    t = term(loom_command(tmp_path, home), width=80, height=24)
    started = time.monotonic()
    fleet = t.wait(lambda s: "acme-shop" in s and "n New task" in s and "q Quit" in s)
    startup_s = time.monotonic() - started
    assert "loom — agent runs you can prove" in fleet and "1 idle" in fleet
    assert "idle" in fleet.split("acme-shop", 1)[1].splitlines()[0]  # the project's row

    t.send("Enter")  # the project view, with its header
    view = t.wait(lambda s: "loom — acme-shop" in s and "No task yet" in s and "esc Back" in s)
    title = next(line for line in view.splitlines() if "acme-shop" in line and "loom —" not in line)
    assert "idle" in title  # the header's title line: name and status badge
    assert str(proj)[:40] in view  # the meta line: the project's directory (ellipsized at 80 columns)

    t.send("Escape")
    t.wait(lambda s: "loom — agent runs you can prove" in s and "No task yet" not in s)

    t.send("s")
    settings = t.wait(lambda s: "loom — settings" in s and "Config" in s and "Secrets" in s)
    assert "Save" in settings

    t.send("Escape")
    t.wait(lambda s: "loom — agent runs you can prove" in s and "acme-shop" in s and "loom — settings" not in s)

    t.send("q")
    assert_clean_exit(t)
    assert startup_s < 15, f"the fleet took {startup_s:.1f}s to render"


def test_loom_demo_opens_the_console_and_reaches_accepted(tmp_path, term):
    import pygit2

    from loom_core.control.status import project_status
    from loom_core.engine.clock import SystemClock

    home = tmp_path / "home"
    target = tmp_path / "demo-shop"
    t = term(loom_command(tmp_path, home, "demo", str(target)), width=120, height=36)

    # the console opens on the demo project with the task running, then the plan gate opens by itself
    seen_running = False

    def plan_gate(screen: str) -> bool:
        nonlocal seen_running
        seen_running = seen_running or ("loom — demo-shop" in screen and " running" in screen)
        return ("demo-shop · gate-plan · plan" in screen and "Plan written to .loom/work/plan.md" in screen
                and "a Accept" in screen)  # the footer lands a frame after the dialog

    screen = t.wait(plan_gate, timeout=30, poll=0.05)
    assert seen_running, "never saw the project view with the task running"
    assert "Output · planner" in screen and "# Plan: Reject discount percentages" in screen
    assert "r Reject" in screen and "d Output/Diff" in screen
    main_before = pygit2.Repository(str(target)).branches.local["main"].target

    t.send("a")
    screen = t.wait("gate-final · final", timeout=30)
    rejected = False
    if "Open blockers:" in screen or "✗ blocking" in screen:
        # the challenger's blocker on the half-done fix: send it back with a note
        t.send("r")
        t.wait("what should change?")
        t.send("reject negative percentages too", literal=True)
        t.send("Enter")
        rejected = True
        t.wait(lambda s: "gate-final · final" not in s, timeout=15)  # dismissed; the rework runs
        screen = t.wait("gate-final · final", timeout=30)  # ... and the final gate opens again
        assert "✗ blocking" not in screen, screen
    assert "Output · implementer" in screen

    t.send("a")
    screen = t.wait("✓ Task accepted", timeout=30)
    assert "loom — demo-shop" in screen and "accepted" in screen

    t.send("q")
    screen = t.wait(lambda s: "EXITED=" in s or "being driven" in s, timeout=30)
    if "being driven" in screen:  # the drive was still landing the branch: q asks before it stops anything
        t.send("s")
    assert_clean_exit(t)

    task_id = project_status(target, SystemClock().now())["task_id"]
    assert task_id
    repo = pygit2.Repository(str(target))
    assert f"loom/{task_id}" in repo.branches.local
    assert repo.branches.local["main"].target == main_before  # the user's main is untouched
    diff = repo.diff(repo.revparse_single("main"), repo.revparse_single(f"loom/{task_id}"))
    assert "shop/pricing.py" in {p.delta.new_file.path for p in diff}
    if rejected:
        assert "0 <= percent <= 100" in repo.revparse_single(f"loom/{task_id}:shop/pricing.py").data.decode()
