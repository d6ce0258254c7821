"""A task Claude Code drives over MCP (the host runs its agents between tool calls) is never taken over by a
supervisor: a real `loom daemon start --watch` on the project leaves its pending spawn pending and writes
nothing to its store, `loom status` says Claude Code drives it, `loom proceed` refuses it with the way out,
and `loom proceed --take-over` (the take_over verb) hands it to loom — the watching daemon then drives it."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from loom_core.agents.executors.demo import DemoExecutor
from loom_core.control import LocalControl, create_demo_project, demo_task
from loom_core.kernel.types import Intent
from loom_core.surfaces.daemon import read_log, read_status
from tests.conftest import run_loom

pytestmark = pytest.mark.slow


def wait_for(what, timeout=30.0, every=0.05):
    deadline = time.monotonic() + timeout
    while True:
        got = what()
        if got:
            return got
        assert time.monotonic() < deadline, "timed out"
        time.sleep(every)


def status(proj: Path, env: dict[str, str]) -> dict[str, Any]:
    got = run_loom("status", "--json", cwd=proj, env=env)
    assert got.returncode == 0, got.stderr
    return json.loads(got.stdout)


def marker(proj: Path) -> Any:
    return json.loads((proj / ".loom" / "task-exec.json").read_text()).get("host")


def deliver(mcp, proj: Path, dsid: str, spawn: dict[str, Any]) -> dict[str, Any]:
    """The host's sub-agent (the demo backend's scripted agent) runs the spawn; its output goes back over MCP."""
    req = spawn["spawn_request"]
    intent = Intent(spawn["agent"], spawn["agent_run_id"], "", req["model"], req["prompt"], extras=req["extras"])
    out = DemoExecutor().execute(intent, threading.Event(), lambda line: None)
    return mcp.call("pipeline_continue_task", project_dir=str(proj), driver_state_id=dsid,
                    input={"kind": "agent-result", "agent_run_id": spawn["agent_run_id"], "agent_output": out.output})


@pytest.fixture
def env(mcp_home, tmp_path) -> dict[str, str]:
    base = tmp_path / "tmpdir"
    base.mkdir()
    return {k: mcp_home["env"][k] for k in ("LOOM_HOME", "XDG_CONFIG_HOME", "LOOM_USER_DIR")} | {"TMPDIR": str(base)}


@pytest.fixture
def shop(tmp_path, allow):
    proj = tmp_path / "shop"
    create_demo_project(proj)
    allow(proj)
    yield proj
    doc = read_status(proj)  # never leave a daemon behind
    if doc and doc.get("phase") != "stopped":
        try:
            os.kill(doc["pid"], signal.SIGKILL)
        except (ProcessLookupError, KeyError, TypeError):
            pass


def test_a_watching_daemon_leaves_a_task_claude_code_drives_alone_until_it_is_taken_over(mcp, shop, env):
    first = mcp.call("pipeline_run_task", project_dir=str(shop), task=demo_task(),
                     client_idempotency_uuid=str(uuid.uuid4()))
    spawn, dsid = first["response"], first["driver_state_id"]
    assert spawn["kind"] == "spawn-agent", first
    assert marker(shop) == {"via": "mcp", "task_id": first["task_id"], "since": marker(shop)["since"]}

    once = run_loom("daemon", "start", "--backend", "demo", cwd=shop, env=env)  # a one-shot supervisor: nothing to do
    assert once.returncode == 0 and "host-driven" in once.stderr and "loom daemon: noop" in once.stderr, once.stderr
    t0 = time.monotonic()
    got = run_loom("daemon", "start", "--detach", "--watch", "--backend", "demo", cwd=shop, env=env)
    assert got.returncode == 0, got.stdout + got.stderr
    wait_for(lambda: [e for e in read_log(shop) if e["event"] == "host-driven"])
    wait_for(lambda: (read_status(shop) or {}).get("detail") == "host-driven")
    took = time.monotonic() - t0
    before = status(shop, env)
    time.sleep(1.0)  # the daemon keeps looking; it must still not touch the task
    st = status(shop, env)
    assert st["status"] == "host-driven" and st["driven_by"] == "driven from Claude Code"
    assert [p["agent_run_id"] for p in st["pending"]] == [spawn["agent_run_id"]]  # the spawn stays pending
    assert st["ticks"] == before["ticks"] and st["spawns"] == 0  # nothing written, no agent run recorded
    assert read_status(shop)["phase"] == "idle"
    text = run_loom("status", cwd=shop, env=env).stdout
    assert "status:  driven from Claude Code" in text and "loom proceed --take-over" in text
    assert "stopped" not in text

    refused = run_loom("proceed", "--backend", "demo", cwd=shop, env=env)
    assert refused.returncode == 1 and "driven from Claude Code" in refused.stderr
    assert "--take-over" in refused.stderr and status(shop, env)["ticks"] == st["ticks"]

    # the host goes on over MCP while the daemon watches: its delivery is taken, the next spawn handed out
    nxt = deliver(mcp, shop, dsid, spawn)["response"]
    assert nxt["kind"] in ("spawn-agent", "spawn-agents-parallel", "ask-user"), nxt
    time.sleep(0.5)
    after = status(shop, env)
    assert after["status"] in ("host-driven", "parked") and after["spawns"] == 1  # only the host's own run

    # the user takes it over: the marker goes and the watching daemon drives it on with its own agents
    since = marker(shop)["since"]
    assert LocalControl().take_over(shop) == {"task_id": first["task_id"], "host": {
        "via": "mcp", "task_id": first["task_id"], "since": since, "label": "Claude Code"}}
    assert marker(shop) is None
    wait_for(lambda: status(shop, env)["spawns"] > 1, timeout=60)
    assert [e for e in read_log(shop) if e["event"] == "recover-on-start"]
    assert run_loom("daemon", "stop", cwd=shop, env=env).returncode == 0
    print(f"daemon start → host-driven seen: {took:.1f}s")


def test_proceed_take_over_drives_it_here(mcp, allow, tmp_path, env):
    proj = tmp_path / "shop2"
    create_demo_project(proj)
    allow(proj)
    first = mcp.call("pipeline_run_task", project_dir=str(proj), task=demo_task(),
                     client_idempotency_uuid=str(uuid.uuid4()), policy_preset="full-autonomous")
    assert marker(proj)["task_id"] == first["task_id"]
    got = run_loom("proceed", "--take-over", "--backend", "demo", cwd=proj, env=env, timeout=120)
    assert got.returncode == 0, got.stdout + got.stderr
    assert "took task" in got.stderr and "from Claude Code" in got.stderr
    st = status(proj, env)
    assert st["state"] != "in_progress" and st["host"] is None
    assert marker(proj) is None
    # /proceed in Claude Code after that: the task is finished, nothing is marked again
    again = mcp.call("pipeline_resume", project_dir=str(proj))
    assert again["response"]["kind"] == "complete" and marker(proj) is None


def test_a_plane_watching_the_project_shows_it_driven_from_claude_code_and_spawns_nothing(mcp, allow, tmp_path):
    """The plane's watcher (the same supervisor, in `loom serve`) and its fleet read model."""
    from loom_core.surfaces.plane.registry import Registry

    proj = tmp_path / "shop3"
    create_demo_project(proj)
    allow(proj)
    first = mcp.call("pipeline_run_task", project_dir=str(proj), task=demo_task(),
                     client_idempotency_uuid=str(uuid.uuid4()))
    control = LocalControl()
    before = control.status(proj)
    reg = Registry(control, tmp_path / "plane")
    try:
        project = reg.register(proj)
        watcher = reg.watcher(project.id)
        wait_for(lambda: watcher.supervisor.phase == "idle" and watcher.supervisor._hosted_logged)
        time.sleep(0.5)
        ((_, model),) = reg.read_models()  # what GET /projects serves
        assert model["state"] == "host-driven" and model["has_task"] and model["status"] == "in_progress"
        assert model["driven_by"] == "driven from Claude Code"
        st = control.status(proj)
        assert st["ticks"] == before["ticks"] and st["spawns"] == 0
        assert [p["agent_run_id"] for p in st["pending"]] == [first["response"]["agent_run_id"]]
        from loom_tui.screens.fleet import cells

        assert cells(st)["status"].plain == "in Claude Code"  # the console's fleet row
    finally:
        reg.shutdown(timeout_s=10)


def test_a_task_claude_code_drives_that_ends_in_a_terminal_is_no_longer_marked(mcp, allow, tmp_path, env):
    proj = tmp_path / "shop4"
    create_demo_project(proj)
    allow(proj)
    mcp.call("pipeline_run_task", project_dir=str(proj), task=demo_task(), client_idempotency_uuid=str(uuid.uuid4()))
    assert marker(proj)
    got = run_loom("recover", "abandon", cwd=proj, env=env)
    assert got.returncode == 0, got.stderr
    assert marker(proj) is None and status(proj, env)["state"] != "in_progress"
    assert LocalControl().status(proj)["host"] is None
