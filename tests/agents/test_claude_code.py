"""ClaudeCodeExecutor: fake ``claude`` scripts for every failure path, then the real CLI against the
local Anthropic stub (``tests/support/anthropic_stub.py``)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from loom_core.agents.executors.claude_code import (
    ClaudeCodeExecutor,
    classify_failure,
    excerpt,
    group_alive,
    is_rate_limited,
    permanent_failure,
)
from loom_core.errors import ExecutorError
from loom_core.kernel.types import Intent

STUB = Path(__file__).resolve().parent.parent / "support" / "anthropic_stub.py"


# ---------------------------------------------------------------------------- helpers

def make_fake(tmp_path: Path, body: str, name: str = "claude") -> Path:
    """A fake ``claude``: records argv, cwd, stdin and one env var to ``calls.json`` next to itself,
    then runs ``body`` (which may use ``emit(obj)``, ``ROOT`` and ``HERE``)."""
    path = tmp_path / "bin" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!{sys.executable}\n" + textwrap.dedent("""\
        import json, os, signal, subprocess, sys, time
        from pathlib import Path
        HERE = Path(__file__).resolve().parent
        if sys.argv[1:] == ["--version"]:
            print("9.9.9 (Claude Code)")
            sys.exit(0)
        prompt = sys.stdin.read()
        ROOT = os.getcwd()
        (HERE / "calls.json").write_text(json.dumps({"argv": sys.argv[1:], "cwd": ROOT, "stdin": prompt,
                                                     "marker": os.environ.get("LOOM_FAKE_MARKER")}))
        def emit(obj):
            print(json.dumps(obj), flush=True)
        """) + textwrap.dedent(body), encoding="utf-8")
    path.chmod(0o755)
    return path


def calls(fake: Path) -> dict:
    return json.loads((fake.parent / "calls.json").read_text())


def intent(workdir: Path, *, model: str = "claude-sonnet-4-5", system: str | None = "Be careful.",
           prompt: str = "Fix the discount bug.\nSecret-free prompt on stdin.", edits: bool = True) -> Intent:
    return Intent(agent="implementer" if edits else "logic-reviewer", agent_run_id="run-1", phase="implement",
                  model=model, prompt=prompt, system_prompt=system,
                  extras={"workdir": str(workdir), "edits_files": True} if edits else {"workdir": str(workdir)})


def run(exe: ClaudeCodeExecutor, workdir: Path, cancel: threading.Event | None = None, **kw):
    logs: list[str] = []
    res = exe.execute(intent(workdir, **kw), cancel or threading.Event(), logs.append)
    return res, logs


def fail(exe: ClaudeCodeExecutor, workdir: Path, cancel: threading.Event | None = None, **kw) -> ExecutorError:
    logs: list[str] = []
    with pytest.raises(ExecutorError) as info:
        exe.execute(intent(workdir, **kw), cancel or threading.Event(), logs.append)
    info.value.logs = logs
    return info.value


def pid_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2:].split()[0] not in ("Z", "X")


@pytest.fixture
def workdir(tmp_path) -> Path:
    w = tmp_path / "work"
    (w / "shop").mkdir(parents=True)
    (w / "shop" / "pricing.py").write_text("def apply_discount(p, d):\n    return p\n")
    return w


SUCCESS = """
emit({"type": "system", "subtype": "init", "cwd": ROOT, "session_id": "s1", "model": "claude-sonnet-4-5",
      "permissionMode": "acceptEdits", "claude_code_version": "9.9.9", "tools": ["Read", "Edit", "Write"]})
emit({"type": "assistant", "message": {"model": "claude-sonnet-4-5", "content": [
    {"type": "text", "text": "Let me look at the pricing module. " + "x" * 300},
    {"type": "tool_use", "id": "t1", "name": "Read", "input": {"file_path": ROOT + "/shop/pricing.py"}}]}})
emit({"type": "user", "message": {"role": "user", "content": [
    {"type": "tool_result", "tool_use_id": "t1", "content": "def apply_discount..."}]}})
emit({"type": "assistant", "message": {"model": "claude-sonnet-4-5", "content": [
    {"type": "tool_use", "id": "t2", "name": "Edit", "input": {"file_path": ROOT + "/shop/pricing.py",
                                                                "old_string": "a", "new_string": "b"}}]}})
emit({"type": "user", "message": {"role": "user", "content": [
    {"type": "tool_result", "tool_use_id": "t2", "content": "ok"}]}, "tool_use_result": {"type": "update"}})
emit({"type": "assistant", "message": {"model": "claude-sonnet-4-5", "content": [
    {"type": "tool_use", "id": "t3", "name": "Write", "input": {"file_path": ROOT + "/tests/test_new.py",
                                                                 "content": "x"}},
    {"type": "tool_use", "id": "t4", "name": "Bash", "input": {"command": "python -m pytest -q"}}]}})
emit({"type": "user", "message": {"role": "user", "content": [
    {"type": "tool_result", "tool_use_id": "t3", "content": "created"}]},
    "tool_use_result": {"type": "create", "filePath": ROOT + "/tests/test_new.py"}})
emit({"type": "user", "message": {"role": "user", "content": [
    {"type": "tool_result", "tool_use_id": "t4", "is_error": True, "content": "pytest: command not found"}]}})
emit({"type": "result", "subtype": "success", "is_error": False, "api_error_status": None,
      "duration_ms": 4321, "num_turns": 4, "result": "## Report\\nFixed apply_discount.",
      "session_id": "s1", "total_cost_usd": 0.0123,
      "usage": {"input_tokens": 1200, "output_tokens": 340, "cache_read_input_tokens": 5000,
                "cache_creation_input_tokens": 800},
      "modelUsage": {"claude-haiku-4-5": {"outputTokens": 5}, "claude-sonnet-4-5": {"outputTokens": 335}},
      "permission_denials": [{"tool_name": "Write", "tool_use_id": "t9",
                              "tool_input": {"file_path": ROOT + "/.env", "content": "x"}}]})
"""


# ---------------------------------------------------------------------------- pure classifiers

@pytest.mark.parametrize("text,status,raw,code", [
    ("API Error: 429 rate_limit_error", None, False, "EXECUTOR_RATE_LIMITED"),
    ("whatever", 429, False, "EXECUTOR_RATE_LIMITED"),
    ("Claude AI usage limit reached|1700000000", None, False, "EXECUTOR_RATE_LIMITED"),
    ("You've hit your session limit · resets 5pm", None, False, "EXECUTOR_RATE_LIMITED"),
    ("You've hit your weekly limit", None, False, "EXECUTOR_RATE_LIMITED"),
    ("You've hit your Opus limit", None, False, "EXECUTOR_RATE_LIMITED"),
    ("429 Too Many Requests", None, True, "EXECUTOR_RATE_LIMITED"),
    ("quota exceeded for this organisation", None, False, "EXECUTOR_RATE_LIMITED"),
    ("error 429", None, False, "EXECUTOR_RATE_LIMITED"),
    ("error 429", None, True, "EXECUTOR_FAILED"),                     # never a bare 429 in raw stdout
    ("API Error: 529 overloaded_error", None, False, "EXECUTOR_FAILED"),  # not inside an envelope
    ("Overloaded", None, True, "EXECUTOR_RATE_LIMITED"),
    ("There's an issue with the selected model (claude-x). It may not exist", 404, False,
     "EXECUTOR_INVALID_MODEL"),
    ("invalid model: claude-nope", None, False, "EXECUTOR_INVALID_MODEL"),
    ("Unknown model 'foo'", None, False, "EXECUTOR_INVALID_MODEL"),
    ("unsupported model", None, False, "EXECUTOR_INVALID_MODEL"),
    ('404 {"type":"not_found_error","message":"model: claude-nope"}', 404, False, "EXECUTOR_INVALID_MODEL"),
    ("Invalid API key · Please run /login", None, False, "EXECUTOR_AUTH_FAILED"),
    ("authentication_error: invalid x-api-key", None, False, "EXECUTOR_AUTH_FAILED"),
    ("Authentication failed", None, False, "EXECUTOR_AUTH_FAILED"),
    ("401 Unauthorized", None, False, "EXECUTOR_AUTH_FAILED"),
    ("Not authenticated", None, False, "EXECUTOR_AUTH_FAILED"),
    ("Credit balance is too low", None, False, "EXECUTOR_AUTH_FAILED"),
    ("insufficient_quota", None, False, "EXECUTOR_AUTH_FAILED"),
    ("Error: connect ECONNREFUSED 127.0.0.1:1", None, False, "EXECUTOR_FAILED"),
    ("", None, False, "EXECUTOR_FAILED"),
])
def test_classify_failure(text, status, raw, code):
    assert classify_failure(text, status, raw=raw) == code


def test_classifier_helpers():
    assert is_rate_limited(None) is False
    assert permanent_failure(None) is None
    assert permanent_failure("all good") is None
    line = excerpt("a\n" * 5000, 20, 20)
    assert "\n" not in line and " … " in line and len(line) < 60
    assert excerpt("short\ntext") == "short text"


# ---------------------------------------------------------------------------- fake CLI: success

def test_success_stream(tmp_path, workdir):
    fake = make_fake(tmp_path, SUCCESS)
    exe = ClaudeCodeExecutor(str(fake), max_turns=7, env={"LOOM_FAKE_MARKER": "from-env"})
    res, logs = run(exe, workdir)

    assert res.output == "## Report\nFixed apply_discount."
    u = res.usage
    assert (u.tokens_in, u.tokens_out, u.tokens_cached, u.cache_write) == (1200, 340, 5000, 800)
    assert u.cost_usd == pytest.approx(0.0123)
    assert (u.num_turns, u.duration_ms) == (4, 4321)
    assert res.model == "claude-sonnet-4-5"
    assert res.files_modified == ("shop/pricing.py",)
    assert res.files_created == ("tests/test_new.py",)

    assert logs[0] == "session started: Claude Code 9.9.9, model claude-sonnet-4-5, permission mode acceptEdits"
    assert "Read shop/pricing.py" in logs
    assert "Edit shop/pricing.py" in logs
    assert "Write tests/test_new.py" in logs
    assert "Bash python -m pytest -q" in logs
    text = [x for x in logs if x.startswith("Let me look")]
    assert len(text) == 1 and len(text[0]) <= 120
    assert any(x.startswith("tool error: pytest: command not found") for x in logs)
    assert any(x.startswith("permission denied (1): Write .env") for x in logs)

    c = calls(fake)
    assert c["argv"] == ["-p", "--output-format", "stream-json", "--verbose", "--permission-mode", "acceptEdits",
                         "--model", "claude-sonnet-4-5", "--append-system-prompt", "Be careful.",
                         "--max-turns", "7"]
    assert "--bare" not in c["argv"]
    assert c["stdin"] == "Fix the discount bug.\nSecret-free prompt on stdin."
    assert Path(c["cwd"]) == workdir.resolve()
    assert c["marker"] == "from-env"


def test_default_model_and_no_system_prompt(tmp_path, workdir):
    fake = make_fake(tmp_path, """
        emit({"type": "result", "subtype": "success", "is_error": False, "result": "ok", "usage": {}})
        """)
    res, _ = run(ClaudeCodeExecutor(str(fake), permission_mode="plan"), workdir, model="default", system=None)
    assert res.output == "ok"
    assert res.usage.cost_usd is None   # unreported: never a fake zero
    assert res.model is None
    assert calls(fake)["argv"] == ["-p", "--output-format", "stream-json", "--verbose", "--permission-mode", "plan"]


def test_read_only_role_gets_read_tools_only(tmp_path, workdir):
    """An agent without ``edits_files`` never runs in acceptEdits: only Read/Grep/Glob exist, edits and Bash
    are denied."""
    fake = make_fake(tmp_path, """
        emit({"type": "result", "subtype": "success", "is_error": False, "result": "ok", "usage": {}})
        """)
    run(ClaudeCodeExecutor(str(fake)), workdir, edits=False)
    argv = calls(fake)["argv"]
    assert "acceptEdits" not in argv
    assert argv[argv.index("--permission-mode") + 1] == "default"
    assert argv[argv.index("--tools") + 1] == "Read,Grep,Glob"
    assert set(argv[argv.index("--disallowedTools") + 1].split(",")) >= {"Edit", "Write", "Bash"}
    assert "--strict-mcp-config" in argv and "--mcp-config" not in argv


def test_binary_from_environment(tmp_path, workdir, monkeypatch):
    fake = make_fake(tmp_path, """
        emit({"type": "result", "is_error": False, "result": "via env"})
        """)
    monkeypatch.setenv("LOOM_CLAUDE_BIN", str(fake))
    assert ClaudeCodeExecutor().binary == str(fake)
    res, _ = run(ClaudeCodeExecutor(), workdir)
    assert res.output == "via env"


def test_binary_found_on_path_from_env(tmp_path, workdir):
    fake = make_fake(tmp_path, """
        emit({"type": "result", "is_error": False, "result": "via PATH"})
        """, name="claude-fake")
    exe = ClaudeCodeExecutor("claude-fake", env={"PATH": f"{fake.parent}{os.pathsep}{os.environ['PATH']}"})
    assert run(exe, workdir)[0].output == "via PATH"


# ---------------------------------------------------------------------------- fake CLI: failures

def test_missing_binary(tmp_path, workdir):
    err = fail(ClaudeCodeExecutor(str(tmp_path / "nope" / "claude")), workdir)
    assert err.code == "EXECUTOR_NOT_FOUND"
    assert "npm" in str(err)
    err = fail(ClaudeCodeExecutor("definitely-not-a-claude-binary"), workdir)
    assert err.code == "EXECUTOR_NOT_FOUND"


def test_available(tmp_path):
    fake = make_fake(tmp_path, "")
    ok, version = ClaudeCodeExecutor.available(str(fake))
    assert ok and version == "9.9.9 (Claude Code)"
    fake.unlink()
    assert ClaudeCodeExecutor.available(str(fake)) == (True, "9.9.9 (Claude Code)")  # cached
    ok, why = ClaudeCodeExecutor.available(str(tmp_path / "missing"))
    assert not ok and "not found" in why


def test_nonzero_exit_auth_error(tmp_path, workdir):
    fake = make_fake(tmp_path, """
        print("Invalid API key · Please run /login", file=sys.stderr)
        sys.exit(1)
        """)
    err = fail(ClaudeCodeExecutor(str(fake)), workdir)
    assert err.code == "EXECUTOR_AUTH_FAILED"
    assert "exited with code 1" in str(err) and "Invalid API key" in str(err)


def test_envelope_is_error_auth(tmp_path, workdir):
    fake = make_fake(tmp_path, """
        emit({"type": "result", "subtype": "success", "is_error": True, "api_error_status": 401,
              "result": "Invalid API key · Fix external API key"})
        sys.exit(1)
        """)
    err = fail(ClaudeCodeExecutor(str(fake)), workdir)
    assert err.code == "EXECUTOR_AUTH_FAILED"


def test_envelope_invalid_model(tmp_path, workdir):
    # the wording Claude Code 2.1.197 prints when the API answers 404 for the model
    fake = make_fake(tmp_path, """
        emit({"type": "result", "subtype": "success", "is_error": True, "api_error_status": 404,
              "result": "There's an issue with the selected model (claude-nope). It may not exist or you may "
                        "not have access to it. Run --model to pick a different model."})
        sys.exit(1)
        """)
    assert fail(ClaudeCodeExecutor(str(fake)), workdir).code == "EXECUTOR_INVALID_MODEL"


def test_envelope_is_error_other(tmp_path, workdir):
    fake = make_fake(tmp_path, """
        emit({"type": "result", "subtype": "error_during_execution", "is_error": True,
              "result": "API Error: 529 overloaded_error"})
        sys.exit(1)
        """)
    err = fail(ClaudeCodeExecutor(str(fake)), workdir)
    assert err.code == "EXECUTOR_FAILED"   # 5xx / overloaded inside an envelope is not a rate limit
    assert "529" in str(err)


@pytest.mark.parametrize("body", [
    """emit({"type": "result", "is_error": True, "api_error_status": 429, "result": "API Error"})""",
    """emit({"type": "result", "is_error": True, "result": "You've hit your session limit · resets 3pm"})
    sys.exit(1)""",
    """print("Overloaded", flush=True)
    sys.exit(1)""",
    """print("Claude AI usage limit reached|1760000000", file=sys.stderr)
    sys.exit(1)""",
])
def test_rate_limited(tmp_path, workdir, body):
    err = fail(ClaudeCodeExecutor(str(make_fake(tmp_path, body))), workdir)
    assert err.code == "EXECUTOR_RATE_LIMITED"


def test_success_mentioning_rate_limit_is_success(tmp_path, workdir):
    fake = make_fake(tmp_path, """
        emit({"type": "result", "is_error": False, "result": "Added a rate limit (429 Too Many Requests)."})
        """)
    assert "rate limit" in run(ClaudeCodeExecutor(str(fake)), workdir)[0].output


def test_raw_bare_429_is_not_a_rate_limit(tmp_path, workdir):
    fake = make_fake(tmp_path, """
        print("error 429", flush=True)
        sys.exit(2)
        """)
    err = fail(ClaudeCodeExecutor(str(fake)), workdir)
    assert err.code == "EXECUTOR_FAILED" and "code 2" in str(err)


def test_garbage_output(tmp_path, workdir):
    fake = make_fake(tmp_path, """
        print("hello, I am not JSON")
        emit({"type": "system", "subtype": "init", "model": "m"})
        """)
    err = fail(ClaudeCodeExecutor(str(fake)), workdir)
    assert err.code == "EXECUTOR_OUTPUT_INVALID"
    assert "hello, I am not JSON" in str(err)
    assert "hello, I am not JSON" in err.logs


def test_crash_message_has_head_and_tail(tmp_path, workdir):
    fake = make_fake(tmp_path, """
        for i in range(3000):
            print(f"line {i} of a long crash", flush=False)
        print("FINAL WORDS", file=sys.stderr)
        sys.exit(3)
        """)
    err = fail(ClaudeCodeExecutor(str(fake)), workdir)
    msg = str(err)
    assert err.code == "EXECUTOR_FAILED"
    assert "\n" not in err.message and len(msg) < 3300
    assert "line 0 of a long crash" in msg and "FINAL WORDS" in msg and " … " in msg
    assert err.detail["exit_code"] == 3


def test_result_not_a_string(tmp_path, workdir):
    fake = make_fake(tmp_path, """
        emit({"type": "result", "subtype": "success", "is_error": False, "result": None})
        """)
    assert fail(ClaudeCodeExecutor(str(fake)), workdir).code == "EXECUTOR_OUTPUT_INVALID"


def test_missing_workdir(tmp_path):
    fake = make_fake(tmp_path, "")
    with pytest.raises(ExecutorError) as info:
        ClaudeCodeExecutor(str(fake)).execute(intent(tmp_path / "gone"), threading.Event(), print)
    assert "workdir" in str(info.value)
    bare = Intent(agent="implementer", agent_run_id="r", phase="p", model="m", prompt="x")
    with pytest.raises(ExecutorError, match="no workdir"):
        ClaudeCodeExecutor(str(fake)).execute(bare, threading.Event(), print)
    assert not (fake.parent / "calls.json").exists()


# ---------------------------------------------------------------------------- timeouts, cancel

HANG = """
child = subprocess.Popen(["sleep", "60"])
(HERE / "pids").write_text(f"{os.getpid()} {child.pid}")
emit({"type": "system", "subtype": "init", "model": "m"})
%s
time.sleep(60)
"""


def wait_pids(fake: Path) -> list[int]:
    f = fake.parent / "pids"
    for _ in range(100):
        if f.exists() and f.read_text():
            return [int(x) for x in f.read_text().split()]
        time.sleep(0.05)
    raise AssertionError("the fake never started")


def assert_group_gone(fake: Path) -> None:
    pids = wait_pids(fake)
    for pid in pids:
        assert not pid_alive(pid), f"pid {pid} survived"
    assert not group_alive(pids[0])


def test_session_timeout_kills_group(tmp_path, workdir):
    fake = make_fake(tmp_path, HANG % "")
    t0 = time.monotonic()
    err = fail(ClaudeCodeExecutor(str(fake), session_timeout_s=1), workdir)
    assert err.code == "EXECUTOR_TIMEOUT"
    assert time.monotonic() - t0 < 5
    assert_group_gone(fake)


def test_sigterm_ignored_gets_sigkill(tmp_path, workdir):
    fake = make_fake(tmp_path, HANG % "signal.signal(signal.SIGTERM, signal.SIG_IGN)")
    exe = ClaudeCodeExecutor(str(fake), session_timeout_s=1)
    exe.kill_grace_s = 0.5
    t0 = time.monotonic()
    assert fail(exe, workdir).code == "EXECUTOR_TIMEOUT"
    assert 1.4 < time.monotonic() - t0 < 5
    assert_group_gone(fake)


def test_idle_timeout(tmp_path, workdir):
    fake = make_fake(tmp_path, HANG % "")
    t0 = time.monotonic()
    err = fail(ClaudeCodeExecutor(str(fake), session_timeout_s=30, idle_timeout_s=1), workdir)
    assert err.code == "EXECUTOR_IDLE_TIMEOUT"
    assert time.monotonic() - t0 < 5
    assert_group_gone(fake)
    assert err.logs == ["session started: Claude Code, model m"]


def test_steady_output_is_not_idle(tmp_path, workdir):
    fake = make_fake(tmp_path, """
        for i in range(6):
            emit({"type": "assistant", "message": {"content": [{"type": "text", "text": f"step {i}"}]}})
            time.sleep(0.3)
        emit({"type": "result", "is_error": False, "result": "done"})
        """)
    res, logs = run(ClaudeCodeExecutor(str(fake), idle_timeout_s=1), workdir)
    assert res.output == "done" and logs == [f"step {i}" for i in range(6)]


def test_cancel_kills_group(tmp_path, workdir):
    fake = make_fake(tmp_path, HANG % "")
    cancel = threading.Event()
    threading.Timer(0.7, cancel.set).start()
    t0 = time.monotonic()
    err = fail(ClaudeCodeExecutor(str(fake)), workdir, cancel=cancel)
    assert err.code == "EXECUTOR_ABORTED"
    assert time.monotonic() - t0 < 5
    assert_group_gone(fake)


def test_cancelled_before_start(tmp_path, workdir):
    fake = make_fake(tmp_path, HANG % "")
    cancel = threading.Event()
    cancel.set()
    assert fail(ClaudeCodeExecutor(str(fake)), workdir, cancel=cancel).code == "EXECUTOR_ABORTED"
    assert not (fake.parent / "calls.json").exists()


def test_leftover_background_process_is_stopped(tmp_path, workdir):
    fake = make_fake(tmp_path, """
        child = subprocess.Popen(["sleep", "60"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        (HERE / "pids").write_text(f"{os.getpid()} {child.pid}")
        emit({"type": "result", "is_error": False, "result": "done"})
        """)
    t0 = time.monotonic()
    assert run(ClaudeCodeExecutor(str(fake)), workdir)[0].output == "done"
    assert time.monotonic() - t0 < 5
    assert_group_gone(fake)


# ---------------------------------------------------------------------------- the real CLI

# the `claude_bin` fixture (the real CLI, installed once into the test cache): tests/support/claude_cli.py via conftest


@pytest.fixture
def stub(tmp_path):
    if not STUB.exists():
        pytest.skip("tests/support/anthropic_stub.py is missing")
    log = tmp_path / "requests.jsonl"
    proc = subprocess.Popen([sys.executable, str(STUB), "--port", "0", "--log", str(log),
                             "--reply", "done: {prompt}",
                             "--tool-call", '{"name":"Write","input":{"file_path":"hello.txt",'
                                            '"content":"hi from claude\\n"}}'],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:\d+", first)
        assert m, f"stub did not start: {first!r} {proc.stderr.read() if proc.poll() is not None else ''}"
        yield m.group(0), log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_real_claude_code_writes_a_file(tmp_path, claude_bin, stub):
    url, reqlog = stub
    home = tmp_path / "home"
    home.mkdir()
    work = tmp_path / "repo"
    work.mkdir()
    exe = ClaudeCodeExecutor(claude_bin, session_timeout_s=120, env={
        "HOME": str(home), "ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": "test",
        "DISABLE_TELEMETRY": "1", "DISABLE_AUTOUPDATER": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"})
    logs: list[str] = []
    it = Intent(agent="implementer", agent_run_id="run-real", phase="implement", model="default",
                prompt="Create hello.txt", system_prompt="LOOM-SYSTEM-MARKER",
                extras={"workdir": str(work), "edits_files": True})
    t0 = time.monotonic()
    res = exe.execute(it, threading.Event(), logs.append)
    elapsed = time.monotonic() - t0

    assert (work / "hello.txt").read_text() == "hi from claude\n"
    assert res.output == "done: Create hello.txt"
    assert res.files_created == ("hello.txt",)
    assert res.usage.tokens_in > 0 and res.usage.tokens_out > 0
    assert res.usage.cost_usd is not None and res.usage.cost_usd > 0
    assert res.usage.num_turns == 2 and res.usage.duration_ms is not None
    assert res.model
    assert "Write hello.txt" in logs
    assert logs[0].startswith("session started: Claude Code ")
    assert elapsed < 60

    bodies = [json.loads(line)["body"] for line in reqlog.read_text().splitlines()
              if json.loads(line).get("path", "").startswith("/v1/messages")]
    assert any("LOOM-SYSTEM-MARKER" in json.dumps(b.get("system")) for b in bodies)
    assert not (Path.home() / ".claude" / "projects" / str(work).replace("/", "-")).exists()
    assert (home / ".claude").exists()   # the CLI's state went to the throwaway HOME
