"""The plane's starlette app: the routes behind the guards, one error envelope for every failure.

``create_app(control, token=…, registry=…)`` builds it; :func:`serve` runs it with uvicorn (the
registry, the lock and the re-attach are ``loom serve``'s job, see :mod:`.server`).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from loom_core.errors import LoomError
from loom_core.surfaces.plane.guards import Guards, error

log = logging.getLogger("loom.plane")

CONFLICT = {"GATE_ALREADY_ANSWERED", "NO_PENDING_GATE", "NO_PARKED_GATE", "PROJECT_TASK_ACTIVE", "GATE_EVENT_STALE",
            "STALE_GATE_EVENT", "PROJECT_LOCKED"}
NOT_FOUND = {"NOT_IN_CATALOG", "PROJECT_NOT_FOUND", "DIR_NOT_FOUND", "NO_ACTIVE_TASK", "ARCHIVE_NOT_FOUND",
             "ARTIFACT_NOT_FOUND", "TRANSCRIPT_NOT_FOUND", "TASK_NOT_FOUND", "BACKEND_NOT_FOUND"}
FORBIDDEN = {"PATH_REFUSED", "DIR_UNREADABLE", "PROJECT_DIR_NOT_ALLOWED"}
BUSY = {"PROJECT_BUSY", "STATE_BUSY"}  # another drive holds the project: the spec's PROJECT_LOCKED


def status_of(exc: LoomError) -> tuple[int, str]:
    """The HTTP status and code of a loom error."""
    code = exc.code
    if code in BUSY:
        return 409, "PROJECT_LOCKED"
    if code in CONFLICT:
        return 409, code
    if code in FORBIDDEN:
        return 403, code
    if code in NOT_FOUND:
        return 404, code
    return 400, code


async def _loom_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, LoomError)
    status, code = status_of(exc)
    resp = error(status, code, str(exc))
    if isinstance(getattr(exc, "reason", None), str):  # the allowlist's refusal says why (spec §3.10)
        resp = JSONResponse({"error": {"code": code, "message": str(exc), "reason": exc.reason}},  # type: ignore[attr-defined]
                            status_code=status)
    return resp


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "HTTP_ERROR")
    message = "no such route" if exc.status_code == 404 else str(exc.detail)
    return error(exc.status_code, code, message)


async def _internal(request: Request, exc: Exception) -> JSONResponse:
    log.exception("plane: %s %s failed", request.method, request.url.path, exc_info=exc)
    return error(500, "INTERNAL", f"internal error ({type(exc).__name__})")


def create_app(control: Any, *, token: str | None, registry: Any, sse_period_s: float = 2.0) -> Any:
    """The plane as an ASGI app: the guards wrap the starlette app, so a refused request never reaches it."""
    from loom_core.surfaces.plane.routes import routes

    app = Starlette(routes=routes(), exception_handlers={LoomError: _loom_error, HTTPException: _http_error,
                                                         Exception: _internal})
    app.state.control = control
    app.state.registry = registry
    app.state.stopping = threading.Event()
    app.state.sse_period_s = sse_period_s
    app.state.tokened = bool(token)  # a token means an operator: the allowlist guard stands aside (§5.1 guard 6)
    guarded = Guards(app, token=token)
    guarded.state = app.state  # type: ignore[attr-defined]  # what a test or the server reaches for
    return guarded
