"""Real backends against local servers that speak their wire protocol (no internet).

A whole task on the Anthropic API through loom's native file-editing loop edits real files in
the sandbox and lands on ``loom/<task>``; fallback chains move on when a backend refuses and say
why in the transcript; rate limits are waited out as the server asks.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from loom_core.agents.backends import BackendRouter, Resolver
from loom_core.agents.executors import ExecResult
from loom_core.config.settings import LoomSettings
from loom_core.errors import ConfigError, ExecutorError
from loom_core.kernel.types import Intent
from tests.conftest import ROOT, run_loom
from tests.support.git import branch_files, make_repo, user_side

REPLY = json.dumps({"verdict": "APPROVE", "summary_line": "fine", "findings": [], "answer": "ok"})


def _start(script: str, *args: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "support" / script), "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    url = next(tok for tok in line.split() if tok.startswith("http"))
    return proc, url.rstrip("/")


@pytest.fixture
def anthropic_stub():
    proc, url = _start("anthropic_stub.py", "--reply", REPLY, "--tool-call",
                       json.dumps({"name": "read_file", "input": {"path": "app/core.py"}}), "--tool-call",
                       json.dumps({"name": "edit_file", "input": {"path": "app/core.py", "old_string": "return 1",
                                                                   "new_string": "return 2"}}))
    yield url
    proc.terminate()
    proc.wait(5)


def test_whole_task_through_the_native_tool_loop_lands_on_a_loom_branch(tmp_path, anthropic_stub):
    proj = tmp_path / "app"
    make_repo(proj, {"app/__init__.py": "", "app/core.py": "def f():\n    return 1\n"})
    before = user_side(proj)
    home = tmp_path / "home"
    env = {"LOOM_HOME": str(home), "TMPDIR": str(tmp_path), "ANTHROPIC_API_KEY": "sk-test-key-123456",
           "LOOM_PROVIDERS__ANTHROPIC__BASE_URL": anthropic_stub, "PATH": "/usr/bin:/bin"}
    proc = run_loom("run", "make", "f", "return", "2", "--backend", "anthropic", "--fast", "--policy", "auto",
                    cwd=proj, env=env, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "done — accepted" in proc.stdout
    st = json.loads(run_loom("status", "--json", cwd=proj, env=env).stdout)
    files = branch_files(proj, f"loom/{st['task_id']}")
    assert files["app/core.py"] == "def f():\n    return 2\n"
    assert user_side(proj) == before
    assert "edit_file app/core.py" in proc.stdout  # the tool calls were shown live
    assert st["tokens"]["in"] > 0


class _Failing:
    name, label, idempotent = "x", "failing", True

    def __init__(self, exc: ExecutorError) -> None:
        self.exc = exc
        self.calls = 0

    def execute(self, intent, cancel, log):
        self.calls += 1
        raise self.exc


class _Ok:
    name, label, idempotent = "y", "ok", True

    def execute(self, intent, cancel, log):
        return ExecResult(output=f"done by {intent.model}")


def _dispatcher(settings: LoomSettings, executors: dict[str, object], **kw) -> BackendRouter:
    resolver = Resolver(settings, secrets=_NoSecrets())
    resolver.executor = lambda backend, agentic: executors[backend]  # type: ignore[method-assign]
    resolver.usable = lambda backend: (True, "test")  # type: ignore[method-assign]
    return BackendRouter("anthropic", resolver, **kw)


class _NoSecrets:
    def get(self, name):
        return None


def test_fallback_chain_moves_on_and_records_why():
    from loom_core.errors import ProviderRateLimited

    settings = LoomSettings(models={"planner": "anthropic:opus"}, fallbacks={"planner": ["openrouter:qwen/qwen3"]})
    failing = _Failing(ProviderRateLimited("429 too many requests", retry_after=30))
    d = _dispatcher(settings, {"anthropic": failing, "openrouter": _Ok()})
    logs: list[str] = []
    import threading

    res = d.execute(Intent("planner", "ar-1", "planning", "sonnet", "plan it"), threading.Event(), logs.append)
    assert res.output == "done by qwen/qwen3"
    assert res.attempts and res.attempts[0]["code"] == "EXECUTOR_RATE_LIMITED"
    assert res.attempts[0]["model"] == "claude-opus-4-5"
    assert any("falling back to OpenRouter" in line for line in logs)
    assert failing.calls == 1


def test_rate_limit_without_a_fallback_waits_as_asked():
    import threading

    from loom_core.errors import ProviderRateLimited

    slept: list[float] = []

    class Once:
        name, label, idempotent = "a", "a", True
        calls = 0

        def execute(self, intent, cancel, log):
            Once.calls += 1
            if Once.calls == 1:
                raise ProviderRateLimited("slow down", retry_after=2.5)
            return ExecResult(output="ok")

    d = _dispatcher(LoomSettings(), {"anthropic": Once()}, sleep=slept.append)
    res = d.execute(Intent("planner", "ar-1", "planning", "sonnet", "p"), threading.Event(), lambda _l: None)
    assert res.output == "ok" and slept == [2.5] and Once.calls == 2


def test_auth_failure_without_fallback_is_a_clear_error():
    import threading

    from loom_core.errors import ProviderAuthError

    d = _dispatcher(LoomSettings(), {"anthropic": _Failing(ProviderAuthError("invalid x-api-key"))})
    with pytest.raises(ExecutorError) as info:
        d.execute(Intent("planner", "ar-1", "planning", "sonnet", "p"), threading.Event(), lambda _l: None)
    assert info.value.code == "EXECUTOR_AUTH_FAILED"


def test_auto_without_anything_configured_refuses_and_never_picks_demo(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    monkeypatch.delenv("OLLAMA_HOST", raising=False)
    resolver = Resolver(LoomSettings(), secrets=_NoSecrets())
    with pytest.raises(ConfigError) as info:
        BackendRouter("auto", resolver)
    assert "--backend demo" in str(info.value)


SECRET = "sk-ant-test-0123456789abcdefSECRET"


def test_a_stored_secret_never_appears_in_files_logs_status_or_config(tmp_path):
    reply = json.dumps({"verdict": "APPROVE", "summary_line": f"the key {SECRET} works", "findings": [],
                        "answer": f"use {SECRET}"})
    stub, url = _start("anthropic_stub.py", "--reply", reply, "--tool-call",
                       json.dumps({"name": "write_file", "input": {"path": "notes.txt",
                                                                    "content": f"token={SECRET}\n"}}))
    try:
        proj = tmp_path / "app"
        make_repo(proj, {"app.py": "x = 1\n"})
        env = {"LOOM_HOME": str(tmp_path / "home"), "TMPDIR": str(tmp_path), "PATH": "/usr/bin:/bin",
               "LOOM_PROVIDERS__ANTHROPIC__BASE_URL": url}
        outputs = []
        p = run_loom("secrets", "set", "anthropic", SECRET, cwd=proj, env=env)
        assert p.returncode == 0 and SECRET not in p.stdout + p.stderr
        for args in (["secrets", "list"], ["config", "get"], ["config", "get", "providers.anthropic.api_key"],
                     ["run", "record", "the", "token", "--backend", "anthropic", "--fast", "--policy", "auto"],
                     ["status"], ["status", "--json"], ["history"]):
            proc = run_loom(*args, cwd=proj, env=env, timeout=120)
            outputs.append(proc.stdout + proc.stderr)
        assert "done — accepted" in outputs[3], outputs[3]
        for text in outputs:
            assert SECRET not in text
        scanned = 0
        for root in (proj / ".loom", tmp_path / "home"):
            for f in root.rglob("*"):
                if f.is_file() and f.name != "secrets.json":
                    scanned += 1
                    assert SECRET.encode() not in f.read_bytes(), f
        assert scanned >= 3
        # the secret store itself is private
        store = tmp_path / "home" / "secrets.json"
        assert store.exists() and (store.stat().st_mode & 0o777) == 0o600
    finally:
        stub.terminate()
        stub.wait(5)


def test_fallback_during_a_task_is_recorded_in_the_transcript(tmp_path):
    import httpx

    orouter, or_url = _start("openrouter_stub.py", "--reply", REPLY)
    anth, an_url = _start("anthropic_stub.py", "--reply", REPLY, "--tool-call",
                          json.dumps({"name": "write_file", "input": {"path": "CHANGELOG.md", "content": "- f\n"}}))
    try:
        httpx.post(or_url.rsplit("/api/v1", 1)[0] + "/_stub/fault", json={"fault": "429", "times": 20})
        proj = tmp_path / "app"
        make_repo(proj, {"app.py": "x = 1\n"})
        env = {"LOOM_HOME": str(tmp_path / "home"), "TMPDIR": str(tmp_path), "PATH": "/usr/bin:/bin",
               "ANTHROPIC_API_KEY": "sk-a-123456", "OPENROUTER_API_KEY": "sk-or-123456",
               "LOOM_PROVIDERS__ANTHROPIC__BASE_URL": an_url, "LOOM_PROVIDERS__OPENROUTER__BASE_URL": or_url}
        assert run_loom("models", "set", "implementer", "openrouter:qwen/qwen3-coder", cwd=proj, env=env).returncode == 0
        assert run_loom("config", "set", "fallbacks.implementer", "anthropic:sonnet", cwd=proj, env=env).returncode == 0
        proc = run_loom("run", "add", "a", "changelog", "--backend", "anthropic", "--fast", "--policy", "auto",
                        cwd=proj, env=env, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "falling back to Anthropic API" in proc.stdout
        import sqlite3

        conn = sqlite3.connect(proj / ".loom" / "state.db")
        delivered = "agent = 'implementer' AND agent_run_id NOT LIKE '%#failed-%'"
        usage = json.loads(conn.execute(f"SELECT usage FROM transcripts WHERE {delivered}").fetchone()[0])
        model = conn.execute(f"SELECT model FROM transcripts WHERE {delivered}").fetchone()[0]
        failed = conn.execute("SELECT model, usage FROM transcripts WHERE agent = 'implementer' AND "
                              "agent_run_id LIKE '%#failed-%'").fetchall()
        conn.close()
        assert usage["attempts"][0]["backend"] == "openrouter"
        assert usage["attempts"][0]["code"] == "EXECUTOR_RATE_LIMITED"
        assert "sonnet" in model
        # the failed attempt is kept (and billed) as a row of its own
        assert len(failed) == 1 and "qwen" in failed[0][0] and json.loads(failed[0][1])["failed"] is True
    finally:
        for p in (orouter, anth):
            p.terminate()
            p.wait(5)
