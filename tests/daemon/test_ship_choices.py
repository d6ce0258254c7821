"""Ship on accept (spec §4.9): the console's submit form persists its push / squash-merge choices in
``task-exec.json``, and a supervisor that finishes the task performs them (here: a push to a real bare
remote), logging ``auto-push``."""

from __future__ import annotations

import json
import subprocess
import tempfile
import threading
import time

import pytest

from loom_core.control import LocalControl, create_demo_project, demo_task
from loom_core.surfaces.daemon import Supervisor, read_log
from loom_tui.app import make_app
from loom_tui.screens.submit import SubmitScreen
from tests.tui.test_project_gate import SIZE, catalog_with, is_screen, open_project, settle

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def demo(tmp_path, monkeypatch):
    base = tmp_path / "tmpdir"
    base.mkdir()
    monkeypatch.setenv("TMPDIR", str(base))
    monkeypatch.setattr(tempfile, "tempdir", str(base))  # gettempdir() caches; the sandbox base uses it
    proj = tmp_path / "demo"
    create_demo_project(proj)
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    subprocess.run(["git", "-C", str(proj), "remote", "add", "origin", str(remote)], check=True)
    return proj, remote


async def test_the_submit_forms_choices_are_persisted_and_a_supervisor_ships_them(tmp_path, demo):
    proj, remote = demo
    cat, (pid,) = catalog_with(tmp_path, proj)
    app = make_app(cat, watch=False)
    async with app.run_test(size=(SIZE[0], 40)) as pilot:
        await open_project(pilot, pid)
        await pilot.press("n")
        await settle(pilot, lambda: is_screen(app, SubmitScreen))
        form = app.screen
        form.query_one("#submit-text").insert(demo_task())
        form.query_one("#submit-backend").value = "demo"
        form.query_one("#submit-policy").value = "demo-gates"
        form.query_one("#submit-push").value = True
        await pilot.pause()
        await pilot.press("ctrl+s")
        await settle(pilot, lambda: not app.control.is_driving(pid) and app.rows[pid].get("status") == "parked",
                     timeout=20)
    saved = json.loads((proj / ".loom" / "task-exec.json").read_text())
    assert saved["push"] is True and saved["squash_merge"] is False

    control = LocalControl()  # the console is gone; a supervisor finishes the task
    sup = Supervisor(control, proj)
    done = threading.Thread(target=lambda: setattr(sup, "result", sup.run()))
    done.start()
    for gate in ("gate-plan", "gate-final"):
        deadline = time.monotonic() + 20
        while not (sup.phase == "parked" and (control.gate(proj) or {}).get("gate") == gate):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        control.answer(proj, "accept")
    done.join(30)
    assert sup.result == "accepted"
    branch = f"loom/{control.status(proj)['task_id']}"
    push = [e for e in read_log(proj) if e["event"] == "auto-push"]
    assert len(push) == 1 and push[0]["detail"]["ok"] is True and push[0]["detail"]["branch"] == branch
    assert not [e for e in read_log(proj) if e["event"] == "auto-merge"]
    heads = subprocess.run(["git", "-C", str(remote), "branch", "--list", branch], capture_output=True, text=True)
    assert branch in heads.stdout


def test_loom_run_push_ships_what_it_lands_and_persists_the_choice(demo):
    from tests.conftest import run_loom

    proj, remote = demo
    proc = run_loom("run", "--backend", "demo", "--policy", "auto", "--push", demo_task(), cwd=proj)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    branch = f"loom/{LocalControl().status(proj)['task_id']}"
    assert "push: " in proc.stdout
    heads = subprocess.run(["git", "-C", str(remote), "branch", "--list", branch], capture_output=True, text=True)
    assert branch in heads.stdout
    saved = json.loads((proj / ".loom" / "task-exec.json").read_text())
    assert saved["push"] is True and saved["squash_merge"] is False
