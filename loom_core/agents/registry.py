"""The registry of model backends: one entry per backend, read by everything that names one.

Each :class:`Backend` says its name and label, what makes it usable here (and why not), where its
credential comes from, and how its executor is built. The CLI's ``--backend`` help, settings
validation, ``RunOptions``, the console's submit form and first-run wizard, and
:class:`~loom_core.agents.backends.Resolver` all read this table; adding a backend is one entry.

Import-light on purpose: names and labels cost nothing to import; executors and providers (the
Anthropic SDK, subprocess plumbing) are imported only inside the checks and factories.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

AUTO = "auto"
AUTO_LABEL = "auto (Claude Code CLI, else the first configured provider)"
AUTO_ABOUT = "use the first backend that works on this machine"


@dataclass(frozen=True)
class Backend:
    """One backend. ``check(resolver)`` → (usable, why / why not) and ``factory(resolver)`` → the executor
    (a CLI or the demo) or the raw provider (a hosted or local model API, wrapped by the resolver)."""

    name: str
    label: str
    about: str
    check: Callable[[Any], tuple[bool, str]]
    factory: Callable[[Any], Any]
    family: str | None = None  # the model family it serves (``anthropic:…`` refs can run on it)
    raw: bool = False  # a bare model API: loom's tool loop (or a harness) runs the agents over it
    key_env: str | None = None  # the conventional variable holding its key; set = it needs a key
    in_auto: bool = False  # ``auto`` tries it, in table order
    credential: Callable[[Any], tuple[str | None, str | None]] | None = None  # → (key, base URL or host)

    @property
    def needs_key(self) -> bool:
        return self.key_env is not None


# ---------------------------------------------------------------------- credentials (settings › environment)
def _anthropic_credential(r: Any) -> tuple[str | None, str | None]:
    p = r.settings.providers.anthropic
    return r.resolve_ref(p.api_key, "ANTHROPIC_API_KEY"), r.resolve_ref(p.base_url) or os.environ.get("ANTHROPIC_BASE_URL")


def _openrouter_credential(r: Any) -> tuple[str | None, str | None]:
    p = r.settings.providers.openrouter
    return r.resolve_ref(p.api_key, "OPENROUTER_API_KEY"), r.resolve_ref(p.base_url) or "https://openrouter.ai/api/v1"


def _ollama_credential(r: Any) -> tuple[str | None, str | None]:
    return None, os.environ.get("OLLAMA_HOST") or r.settings.providers.ollama.host


# ---------------------------------------------------------------------- checks (no network, no probe)
def _always(r: Any) -> tuple[bool, str]:
    return True, "offline, scripted"


def _claude_cli(r: Any) -> tuple[bool, str]:
    from loom_core.agents.executors.claude_code import ClaudeCodeExecutor

    if getattr(r, "container", None) is not None:  # the CLI is in the image, not on this machine
        return True, r.container.describe()

    return ClaudeCodeExecutor.available()


def _has_key(name: str, env: str) -> Callable[[Any], tuple[bool, str]]:
    def check(r: Any) -> tuple[bool, str]:
        key, _ = r.credential(name)
        return (True, "key configured") if key else (
            False, f"needs a key — set it once with `loom secrets set {name} <key>` (or export {env})")
    return check


def _ollama_host(r: Any) -> tuple[bool, str]:
    explicit = os.environ.get("OLLAMA_HOST") or "ollama" in r.explicit_sections()
    return (True, "host configured") if explicit else (False, "set providers.ollama.host or OLLAMA_HOST")


# ---------------------------------------------------------------------- factories
def _demo(r: Any) -> Any:
    from loom_core.agents.executors.demo import DemoExecutor

    return DemoExecutor(delay_s=r.demo_delay_s)


def _claude_code(r: Any) -> Any:
    from loom_core.agents.executors.claude_code import ClaudeCodeExecutor
    from loom_core.errors import ConfigError

    if getattr(r, "container", None) is not None:
        from loom_core.agents.executors.container import ContainerExecutor

        return ContainerExecutor(r.container)
    ok, why = ClaudeCodeExecutor.available()
    if not ok:
        raise ConfigError(f"the Claude Code CLI is not usable: {why}", code="NO_BACKEND_RESOLVED")
    return ClaudeCodeExecutor()


def _provider(name: str) -> Callable[[Any], Any]:
    def build(r: Any) -> Any:
        from loom_core.agents.providers import make_provider

        key, base = r.credential(name)
        return make_provider(name, host=base) if name == "ollama" else make_provider(name, api_key=key, base_url=base)
    return build


BACKENDS: tuple[Backend, ...] = (
    Backend("demo", "demo (offline, scripted)", "offline, scripted agents on a demo project; no account needed",
            _always, _demo),
    Backend("claude-code", "Claude Code CLI", "the Claude Code CLI (signs in via the CLI)", _claude_cli,
            _claude_code, family="anthropic", in_auto=True),
    Backend("anthropic", "Anthropic API", "Anthropic API (needs an API key)",
            _has_key("anthropic", "ANTHROPIC_API_KEY"), _provider("anthropic"), family="anthropic", raw=True,
            key_env="ANTHROPIC_API_KEY", in_auto=True, credential=_anthropic_credential),
    Backend("openrouter", "OpenRouter", "OpenRouter API (needs an API key)",
            _has_key("openrouter", "OPENROUTER_API_KEY"), _provider("openrouter"), family="openrouter", raw=True,
            key_env="OPENROUTER_API_KEY", in_auto=True, credential=_openrouter_credential),
    Backend("ollama", "Ollama", "a local Ollama server", _ollama_host, _provider("ollama"), family="ollama",
            raw=True, in_auto=True, credential=_ollama_credential),
)
_BY_NAME = {b.name: b for b in BACKENDS}


def names() -> tuple[str, ...]:
    """The backends by name, in table order (``auto`` is not one of them)."""
    return tuple(_BY_NAME)


def choices() -> tuple[str, ...]:
    """What ``--backend`` and the ``backend`` setting accept: ``auto`` then every backend."""
    return (AUTO,) + names()


def get(name: str) -> Backend | None:
    return _BY_NAME.get(name)


def label(name: str) -> str:
    return AUTO_LABEL if name == AUTO else _BY_NAME[name].label


def unknown(name: str, what: str = "backend") -> str:
    """The one sentence every refusal of a backend name uses."""
    return f"unknown {what} '{name}' (known: {', '.join(choices())})"


def serving(family: str) -> tuple[str, ...]:
    """The backends that can run a ``family:model`` reference, preferred first."""
    return tuple(b.name for b in BACKENDS if b.family == family)


def help_text() -> str:
    """The CLI's ``--backend`` help, from the table."""
    return f"Model backend: {', '.join(choices())}. auto = {AUTO_ABOUT}; demo = offline and scripted."


def usable_rows(resolver: Any = None, *, check: bool = True) -> list[dict[str, Any]]:
    """``name``, ``label``, ``about``, ``needs_key``, ``usable``, ``why`` for every backend (``auto`` first).
    Nothing is probed over the network; a broken config makes each check say so instead of raising. Without
    ``check`` nothing runs at all (``usable`` and ``why`` are None): the table alone, instantly."""
    from loom_core.errors import LoomError

    rows: list[dict[str, Any]] = [{"name": AUTO, "label": AUTO_LABEL, "about": AUTO_ABOUT, "needs_key": False,
                                   "usable": True, "why": AUTO_ABOUT}]
    if not check:
        return rows + [{"name": b.name, "label": b.label, "about": b.about, "needs_key": b.needs_key, "usable": None,
                        "why": None} for b in BACKENDS]
    error = None
    if resolver is None:
        try:
            from loom_core.agents.backends import Resolver

            resolver = Resolver()
        except LoomError as exc:
            error = str(exc)
    for b in BACKENDS:
        if resolver is None:
            ok, why = (True, "offline, scripted") if b.name == "demo" else (False, error or "settings unreadable")
        else:
            try:
                ok, why = resolver.usable(b.name)
            except LoomError as exc:
                ok, why = False, str(exc)
        rows.append({"name": b.name, "label": b.label, "about": b.about, "needs_key": b.needs_key, "usable": ok,
                     "why": why})
    return rows


__all__ = ["AUTO", "Backend", "BACKENDS", "choices", "get", "help_text", "label", "names", "serving", "unknown",
           "usable_rows"]
