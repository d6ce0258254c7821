"""Direct providers against local stub servers (real SDK / httpx clients, loopback only).

Each stub (tests/support/{faulty_anthropic,openrouter_stub,ollama_stub}.py) runs as a subprocess
on 127.0.0.1 with a free port; faults are queued through its ``/_stub/fault`` endpoint.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest

from loom_core.agents.executors import ExecResult, Usage
from loom_core.agents.executors.provider_call import LineBuffer, ProviderExecutor
from loom_core.agents.providers import (
    OutputTruncated,
    ProviderAborted,
    ProviderAuthError,
    ProviderBadRequest,
    ProviderError,
    ProviderInvalidModel,
    ProviderNetworkError,
    ProviderOverloaded,
    ProviderRateLimited,
    ToolCall,
    make_provider,
    parse_retry_after,
)
from loom_core.agents.providers.anthropic import cost_usd, price_per_mtok
from loom_core.agents.providers.base import error_for_status
from loom_core.kernel.types import Intent

SUPPORT = Path(__file__).resolve().parent.parent / "support"
REPLY = "echo: {prompt}\nline two of the reply"
TOOL = {"name": "read_file", "input": {"path": "notes.txt"}}
TOOLS = [{"name": "read_file", "description": "Read a file of the project.",
          "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}]
SCRIPTS = {"anthropic": "faulty_anthropic.py", "openrouter": "openrouter_stub.py", "ollama": "ollama_stub.py"}
MODELS = {"anthropic": "claude-stub-1", "openrouter": "stub/tool-model", "ollama": "llama3.2:latest"}
NAMES = list(SCRIPTS)


@dataclass
class Stub:
    name: str
    url: str      # what the provider is given as its base URL
    root: str     # scheme://host:port, for the /_stub control endpoints

    def fault(self, fault: str, times: int = 1) -> None:
        r = httpx.post(f"{self.root}/_stub/fault", json={"fault": fault, "times": times}, timeout=5)
        r.raise_for_status()

    def clear(self) -> None:
        httpx.delete(f"{self.root}/_stub/fault", timeout=5).raise_for_status()
        httpx.delete(f"{self.root}/_stub/requests", timeout=5).raise_for_status()

    def requests(self, path_part: str = "") -> list[dict]:
        reqs = httpx.get(f"{self.root}/_stub/requests", timeout=5).json()["requests"]
        return [r for r in reqs if path_part in r["path"]]

    def provider(self, timeout: float = 10):
        if self.name == "ollama":
            return make_provider("ollama", host=self.url, timeout=timeout)
        return make_provider(self.name, api_key="test-key-123456", base_url=self.url, timeout=timeout)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture(scope="module")
def stubs(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("stub-logs")
    procs: dict[str, subprocess.Popen] = {}
    try:
        for name, script in SCRIPTS.items():
            args = [sys.executable, str(SUPPORT / script), "--port", "0", "--reply", REPLY,
                    "--tool-call", json.dumps(TOOL)]
            procs[name] = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=open(logdir / f"{name}.err", "w"),
                                           text=True)
        out = {}
        for name, proc in procs.items():
            line = proc.stdout.readline()
            m = re.search(r"http://\S+", line)
            assert m, f"{name} stub did not start: {line!r} {(logdir / f'{name}.err').read_text()}"
            url = m.group(0)
            root = re.match(r"http://[^/]+", url).group(0)
            assert root.startswith("http://127.0.0.1:")
            out[name] = Stub(name, url, root)
        yield out
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture(params=NAMES)
def stub(request, stubs) -> Stub:
    s = stubs[request.param]
    s.clear()
    return s


def chat(provider, name, messages=None, **kw):
    kw.setdefault("system", "You are terse.")
    kw.setdefault("tools", None)
    kw.setdefault("max_tokens", 256)
    return provider.chat(model=kw.pop("model", MODELS[name]),
                         messages=messages if messages is not None else [provider.user_message("hello")], **kw)


# ----------------------------------------------------------------------------------------- text


def test_text_non_streaming(stub):
    p = stub.provider()
    reply = chat(p, stub.name, idempotency_key="ar-run-1")
    assert reply.text == "echo: hello\nline two of the reply"
    assert reply.stop_reason == "end_turn" and reply.tool_calls == []
    assert reply.model == MODELS[stub.name]
    assert reply.usage.tokens_in > 0 and reply.usage.tokens_out > 0
    assert reply.raw_assistant["role"] == "assistant"
    (req,) = stub.requests("chat" if stub.name != "anthropic" else "/v1/messages")
    body = req["body"]
    assert body["max_tokens" if stub.name != "ollama" else "options"] in (256, {"num_predict": 256})
    if stub.name == "anthropic":
        assert req["headers"]["idempotency-key"] == "ar-run-1"
        assert body["system"] == [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}]
        assert reply.usage.cost_usd is None  # unknown model family: no fake zero
    elif stub.name == "openrouter":
        assert req["headers"]["idempotency-key"] == "ar-run-1"
        assert req["headers"]["authorization"].startswith("Bear")
        assert body["usage"] == {"include": True} and "stream" not in body
        assert body["messages"][0] == {"role": "system", "content": "You are terse."}
        assert reply.usage.cost_usd is not None and reply.usage.cost_usd > 0
    else:
        assert body["stream"] is False
        assert body["messages"][0] == {"role": "system", "content": "You are terse."}
        assert reply.usage.cost_usd is None


def test_text_streaming(stub):
    p = stub.provider()
    deltas: list[str] = []
    reply = chat(p, stub.name, on_text=deltas.append, idempotency_key="ar-run-2")
    assert len(deltas) > 1
    assert "".join(deltas) == reply.text == "echo: hello\nline two of the reply"
    assert reply.stop_reason == "end_turn"
    assert reply.usage.tokens_in > 0 and reply.usage.tokens_out > 0
    assert reply.usage.duration_ms is not None
    body = stub.requests("chat" if stub.name != "anthropic" else "/v1/messages")[0]["body"]
    assert body["stream"] is True
    if stub.name == "openrouter":
        assert reply.usage.cost_usd and reply.usage.cost_usd > 0


def test_anthropic_cost_from_price_table(stubs):
    stub = stubs["anthropic"]
    stub.clear()
    reply = chat(stub.provider(), "anthropic", model="claude-sonnet-4-6")
    u = reply.usage
    assert reply.model == "claude-sonnet-4-6"
    assert u.cost_usd == pytest.approx((u.tokens_in * 3 + u.tokens_out * 15) / 1e6)


# ------------------------------------------------------------------------------------ tool calls


@pytest.mark.parametrize("streaming", [False, True], ids=["json", "stream"])
def test_tool_call_round_trip(stub, streaming):
    p = stub.provider()
    on_text = (lambda _t: None) if streaming else None
    messages = [p.user_message("look at the notes")]
    first = chat(p, stub.name, messages, tools=TOOLS, on_text=on_text)
    assert first.stop_reason == "tool_use"
    assert len(first.tool_calls) == 1
    call = first.tool_calls[0]
    assert isinstance(call, ToolCall) and call.name == "read_file" and call.arguments == {"path": "notes.txt"}
    assert call.id
    messages.append(first.raw_assistant)
    messages.extend(p.tool_result_message([(call, "the notes say hi", False)]))
    second = chat(p, stub.name, messages, tools=TOOLS, on_text=on_text)
    assert second.stop_reason == "end_turn" and not second.tool_calls
    assert second.text.startswith("echo: ")

    reqs = stub.requests("chat" if stub.name != "anthropic" else "/v1/messages")
    assert len(reqs) == 2
    sent = reqs[1]["body"]
    if stub.name == "anthropic":
        assert reqs[0]["body"]["tools"] == TOOLS
        assert sent["messages"][1]["content"][0]["type"] == "tool_use"
        assert sent["messages"][2] == {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": call.id, "content": "the notes say hi"}]}
    else:
        fn = reqs[0]["body"]["tools"][0]
        assert fn["type"] == "function" and fn["function"]["name"] == "read_file"
        assert fn["function"]["parameters"] == TOOLS[0]["input_schema"]
        history = [m for m in sent["messages"] if m["role"] != "system"]
        assert history[1]["tool_calls"]
        assert history[2]["role"] == "tool" and history[2]["content"] == "the notes say hi"
        if stub.name == "openrouter":
            assert history[2]["tool_call_id"] == call.id
            assert json.loads(history[1]["tool_calls"][0]["function"]["arguments"]) == {"path": "notes.txt"}
        else:
            assert history[2]["tool_name"] == "read_file"


def test_tool_error_results_are_marked(stub):
    p = stub.provider()
    call = ToolCall(id="call_1", name="read_file", arguments={})
    (msg,) = p.tool_result_message([(call, "no such file", True)])
    if stub.name == "anthropic":
        assert msg["content"][0]["is_error"] is True
    else:
        assert msg["content"].startswith("ERROR:")


# ---------------------------------------------------------------------------------------- faults


@pytest.mark.parametrize("streaming", [False, True], ids=["json", "stream"])
def test_rate_limited_with_retry_after(stub, streaming):
    stub.fault("429")
    with pytest.raises(ProviderRateLimited) as info:
        chat(stub.provider(), stub.name, on_text=(lambda _t: None) if streaming else None)
    assert info.value.code == "EXECUTOR_RATE_LIMITED"
    assert info.value.retry_after == 1
    assert info.value.provider == stub.name and info.value.status == 429


@pytest.mark.parametrize("fault", ["529", "503"])
def test_overloaded(stub, fault):
    stub.fault(fault)
    with pytest.raises(ProviderOverloaded) as info:
        chat(stub.provider(), stub.name)
    assert info.value.code == "EXECUTOR_OVERLOADED"
    assert isinstance(info.value, ProviderRateLimited)  # a fallback chain moves on for it too
    assert info.value.retry_after == 1


def test_overloaded_mid_stream(stub):
    stub.fault("midstream-error")
    deltas: list[str] = []
    with pytest.raises(ProviderOverloaded):
        chat(stub.provider(), stub.name, on_text=deltas.append)
    assert deltas == ["partial "]


@pytest.mark.parametrize("fault", ["401", "403"])
def test_auth_failed(stub, fault):
    stub.fault(fault)
    with pytest.raises(ProviderAuthError) as info:
        chat(stub.provider(), stub.name)
    assert info.value.code == "EXECUTOR_AUTH_FAILED"


def test_openrouter_without_key_is_auth_failure(stubs):
    stub = stubs["openrouter"]
    p = make_provider("openrouter", api_key="", base_url=stub.url, timeout=10)
    with pytest.raises(ProviderAuthError):
        chat(p, "openrouter")


def test_anthropic_without_credentials_is_auth_failure(stubs, monkeypatch):
    for var in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    p = make_provider("anthropic", api_key=None, base_url=stubs["anthropic"].url, timeout=10)
    with pytest.raises(ProviderAuthError):
        chat(p, "anthropic")


def test_unknown_model(stub):
    stub.fault("model")
    with pytest.raises(ProviderInvalidModel) as info:
        chat(stub.provider(), stub.name, model="no-such-model")
    assert info.value.code == "EXECUTOR_INVALID_MODEL"
    assert isinstance(info.value, ProviderBadRequest)


def test_ollama_model_not_pulled(stubs):
    stub = stubs["ollama"]
    with pytest.raises(ProviderInvalidModel):
        chat(stub.provider(), "ollama", model="mistral:7b")


def test_server_error_is_transient(stub):
    stub.fault("500")
    with pytest.raises(ProviderError) as info:
        chat(stub.provider(), stub.name)
    assert info.value.code == "EXECUTOR_FAILED"


def test_dropped_stream_is_network_error(stub):
    stub.fault("drop")
    deltas: list[str] = []
    with pytest.raises(ProviderNetworkError) as info:
        chat(stub.provider(), stub.name, on_text=deltas.append)
    assert info.value.code == "EXECUTOR_NETWORK"
    assert deltas == ["partial "]


def test_dropped_connection_without_answer_is_network_error(stub):
    stub.fault("drop")
    with pytest.raises(ProviderNetworkError):
        chat(stub.provider(), stub.name)


def test_connection_refused_is_network_error(stub):
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}" + ("/api/v1" if stub.name == "openrouter" else "")
    p = Stub(stub.name, url, url).provider(timeout=5)
    with pytest.raises(ProviderNetworkError):
        chat(p, stub.name)


@pytest.mark.parametrize("streaming", [False, True], ids=["json", "stream"])
def test_truncated_output(stub, streaming):
    stub.fault("truncate")
    with pytest.raises(OutputTruncated) as info:
        chat(stub.provider(), stub.name, on_text=(lambda _t: None) if streaming else None)
    assert info.value.code == "EXECUTOR_OUTPUT_TRUNCATED"
    assert info.value.partial_text.startswith("cut off: ")
    assert info.value.reply.stop_reason == "max_tokens"


# ---------------------------------------------------------------------------------------- cancel


def test_not_started_when_cancelled(stub):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(ProviderAborted) as info:
        chat(stub.provider(), stub.name, cancel=cancel)
    assert info.value.code == "EXECUTOR_ABORTED"
    assert stub.requests("chat" if stub.name != "anthropic" else "/v1/messages") == []


def test_cancel_mid_stream(stub):
    stub.fault("slow")
    cancel = threading.Event()
    deltas: list[str] = []

    def on_text(t):
        deltas.append(t)
        cancel.set()

    started = time.monotonic()
    with pytest.raises(ProviderAborted):
        chat(stub.provider(), stub.name, on_text=on_text, cancel=cancel)
    assert len(deltas) == 1
    assert time.monotonic() - started < 3


# ---------------------------------------------------------------------------------------- models


def test_list_models(stub):
    p = stub.provider()
    models = p.list_models()
    if stub.name == "anthropic":
        assert models == ["claude-stub-1"]
    elif stub.name == "openrouter":
        assert models == ["stub/tool-model", "anthropic/claude-stub"]  # the plain model has no tools
        assert p.models_note == "showing 2 tool-capable of 3"
    else:
        assert models == ["llama3.2:latest", "qwen3:8b"]
    assert p.list_models() == models
    assert len(stub.requests("models" if stub.name != "ollama" else "/api/tags")) == 1  # cached


def test_list_models_errors(stubs):
    stub = stubs["openrouter"]
    stub.clear()
    stub.fault("429")
    with pytest.raises(ProviderRateLimited):
        stub.provider().list_models()
    a = stubs["anthropic"]
    a.clear()
    a.fault("401")
    from loom_core.agents.providers.anthropic import static_models

    fallback = a.provider().list_models()  # the static list when the API cannot say
    assert fallback == static_models() and fallback
    assert all(m.startswith("claude-") for m in fallback)


# ------------------------------------------------------------------------------------- executor


def _intent(**kw) -> Intent:
    base = dict(agent="spec-writer", agent_run_id="ar-0001", phase="spec", model="", prompt="write it",
                system_prompt="Be brief.")
    base.update(kw)
    return Intent(**base)


def test_provider_executor_end_to_end(stub):
    ex = ProviderExecutor(stub.provider(), label=f"{stub.name} (stub)", max_tokens=300)
    lines: list[str] = []
    model = f"{stub.name}:{MODELS[stub.name]}"  # a family-prefixed reference is accepted
    result = ex.execute(_intent(model=model), threading.Event(), lines.append)
    assert isinstance(result, ExecResult)
    assert result.output == "echo: write it\nline two of the reply"
    assert lines == ["echo: write it", "line two of the reply"]
    assert result.model == MODELS[stub.name]
    assert result.usage.tokens_in > 0 and result.usage.tokens_out > 0
    assert result.usage.duration_ms is not None and result.usage.num_turns == 1
    assert result.files_modified == () and result.files_created == ()
    if stub.name == "openrouter":
        assert result.usage.cost_usd and result.usage.cost_usd > 0
    else:
        assert result.usage.cost_usd is None
    (req,) = stub.requests("chat" if stub.name != "anthropic" else "/v1/messages")
    assert "tools" not in req["body"]
    if stub.name != "ollama":
        assert req["headers"]["idempotency-key"] == "ar-0001"
        assert req["body"]["max_tokens"] == 300
    assert ex.idempotent is (stub.name != "ollama")


def test_provider_executor_max_tokens_from_extras(stubs):
    stub = stubs["anthropic"]
    stub.clear()
    ex = ProviderExecutor(stub.provider(), label="a", model="claude-stub-1")
    ex.execute(_intent(model="balanced", extras={"max_tokens": 77}), threading.Event(), lambda _l: None)
    assert stub.requests("/v1/messages")[0]["body"]["max_tokens"] == 77


def test_provider_executor_not_started_after_cancel(stub):
    ex = ProviderExecutor(stub.provider(), label="x")
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(ProviderAborted) as info:
        ex.execute(_intent(model=MODELS[stub.name]), cancel, lambda _l: None)
    assert info.value.code == "EXECUTOR_ABORTED"
    assert stub.requests() == []


def test_provider_executor_errors_pass_through(stub):
    stub.fault("429")
    ex = ProviderExecutor(stub.provider(), label="x")
    with pytest.raises(ProviderRateLimited) as info:
        ex.execute(_intent(model=MODELS[stub.name]), threading.Event(), lambda _l: None)
    assert info.value.code == "EXECUTOR_RATE_LIMITED"


# ----------------------------------------------------------------------------------- pure pieces


def test_line_buffer():
    out: list[str] = []
    buf = LineBuffer(out.append)
    for piece in ["ab", "c\nde", "f\n\ng", "h"]:
        buf.feed(piece)
    assert out == ["abc", "def", ""]
    buf.flush()
    assert out == ["abc", "def", "", "gh"]
    buf.feed("x" * 4500)
    assert [len(x) for x in out[4:]] == [2000, 2000]
    buf.flush()
    assert len(out[-1]) == 500


def test_parse_retry_after():
    assert parse_retry_after({"retry-after": "1"}) == 1.0
    assert parse_retry_after({"Retry-After": "2.5"}) == 2.5
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert parse_retry_after({}) is None and parse_retry_after(None) is None
    assert parse_retry_after({"retry-after": "soon"}) is None
    when = datetime.now(UTC) + timedelta(seconds=30)
    got = parse_retry_after({"retry-after": format_datetime(when, usegmt=True)})
    assert 28 <= got <= 31
    past = format_datetime(datetime.now(UTC) - timedelta(seconds=30), usegmt=True)
    assert parse_retry_after({"retry-after": past}) == 0.0


@pytest.mark.parametrize("status,message,expected", [
    (401, "", ProviderAuthError),
    (402, "Insufficient credits", ProviderAuthError),
    (403, "", ProviderAuthError),
    (429, "", ProviderRateLimited),
    (529, "", ProviderOverloaded),
    (502, "", ProviderOverloaded),
    (500, "Overloaded", ProviderOverloaded),
    (500, "boom", ProviderError),
    (404, "model: claude-nope", ProviderInvalidModel),
    (400, "foo/bar is not a valid model ID", ProviderInvalidModel),
    (404, "No endpoints found for foo/bar.", ProviderInvalidModel),
    (404, 'model "x" not found, try pulling it first', ProviderInvalidModel),
    (400, "Your credit balance is too low to access the Anthropic API.", ProviderAuthError),
    (400, "messages: field required", ProviderBadRequest),
    (413, "too large", ProviderBadRequest),
])
def test_error_for_status(status, message, expected):
    err = error_for_status("p", status, message, {"retry-after": "3"})
    assert type(err) is expected
    if isinstance(err, ProviderRateLimited):
        assert err.retry_after == 3


def test_price_table():
    assert price_per_mtok("claude-opus-4-5-20251101") == (5.0, 25.0)
    assert price_per_mtok("claude-opus-4-1-20250805") == (15.0, 75.0)
    assert price_per_mtok("claude-3-opus-20240229") == (15.0, 75.0)
    assert price_per_mtok("claude-sonnet-4-5") == (3.0, 15.0)
    assert price_per_mtok("claude-haiku-4-5") == (1.0, 5.0)
    assert price_per_mtok("claude-3-5-haiku-20241022") == (0.8, 4.0)
    assert price_per_mtok("claude-3-haiku-20240307") == (0.25, 1.25)
    assert price_per_mtok("claude-stub-1") is None
    u = Usage(tokens_in=1000, tokens_out=100, tokens_cached=10_000, cache_write=2000)
    assert cost_usd("claude-sonnet-4-5", u) == pytest.approx((1000 * 3 + 100 * 15 + 10_000 * 0.3 + 2000 * 3.75) / 1e6)
    assert cost_usd("gpt-4o", u) is None
