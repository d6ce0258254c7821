"""Direct model providers (Anthropic, OpenRouter, Ollama) behind one small seam (``base.Provider``).

Used for single-shot calls (``executors.provider_call.ProviderExecutor``) and by tool loops:

    reply = provider.chat(model=m, system=s, messages=[provider.user_message(prompt)], tools=tools,
                          max_tokens=4096, on_text=print, idempotency_key=run_id, cancel=event)
    messages += [reply.raw_assistant]
    messages += provider.tool_result_message([(call, output, is_error) for call in reply.tool_calls])

Provider modules are imported lazily (the Anthropic SDK is heavy): use ``make_provider``.
"""

from __future__ import annotations

import importlib
from typing import Any

from loom_core.agents.providers.base import Provider, Reply, ToolCall, parse_retry_after
from loom_core.errors import (
    OutputTruncated,
    ProviderAborted,
    ProviderAuthError,
    ProviderBadRequest,
    ProviderError,
    ProviderInvalidModel,
    ProviderNetworkError,
    ProviderOverloaded,
    ProviderRateLimited,
)

_CLASSES = {  # name → the module and class, imported on first use
    "anthropic": ("loom_core.agents.providers.anthropic", "AnthropicProvider"),
    "openrouter": ("loom_core.agents.providers.openrouter", "OpenRouterProvider"),
    "ollama": ("loom_core.agents.providers.ollama", "OllamaProvider"),
}
PROVIDERS = tuple(_CLASSES)


def make_provider(name: str, **kwargs: Any) -> Provider:
    """``anthropic`` (api_key, base_url, timeout) | ``openrouter`` (api_key, base_url, timeout) |
    ``ollama`` (host, timeout)."""
    if name not in _CLASSES:
        raise ValueError(f"unknown provider {name!r} (known: {', '.join(PROVIDERS)})")
    module, cls = _CLASSES[name]
    return getattr(importlib.import_module(module), cls)(**kwargs)


__all__ = [
    "PROVIDERS", "OutputTruncated", "Provider", "ProviderAborted", "ProviderAuthError", "ProviderBadRequest",
    "ProviderError", "ProviderInvalidModel", "ProviderNetworkError", "ProviderOverloaded", "ProviderRateLimited",
    "Reply", "ToolCall", "make_provider", "parse_retry_after",
]
