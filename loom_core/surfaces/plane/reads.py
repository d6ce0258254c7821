"""Facade reads for an attached console (``loom --server …``): what the console asks that the spec's routes
do not carry. Each route calls one facade verb and returns its result as JSON (paths as strings,
dataclasses as objects); :class:`loom_core.control.http.HttpControl` rebuilds the types.

- ``GET /catalog``: the catalog's projects.
- ``GET /projects/{pid}/view/{verb}``: one project read (``?task=``, ``?run=``, ``?branch=``).
- ``GET /facade/{verb}``: one global read (settings, backends, models, the clock).
- ``POST /facade/{verb}``: one settings write (``{"args": [...], "kwargs": {...}}``).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from loom_core.errors import LoomError
from loom_core.surfaces.plane.routes import body, control, known

PROJECT_READS = ("status", "chain", "run_detail", "gate", "store_of", "work_dirs", "states", "diff", "ticks",
                 "history", "branch_exists", "in_place_question", "run_options", "history_index", "verify", "replay")
GLOBAL_READS = ("now", "config", "config_path", "config_schema", "config_keys", "config_get", "backends", "models",
                "complexities", "policies", "secrets", "docker_status")
GLOBAL_WRITES = ("config_check", "config_save", "config_set", "set_secret", "unset_secret", "set_model")


def plain(value: Any) -> Any:
    """``json.dumps`` default: paths as strings, dataclasses as objects, tuples and sets as lists."""
    if isinstance(value, Path):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    return str(value)


def encoded(data: Any) -> Response:
    return Response(json.dumps({"result": data}, default=plain), media_type="application/json")


def catalog(request: Request) -> Response:
    return encoded(control(request).projects())


def project_view(request: Request) -> Response:
    verb = request.path_params["verb"]
    if verb not in PROJECT_READS:
        raise LoomError(f"no project read {verb!r} over HTTP", code="NOT_FOUND")
    p, q, ctl = known(request), request.query_params, control(request)
    task = q.get("task") or None
    if verb == "run_detail":
        return encoded(ctl.run_detail(p.path, q.get("run", ""), task))
    if verb == "states":
        got, order = ctl.states(p.path, task or "")
        return encoded([{str(k): v for k, v in got.items()}, list(order)])
    if verb == "branch_exists":
        return encoded(ctl.branch_exists(p.path, q.get("branch", "")))
    if verb == "in_place_question":
        return encoded(ctl.in_place_question(p.path, any_task=q.get("any_task") == "1"))
    if verb == "replay":  # the report and its lines (a method there)
        report = ctl.replay(p.path, task or "")
        return encoded({**dataclasses.asdict(report), "lines": report.lines()})
    if verb in ("chain", "store_of", "ticks", "verify"):
        return encoded(getattr(ctl, verb)(p.path, task))
    return encoded(getattr(ctl, verb)(p.path))


def facade_read(request: Request) -> Response:
    verb = request.path_params["verb"]
    if verb not in GLOBAL_READS:
        raise LoomError(f"no read {verb!r} over HTTP", code="NOT_FOUND")
    q, ctl = request.query_params, control(request)
    if verb == "config":
        return encoded(ctl.config(file_only=q.get("file_only") == "1"))
    if verb == "config_get":
        return encoded(ctl.config_get(q.get("key", "")))
    if verb == "backends":
        return encoded(ctl.backends(check=q.get("check") != "0"))
    if verb == "models":
        return encoded(ctl.models(q.get("bundle") or "code", stray=q.get("stray") == "1"))
    if verb == "complexities":
        return encoded(ctl.complexities(q.get("bundle") or "code"))
    return encoded(getattr(ctl, verb)())


def facade_write(request: Request) -> Response:
    verb = request.path_params["verb"]
    if verb not in GLOBAL_WRITES:
        raise LoomError(f"no write {verb!r} over HTTP", code="NOT_FOUND")
    doc = body(request)
    args, kwargs = doc.get("args") or [], doc.get("kwargs") or {}
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise LoomError('send {"args": [...], "kwargs": {...}}', code="BAD_REQUEST")
    if "keep" in kwargs:
        kwargs["keep"] = tuple(kwargs["keep"])
    return encoded(getattr(control(request), verb)(*args, **kwargs))


def read_routes() -> list[Route]:
    return [
        Route("/catalog", catalog, methods=["GET"]),
        Route("/projects/{pid}/view/{verb}", project_view, methods=["GET"]),
        Route("/facade/{verb}", facade_read, methods=["GET"]),
        Route("/facade/{verb}", facade_write, methods=["POST"]),
    ]
