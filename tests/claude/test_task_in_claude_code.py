"""End to end with the real Claude Code CLI (npm) against the Anthropic stub: after `loom setup --project` and
`loom allowlist add .` in a temp git project with a temp HOME, `claude -p "/task add a greeting"` expands loom's
command file, starts loom's MCP server from the project's .mcp.json, calls `mcp__loom__pipeline_run_task`
(the stub plays the model and calls the tool once Claude Code offers it) — and the task now exists in that
project's store, as `loom status --json` reads it. A sub-agent the host runs for loom's agent may then edit the
sandbox copy (outside the project: `loom setup` allowed its folder), while an edit elsewhere is refused."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_loom

STUB = ROOT / "tests" / "support" / "anthropic_stub.py"
UUID = "6f1d2c3b-4a5e-4f60-8a7b-9c0d1e2f3a4b"


@pytest.fixture
def project(tmp_path) -> Path:
    proj = tmp_path / "greeter"
    proj.mkdir()
    (proj / "README.md").write_text("# greeter\n")
    git = ["git", "-C", str(proj), "-c", "user.email=t@example.test", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(proj)], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "init"], check=True)
    return proj


def start_stub(log: Path, tool_call: dict, scripts: tuple[dict, ...] = ()) -> tuple[subprocess.Popen, str]:
    extra = [a for sc in scripts for a in ("--script", json.dumps(sc))]
    proc = subprocess.Popen([sys.executable, str(STUB), "--port", "0", "--log", str(log), "--reply", "routed",
                             "--tool-call", json.dumps(tool_call), *extra], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()
    m = re.search(r"http://127\.0\.0\.1:\d+", first)
    assert m, f"stub did not start: {first!r}"
    return proc, m.group(0)


def ask_claude(claude_bin: str, project: Path, env: dict, prompt: str, tool_call: dict, log: Path, *,
               args: tuple[str, ...] = (), scripts: tuple[dict, ...] = ()) -> tuple[dict, list]:
    """``claude -p prompt`` against a fresh stub that calls ``tool_call`` once offered (a request holding a
    script's ``match`` — a sub-agent's — follows that script); (result, request bodies)."""
    log.write_text("")
    stub, url = start_stub(log, tool_call, scripts)
    try:
        cc = subprocess.run([claude_bin, "-p", prompt, "--output-format", "json", *args], cwd=project,
                            capture_output=True, text=True, timeout=180,
                            env={**os.environ, **env, "ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": "test",
                                 "DISABLE_TELEMETRY": "1", "DISABLE_AUTOUPDATER": "1",
                                 "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
                                 # -p connects MCP servers in the background and may send the first (here: only)
                                 # turn before loom's server is up; this makes it wait for them
                                 "MCP_CONNECTION_NONBLOCKING": "false"})
    finally:
        stub.terminate()
        stub.wait(timeout=10)
    assert cc.returncode == 0, (cc.stdout[-2000:], cc.stderr[-2000:])
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    return json.loads(cc.stdout), [r["body"] for r in rows if r.get("method") == "POST" and "/v1/messages" in r["path"]]


def tool_results(posts: list) -> list[dict]:
    """The tool results Claude Code sent back to the model, as loom's JSON."""
    return [json.loads(b["content"][0]["text"]) for body in posts[-1:] for m in body["messages"]
            if m["role"] == "user" and isinstance(m["content"], list) for b in m["content"]
            if b.get("type") == "tool_result"]


def test_slash_task_creates_the_task_in_the_project_store(tmp_path, project, claude_bin):
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path)}
    got = run_loom("setup", "--project", cwd=project, env=env)
    assert got.returncode == 0, got.stderr
    assert run_loom("allowlist", "add", ".", cwd=project, env=env).returncode == 0
    # what the user's "approve this project's MCP servers" answer records (-p mode cannot ask)
    (home / ".claude").mkdir()
    (home / ".claude" / "settings.json").write_text(json.dumps({"enableAllProjectMcpServers": True}))

    log = tmp_path / "requests.jsonl"
    t0 = time.monotonic()
    result, posts = ask_claude(claude_bin, project, env, "/task add a greeting", {
        "name": "mcp__loom__pipeline_run_task",
        "input": {"project_dir": str(project), "task": "add a greeting", "client_idempotency_uuid": UUID}}, log)
    elapsed = time.monotonic() - t0
    assert result["is_error"] is False and result["result"] == "routed"
    assert result["permission_denials"] == []  # the command file's allowed-tools let the tool run
    first = json.dumps(posts[0]["messages"][0]["content"])
    assert "pipeline_run_task" in first and "add a greeting" in first  # /task expanded from loom's command file
    assert "mcp__loom__pipeline_run_task" in {t["name"] for t in posts[0]["tools"]}  # the server from .mcp.json
    (wire,) = tool_results(posts)
    assert wire["response"]["kind"] == "spawn-agent", wire

    status = run_loom("status", "--json", cwd=project, env=env)
    assert status.returncode == 0, status.stderr
    st = json.loads(status.stdout)
    assert st["task_id"] == wire["task_id"] and st["task"] == "add a greeting" and st["state"] == "in_progress"
    assert [p["agent_run_id"] for p in st["pending"]] == [wire["response"]["agent_run_id"]]

    # a new session: /proceed picks the same task up where it stopped (the same pending run)
    result, posts = ask_claude(claude_bin, project, env, "/proceed", {
        "name": "mcp__loom__pipeline_resume", "input": {"project_dir": str(project)}}, log)
    assert result["permission_denials"] == [] and "pipeline_resume" in json.dumps(posts[0]["messages"][0])
    (resumed,) = tool_results(posts)
    assert resumed["response"]["kind"] == "spawn-agent", resumed
    assert resumed["response"]["agent_run_id"] == wire["response"]["agent_run_id"]

    # the host runs loom's agent as a sub-agent in the sandbox copy (outside the project): `loom setup` allowed
    # that folder, so the sub-agent's edit there is permitted (acceptEdits: as in the project itself), while
    # an edit anywhere else outside the project is still refused
    workdir = Path(wire["response"]["spawn_request"]["extras"]["workdir"])
    assert workdir.is_dir() and not workdir.is_relative_to(project)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    t1 = time.monotonic()
    result, posts = ask_claude(claude_bin, project, env, "run loom's agent", {
        "name": "Agent", "input": {"description": "loom classifier", "subagent_type": "general-purpose",
                                   "prompt": "LOOM-SUBAGENT: work under the sandbox"}}, log,
        args=("--permission-mode", "acceptEdits"), scripts=({"match": "LOOM-SUBAGENT", "reply": "edited", "tool_calls": [
            {"name": "Write", "input": {"file_path": str(workdir / "GREETING.md"), "content": "hello\n"}},
            {"name": "Write", "input": {"file_path": str(elsewhere / "x.md"), "content": "no\n"}}]},))
    assert (workdir / "GREETING.md").read_text() == "hello\n"  # the sub-agent's edit landed in the sandbox
    assert not (elsewhere / "x.md").exists()
    assert [d["tool_input"]["file_path"] for d in result["permission_denials"]] == [str(elsewhere / "x.md")]
    assert any("LOOM-SUBAGENT" in json.dumps(b["messages"][:1]) for b in posts)  # it was the sub-agent asking
    print(f"claude -p /task: {elapsed:.1f}s; sub-agent edit: {time.monotonic() - t1:.1f}s")


def test_the_guard_hook_stops_claude_code_deleting_the_store(tmp_path, project, claude_bin):
    """`loom setup --project --hooks`: when the model asks Claude Code to `rm .loom/state.db` (and Bash is
    allowed), the registered PreToolUse guard denies it; the store survives and the model is told why."""
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path)}
    assert run_loom("setup", "--project", "--hooks", cwd=project, env=env).returncode == 0
    assert run_loom("init", cwd=project, env=env).returncode == 0
    store = project / ".loom" / "state.db"
    store.write_bytes(b"precious")
    log = tmp_path / "requests.jsonl"
    stub, url = start_stub(log, {"name": "Bash", "input": {"command": "rm .loom/state.db"}})
    try:
        cc = subprocess.run([claude_bin, "-p", "tidy up", "--output-format", "json", "--allowedTools", "Bash"],
                            cwd=project, capture_output=True, text=True, timeout=180,
                            env={**os.environ, **env, "ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": "test",
                                 "DISABLE_TELEMETRY": "1", "DISABLE_AUTOUPDATER": "1",
                                 "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"})
    finally:
        stub.terminate()
        stub.wait(timeout=10)
    assert cc.returncode == 0, (cc.stdout[-2000:], cc.stderr[-2000:])
    assert store.read_bytes() == b"precious"
    results = [b for line in log.read_text().splitlines() for m in (json.loads(line).get("body") or {}).get(
        "messages", []) if m["role"] == "user" and isinstance(m["content"], list) for b in m["content"]
        if b.get("type") == "tool_result"]
    assert results and "pipeline_recover" in json.dumps(results[-1]), results
