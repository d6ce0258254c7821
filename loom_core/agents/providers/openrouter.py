"""OpenRouter (any OpenAI-compatible ``/chat/completions``) over httpx.

Bearer auth; inline usage accounting (``usage: {"include": true}`` -> ``usage.cost`` in USD);
the run id as ``Idempotency-Key``; tools as ``{"type": "function", ...}``. With ``on_text`` the
reply is streamed (SSE ``data:`` lines ending in ``[DONE]``; tool-call argument fragments are
assembled by index), else one JSON reply.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from loom_core.agents.executors import Usage
from loom_core.agents.providers import _http
from loom_core.agents.providers.base import Reply, ToolCall, anthropic_tool_to_openai, check_cancel, finish
from loom_core.errors import ProviderError, ProviderNetworkError

DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"
MODELS_TTL_S = 60.0
MODELS_TIMEOUT_S = 5.0

FINISH = {"stop": "end_turn", "end_turn": "end_turn", "tool_calls": "tool_use", "function_call": "tool_use",
          "tool_use": "tool_use", "length": "max_tokens", "max_tokens": "max_tokens"}


def parse_arguments(raw: Any) -> dict:
    """Tool-call arguments arrive as a JSON string; unreadable ones are kept under ``_raw_arguments``."""
    if isinstance(raw, dict):
        return raw
    if raw in (None, ""):
        return {}
    try:
        value = json.loads(raw)
    except (TypeError, ValueError):
        return {"_raw_arguments": raw}
    return value if isinstance(value, dict) else {"_raw_arguments": raw}


class OpenRouterProvider:
    name = "openrouter"

    def __init__(self, api_key: str | None, base_url: str = DEFAULT_BASE_URL, timeout: float = 600, *,
                 http_client: httpx.Client | None = None, app_title: str = "loom") -> None:
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.client = http_client or _http.make_client(timeout)
        self.headers = {"X-Title": app_title}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"
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
            "max_tokens": max_tokens,
            "usage": {"include": True},
        }
        if tools:
            body["tools"] = [anthropic_tool_to_openai(t) for t in tools]
        headers = dict(self.headers)
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        url = f"{self.base_url}/chat/completions"
        started = time.monotonic()
        if on_text is None:
            data = _http.request_json(self.name, self.client, "POST", url, json=body, headers=headers)
            reply = self._from_message(data, model)
        else:
            body["stream"] = True
            reply = self._stream(url, body, headers, on_text, cancel, model)
        reply.usage.duration_ms = int((time.monotonic() - started) * 1000)
        return finish(self.name, reply)

    def _from_message(self, data: dict, requested_model: str) -> Reply:
        choices = data.get("choices") or []
        if not choices:
            raise ProviderError(f"{self.name}: the reply has no choices", provider=self.name)
        choice = choices[0]
        msg = choice.get("message") or {}
        text = msg.get("content") or ""
        if isinstance(text, list):  # content parts
            text = "".join(p.get("text", "") for p in text if isinstance(p, dict))
        raw_calls = [
            {"id": tc.get("id") or f"call_{i}", "name": (tc.get("function") or {}).get("name") or "",
             "args": (tc.get("function") or {}).get("arguments")}
            for i, tc in enumerate(msg.get("tool_calls") or [])
        ]
        return self._build(text, raw_calls, choice.get("finish_reason"), data.get("usage"),
                           data.get("model") or requested_model, msg.get("reasoning_details"))

    def _stream(self, url: str, body: dict, headers: dict, on_text: Callable[[str], None],
                cancel: threading.Event | None, requested_model: str) -> Reply:
        text: list[str] = []
        calls: dict[int, dict] = {}
        finish_reason = None
        usage = None
        model = requested_model
        done = False
        with _http.stream_lines(self.name, self.client, url, json_body=body, headers=headers,
                                cancel=cancel) as lines:
            for line in lines:
                if not line.startswith("data:"):
                    continue  # blank separators, ": OPENROUTER PROCESSING" comments, event: lines
                payload = line[5:].strip()
                if payload == "[DONE]":
                    done = True
                    break
                chunk = _http.parse_json_line(self.name, payload)
                err = _http.embedded_error(self.name, chunk)
                if err is not None:
                    raise err
                model = chunk.get("model") or model
                if chunk.get("usage"):
                    usage = chunk["usage"]
                for choice in chunk.get("choices") or []:
                    delta = choice.get("delta") or {}
                    piece = delta.get("content")
                    if piece:
                        text.append(piece)
                        on_text(piece)
                    for pos, tc in enumerate(delta.get("tool_calls") or []):
                        slot = calls.setdefault(tc.get("index", pos), {"id": "", "name": "", "args": ""})
                        if tc.get("id"):
                            slot["id"] = tc["id"]
                        fn = tc.get("function") or {}
                        if fn.get("name"):
                            slot["name"] = fn["name"]
                        if fn.get("arguments"):
                            slot["args"] += fn["arguments"] if isinstance(fn["arguments"], str) \
                                else json.dumps(fn["arguments"])
                    if choice.get("finish_reason"):
                        finish_reason = choice["finish_reason"]
        if not done and finish_reason is None:
            raise ProviderNetworkError(f"{self.name}: the stream ended before the reply was complete",
                                       provider=self.name)
        if finish_reason == "error":
            raise ProviderError(f"{self.name}: the model stopped with an error", provider=self.name)
        raw_calls = [dict(c, id=c["id"] or f"call_{i}") for i, c in sorted(calls.items())]
        return self._build("".join(text), raw_calls, finish_reason, usage, model, None)

    def _build(self, text: str, raw_calls: list[dict], finish_reason: str | None, usage: dict | None,
               model: str, reasoning_details: Any) -> Reply:
        calls = [ToolCall(id=c["id"], name=c["name"], arguments=parse_arguments(c["args"])) for c in raw_calls]
        stop = FINISH.get(finish_reason or "stop", finish_reason or "end_turn")
        if calls and stop == "end_turn":
            stop = "tool_use"
        assistant: dict[str, Any] = {"role": "assistant", "content": text if (text or not calls) else None}
        if calls:
            assistant["tool_calls"] = [
                {"id": c["id"], "type": "function",
                 "function": {"name": c["name"], "arguments": c["args"] if isinstance(c["args"], str)
                              else json.dumps(c["args"] or {})}}
                for c in raw_calls]
        if reasoning_details:
            assistant["reasoning_details"] = reasoning_details
        return Reply(text=text, tool_calls=calls, stop_reason=stop, usage=self._usage(usage), model=model,
                     raw_assistant=assistant)

    @staticmethod
    def _usage(u: dict | None) -> Usage:
        u = u or {}
        details = u.get("prompt_tokens_details") or {}
        cost = u.get("cost")
        return Usage(
            tokens_in=int(u.get("prompt_tokens") or 0),
            tokens_out=int(u.get("completion_tokens") or 0),
            tokens_cached=int(details.get("cached_tokens") or 0),
            cache_write=int(details.get("cache_write_tokens") or 0),
            cost_usd=float(cost) if isinstance(cost, int | float) and not isinstance(cost, bool) else None,
            num_turns=1,
        )

    # ------------------------------------------------------------------------------- history
    def tool_result_message(self, results: list[tuple[ToolCall, str, bool]]) -> list[dict]:
        return [{"role": "tool", "tool_call_id": call.id, "content": f"ERROR: {content}" if is_error else content}
                for call, content, is_error in results]

    def user_message(self, text: str) -> dict:
        return {"role": "user", "content": text}

    # -------------------------------------------------------------------------------- models
    def list_models(self) -> list[str]:
        """Tool-capable model ids from ``GET /models`` (cached 60 s); ``models_note`` says how many
        were left out."""
        now = time.monotonic()
        if self._models and now - self._models[0] < MODELS_TTL_S:
            return list(self._models[1])
        data = _http.request_json(self.name, self.client, "GET", f"{self.base_url}/models",
                                  headers=self.headers, timeout=MODELS_TIMEOUT_S)
        entries = [m for m in (data.get("data") or []) if isinstance(m, dict) and m.get("id")]
        ids = [m["id"] for m in entries if "tools" in (m.get("supported_parameters") or [])]
        self.models_note = f"showing {len(ids)} tool-capable of {len(entries)}"
        self._models = (now, ids)
        return list(ids)
