"""One exception tree for the whole engine.

Every error carries a stable ``code`` (the reference's code strings) and a one-line
``message`` that the CLI prints as ``loom: <message>`` without a traceback.
"""

from __future__ import annotations

from typing import Any


class LoomError(Exception):
    code = "LOOM_ERROR"

    def __init__(self, message: str, *, code: str | None = None, **detail: Any) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.detail = detail

    def __str__(self) -> str:  # one line, always
        return self.message.replace("\n", " ")


class ConfigError(LoomError):
    code = "CONFIG_INVALID"


class StateError(LoomError):
    """The state file cannot be used as it is."""

    code = "STATE_ERROR"


class StateBusy(StateError):
    code = "STATE_BUSY"


class StateCorrupt(StateError):
    code = "STATE_CORRUPT"


class SchemaTooNew(StateError):
    code = "SCHEMA_TOO_NEW"


class StateReadOnly(StateError):
    code = "STATE_READ_ONLY"


class NoActiveTask(StateError):
    code = "NO_ACTIVE_TASK"


class KernelRefusal(LoomError):
    """The kernel refused an input (stale gate event, unknown agent run, ...)."""

    code = "KERNEL_REFUSAL"


class InvariantViolation(LoomError):
    """A transition would break a safety invariant; the transaction was rolled back."""

    code = "INVARIANT_VIOLATION"

    def __init__(self, violations: list[Any], message: str | None = None) -> None:
        self.violations = list(violations)
        ids = ", ".join(v.id for v in self.violations)
        text = message or "; ".join(f"{v.id}: {v.message}" for v in self.violations)
        super().__init__(f"invariant violation ({ids}): {text}")

    @property
    def ids(self) -> list[str]:
        return [v.id for v in self.violations]


class ExecutorError(LoomError):
    code = "EXECUTOR_FAILED"


class BackendError(ExecutorError):
    code = "BACKEND_ERROR"


class SandboxError(LoomError):
    """The sandbox copy could not be provisioned, inspected or merged back (§9)."""

    code = "SANDBOX_PROVISION_FAILED"
