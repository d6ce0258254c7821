"""Anthropic Messages API over the official ``anthropic`` SDK.

``max_retries=0``: loom's fallback chain and supervisor own retries. The system prompt goes as
one ephemeral cache-controlled block; the run id is sent as the ``Idempotency-Key`` header.
With ``on_text`` the reply is streamed (``messages.stream``), else one ``messages.create``.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import Any

from loom_core.agents.executors import Usage
from loom_core.agents.providers.base import Reply, ToolCall, check_cancel, error_for_status, finish
from loom_core.errors import ProviderAborted, ProviderAuthError, ProviderError, ProviderNetworkError

# USD per million tokens (input, output) by family, newest first; first match at or above the
# minimum version wins. Cache reads cost 0.1x input, 5-minute cache writes 1.25x input.
PRICES: list[tuple[str, tuple[int, ...], float, float]] = [
    ("opus", (4, 5), 5.0, 25.0),
    ("opus", (0,), 15.0, 75.0),
    ("sonnet", (0,), 3.0, 15.0),
    ("haiku", (4, 5), 1.0, 5.0),
    ("haiku", (3, 5), 0.80, 4.0),
    ("haiku", (0,), 0.25, 1.25),
]
CACHE_READ_FACTOR = 0.1
CACHE_WRITE_FACTOR = 1.25

# shown when the live model list cannot be fetched and the SDK names none (see ``static_models``)
STATIC_MODELS = ["claude-opus-4-5", "claude-sonnet-4-5", "claude-haiku-4-5"]

# error ``type`` in a body (also inside a 200 stream's ``event: error``) -> the status it stands for
ERROR_TYPE_STATUS = {
    "invalid_request_error": 400, "authentication_error": 401, "billing_error": 402, "permission_error": 403,
    "not_found_error": 404, "request_too_large": 413, "rate_limit_error": 429, "api_error": 500,
    "overloaded_error": 529,
}

MODELS_TTL_S = 60.0


def price_per_mtok(model: str) -> tuple[float, float] | None:
    """(input, output) USD per million tokens for a Claude model id, None when unknown."""
    name = (model or "").lower()
    family = next((f for f in ("opus", "sonnet", "haiku") if f in name), None)
    if family is None:
        return None
    version = tuple(int(d) for d in re.findall(r"(?<![0-9])\d{1,2}(?![0-9])", name))
    for fam, minimum, pin, pout in PRICES:
        if fam == family and (not version or version >= minimum):
            return pin, pout
    return None


def cost_usd(model: str, usage: Usage) -> float | None:
    price = price_per_mtok(model)
    if price is None:
        return None
    pin, pout = price
    total = (usage.tokens_in * pin + usage.tokens_out * pout + usage.tokens_cached * pin * CACHE_READ_FACTOR
             + usage.cache_write * pin * CACHE_WRITE_FACTOR)
    return round(total / 1_000_000, 8)


def static_models() -> list[str]:
    """Current Claude ids as the installed SDK knows them (its ``ModelParam`` literals minus
    deprecated and dated ids); ``STATIC_MODELS`` when the SDK does not say."""
    try:
        import typing

        from anthropic.types.model_param import ModelParam

        try:
            from anthropic._data import DEPRECATED_MODELS as deprecated
        except ImportError:
            deprecated = {}
        ids = [a for arg in typing.get_args(ModelParam) for a in typing.get_args(arg) if isinstance(a, str)]
    except Exception:
        return list(STATIC_MODELS)
    ids = [i for i in ids if i not in deprecated and not re.search(r"-\d{8}$", i) and "preview" not in i]
    return ids or list(STATIC_MODELS)


def _transport_errors() -> tuple[type[BaseException], ...]:
    """httpx transport errors the SDK lets through (e.g. a stream cut off mid-reply)."""
    out: list[type[BaseException]] = []
    for mod in ("httpx2", "httpx"):
        try:
            out.append(__import__(mod).TransportError)
        except (ImportError, AttributeError):
            pass
    return tuple(out)


class AnthropicProvider:
    name = "anthropic"

    def __init__(self, api_key: str | None, base_url: str | None = None, timeout: float = 600, *,
                 client: Any = None) -> None:
        import anthropic

        self._sdk = anthropic
        self.client = client or anthropic.Anthropic(api_key=api_key, base_url=base_url, timeout=timeout,
                                                    max_retries=0)
        self._transport = _transport_errors()
        self._models: tuple[float, list[str]] | None = None
        self.models_note = ""

    # ----------------------------------------------------------------------------------- chat
    def chat(self, *, model: str, system: str | None, messages: list[dict], tools: list[dict] | None,
             max_tokens: int, on_text: Callable[[str], None] | None = None,
             idempotency_key: str | None = None, cancel: threading.Event | None = None) -> Reply:
        check_cancel(self.name, cancel)
        kwargs: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "messages": messages}
        if system:
            kwargs["system"] = [{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}]
        if tools:
            kwargs["tools"] = tools
        if idempotency_key:
            kwargs["extra_headers"] = {"Idempotency-Key": idempotency_key}
        started = time.monotonic()
        try:
            if on_text is None:
                message = self.client.messages.create(**kwargs)
            else:
                message = self._stream(kwargs, on_text, cancel)
        except ProviderError:
            raise
        except Exception as exc:
            raise self._map_error(exc) from exc
        reply = self._reply(message, model, int((time.monotonic() - started) * 1000))
        return finish(self.name, reply)

    def _stream(self, kwargs: dict, on_text: Callable[[str], None], cancel: threading.Event | None):
        stopped = False
        with self.client.messages.stream(**kwargs) as stream:
            for event in stream:
                if cancel is not None and cancel.is_set():
                    raise ProviderAborted(f"{self.name}: cancelled mid-reply", provider=self.name)
                if event.type == "text":
                    on_text(event.text)
                elif event.type == "message_stop":
                    stopped = True
            if not stopped:
                raise ProviderNetworkError(f"{self.name}: the stream ended before the reply was complete",
                                           provider=self.name)
            return stream.get_final_message()

    def _reply(self, message: Any, requested_model: str, duration_ms: int) -> Reply:
        texts: list[str] = []
        calls: list[ToolCall] = []
        blocks: list[dict] = []
        for b in message.content or []:
            kind = getattr(b, "type", None)
            if kind == "text":
                texts.append(b.text)
                blocks.append({"type": "text", "text": b.text})
            elif kind == "tool_use":
                args = b.input if isinstance(b.input, dict) else {"input": b.input}
                calls.append(ToolCall(id=b.id, name=b.name, arguments=dict(args)))
                blocks.append({"type": "tool_use", "id": b.id, "name": b.name, "input": args})
            elif kind == "thinking":
                blocks.append({"type": "thinking", "thinking": b.thinking, "signature": b.signature})
            elif kind == "redacted_thinking":
                blocks.append({"type": "redacted_thinking", "data": b.data})
            else:  # server tool blocks etc.: hand back what came
                blocks.append(b.model_dump(mode="json", exclude_none=True) if hasattr(b, "model_dump") else b)
        run_model = getattr(message, "model", None) or requested_model
        u = getattr(message, "usage", None)
        usage = Usage(
            tokens_in=int(getattr(u, "input_tokens", 0) or 0),
            tokens_out=int(getattr(u, "output_tokens", 0) or 0),
            tokens_cached=int(getattr(u, "cache_read_input_tokens", 0) or 0),
            cache_write=int(getattr(u, "cache_creation_input_tokens", 0) or 0),
            num_turns=1,
            duration_ms=duration_ms,
        )
        usage.cost_usd = cost_usd(run_model, usage)
        stop = message.stop_reason or "end_turn"
        if stop == "model_context_window_exceeded":
            stop = "max_tokens"
        return Reply(text="".join(texts), tool_calls=calls, stop_reason=stop, usage=usage, model=run_model,
                     raw_assistant={"role": "assistant", "content": blocks})

    def _map_error(self, exc: BaseException) -> ProviderError:
        sdk = self._sdk
        if isinstance(exc, sdk.APITimeoutError):
            return ProviderNetworkError(f"{self.name}: request timed out", provider=self.name)
        if isinstance(exc, sdk.APIConnectionError):
            cause = exc.__cause__ or exc.__context__
            return ProviderNetworkError(f"{self.name}: connection failed: {cause or exc}", provider=self.name)
        if isinstance(exc, sdk.APIStatusError):
            etype = getattr(exc, "type", None)
            message = getattr(exc, "api_message", None) or getattr(exc, "message", None) or str(exc)
            status = exc.status_code
            if isinstance(exc, sdk.AuthenticationError | sdk.PermissionDeniedError):
                status = 401 if status not in (401, 403) else status
            elif isinstance(exc, sdk.RateLimitError) or etype == "rate_limit_error":
                status = 429
            elif isinstance(exc, sdk.OverloadedError) or etype == "overloaded_error":
                status = 529
            elif not status or status < 400:  # an error event inside a 200 stream
                status = ERROR_TYPE_STATUS.get(etype or "", 500)
            return error_for_status(self.name, status, message, exc.response.headers)
        credentials_error = getattr(sdk, "CredentialsError", None)
        if (credentials_error and isinstance(exc, credentials_error)) or (
                isinstance(exc, TypeError) and "authentication" in str(exc).lower()):
            return ProviderAuthError(f"{self.name}: no usable credentials: {exc}", provider=self.name)
        if self._transport and isinstance(exc, self._transport):
            return ProviderNetworkError(f"{self.name}: connection lost: {exc}", provider=self.name)
        if isinstance(exc, TimeoutError | ConnectionError):
            return ProviderNetworkError(f"{self.name}: {exc}", provider=self.name)
        return ProviderError(f"{self.name}: {type(exc).__name__}: {exc}", provider=self.name)

    # ------------------------------------------------------------------------------- history
    def tool_result_message(self, results: list[tuple[ToolCall, str, bool]]) -> list[dict]:
        blocks = []
        for call, content, is_error in results:
            block: dict[str, Any] = {"type": "tool_result", "tool_use_id": call.id, "content": content}
            if is_error:
                block["is_error"] = True
            blocks.append(block)
        return [{"role": "user", "content": blocks}]

    def user_message(self, text: str) -> dict:
        return {"role": "user", "content": text}

    # -------------------------------------------------------------------------------- models
    def list_models(self) -> list[str]:
        """Live list from ``GET /v1/models`` (cached 60 s); ``static_models()`` when it cannot be read."""
        now = time.monotonic()
        if self._models and now - self._models[0] < MODELS_TTL_S:
            return list(self._models[1])
        try:
            page = self.client.models.list(limit=100, timeout=5)
            ids = [m.id for m in page.data]
            self.models_note = f"{len(ids)} models from the API"
        except Exception as exc:  # offline, no key ...: the static list still lets the user pick
            ids = static_models()
            self.models_note = f"static list ({type(exc).__name__})"
            return ids
        self._models = (now, ids)
        return list(ids)
