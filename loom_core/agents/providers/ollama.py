"""Ollama over httpx: ``POST /api/chat`` (one JSON reply, or NDJSON chunks when streaming) and
``GET /api/tags``. No auth, no cost (local), not idempotent (the key is ignored)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from loom_core.agents.executors import Usage
from loom_core.agents.providers import _http
from loom_core.agents.providers.base import Reply, ToolCall, anthropic_tool_to_openai, check_cancel, finish
from loom_core.agents.providers.openrouter import parse_arguments
from loom_core.errors import ProviderNetworkError

DEFAULT_HOST = "http://127.0.0.1:11434"
MODELS_TTL_S = 60.0
MODELS_TIMEOUT_S = 5.0

DONE = {"stop": "end_turn", "length": "max_tokens"}


def normalise_host(host: str | None) -> str:
    """``OLLAMA_HOST`` style values (``0.0.0.0:11434``, ``localhost``) -> a base URL."""
    host = (host or os.environ.get("OLLAMA_HOST") or DEFAULT_HOST).strip().rstrip("/")
    if "://" not in host:
        host = "http://" + host
    scheme, rest = host.split("://", 1)
    if rest.startswith("0.0.0.0"):
        rest = "127.0.0.1" + rest[len("0.0.0.0"):]
    if ":" not in rest.split("/", 1)[0]:
        rest = rest.split("/", 1)[0] + ":11434" + ("/" + rest.split("/", 1)[1] if "/" in rest else "")
    return f"{scheme}://{rest}"


class OllamaProvider:
    name = "ollama"

    def __init__(self, host: str | None = DEFAULT_HOST, timeout: float = 600, *,
                 http_client: httpx.Client | None = None) -> None:
        self.host = normalise_host(host)
        self.client = http_client or _http.make_client(timeout)
        self._models: tuple[float, list[str]] | None = None
        self.models_note = ""

    # ----------------------------------------------------------------------------------- chat
    def chat(self, *, model: str, system: str | None, messages: list[dict], tools: list[dict] | None,
             max_tokens: int, on_text: Callable[[str], None] | None = None,
             idempotency_key: str | None = None, cancel: threading.Event | None = None) -> Reply:
        check_cancel(self.name, cancel)
        body: dict[str, Any] = {
            "model": model,
            "messages": ([{"role": "system", "content": system}] if system else []) + list(messages),
            "stream": on_text is not None,
            "options": {"num_predict": max_tokens},
        }
        if tools:
            body["tools"] = [anthropic_tool_to_openai(t) for t in tools]
        url = f"{self.host}/api/chat"
        started = time.monotonic()
        if on_text is None:
            data = _http.request_json(self.name, self.client, "POST", url, json=body)
            reply = self._build(data, (data.get("message") or {}).get("content") or "",
                                list((data.get("message") or {}).get("tool_calls") or []), model)
        else:
            reply = self._stream(url, body, on_text, cancel, model)
        reply.usage.duration_ms = int((time.monotonic() - started) * 1000)
        return finish(self.name, reply)

    def _stream(self, url: str, body: dict, on_text: Callable[[str], None], cancel: threading.Event | None,
                model: str) -> Reply:
        text: list[str] = []
        calls: list[dict] = []
        last: dict | None = None
        with _http.stream_lines(self.name, self.client, url, json_body=body, headers={}, cancel=cancel) as lines:
            for line in lines:
                if not line.strip():
                    continue
                chunk = _http.parse_json_line(self.name, line)
                err = _http.embedded_error(self.name, chunk)
                if err is not None:
                    raise err
                msg = chunk.get("message") or {}
                piece = msg.get("content")
                if piece:
                    text.append(piece)
                    on_text(piece)
                calls.extend(msg.get("tool_calls") or [])
                if chunk.get("done"):
                    last = chunk
                    break
        if last is None:
            raise ProviderNetworkError(f"{self.name}: the stream ended before the reply was complete",
                                       provider=self.name)
        return self._build(last, "".join(text), calls, model)

    def _build(self, data: dict, text: str, raw_calls: list[dict], requested_model: str) -> Reply:
        calls: list[ToolCall] = []
        history_calls: list[dict] = []
        for i, tc in enumerate(raw_calls):
            fn = tc.get("function") or {}
            args = parse_arguments(fn.get("arguments"))
            call_id = tc.get("id") or f"call_{i}"
            calls.append(ToolCall(id=call_id, name=fn.get("name") or "", arguments=args))
            history_calls.append(tc)
        stop = DONE.get(data.get("done_reason") or "stop", data.get("done_reason") or "end_turn")
        if calls and stop == "end_turn":
            stop = "tool_use"
        assistant: dict[str, Any] = {"role": "assistant", "content": text}
        if history_calls:
            assistant["tool_calls"] = history_calls
        usage = Usage(tokens_in=int(data.get("prompt_eval_count") or 0), tokens_out=int(data.get("eval_count") or 0),
                      cost_usd=None, num_turns=1)
        return Reply(text=text, tool_calls=calls, stop_reason=stop, usage=usage,
                     model=data.get("model") or requested_model, raw_assistant=assistant)

    # ------------------------------------------------------------------------------- history
    def tool_result_message(self, results: list[tuple[ToolCall, str, bool]]) -> list[dict]:
        return [{"role": "tool", "tool_name": call.name, "content": f"ERROR: {content}" if is_error else content}
                for call, content, is_error in results]

    def user_message(self, text: str) -> dict:
        return {"role": "user", "content": text}

    # -------------------------------------------------------------------------------- models
    def list_models(self) -> list[str]:
        """Installed models from ``GET /api/tags`` (cached 60 s)."""
        now = time.monotonic()
        if self._models and now - self._models[0] < MODELS_TTL_S:
            return list(self._models[1])
        data = _http.request_json(self.name, self.client, "GET", f"{self.host}/api/tags", timeout=MODELS_TIMEOUT_S)
        ids = [m.get("name") or m.get("model") for m in (data.get("models") or []) if isinstance(m, dict)]
        ids = [i for i in ids if i]
        self.models_note = f"{len(ids)} installed"
        self._models = (now, ids)
        return list(ids)
