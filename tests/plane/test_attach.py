"""The console as a client of a plane: ``HttpControl`` over a real plane (uvicorn on a free port) with a demo
project, and a Textual pilot of the console attached to it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from loom_core.control import RunOptions, demo_task
from loom_core.control.catalog import Catalog
from loom_core.control.http import HttpControl
from loom_core.errors import GateAlreadyAnswered, LoomError
from tests.plane.conftest import TOKEN, demo, wait_for


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def plane_with_demo(start_plane, tmp_path):
    """A plane (with a token) whose catalog holds one demo project, and an HttpControl to it."""
    proj = demo(tmp_path)
    cat = Catalog([], tmp_path / "workspace.json")
    pid = cat.add(proj).id
    plane = start_plane(catalog=cat, token=TOKEN)
    ctl = HttpControl(plane.url, TOKEN)
    yield plane, ctl, pid, proj
    ctl.close()


def parked_at(ctl: HttpControl, pid: str, gate: str) -> dict:
    def check():
        view = ctl.gate(pid)
        return view if view and view["gate"] == gate else None

    return wait_for(check, timeout_s=60)


def test_http_control_round_trip(plane_with_demo):
    plane, ctl, pid, proj = plane_with_demo
    (row,) = ctl.fleet()
    assert row["id"] == pid and row["name"] == "shop" and row["dir"] == str(proj)
    assert [p.id for p in ctl.projects()] == [pid] and ctl.project(proj).id == pid
    assert ctl.gate(pid) is None and ctl.chain(pid) is None and ctl.store_of(pid) is None

    opts = RunOptions(backend="demo", policy="demo-gates")
    assert ctl.submit(pid, demo_task(), opts) is None  # returns at once: the plane's watcher drives
    gate = parked_at(ctl, pid, "gate-plan")
    assert ctl.submit(pid, demo_task(), opts) is None  # the same text replays
    assert isinstance(ctl.store_of(pid), Path) and all(isinstance(d, Path) for d in ctl.work_dirs(pid))
    chain = ctl.chain(pid)
    assert [r["agent"] for r in chain["runs"]][:3] == ["classifier", "code-analyzer", "planner"]
    assert ctl.run_detail(pid, chain["runs"][0]["agent_run_id"])["agent"] == "classifier"

    from loom_tui.screens.gate import load_gate

    class OtherHost(HttpControl):  # the plane's paths do not exist here: the plan comes over HTTP
        def work_dirs(self, ref):
            return [Path("/nonexistent/work")]

    far = OtherHost(plane.url, TOKEN)
    view = load_gate(far, pid)
    far.close()
    assert view["gate_event_id"] == gate["gate_event_id"] and view["document"][0] == ".loom/work/plan.md"
    assert view["document"][1] == ctl.artifact(pid, ".loom/work/plan.md")["content"] != ""

    with pytest.raises(GateAlreadyAnswered) as stale:
        ctl.answer(pid, "accept", gate_event_id="gev-stale")
    assert stale.value.code == "GATE_ALREADY_ANSWERED"
    ctl.answer(pid, "accept", gate_event_id=gate["gate_event_id"])
    with pytest.raises(GateAlreadyAnswered):
        ctl.answer(pid, "accept", gate_event_id=gate["gate_event_id"])
    parked_at(ctl, pid, "gate-final")
    snap = next(ctl.log(pid))  # the SSE stream: a snapshot at once
    assert snap["supervised"] is True and snap["log"]

    chain_report = ctl.verify(pid)
    assert chain_report.ok is True and chain_report.rows > 0
    ctl.cancel(pid)  # archived: replay it from the history, over HTTP
    (past,) = ctl.history(pid)
    report = ctl.replay(pid, past["task_id"])
    assert report.identical is True and report.lines()[0].startswith("replay identical")
    states, order = ctl.states(pid, past["task_id"])
    assert states and all(isinstance(k, int) for k in states) and order

    with pytest.raises(LoomError) as missing:
        ctl.history("nosuchproject")
    assert missing.value.code == "PROJECT_NOT_FOUND"
    assert ctl.pause(pid) is False  # cancelled: no longer supervised
    assert ctl.config()["backend"] and isinstance(ctl.config_path(), Path) and ctl.now()


def test_a_wrong_token_is_an_error_of_the_envelope(plane_with_demo):
    plane, _, _, _ = plane_with_demo
    with pytest.raises(LoomError) as bad:
        HttpControl(plane.url, "wrong").fleet()
    assert bad.value.code == "UNAUTHORIZED"


async def settle(pilot, until, timeout: float = 60.0) -> None:
    """Poll (the live-log worker never completes while attached, so do not wait for workers)."""
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out; screen is {type(pilot.app.screen).__name__}")
        await pilot.pause()
        await asyncio.sleep(0.05)


@pytest.mark.anyio
async def test_the_console_attached_answers_through_the_plane_and_quits_leaving_it_running(plane_with_demo):
    from loom_tui.app import LoomApp
    from loom_tui.screens.fleet import FleetScreen, FleetTable
    from loom_tui.screens.gate import GateDialog
    from loom_tui.screens.project import ProjectScreen

    plane, ctl, pid, proj = plane_with_demo
    # agents take 1 s each: the run from the plan gate to the final gate outlasts the console's visit below
    ctl.submit(pid, demo_task(), RunOptions(backend="demo", policy="demo-gates", demo_delay_s=1.0))
    parked_at(ctl, pid, "gate-plan")

    app = LoomApp(HttpControl(plane.url, TOKEN), refresh_s=0.2)
    async with app.run_test(size=(100, 30)) as pilot:
        assert app.sub_title == f"attached to plane at {plane.url}"
        await settle(pilot, lambda: app.rows.get(pid, {}).get("status") == "parked"
                     and isinstance(app.screen, FleetScreen))
        table = app.screen.query_one(FleetTable)
        assert [k.value for k in table.rows] == [pid]  # the fleet shows the plane's project
        table.focus()
        await pilot.press("enter")
        await settle(pilot, lambda: isinstance(app.screen, ProjectScreen) and app.screen._loaded)
        screen = app.screen
        log = screen.query_one("#project-log")
        await settle(pilot, lambda: log.line_count > 0)  # the live log: the plane's SSE stream
        assert any("supervised" in line or "gate" in line for line in log.lines)
        await pilot.press("g")
        await settle(pilot, lambda: isinstance(app.screen, GateDialog))
        assert app.screen.view["gate"] == "gate-plan"
        before = len(screen.chain["runs"])
        await pilot.press("a")  # accept, through the plane
        await settle(pilot, lambda: (ctl.gate(pid) or {}).get("gate") != "gate-plan")
        await settle(pilot, lambda: app.rows.get(pid, {}).get("gate") != "gate-plan")  # the fleet saw it move on
        await settle(pilot, lambda: app.screen is screen and len(screen.chain["runs"]) > before)  # reloads as it goes
        await pilot.press("escape")
        await settle(pilot, lambda: isinstance(app.screen, FleetScreen))
        await pilot.press("q")  # quitting asks nothing while attached
        await settle(pilot, lambda: not app.is_running, timeout=10)
    assert (ctl.gate(pid) or {}).get("gate") != "gate-final"  # still working when the console left
    # the plane's watcher drives on without the console: the task reaches its final gate
    assert parked_at(ctl, pid, "gate-final")["gate"] == "gate-final"
    assert ctl.pause(pid) is True and ctl.pause(pid) is False  # supervised until paused


def test_loom_finds_the_local_plane_through_server_json(start_plane, tmp_path, monkeypatch):
    import typer

    from loom_core.surfaces.cli.attach import plane_to_attach

    monkeypatch.setenv("LOOM_USER_DIR", str(tmp_path / "home" / ".loom"))  # ~/.loom
    monkeypatch.setenv("LOOM_SERVER_TOKEN", TOKEN)
    assert plane_to_attach(None, None) == (None, None)  # no plane: the console drives in-process
    plane = start_plane(state_dir=tmp_path / "home" / ".loom" / "server", token=TOKEN)
    assert plane_to_attach(None, None) == (plane.url, TOKEN)
    assert plane_to_attach(plane.url, TOKEN) == (plane.url, TOKEN)
    monkeypatch.setenv("LOOM_SERVER_TOKEN", "wrong")
    assert plane_to_attach(None, None) == (None, None)  # found but refused: in-process, with a line on stderr
    with pytest.raises(typer.Exit):
        plane_to_attach(plane.url, "wrong")  # an explicit --server that refuses is an error


def test_a_verb_the_plane_does_not_serve_is_a_loom_error():
    ctl = HttpControl("http://127.0.0.1:9")
    with pytest.raises(LoomError) as missing:
        ctl.recover("p", "retry")
    assert missing.value.code == "NOT_OVER_HTTP"
    with pytest.raises(LoomError) as down:
        ctl.fleet()
    assert down.value.code == "PLANE_UNREACHABLE"
    with pytest.raises(AttributeError):
        ctl.no_such_verb  # noqa: B018


def test_submit_with_replace_abandons_the_task_in_progress(plane_with_demo):
    plane, ctl, pid, proj = plane_with_demo
    ctl.submit(pid, demo_task(), RunOptions(backend="demo", policy="demo-gates"))
    first = parked_at(ctl, pid, "gate-plan")
    with pytest.raises(LoomError):  # another text onto the active task is refused
        ctl.submit(pid, "Add a second discount rule", RunOptions(backend="demo", policy="demo-gates"))
    ctl.submit(pid, "Add a second discount rule", RunOptions(backend="demo", policy="demo-gates", replace=True))
    again = parked_at(ctl, pid, "gate-plan")
    assert again["gate_event_id"] != first["gate_event_id"]
    assert len(ctl.history(pid)) == 1  # the replaced task is in the history
