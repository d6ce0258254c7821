"""What a run is asked to do (``RunOptions``, validated before anything is written) and what it gave back
(``RunResult``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loom_core.errors import ConfigError
from loom_core.kernel.gates import PRESETS

if TYPE_CHECKING:
    from loom_core.engine.drive import Outcome

POLICIES = ("human", "on-blockers", "auto")
COMPLEXITIES = ("trivial", "simple", "medium", "complex", "question")

MAX_SPAWNS = 10_000
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "bundle": (str,), "backend": (str,), "policy": (str, type(None)), "complexity": (str, type(None)),
    "fast": (bool,), "replace": (bool,), "max_spawns": (int, type(None)), "max_concurrent": (int,),
    "demo_delay_s": (int, float), "in_place": (bool,)}
_TYPE_WORDS = {"bundle": "a bundle name", "backend": "a backend name", "policy": "a policy name or null",
               "complexity": "a complexity or null", "fast": "true or false", "replace": "true or false",
               "max_spawns": "a whole number or null", "max_concurrent": "a whole number",
               "demo_delay_s": "a number of seconds", "in_place": "true or false"}


def _flag(name: str) -> str:
    return f"--{name.replace('_', '-')}" if name in ("bundle", "backend", "policy", "complexity", "max_spawns") \
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
    max_spawns: int | None = None
    max_concurrent: int = 4
    demo_delay_s: float = 0.0
    in_place: bool = False  # a non-git project: agents edit it directly (the user said yes to that)

    def validate(self) -> None:
        """Refuse unusable options before anything is written (every refusal is a usage error, exit 2)."""
        for name, kinds in _FIELD_TYPES.items():
            value = getattr(self, name)
            if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
                raise ConfigError(f"{_flag(name)} must be {_TYPE_WORDS[name]}, got {value!r}"[:200], code="USAGE")
        from loom_core.bundles import available
        from loom_core.config.settings import BACKENDS

        if self.backend not in BACKENDS:
            raise ConfigError(f"--backend must be one of {', '.join(BACKENDS)}, got '{self.backend}'", code="USAGE")
        if self.bundle not in available():
            raise ConfigError(f"--bundle must be one of {', '.join(sorted(available()))}, got '{self.bundle}'",
                              code="USAGE")
        if self.max_spawns is not None and not 0 <= self.max_spawns <= MAX_SPAWNS:
            raise ConfigError(f"--max-spawns must be between 0 (no cap) and {MAX_SPAWNS}, got {self.max_spawns}",
                              code="USAGE")
        if self.max_spawns is None and os.environ.get("LOOM_MAX_SPAWNS", "").strip():
            self.spawn_cap()  # a bad LOOM_MAX_SPAWNS is refused now, not after the task exists
        if not 1 <= self.max_concurrent <= 8:
            raise ConfigError(f"max_concurrent must be between 1 and 8, got {self.max_concurrent}", code="USAGE")
        if not 0 <= self.demo_delay_s <= 60:
            raise ConfigError(f"demo_delay_s must be between 0 and 60 seconds, got {self.demo_delay_s}", code="USAGE")
        if self.fast and self.complexity not in (None, "trivial"):
            raise ConfigError(f"--fast means --complexity trivial; it cannot be combined with --complexity "
                              f"{self.complexity}", code="USAGE")
        if self.complexity is not None and self.complexity not in COMPLEXITIES:
            raise ConfigError(f"--complexity must be one of {', '.join(COMPLEXITIES)}, got '{self.complexity}'",
                              code="USAGE")
        if self.policy is not None and self.policy not in POLICIES and self.policy not in PRESETS:
            raise ConfigError(f"--policy must be one of {', '.join(POLICIES + tuple(PRESETS))}, got "
                              f"'{self.policy}'", code="USAGE")

    def gate_policies(self) -> dict[str, str]:
        if self.policy is None:
            return {}
        if self.policy in PRESETS:
            return dict(PRESETS[self.policy])
        return {"classify": self.policy, "plan": self.policy, "final": self.policy}

    def initial_decisions(self) -> dict[str, Any]:
        level = "trivial" if self.fast else self.complexity
        return {"complexity": level, "complexity_pinned": True} if level else {}

    def spawn_cap(self) -> int:
        if self.max_spawns is not None:
            return self.max_spawns
        raw = os.environ.get("LOOM_MAX_SPAWNS", "").strip()
        if not raw:
            return user_settings().general.max_spawns
        try:
            cap = int(raw)
        except ValueError:
            raise ConfigError(f"LOOM_MAX_SPAWNS must be a whole number, got '{raw}'", code="USAGE") from None
        if not 0 <= cap <= MAX_SPAWNS:
            raise ConfigError(f"LOOM_MAX_SPAWNS must be between 0 (no cap) and {MAX_SPAWNS}, got {cap}", code="USAGE")
        return cap


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
