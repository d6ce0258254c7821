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


class GateAlreadyAnswered(KernelRefusal):
    """The gate an answer names is no longer the one waiting: it was answered (or the task moved on)
    elsewhere. Nothing was sent; the surface should re-read the task."""

    def __init__(self, message: str, code: str = "GATE_ALREADY_ANSWERED", **kw) -> None:
        super().__init__(message, code=code, **kw)


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


class BudgetExceeded(ExecutorError):
    """The next spawn could take the task past its cost or token budget; it was not started."""

    code = "BUDGET_EXCEEDED"


class SandboxError(LoomError):
    """The sandbox copy could not be provisioned, inspected or merged back (§9)."""

    code = "SANDBOX_PROVISION_FAILED"


# --- model providers (loom_core/agents/providers) ------------------------------------------------


class ProviderError(ExecutorError):
    """A direct model-provider call failed. ``provider`` names the provider ("anthropic", ...)."""

    code = "EXECUTOR_FAILED"

    def __init__(self, message: str, *, code: str | None = None, provider: str | None = None,
                 status: int | None = None, **detail: Any) -> None:
        super().__init__(message, code=code, provider=provider, status=status, **detail)
        self.provider = provider
        self.status = status


class ProviderAuthError(ProviderError):
    """Bad or missing credentials, no permission, no credit left."""

    code = "EXECUTOR_AUTH_FAILED"


class ProviderRateLimited(ProviderError):
    """429 / rate-limit wording. ``retry_after`` (seconds) comes from the ``retry-after`` header."""

    code = "EXECUTOR_RATE_LIMITED"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, retry_after=retry_after, **kw)
        self.retry_after = retry_after


class ProviderOverloaded(ProviderRateLimited):
    """529 / 502 / 503 / "overloaded". A subclass of ``ProviderRateLimited`` so that a fallback
    chain catching rate limits moves on for it too; its own code stays ``EXECUTOR_OVERLOADED``."""

    code = "EXECUTOR_OVERLOADED"


class ProviderBadRequest(ProviderError):
    """The provider refused the request as malformed (4xx other than auth / rate limit)."""

    code = "EXECUTOR_BAD_REQUEST"


class ProviderInvalidModel(ProviderBadRequest):
    """The model id is unknown / not found / not supported by this provider."""

    code = "EXECUTOR_INVALID_MODEL"


class ProviderNetworkError(ProviderError):
    """Connection refused / reset, a stream dropped mid-reply, or a timeout."""

    code = "EXECUTOR_NETWORK"


class ProviderAborted(ProviderError):
    """The call was not started, or was stopped, because the cancel token was set."""

    code = "EXECUTOR_ABORTED"


class OutputTruncated(ProviderError):
    """The reply hit the token limit (``max_tokens`` / ``length``) without a tool call.
    ``partial_text`` holds what arrived; never retried as-is."""

    code = "EXECUTOR_OUTPUT_TRUNCATED"

    def __init__(self, message: str, *, partial_text: str = "", **kw: Any) -> None:
        super().__init__(message, **kw)
        self.partial_text = partial_text
