"""Kernel-side refusals. Re-exported from ``loom_core.errors`` so callers see one tree."""

from __future__ import annotations

from ..errors import InvariantViolation, KernelRefusal


class KernelError(KernelRefusal):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code=code)


__all__ = ["KernelError", "InvariantViolation"]
