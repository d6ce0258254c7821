"""Backend resolution. ``demo`` is the offline scripted backend; it is only ever used when
asked for by name, never as a silent fallback for a real backend."""

from __future__ import annotations

from ..errors import ConfigError

KNOWN = {
    "demo": "demo (offline, scripted)",
}


def resolve_backend(name: str, *, demo_delay_s: float = 0.0):
    if name == "demo":
        from .executors.demo import DemoExecutor

        return DemoExecutor(delay_s=demo_delay_s)
    if name == "auto":
        raise ConfigError("no model backend is configured yet; try loom offline with --backend demo "
                          "(real backends: Claude Code CLI, Anthropic, OpenRouter, Ollama are configured with "
                          "'loom config')", code="NO_BACKEND_RESOLVED")
    raise ConfigError(f"unknown backend '{name}' (known: {', '.join(['auto', *KNOWN])})", code="NO_BACKEND_RESOLVED")
