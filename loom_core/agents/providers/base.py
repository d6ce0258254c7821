"""The provider seam: one chat turn against a model API, for single-shot calls and tool loops.

Message histories are kept in each provider's own wire format: build them only with
``provider.user_message``, ``reply.raw_assistant`` and ``provider.tool_result_message``.
Tool definitions are always given in Anthropic shape (``name``, ``description``,
``input_schema``); OpenAI-style providers convert them.

``Reply.stop_reason`` is normalised across providers: ``end_turn`` | ``tool_use`` |
``max_tokens`` | ``stop_sequence`` | anything else the provider said (passed through).
A ``max_tokens`` stop *without* a tool call raises ``OutputTruncated`` instead of returning.
"""

from __future__ import annotations

import email.utils
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from loom_core.agents.executors import Usage
from loom_core.errors import (
    OutputTruncated,
    ProviderAborted,
    ProviderAuthError,
    ProviderBadRequest,
    ProviderError,
    ProviderInvalidModel,
    ProviderOverloaded,
    ProviderRateLimited,
)


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: dict


@dataclass
class Reply:
    text: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    stop_reason: str = "end_turn"
    usage: Usage = field(default_factory=Usage)
    model: str = ""
    # what to append to the message history for the next turn, in the provider's own format
    raw_assistant: Any = None


class Provider(Protocol):
    name: str  # "anthropic" | "openrouter" | "ollama"

    def chat(self, *, model: str, system: str | None, messages: list[dict], tools: list[dict] | None,
             max_tokens: int, on_text: Callable[[str], None] | None = None,
             idempotency_key: str | None = None, cancel: threading.Event | None = None) -> Reply: ...

    def tool_result_message(self, results: list[tuple[ToolCall, str, bool]]) -> list[dict]: ...

    def user_message(self, text: str) -> dict: ...

    def list_models(self) -> list[str]: ...


# ---------------------------------------------------------------------------------------- helpers

MODEL_NOT_FOUND = re.compile(
    r"(model\b.{0,80}\b(not found|does not exist|doesn't exist|not exist|is not a valid|not valid|invalid|unknown"
    r"|not supported|unsupported|not available|unavailable)"
    r"|\b(invalid|unknown|unsupported|no such|not a valid)\s+model"
    r"|no endpoints found"
    r"|^model:\s*\S+$)",
    re.I | re.S,
)
AUTH_WORDING = re.compile(
    r"invalid (x-)?api[ -_]?key|authentication (error|failed)|unauthori[sz]ed|not authenticated"
    r"|credit balance (is )?too low|insufficient (quota|credits?)",
    re.I,
)
RATE_WORDING = re.compile(r"rate[ -_]?limit|too many requests|usage limit|quota exceeded", re.I)
OVERLOAD_WORDING = re.compile(r"overloaded", re.I)


def parse_retry_after(headers: Mapping[str, str] | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` / ``retry-after`` (delta seconds or an HTTP date)."""
    if not headers:
        return None
    get = headers.get
    ms = get("retry-after-ms") or get("Retry-After-Ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = get("retry-after") or get("Retry-After")
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def looks_like_missing_model(text: str) -> bool:
    return bool(MODEL_NOT_FOUND.search(text or ""))


def error_for_status(provider: str, status: int, message: str,
                     headers: Mapping[str, str] | None = None) -> ProviderError:
    """Map an HTTP error status (plus its message) to the typed provider error."""
    msg = f"{provider}: HTTP {status}: {_clip(message)}"
    retry_after = parse_retry_after(headers)
    kw = {"provider": provider, "status": status}
    if status in (401, 402, 403):  # 402: no credit left
        return ProviderAuthError(msg, **kw)
    if status == 429:
        return ProviderRateLimited(msg, retry_after=retry_after, **kw)
    if status in (502, 503, 529) or (status >= 500 and OVERLOAD_WORDING.search(message or "")):
        return ProviderOverloaded(msg, retry_after=retry_after, **kw)
    if 400 <= status < 500:
        if status in (400, 404, 422) and looks_like_missing_model(message):
            return ProviderInvalidModel(msg, **kw)
        if AUTH_WORDING.search(message or ""):
            return ProviderAuthError(msg, **kw)
        if RATE_WORDING.search(message or ""):
            return ProviderRateLimited(msg, retry_after=retry_after, **kw)
        return ProviderBadRequest(msg, **kw)
    return ProviderError(msg, **kw)  # other 5xx: transient, the supervisor retries it


def error_for_message(provider: str, message: str, *, status: int | None = None) -> ProviderError:
    """An error reported inside a 200 reply (a mid-stream error event / an error body)."""
    if isinstance(status, int) and status >= 400:
        return error_for_status(provider, status, message)
    msg = f"{provider}: {_clip(message)}"
    kw = {"provider": provider, "status": status}
    if OVERLOAD_WORDING.search(message or ""):
        return ProviderOverloaded(msg, **kw)
    if RATE_WORDING.search(message or ""):
        return ProviderRateLimited(msg, **kw)
    if AUTH_WORDING.search(message or ""):
        return ProviderAuthError(msg, **kw)
    if looks_like_missing_model(message):
        return ProviderInvalidModel(msg, **kw)
    return ProviderError(msg, **kw)


def check_cancel(provider: str, cancel: threading.Event | None, when: str = "before the call") -> None:
    if cancel is not None and cancel.is_set():
        raise ProviderAborted(f"{provider}: cancelled {when}", provider=provider)


def finish(provider: str, reply: Reply) -> Reply:
    """Raise ``OutputTruncated`` for a token-limit stop without a tool call; else return the reply."""
    if reply.stop_reason == "max_tokens" and not reply.tool_calls:
        exc = OutputTruncated(f"{provider}: the reply hit the token limit ({reply.model or 'model'}, "
                              f"{reply.usage.tokens_out} tokens out)", partial_text=reply.text, provider=provider)
        exc.reply = reply
        raise exc
    return reply


def anthropic_tool_to_openai(tool: dict) -> dict:
    """Anthropic-shaped tool definition -> OpenAI ``{"type": "function", "function": {...}}``."""
    if tool.get("type") == "function" and "function" in tool:
        return tool  # already converted
    fn = {"name": tool["name"], "parameters": tool.get("input_schema") or {"type": "object", "properties": {}}}
    if tool.get("description"):
        fn["description"] = tool["description"]
    return {"type": "function", "function": fn}


def _clip(text: str, limit: int = 500) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= limit else text[:limit] + "…"
