"""Plain mode (`loom run`) in a real pseudo-terminal: the live line while an agent runs on a backend
that does not stream (drawn in place, erased before the next line), none of it into a pipe, and the
gate prompt's e / v opening the plan in $EDITOR and the diff in $PAGER."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT

SPIN = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
LIVE = re.compile(rf"\r\x1b\[2K([{SPIN}]) ([\w, +-]+) · demo · (\d+)s")
PROMPT = b"(x) > "


def recorder(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A program that writes "ARGS=<its arguments>" and its last argument's file content to a log."""
    log = tmp_path / f"{name}.log"
    script = tmp_path / name
    script.write_text(f"#!/bin/sh\nfor a; do last=$a; done\n{{ echo \"ARGS=$*\"; cat \"$last\"; }} > '{log}'\n")
    script.chmod(0o755)
    return script, log


def loom_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    (tmp_path / "tmp").mkdir(exist_ok=True)
    return {**env, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path / "tmp"), **extra}


def run_argv(delay: float) -> list[str]:
    from loom_core.control import demo_task

    return [sys.executable, "-m", "loom_core.surfaces.cli", "run", "--backend", "demo", "--demo-delay", str(delay),
            "--policy", "demo-gates", demo_task()]


@pytest.fixture
def shop(tmp_path):
    from loom_core.control import create_demo_project

    create_demo_project(tmp_path / "shop")
    return tmp_path / "shop"


class Pty:
    """``argv`` on the slave side of a 120×40 pseudo-terminal; every byte it writes is kept."""

    def __init__(self, argv: list[str], *, cwd: Path, env: dict[str, str]) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave,
                                     start_new_session=True)
        os.close(slave)
        self.master = master
        self.out = b""

    def until(self, token: bytes, timeout: float = 60, count: int = 1) -> bytes:
        deadline = time.monotonic() + timeout
        while self.out.count(token) < count:
            left = deadline - time.monotonic()
            assert left > 0, f"waited for {token!r}; got:\n{self.out.decode(errors='replace')[-3000:]}"
            ready, _, _ = select.select([self.master], [], [], min(left, 0.2))
            if ready:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:  # the child is gone
                    chunk = b""
                assert chunk or self.out.count(token) >= count, f"ended before {token!r}:\n{self.out.decode()[-3000:]}"
                self.out += chunk
        return self.out

    def type(self, line: str) -> None:
        time.sleep(0.1)
        os.write(self.master, line.encode() + b"\r")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        os.close(self.master)


def committed_lines(raw: str) -> tuple[list[str], str]:
    """What a terminal keeps: each line as it stood when a newline ended it, and the unfinished last one
    (carriage return goes to column 0 and overwrites, ESC[2K clears the line, colours are dropped)."""
    lines: list[str] = []
    cur: list[str] = []
    col = 0
    for token in re.findall(r"\x1b\[[0-9;?]*[A-Za-z]|\r|\n|[^\x1b\r\n]", raw):
        if token == "\n":
            lines.append("".join(cur).rstrip())
            cur, col = [], 0
        elif token == "\r":
            col = 0
        elif token == "\x1b[2K":
            cur = [" "] * len(cur)
        elif token.startswith("\x1b"):
            continue
        else:
            cur[col:col + 1] = [token]
            col += 1
    return lines, "".join(cur).strip()


def test_live_line_on_a_terminal_and_e_v_at_the_gate(shop, tmp_path):
    editor, editor_log = recorder(tmp_path, "fake-editor")
    pager, pager_log = recorder(tmp_path, "fake-pager")
    env = loom_env(tmp_path, VISUAL="", EDITOR=f"{editor} -R", LOOM_PAGER=str(pager))
    term = Pty(run_argv(0.7), cwd=shop, env=env)
    try:
        raw = term.until(PROMPT).decode()
        draws = LIVE.findall(raw)
        # one live line per running agent, redrawn in place: the spinner turns while the planner works
        assert {"classifier", "code-analyzer", "planner"} <= {who for _, who, _ in draws}
        assert len({frame for frame, who, _ in draws if who == "planner"}) >= 2
        assert any(who in ("plan-grounding-check, logic-reviewer", "logic-reviewer, plan-grounding-check")
                   for _, who, _ in draws)  # a fan-out shows its agents together
        lines, last = committed_lines(raw)
        assert not [line for line in lines if any(ch in line for ch in SPIN)], "a live line was left behind"
        assert any("✓ planner · demo" in line for line in lines) and "(x) >" in last
        assert "⏸ gate 'gate-plan'" in raw and "plan in $EDITOR (e)" in raw

        term.type("e")  # the plan, in the editor (a copy)
        term.until(PROMPT, count=2)
        args, _, rest = editor_log.read_text().partition("\n")
        assert args.startswith("ARGS=-R ") and args.endswith(".md") and rest.startswith("# Plan:")
        assert not Path(args.split()[-1]).exists()

        term.type("a")
        term.until(b"gate 'gate-final'")
        term.until(PROMPT, count=3)
        term.type("v")  # the diff, in the pager
        term.until(PROMPT, count=4)
        args, _, diff = pager_log.read_text().partition("\n")
        assert args.endswith(".diff") and "shop/pricing.py" in diff and diff.count("\n+") >= 1

        term.type("x")
        term.until(b"drive total")
        assert term.proc.wait(timeout=30) != 0  # abandoned
        lines, _ = committed_lines(term.out.decode())
        assert not [line for line in lines if any(ch in line for ch in SPIN)]
    finally:
        term.close()


def test_a_missing_pager_is_said_at_the_prompt(shop, tmp_path):
    env = loom_env(tmp_path, LOOM_PAGER="no-such-pager-xyz", PAGER="")
    term = Pty(run_argv(0), cwd=shop, env=env)
    try:
        term.until(PROMPT)
        term.type("a")
        term.until(PROMPT, count=2)
        term.type("v")
        out = term.until(PROMPT, count=3).decode()
        assert "no-such-pager-xyz" in out and "$LOOM_PAGER" in out and "Traceback" not in out
    finally:
        term.close()


def test_into_a_pipe_no_live_line_no_carriage_return_no_escape_codes(shop, tmp_path):
    out = subprocess.run(run_argv(0.3), cwd=shop, env=loom_env(tmp_path), capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 3, out.stderr  # parked at the plan gate: no terminal to ask on
    both = out.stdout + out.stderr
    assert "✓ planner · demo" in out.stdout
    assert "\r" not in both and "\x1b" not in both and not any(ch in both for ch in SPIN)


def test_ctrl_c_in_the_editor_belongs_to_the_editor(shop, tmp_path):
    log = tmp_path / "editor.log"
    editor = tmp_path / "fake-editor"  # Ctrl+C reaches the whole foreground group: loom too
    editor.write_text(f"#!/bin/sh\ntrap '' INT QUIT\nkill -INT 0\nkill -QUIT 0\ncp \"$1\" '{log}'\n")
    editor.chmod(0o755)
    term = Pty(run_argv(0), cwd=shop, env=loom_env(tmp_path, VISUAL=str(editor)))
    try:
        term.until(PROMPT)
        term.type("e")
        out = term.until(PROMPT, count=2).decode()  # still asking
        assert log.read_text().startswith("# Plan:") and "Traceback" not in out and "Aborted" not in out
        term.type("a")
        term.until(PROMPT, count=3)  # and still answering
    finally:
        term.close()


def test_no_live_line_on_a_dumb_terminal(shop, tmp_path):
    term = Pty(run_argv(0.3), cwd=shop, env=loom_env(tmp_path, TERM="dumb"))
    try:
        out = term.until(PROMPT).decode()
        assert "✓ planner · demo" in out and "\x1b[2K" not in out and not any(ch in out for ch in SPIN)
    finally:
        term.close()
