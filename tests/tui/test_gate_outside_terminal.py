"""The console hands the real terminal to $EDITOR at the gate (``App.suspend()``) and takes it back:
`e` in the plan gate of `loom demo`, in tmux, with an editor that shows a line and waits for a key."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

import pytest

from tests.tui.test_console_terminal import loom_command, term  # noqa: F401  (the tmux fixture)

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux not installed")


def test_e_suspends_the_console_runs_the_editor_and_comes_back(tmp_path, term):  # noqa: F811
    log = tmp_path / "editor.log"
    editor = tmp_path / "fake-editor"
    # prints on the real terminal (the console is suspended), records its file, waits for Enter
    editor.write_text(f"#!/bin/sh\nclear\necho \"FAKE EDITOR ON $1\"\ncp \"$1\" '{log}'\nread answer\n")
    editor.chmod(0o755)
    command = f"export VISUAL={shlex.quote(str(editor))}; " + loom_command(tmp_path, tmp_path / "home", "demo",
                                                                           str(tmp_path / "demo-shop"))
    t = term(command, width=120, height=36)
    t.wait(lambda s: "demo-shop · gate-plan · plan" in s and "a Accept" in s, timeout=60)

    t.send("e")
    screen = t.wait("FAKE EDITOR ON", timeout=15)
    assert "gate-plan" not in screen  # the console gave the whole terminal away
    path = screen.split("FAKE EDITOR ON ", 1)[1].split()[0]
    assert path.endswith(".md") and log.read_text().startswith("# Plan:")

    t.send("Enter")  # the editor quits: the console repaints, the dialog still open and unanswered
    t.wait(lambda s: "demo-shop · gate-plan · plan" in s and "a Accept" in s and "FAKE EDITOR" not in s,
           timeout=15)
    assert not Path(path).exists()  # the copy is cleaned up
