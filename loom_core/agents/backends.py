"""Backend resolution per spawn, fallback chains and rate-limit waits.

``resolve_backend(name)`` builds a :class:`BackendRouter`, the executor the drive uses. For each
spawn it works out the agent's model reference (config ``models`` › the bundle's tier), the
backend that serves it, and the chain ``[primary, fallbacks…]``. ``auto`` prefers the Claude
Code CLI when it is installed, else the first provider that is configured. ``demo`` is the
offline scripted backend; it is only ever used when asked for by name.

On a raw provider (Anthropic API, OpenRouter, Ollama), an agent that does not edit files (planners,
analyzers, reviewers, acceptance, …) runs loom's tool loop with read-only tools (read, list, grep
behind the path guard; a single plain call only when there is no sandbox directory). The executor
cache keeps the two shapes apart: ``agentic`` True = editing, False = read-only.

A file-editing agent on a raw provider runs under an external
harness — aider or opencode, chosen by the ``harness`` setting (``LOOM_HARNESS``) — when one is
configured and its CLI is on PATH (the provider's family, model and credential go to it); else it
runs loom's native tool loop. A configured harness that is not installed is a one-time notice, never
an error; an unknown harness name is a ConfigError.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from loom_core.agents import registry
from loom_core.agents.executors import ExecResult, failed_usage, usage_dict
from loom_core.errors import ConfigError, ExecutorError
from loom_core.kernel.types import Intent

KNOWN = {b.name: b.label for b in registry.BACKENDS}  # name → label, from the registry
ANTHROPIC_MODELS = {"haiku": "claude-haiku-4-5", "sonnet": "claude-sonnet-4-5", "opus": "claude-opus-4-5",
                    "fast": "claude-haiku-4-5", "balanced": "claude-sonnet-4-5", "premium": "claude-opus-4-5"}
TIERS = {"fast": "haiku", "balanced": "sonnet", "premium": "opus"}
FALLBACK_CODES = {"EXECUTOR_RATE_LIMITED", "EXECUTOR_OVERLOADED", "EXECUTOR_INVALID_MODEL", "EXECUTOR_AUTH_FAILED"}
WAIT_CODES = {"EXECUTOR_RATE_LIMITED", "EXECUTOR_OVERLOADED"}
READ_ONLY_TURNS = 20  # tool turns of a read-only agent before it must answer

_log = logging.getLogger("loom.backends")
_noticed: set[str] = set()
_noticed_lock = threading.Lock()


def _notice_once(message: str) -> bool:
    """Record ``message`` once per process in the ``loom.backends`` logger (info level: never
    printed over the console unless logging is configured); True the first time. The user sees
    the notice in the first spawn's log, through the executor that runs instead."""
    with _noticed_lock:
        if message in _noticed:
            return False
        _noticed.add(message)
    _log.info(message)
    return True


@dataclass
class Route:
    backend: str
    model: str
    label: str
    executor: Any


class Resolver:
    """Builds executors from settings + secrets, cached per (backend, shape)."""

    def __init__(self, settings=None, secrets=None, *, demo_delay_s: float = 0.0, container=None) -> None:
        if settings is None:
            from loom_core.config.settings import load_settings

            settings = load_settings()
        self.settings = settings
        self._secrets = secrets
        self.demo_delay_s = demo_delay_s
        self.container = container  # a ContainerPlan: the Claude Code CLI runs in a container (spec §9)
        self._cache: dict[tuple, Any] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ credentials
    @property
    def secrets(self):
        if self._secrets is None:
            from loom_core.config.secrets import SecretStore

            self._secrets = SecretStore()
        return self._secrets

    def resolve_ref(self, ref: str | None, conventional_env: str | None = None) -> str | None:
        """``secret:<name>`` → the secret store, then the env var of that name; a literal as is;
        nothing → the conventional env var."""
        if ref and ref.startswith("secret:"):
            name = ref[len("secret:"):]
            value = self.secrets.get(name) or os.environ.get(name) or os.environ.get(name.upper())
            if value:
                return value
            return os.environ.get(conventional_env) if conventional_env else None
        if ref:
            return ref
        return os.environ.get(conventional_env) if conventional_env else None

    def credential(self, backend: str) -> tuple[str | None, str | None]:
        """``(key, base URL or host)`` for ``backend`` from settings, secrets and its conventional variables."""
        entry = registry.get(backend)
        return entry.credential(self) if entry is not None and entry.credential else (None, None)

    def usable(self, backend: str) -> tuple[bool, str]:
        """Whether ``backend`` can run here and why (not): the registry's check, no network probe."""
        entry = registry.get(backend)
        return entry.check(self) if entry is not None else (False, "unknown backend")

    def explicit_sections(self) -> set[str]:
        """Provider sections the settings name explicitly (file or environment), not just by default."""
        try:
            return set(self.settings.providers.model_fields_set)
        except AttributeError:
            return set()

    # ------------------------------------------------------------------ executors
    def executor(self, backend: str, *, agentic: bool) -> Any:
        """The executor for ``backend``: ``agentic`` = the agent edits files; otherwise it reads only."""
        key = (backend, "edit" if agentic else "read-only")
        with self._lock:
            if key in self._cache:
                return self._cache[key]
            ex = self._build(backend, agentic)
            self._cache[key] = ex
            return ex

    def _build(self, backend: str, agentic: bool) -> Any:
        entry = registry.get(backend)
        if entry is None:
            raise ConfigError(registry.unknown(backend), code="NO_BACKEND_RESOLVED")
        if not entry.raw:  # the demo and CLI backends are executors themselves
            return entry.factory(self)
        ok, why = self.usable(backend)
        if not ok:
            raise ConfigError(f"backend {backend}: {why}", code="NO_BACKEND_RESOLVED")
        provider = entry.factory(self)
        if agentic:
            harness, notice = self._harness(backend)
            if harness is not None:
                return harness
            from loom_core.agents.executors.checks import ChecksExecutor  # noqa: F401  (the loop runs checks through the tools)
            from loom_core.agents.executors.toolloop import ToolLoopExecutor

            return ToolLoopExecutor(provider, label=f"{entry.label} + loom tools", run_checks=_checks_text,
                                    notice=notice)
        from loom_core.agents.executors.provider_call import ProviderExecutor
        from loom_core.agents.executors.toolloop import ToolLoopExecutor

        # every other agent reads the sandbox through read-only tools; without a sandbox, one plain call
        return ToolLoopExecutor(provider, label=f"{entry.label} + read-only tools", max_turns=READ_ONLY_TURNS,
                                read_only=True, single_shot=ProviderExecutor(provider, label=entry.label))

    def harness_name(self) -> str | None:
        """The configured external harness (the ``harness`` setting; ``LOOM_HARNESS`` sets it), or None.
        An unknown name → ConfigError listing aider / opencode."""
        from loom_core.agents.executors.harness import check_kind

        raw = getattr(self.settings, "harness", None) or ""
        return check_kind(raw) if raw else None

    def _harness(self, backend: str) -> tuple[Any, str | None]:
        """``(HarnessExecutor, None)`` for an agentic spawn on raw ``backend`` when a harness is
        configured and on PATH; ``(None, notice)`` when it is configured but not installed (the
        native tool loop runs instead); ``(None, None)`` when none is configured."""
        name = self.harness_name()
        if name is None:
            return None, None
        from loom_core.agents.executors.harness import HarnessExecutor, harness_binary, harness_env

        binary = harness_binary(name)
        if HarnessExecutor.on_path(name, binary) is None:
            notice = (f"harness '{name}' is configured but `{binary}` is not on PATH — file-editing agents on "
                      f"{KNOWN[backend]} use loom's own tool loop")
            _notice_once(notice)
            return None, notice
        family = registry.get(backend).family
        key, base = self.credential(backend)
        return HarnessExecutor(name, family=family, model="", env=harness_env(family, key, base),
                               binary=binary), None

    # ------------------------------------------------------------------ routing
    def primary_backend(self, requested: str) -> str:
        if requested != "auto":
            entry = registry.get(requested)
            if entry is None:
                raise ConfigError(registry.unknown(requested), code="NO_BACKEND_RESOLVED")
            if entry.needs_key:  # no key: refused before a task exists
                ok, why = self.usable(requested)
                if not ok:
                    raise ConfigError(f"backend {requested} {why}", code="NO_BACKEND_RESOLVED")
            return requested
        for candidate in registry.BACKENDS:
            if candidate.in_auto and self.usable(candidate.name)[0]:
                return candidate.name
        raise ConfigError("no model backend is configured: install the Claude Code CLI, or store a key with "
                          "`loom secrets set anthropic <key>` (or openrouter), or set an Ollama host — or try "
                          "loom offline with --backend demo", code="NO_BACKEND_RESOLVED")

    def route(self, backend: str, ref: str, *, agentic: bool) -> Route:
        family, _, model = ref.partition(":") if ":" in ref else ("", "", ref)
        if family:
            choices = registry.serving(family)
            if not choices:
                raise ConfigError(f"no backend is available for provider family '{family}' yet",
                                  code="NO_BACKEND_RESOLVED")
            chosen = backend if backend in choices else next(
                (b for b in choices if self.usable(b)[0]), choices[-1])
        else:
            chosen = backend
            model = TIERS.get(ref, ref)
        if chosen == "anthropic":
            model = ANTHROPIC_MODELS.get(model, model)
        return Route(chosen, model, f"{KNOWN[chosen]} · {model}", self.executor(chosen, agentic=agentic))


def _checks_text(root) -> str:
    """An agent's ``run_checks`` tool: the checks step's own machinery (proven environment,
    check-only tools, tree reverted, baseline comparison) on the sandbox it works in."""
    from loom_core.config.project import configured_checks
    from loom_core.config.settings import load_settings as _settings
    from loom_core.workspace.checks import checks_text, sandbox_info

    limits = _settings().checks
    try:
        configured = configured_checks(sandbox_info(root)[0] or root)
    except ConfigError:  # an unreadable loom.json: detect the commands instead
        configured = None
    return checks_text(root, configured, timeout_s=limits.timeout_s, test_timeout_s=limits.test_timeout_s)


class BackendRouter:
    """The drive's executor: routes each spawn, walks its fallback chain, waits out rate limits."""

    idempotent = True

    def __init__(self, requested: str, resolver: Resolver, *, max_wait_s: float = 300.0,
                 sleep: Callable[[float], None] | None = None) -> None:
        self.resolver = resolver
        self.backend = resolver.primary_backend(requested)
        self.name = self.backend
        self.label = KNOWN[self.backend]
        self.max_wait_s = max_wait_s
        self._sleep = sleep

    def chain(self, intent: Intent) -> list[Route]:
        s = self.resolver.settings
        agentic = bool(intent.extras.get("edits_files"))
        if self.backend == "demo":
            return [Route("demo", intent.model, KNOWN["demo"], self.resolver.executor("demo", agentic=agentic))]
        refs = [s.models.get(intent.agent) or intent.model] + list(s.fallbacks.get(intent.agent, []))
        routes = []
        for i, ref in enumerate(refs):
            try:
                routes.append(self.resolver.route(self.backend, ref, agentic=agentic))
            except ConfigError:
                if i == 0:
                    raise
        return routes

    def execute(self, intent: Intent, cancel: threading.Event, log: Callable[[str], None]) -> ExecResult:
        chain = self.chain(intent)
        if not chain:
            raise ExecutorError(f"no backend resolved for '{intent.agent}'", code="NO_BACKEND_RESOLVED")
        attempts: list[dict[str, Any]] = []
        for i, route in enumerate(chain):
            waited = 0.0
            while True:
                try:
                    result = route.executor.execute(replace(intent, model=route.model), cancel, log)
                except ExecutorError as exc:
                    more = i + 1 < len(chain)
                    attempts.append({"backend": route.backend, "model": route.model, "code": exc.code,
                                     "error": str(exc)[:300]})
                    billed = failed_usage(exc)
                    if billed is not None:  # a failed attempt is counted with the run's usage
                        attempts[-1]["usage"] = usage_dict(billed)
                    if exc.code in FALLBACK_CODES and more:
                        log(f"backend for '{intent.agent}' failed ({exc.code}) [{route.label}] — falling back to "
                            f"{chain[i + 1].label}")
                        break
                    retry_after = getattr(exc, "retry_after", None)
                    if exc.code in WAIT_CODES and waited < self.max_wait_s:
                        delay = min(max(retry_after or 5.0, 0.1), self.max_wait_s - waited)
                        log(f"{route.label}: rate limited — waiting {delay:.1f}s as the server asked")
                        self._wait(delay, cancel)
                        waited += delay
                        continue
                    exc.detail["attempts"] = attempts
                    raise
                result.model = result.model or route.model
                result.attempts = attempts
                return result
        raise ExecutorError(f"every backend for '{intent.agent}' failed", code="EXECUTOR_FAILED")

    def _wait(self, seconds: float, cancel: threading.Event) -> None:
        if self._sleep is not None:
            self._sleep(seconds)
            return
        deadline = time.monotonic() + seconds
        while not cancel.is_set() and time.monotonic() < deadline:
            cancel.wait(min(0.5, max(0.0, deadline - time.monotonic())))
        if cancel.is_set():
            raise ExecutorError("cancelled while waiting out a rate limit", code="EXECUTOR_ABORTED")


def resolve_backend(name: str, *, demo_delay_s: float = 0.0, settings=None, secrets=None,
                    container=None) -> BackendRouter:
    if name == "auto" and settings is None:
        from loom_core.config.settings import load_settings

        settings = load_settings()
        name = settings.backend
    resolver = Resolver(settings if settings is not None else _bare_settings(), secrets, demo_delay_s=demo_delay_s,
                        container=container)
    return BackendRouter(name, resolver)


def _bare_settings():
    from loom_core.config.settings import load_settings

    return load_settings()
