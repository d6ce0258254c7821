"""`e` / `v` in the gate dialog: the plan in $VISUAL/$EDITOR, the diff in $LOOM_PAGER/$PAGER, as git and
lazygit do. The program is a real script that records the file it was given; the console hands it
the terminal with ``App.suspend()`` (a recording stand-in here: the headless test driver cannot
suspend, which is itself checked; tests/tui/test_console_terminal.py runs the real one in tmux)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from loom_tui.app import make_app
from loom_tui.screens.gate import GateDialog
from tests.tui.test_project_gate import SIZE, is_screen, open_project, settle

pytestmark = pytest.mark.anyio


def recorder(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A program that writes "ARGS=<its arguments>" and its last argument's file content to a log."""
    log = tmp_path / f"{name}.log"
    script = tmp_path / name
    script.write_text(f"#!/bin/sh\nfor a; do last=$a; done\n"
                      f"{{ echo \"ARGS=$*\"; cat \"$last\"; }} > '{log}'\n")
    script.chmod(0o755)
    return script, log


def recorded(log: Path) -> tuple[list[str], Path, str]:
    """(the arguments, the file given, its content)."""
    first, _, body = log.read_text().partition("\n")
    args = first.removeprefix("ARGS=").split(" ")
    return args, Path(args[-1]), body


def suspend_recorder(app) -> list[str]:
    """Stand in for App.suspend (the headless driver cannot give a terminal away): note each hand-over."""
    calls: list[str] = []

    @contextlib.contextmanager
    def suspend():
        calls.append("suspended")
        yield
        calls.append("resumed")

    app.suspend = suspend
    return calls


def toasts(app) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def open_dialog(pilot, pid: str) -> GateDialog:
    await open_project(pilot, pid)
    await pilot.press("g")
    await settle(pilot, lambda: is_screen(pilot.app, GateDialog))
    return pilot.app.screen


async def test_e_opens_the_plan_in_the_editor_and_v_the_diff_in_the_pager(parked, tmp_path, monkeypatch):
    cat, pid, proj = parked
    editor, editor_log = recorder(tmp_path, "fake-editor")
    pager, pager_log = recorder(tmp_path, "fake-pager")
    monkeypatch.setenv("VISUAL", "")
    monkeypatch.setenv("EDITOR", f"{editor} --wait")  # a command with its arguments, as $EDITOR may be
    monkeypatch.setenv("LOOM_PAGER", str(pager))
    monkeypatch.setenv("PAGER", "/nowhere/not-this-one")
    app = make_app(cat, watch=False)
    async with app.run_test(size=SIZE) as pilot:
        calls = suspend_recorder(app)
        dialog = await open_dialog(pilot, pid)
        assert dialog.view["gate"] == "gate-plan"

        await pilot.press("e")
        await settle(pilot, lambda: editor_log.exists())
        args, path, body = recorded(editor_log)
        assert args[0] == "--wait"  # $EDITOR's own argument, before the file
        assert path.name.startswith("loom-plan-") and path.suffix == ".md"
        assert body.startswith("# Plan:") and body == dialog.view["plan"][1]
        assert not path.exists()  # the copy is cleaned up
        assert calls == ["suspended", "resumed"] and app.screen is dialog  # back in the dialog, unanswered

        await pilot.press("v")  # nothing changed in the sandbox at the plan gate: said, nothing opened
        await settle(pilot, lambda: any("no changes" in t for t in toasts(app)))
        assert not pager_log.exists() and calls == ["suspended", "resumed"]

        await pilot.press("a")  # the final gate: now there is a diff
        await settle(pilot, lambda: is_screen(app, GateDialog) and app.screen.view["gate"] == "gate-final",
                     timeout=30)
        final = app.screen
        await pilot.press("v")
        await settle(pilot, lambda: pager_log.exists())
        _, path, body = recorded(pager_log)
        assert path.suffix == ".diff" and not path.exists()
        assert body == final.view["diff"] and "shop/pricing.py" in body
        assert app.screen is final

        # the plan is still the plan at the final gate
        editor_log.unlink()
        await pilot.press("e")
        await settle(pilot, lambda: editor_log.exists())
        assert recorded(editor_log)[2].startswith("# Plan:")


async def test_a_missing_editor_or_pager_is_a_toast_and_nothing_is_suspended(parked, tmp_path, monkeypatch):
    cat, pid, _ = parked
    monkeypatch.setenv("VISUAL", "")
    monkeypatch.setenv("EDITOR", "no-such-editor-xyz -n")
    monkeypatch.setenv("LOOM_PAGER", "")
    monkeypatch.setenv("PAGER", "")
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # no less, no more
    app = make_app(cat, watch=False)
    async with app.run_test(size=SIZE) as pilot:
        calls = suspend_recorder(app)
        dialog = await open_dialog(pilot, pid)
        await pilot.press("e")
        await settle(pilot, lambda: any("no-such-editor-xyz" in t for t in toasts(app)))
        assert any("$EDITOR" in t for t in toasts(app))
        dialog.view["diff"] = "diff --git a/x b/x\n+1\n"
        await pilot.press("v")
        await settle(pilot, lambda: any("no pager found" in t for t in toasts(app)))
        assert calls == [] and app.screen is dialog


async def test_the_headless_console_says_it_cannot_give_the_terminal_away(parked, tmp_path, monkeypatch):
    cat, pid, _ = parked
    editor, editor_log = recorder(tmp_path, "fake-editor")
    monkeypatch.setenv("VISUAL", str(editor))
    app = make_app(cat, watch=False)
    async with app.run_test(size=SIZE) as pilot:  # the real App.suspend: this driver cannot suspend
        dialog = await open_dialog(pilot, pid)
        await pilot.press("e")
        await settle(pilot, lambda: any("cannot hand the terminal" in t for t in toasts(app)))
        assert not editor_log.exists() and app.screen is dialog


async def test_e_typed_into_the_rejection_note_stays_text(parked, tmp_path, monkeypatch):
    cat, pid, _ = parked
    editor, editor_log = recorder(tmp_path, "fake-editor")
    monkeypatch.setenv("VISUAL", str(editor))
    app = make_app(cat, watch=False)
    async with app.run_test(size=SIZE) as pilot:
        calls = suspend_recorder(app)
        dialog = await open_dialog(pilot, pid)
        await pilot.press("r", "e", "v")
        await pilot.pause()
        assert dialog.query_one("#gate-note").value == "ev"
        assert calls == [] and not editor_log.exists()
