"""Harness configuration: which harnesses loom drives, the model prefix per provider family, the
binary to run and the environment that hands a credential over by variable name (never on argv)."""

from __future__ import annotations

import os
from typing import Literal

from loom_core.errors import ConfigError

HarnessKind = Literal["aider", "opencode"]
HARNESSES: tuple[str, ...] = ("aider", "opencode")

MODEL_PREFIX: dict[str, dict[str, str]] = {
    "aider": {"anthropic": "anthropic/", "openai": "openai/", "google": "gemini/", "gemini": "gemini/",
              "openrouter": "openrouter/", "ollama": "ollama_chat/"},
    "opencode": {"anthropic": "anthropic/", "openai": "openai/", "google": "google/", "gemini": "google/",
                 "openrouter": "openrouter/", "ollama": "ollama/"},
}
CREDENTIAL_ENV: dict[str, str] = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY",
                                  "openrouter": "OPENROUTER_API_KEY", "google": "GEMINI_API_KEY",
                                  "gemini": "GEMINI_API_KEY", "ollama": "OLLAMA_API_BASE"}
INSTALL_HINT = {
    "aider": "install it with `python -m pip install aider-install && aider-install`, or set LOOM_AIDER_BIN",
    "opencode": "install it with `npm i -g opencode-ai`, or set LOOM_OPENCODE_BIN",
}
DISPLAY = {"aider": "aider", "opencode": "opencode"}


def check_kind(kind: str) -> str:
    """``kind`` normalised, or ConfigError naming the harnesses loom can drive."""
    name = (kind or "").strip().lower()
    if name not in HARNESSES:
        raise ConfigError(f"unknown harness '{kind}' (known: {', '.join(HARNESSES)})")
    return name


def harness_binary(kind: str) -> str:
    """The binary to run: ``LOOM_AIDER_BIN`` / ``LOOM_OPENCODE_BIN`` when set, else the harness name."""
    return os.environ.get(f"LOOM_{kind.upper()}_BIN", "").strip() or kind


def harness_model(kind: str, family: str, model: str) -> str:
    """``<prefix><model>`` for the harness (``anthropic/claude-sonnet-4-5``, ``ollama_chat/qwen3``).
    A model that already carries the prefix is left alone; an empty model stays empty."""
    prefix = MODEL_PREFIX[kind].get(family)
    if prefix is None:
        raise ConfigError(f"{kind} cannot run models of provider family '{family}' "
                          f"(known: {', '.join(sorted(MODEL_PREFIX[kind]))})", code="NO_BACKEND_RESOLVED")
    model = model.strip()
    if not model or model.startswith(prefix):
        return model
    return prefix + model


def harness_env(family: str, credential: str | None, base_url: str | None = None) -> dict[str, str]:
    """The environment that hands ``family``'s credential to a harness, by variable name.

    ``ollama`` has no key: its server address goes in ``OLLAMA_API_BASE``. A non-default base URL
    for Anthropic / OpenRouter is exported for the harnesses' client libraries too."""
    env: dict[str, str] = {}
    name = CREDENTIAL_ENV.get(family)
    if family == "ollama":
        if base_url or credential:
            env["OLLAMA_API_BASE"] = str(base_url or credential)
        return env
    if name and credential:
        env[name] = credential
    if base_url:
        if family == "anthropic":
            env["ANTHROPIC_BASE_URL"] = base_url
            env["ANTHROPIC_API_BASE"] = base_url
        elif family == "openrouter" and base_url.rstrip("/") != "https://openrouter.ai/api/v1":
            env["OPENROUTER_API_BASE"] = base_url
        elif family == "openai":
            env["OPENAI_API_BASE"] = base_url
            env["OPENAI_BASE_URL"] = base_url
    return env

