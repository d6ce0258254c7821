"""What a run is asked to do (``RunOptions``, validated before anything is written) and what it gave back
(``RunResult``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loom_core.agents import registry
from loom_core.config.sections import MAX_SPAWNS
from loom_core.errors import ConfigError
from loom_core.kernel.gates import BUILTIN_POLICIES, PRESETS

if TYPE_CHECKING:
    from loom_core.engine.drive import Outcome

POLICIES = tuple(BUILTIN_POLICIES)  # a policy for every gate; PRESETS name one per gate role


def complexities(bundle: str) -> tuple[str, ...]:
    """The sizes a task of ``bundle`` can be pinned to: its complexity → flow map (() when it has none)."""
    from loom_core.bundles import load_bundle

    flows = load_bundle(bundle).complexity_flows
    return tuple(flows.map) if flows is not None else ()


def __getattr__(name: str) -> Any:
    if name == "COMPLEXITIES":  # the code bundle's, for older imports
        return complexities("code")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "bundle": (str,), "backend": (str,), "policy": (str, type(None)), "complexity": (str, type(None)),
    "fast": (bool,), "replace": (bool,), "max_spawns": (int, type(None)), "max_concurrent": (int, type(None)),
    "demo_delay_s": (int, float), "in_place": (bool,), "push": (bool,), "squash_merge": (bool,),
    "docker": (bool, type(None)), "max_cost_usd": (int, float, type(None)), "max_tokens": (int, type(None))}
_TYPE_WORDS = {"bundle": "a bundle name", "backend": "a backend name", "policy": "a policy name or null",
               "complexity": "a complexity or null", "fast": "true or false", "replace": "true or false",
               "max_spawns": "a whole number or null", "max_concurrent": "a whole number or null",
               "demo_delay_s": "a number of seconds", "in_place": "true or false", "push": "true or false",
               "squash_merge": "true or false", "docker": "true, false or null (auto)",
               "max_cost_usd": "a number of US dollars or null", "max_tokens": "a whole number or null"}


def _flag(name: str) -> str:
    return f"--{name.replace('_', '-')}" if name in ("bundle", "backend", "policy", "complexity", "max_spawns",
                                                           "max_tokens") \
        else name


def user_settings():
    """The user's settings (file and ``LOOM_*`` environment), loaded when first needed."""
    from loom_core.config.settings import load_settings

    return load_settings()


@dataclass
class RunOptions:
    bundle: str = "code"
    backend: str = "auto"
    policy: str | None = None
    complexity: str | None = None
    fast: bool = False
    replace: bool = False
    max_spawns: int | None = None  # None: general.max_spawns (LOOM_MAX_SPAWNS)
    max_concurrent: int | None = None  # None: general.max_concurrent
    demo_delay_s: float = 0.0
    in_place: bool = False  # a non-git project: agents edit it directly (the user said yes to that)
    push: bool = False  # ship on accept: push loom/<task> once it landed (a supervisor does it, §4.9)
    squash_merge: bool = False  # ship on accept: squash-merge loom/<task> into the checked-out branch
    docker: bool | None = None  # agents in a container: True = required, False = sandbox copy, None = auto (§9)
    max_cost_usd: float | None = None  # the task's cost budget (0: none; None: general.max_cost_usd), engine/budget.py
    max_tokens: int | None = None  # the task's token budget (0: none; None: general.max_tokens)

    def validate(self) -> None:
        """Refuse unusable options before anything is written (every refusal is a usage error, exit 2)."""
        for name, kinds in _FIELD_TYPES.items():
            value = getattr(self, name)
            if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
                raise ConfigError(f"{_flag(name)} must be {_TYPE_WORDS[name]}, got {value!r}"[:200], code="USAGE")
        from loom_core.bundles import available

        if self.backend not in registry.choices():
            raise ConfigError(f"--backend must be one of {', '.join(registry.choices())}, got '{self.backend}'",
                              code="USAGE")
        if self.bundle not in available():
            raise ConfigError(f"--bundle must be one of {', '.join(sorted(available()))}, got '{self.bundle}'",
                              code="USAGE")
        if self.max_spawns is not None and not 0 <= self.max_spawns <= MAX_SPAWNS:
            raise ConfigError(f"--max-spawns must be between 0 (no cap) and {MAX_SPAWNS}, got {self.max_spawns}",
                              code="USAGE")
        if self.max_spawns is None:
            self.spawn_cap()  # a bad LOOM_MAX_SPAWNS is refused now, not after the task exists
        for name, flag in (("max_cost_usd", "--max-cost"), ("max_tokens", "--max-tokens")):
            if not 0 <= (getattr(self, name) or 0) < float("inf"):
                raise ConfigError(f"{flag} must be 0 (no budget) or more, got {getattr(self, name)}", code="USAGE")
        if self.max_concurrent is not None and not 1 <= self.max_concurrent <= 8:
            raise ConfigError(f"max_concurrent must be between 1 and 8, got {self.max_concurrent}", code="USAGE")
        if not 0 <= self.demo_delay_s <= 60:
            raise ConfigError(f"demo_delay_s must be between 0 and 60 seconds, got {self.demo_delay_s}", code="USAGE")
        if self.fast and self.complexity not in (None, "trivial"):
            raise ConfigError(f"--fast means --complexity trivial; it cannot be combined with --complexity "
                              f"{self.complexity}", code="USAGE")
        if self.complexity is not None and self.complexity not in complexities(self.bundle):
            known = complexities(self.bundle)
            if not known:
                raise ConfigError(f"the {self.bundle} bundle has no complexities to pin; drop --complexity",
                                  code="USAGE")
            raise ConfigError(f"--complexity must be one of {', '.join(known)}, got '{self.complexity}'",
                              code="USAGE")
        if self.policy is not None and self.policy not in POLICIES and self.policy not in PRESETS:
            raise ConfigError(f"--policy must be one of {', '.join(POLICIES + tuple(PRESETS))}, got "
                              f"'{self.policy}'", code="USAGE")

    def gate_policies(self) -> dict[str, str]:
        """The gate policy overrides a new task starts with: ``--policy``, else the ``general.default_policy``
        setting when it names one, else none (the bundle's own defaults)."""
        policy = self.policy if self.policy is not None else user_settings().general.policy_if_set()
        if policy is None:
            return {}
        if policy in PRESETS:
            return dict(PRESETS[policy])
        return {"classify": policy, "plan": policy, "final": policy}

    def initial_decisions(self) -> dict[str, Any]:
        level = "trivial" if self.fast else self.complexity
        return {"complexity": level, "complexity_pinned": True} if level else {}

    def spawn_cap(self) -> int:
        """``--max-spawns``, else the ``general.max_spawns`` setting (``LOOM_MAX_SPAWNS`` overrides it)."""
        return self.max_spawns if self.max_spawns is not None else user_settings().general.max_spawns

    def concurrency(self) -> int:
        """Agents a drive runs at once: this run's ``max_concurrent``, else the ``general.max_concurrent`` setting."""
        return self.max_concurrent if self.max_concurrent is not None else user_settings().general.max_concurrent


@dataclass
class RunResult:
    outcome: Outcome
    merge: Any = None  # MergeResult | None
    warning: str | None = None
    sandbox: str | None = None
    task_id: str | None = None

    @property
    def exit_code(self) -> int:
        return self.outcome.exit_code
