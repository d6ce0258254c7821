"""What every tool shares: the allowlist gate, the facade, and one JSON text result per call.

Every tool checks the project against ``~/.loom/projects.allow`` before anything else (reads too: no tool
opens or creates a store of a project the user did not enroll). A refusal is a structured result in the
tool's own shape: ``{"response": {"kind": "error", …}}`` for the tools that answer with a directive,
``{…nulls, "error": {code, message}}`` for the others. Only a programming error raises.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from loom_core.config import allowlist
from loom_core.errors import LoomError

_CONTROL: Any = None


def control() -> Any:
    """The in-process facade (one per server)."""
    global _CONTROL
    if _CONTROL is None:
        from loom_core.control import LocalControl

        _CONTROL = LocalControl()
    return _CONTROL


def dump(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, default=str)


def refusal(shape: str, code: str, message: str, nulls: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    if shape == "response":
        return {"response": {"kind": "error", "code": code, "message": message, "recovery_options": [], **extra},
                **(nulls or {})}
    return {**(nulls or {}), "error": {"code": code, "message": message, **extra}}


def call(project_dir: str, shape: str, fn: Callable[[str], dict[str, Any]],
         nulls: dict[str, Any] | None = None) -> str:
    """Gate ``project_dir`` on the allowlist (by realpath), run ``fn(realpath)``, return one JSON text.
    A LoomError becomes a structured refusal with its code."""
    try:
        real = allowlist.check(project_dir)
    except allowlist.ProjectNotAllowed as exc:
        return dump(refusal(shape, exc.code, str(exc), nulls, reason=exc.reason, project_dir=exc.path))
    except LoomError as exc:  # an unreadable allowlist file: still a refusal, with its reason
        return dump(refusal(shape, "PROJECT_DIR_NOT_ALLOWED", str(exc), nulls, reason="allowlist-unreadable"))
    try:
        return dump({**(nulls or {}), **fn(real)})  # every answer has the tool's fields
    except LoomError as exc:
        return dump(refusal(shape, exc.code or "ERROR", str(exc), nulls))
    except OSError as exc:  # the disk, not the caller: still an answer the host can show
        return dump(refusal(shape, "IO_ERROR", f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), nulls))
