"""The plane's JSON routes (spec §5.2). Every handler asks the facade (``control(request)``) or the fleet
registry; none reads a store itself. Handlers are plain functions: starlette runs them on its thread
pool, so a verb that blocks (a lock, a git command) never stalls the event loop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from loom_core.errors import LoomError

DECISIONS = ("accept", "reject", "auto-apply")
RUN_FIELDS = ("push", "squash_merge",  # ship on accept, kept in task-exec.json for the supervisor
              "backend", "bundle", "max_spawns", "fast", "demo_delay_s",  # beyond the spec: what a run may pin
              "docker",  # true = containers (refused at once when impossible), false = sandbox copy, absent = auto
              "max_cost_usd", "max_tokens")  # the task's budgets (engine/budget.py)


def control(request: Request) -> Any:
    return request.app.state.control


def registry(request: Request) -> Any:
    return request.app.state.registry


def body(request: Request) -> dict[str, Any]:
    return request.scope.get("state", {}).get("json") or {}


def ok(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status)


def known(request: Request, *, supervised: bool = False) -> Any:
    """The route's project: the supervised set first, then the catalog (a read never starts a watcher)."""
    pid = request.path_params["pid"]
    w = registry(request).watcher(pid)
    if w is not None:
        return w.project
    if supervised:
        raise LoomError(f"project {pid} is not supervised by this plane", code="PROJECT_NOT_FOUND")
    try:
        return control(request).project(pid)
    except LoomError:
        raise LoomError(f"no project {pid} (not supervised, not in the catalog)", code="PROJECT_NOT_FOUND") from None


def allowlisted(request: Request, path: Path) -> None:
    """Spec §5.1 guard 6: a plane without a token adopts only an allowlisted project (403
    ``PROJECT_DIR_NOT_ALLOWED`` with the reason); with a token the caller is the operator."""
    if not request.app.state.tokened:
        from loom_core.config import allowlist

        allowlist.check(path)


def entry(request: Request, p: Any) -> dict[str, Any]:
    return {"id": p.id, "dir": p.dir, "supervised": registry(request).is_supervised(p.id),
            "status": control(request).read_model(p.path)}


# ---------------------------------------------------------------------- fleet
def health(request: Request) -> JSONResponse:
    return ok({"ok": True, "projects": len(registry(request).supervised())})


def submit(request: Request) -> JSONResponse:
    from loom_core.control import RunOptions

    doc = body(request)
    ref, task = doc.get("project"), doc.get("task")
    if not isinstance(ref, str) or not ref.strip():
        raise LoomError("name the project (an id or a directory)", code="PROJECT_REQUIRED")
    if not isinstance(task, str) or not task.strip():
        raise LoomError("the task text is required", code="TASK_REQUIRED")
    reg = registry(request)
    w = reg.watcher(ref)
    if w is not None:
        p = w.project
    else:
        try:
            p = control(request).project(ref if "/" not in ref else Path(ref))
        except LoomError:
            raise LoomError(f"no project {ref}", code="PROJECT_NOT_FOUND") from None
        if not p.path.is_dir():
            raise LoomError(f"no project directory {p.dir}", code="PROJECT_NOT_FOUND")
        if not reg.is_supervised(p.id):
            allowlisted(request, p.path)
        if control(request).held_elsewhere(p.path):
            raise LoomError(f"{p.dir} is being driven by another process", code="PROJECT_LOCKED")
    opts = RunOptions(policy=doc.get("policy_preset"), complexity=doc.get("complexity"),
                      **{k: doc[k] for k in RUN_FIELDS if k in doc})
    if opts.docker is True:
        docker = control(request).docker_status(fresh=True)
        if not docker["available"]:
            raise LoomError(f"docker: true requires container isolation, but {docker['reason']}",
                            code="DOCKER_UNAVAILABLE")
    created = control(request).create_task(p.path, task, opts)
    reg.register(p.path)
    reg.wake(p.id)
    return ok({"id": p.id, "dir": p.dir, **{k: created[k] for k in ("task_id", "driver_state_id", "status",
                                                                     "replayed")}})


async def list_projects(request: Request) -> Response:
    """Served on the event loop from the registry's cached encoding (no thread hop, no store read), so a
    busy fleet answers fast; the first call after a change builds it on a worker thread."""
    import anyio

    reg = registry(request)
    fleet = reg.fleet_json()
    if fleet is None:
        rows = await anyio.to_thread.run_sync(reg.read_models)
        return ok([{"id": p.id, "dir": p.dir, "supervised": True, "status": model} for p, model in rows])
    return Response(fleet, media_type="application/json")


def add_project(request: Request) -> JSONResponse:
    d = body(request).get("dir")
    if not isinstance(d, str) or not d.strip():
        raise LoomError("name the project directory", code="DIR_REQUIRED")
    if not Path(d).expanduser().is_dir():
        raise LoomError(f"no directory {d}", code="DIR_NOT_FOUND")
    if not registry(request).is_supervised(control(request).project(Path(d).expanduser()).id):
        allowlisted(request, Path(d).expanduser())
    p = registry(request).register(Path(d).expanduser())
    return ok({"id": p.id, "dir": p.dir}, 201)


def get_project(request: Request) -> JSONResponse:
    return ok(entry(request, known(request)))


def remove_project(request: Request) -> JSONResponse:
    p = known(request, supervised=True)
    registry(request).unregister(p.id)
    return ok({"id": p.id, "unregistered": True})


# ---------------------------------------------------------------------- task verbs
def answer(request: Request) -> JSONResponse:
    p = known(request, supervised=True)
    doc = body(request)
    gate_event_id, decision = doc.get("gate_event_id"), doc.get("decision")
    if not isinstance(gate_event_id, str) or not gate_event_id:
        raise LoomError("gate_event_id is required (the gate you are answering)", code="ANSWER_INVALID")
    if decision not in DECISIONS:
        raise LoomError(f"decision must be one of {', '.join(DECISIONS)}", code="ANSWER_INVALID")
    intent = doc.get("reject_intent")
    if intent not in (None, "revise", "abandon"):
        raise LoomError("reject_intent must be revise or abandon", code="ANSWER_INVALID")
    if decision == "reject" and intent == "abandon":
        decision = "abandon"
    waiting = control(request).read_model(p.path)["parked_gate"]
    if not waiting or waiting["gate_event_id"] != gate_event_id:  # answered, or its task moved on (no lock needed)
        raise LoomError("this gate was already answered elsewhere, or no gate waits; nothing was sent",
                        code="GATE_ALREADY_ANSWERED")
    message = doc.get("message")
    control(request).answer(p.path, decision, message if isinstance(message, str) else None,
                            gate_event_id=gate_event_id)
    registry(request).wake(p.id)
    return ok({"id": p.id, "status": control(request).read_model(p.path)})


def cancel(request: Request) -> JSONResponse:
    p = known(request)
    registry(request).unregister(p.id)  # pause: the watcher stops and the project leaves the durable set
    result = control(request).cancel(p.path)
    archived = control(request).reset(p.path, force=True)
    return ok({"id": p.id, "dir": p.dir, "cancelled": True, "task_id": archived.get("task_id"),
               "archived": str(archived["archive"]) if archived.get("archive") else None,
               "verdict": result.get("verdict")})


def _branch(request: Request, p: Any) -> str:
    task_id = control(request).status(p.path).get("task_id")
    if not task_id:
        past = control(request).history(p.path)
        task_id = past[0].get("task_id") if past else None
    if not task_id:
        raise LoomError("this project has no task to ship", code="NO_TASK")
    return f"loom/{task_id}"


def _ship(request: Request, verb: str) -> JSONResponse:
    p = known(request)
    branch = _branch(request, p)
    try:
        msg = getattr(control(request), verb)(p.path, branch)
        done, reason = True, None
    except LoomError as exc:  # a refusal (no remote, dirty tree, …) is an outcome, not an error
        if exc.code in ("PROJECT_BUSY", "STATE_BUSY"):
            raise  # a drive holds the project: 409, try again
        msg, done, reason = str(exc), False, exc.code
    key = "pushed" if verb == "push" else "merged"
    return ok({"id": p.id, "dir": p.dir, key: done, "branch": branch, "message": msg, "reason": reason})


def push(request: Request) -> JSONResponse:
    return _ship(request, "push")


def merge(request: Request) -> JSONResponse:
    return _ship(request, "merge")


# ---------------------------------------------------------------------- task reads
def history(request: Request) -> JSONResponse:
    return ok({"tasks": control(request).history(known(request).path)})


def trace(request: Request) -> JSONResponse:
    """The task's trace (spec §5.4); ``?task=`` names an archived one."""
    return ok(control(request).trace(known(request).path, request.query_params.get("task")))


def artifacts(request: Request) -> JSONResponse:
    return ok({"artifacts": control(request).artifacts(known(request).path)})


def artifact(request: Request) -> JSONResponse:
    p = known(request)
    return ok(control(request).artifact(p.path, request.query_params.get("path", "")))


def spawn(request: Request) -> JSONResponse:
    p = known(request)
    run_id = request.path_params["run_id"]
    if not run_id or "/" in run_id or len(run_id) > 200:
        raise LoomError("not a run id", code="BAD_RUN_ID")
    try:
        detail = control(request).run_detail(p.path, run_id)
    except LoomError as exc:
        raise LoomError(str(exc), code="TRANSCRIPT_NOT_FOUND") from None
    if detail.get("agent") is None and not detail.get("running"):  # no such run in this task
        raise LoomError(f"no run {run_id} in {p.dir}", code="TRANSCRIPT_NOT_FOUND")
    return ok({"run_id": run_id, "transcript": detail})


# ---------------------------------------------------------------------- settings, secrets, catalog
def get_config(request: Request) -> JSONResponse:
    return ok(control(request).config())


def put_config(request: Request) -> JSONResponse:
    try:
        return ok(control(request).config_save(body(request)))
    except LoomError as exc:
        raise LoomError(str(exc), code="BAD_CONFIG") from None


def config_schema(request: Request) -> JSONResponse:
    return ok(control(request).config_schema())


def secrets(request: Request) -> JSONResponse:
    return ok({"secrets": dict(control(request).secrets()["secrets"])})


def put_secret(request: Request) -> JSONResponse:
    name, value = request.path_params["name"], body(request).get("value")
    if not isinstance(value, str) or not value:
        raise LoomError("send {\"value\": \"…\"}", code="BAD_REQUEST")
    got = control(request).set_secret(name, value)
    return ok({"name": name, "stored": True, "masked": got["masked"], "ref": f"secret:{name}"})


def providers(request: Request) -> JSONResponse:
    rows = control(request).backends()
    return ok({"backend_mode": control(request).config_get("backend"), "providers": rows,
               "docker": control(request).docker_status()})


def project_config(request: Request) -> JSONResponse:
    p = known(request)
    try:
        return ok(control(request).project_config_doc(p.path))
    except LoomError as exc:  # the file is not valid JSON, or not an object
        raise LoomError(str(exc), code="BAD_CONFIG") from None


def put_project_config(request: Request) -> JSONResponse:
    p = known(request)
    try:
        return ok(control(request).project_config_save(p.path, body(request)))
    except LoomError as exc:
        raise LoomError(str(exc), code="BAD_CONFIG") from None


def provider_models(request: Request) -> JSONResponse:
    return ok(control(request).provider_models(request.path_params["backend"], timeout_s=5.0))


def agents(request: Request) -> JSONResponse:
    """The project's bundle and each agent's effective model (``family`` when the ref or model names one)."""
    bundle = known(request).bundle or "code"
    try:
        rows = control(request).models(bundle)
    except LoomError as exc:
        raise LoomError(f"the agents of bundle {bundle!r} cannot be read: {exc}", code="REGISTRY_UNAVAILABLE") from None
    out = []
    for r in rows:
        row = {k: r.get(k) for k in ("agent", "ref", "source", "model")}
        named = next((v for v in (r.get("ref"), r.get("model")) if isinstance(v, str) and ":" in v), None)
        if named:
            row["family"] = named.split(":", 1)[0]
        out.append(row)
    return ok({"bundle": bundle, "agents": out})


def workspace(request: Request) -> JSONResponse:
    return ok({"projects": control(request).fleet()})


def enroll(request: Request) -> JSONResponse:
    doc = body(request)
    d, label = doc.get("dir"), doc.get("label")
    if not isinstance(d, str) or not d.strip():
        raise LoomError("name the project directory", code="DIR_REQUIRED")
    p = control(request).add_project(Path(d), label=label if isinstance(label, str) else None)
    return ok({"id": p.id, "dir": p.dir, "enrolled": enrolled(p.path), "label": p.label, "bundle": p.bundle}, 201)


def enrolled(path: Path) -> bool:
    """The UI's "add project" is an operator gesture: allowlist the project, best-effort (spec §3.10): a folder
    that does not exist (yet) or an unwritable allowlist is not an error, just ``enrolled: false``."""
    from loom_core.config import allowlist

    try:
        allowlist.add(path)
    except (LoomError, OSError):
        return False
    return True


def unenroll(request: Request) -> JSONResponse:
    p = control(request).remove_project(request.path_params["pid"])
    return ok({"id": p.id, "removed": True})


# ---------------------------------------------------------------------- folder browser
def fs_list(request: Request) -> JSONResponse:
    return ok(control(request).fs_list(request.query_params.get("path") or None))


def routes() -> list[Route]:
    from loom_core.surfaces.plane.reads import read_routes
    from loom_core.surfaces.plane.sse import project_log

    P = "/projects/{pid}"
    return [
        Route("/health", health),
        Route("/submit", submit, methods=["POST"]),
        Route("/projects", list_projects, methods=["GET"]),
        Route("/projects", add_project, methods=["POST"]),
        Route(P, get_project, methods=["GET"]),
        Route(P, remove_project, methods=["DELETE"]),
        Route(P + "/answer", answer, methods=["POST"]),
        Route(P + "/cancel", cancel, methods=["POST"]),
        Route(P + "/push", push, methods=["POST"]),
        Route(P + "/merge", merge, methods=["POST"]),
        Route(P + "/log", project_log),
        Route(P + "/history", history),
        Route(P + "/trace", trace),
        Route(P + "/artifacts", artifacts),
        Route(P + "/artifact", artifact),
        Route(P + "/spawn/{run_id}", spawn),
        Route(P + "/agents", agents),
        Route(P + "/config", project_config, methods=["GET"]),
        Route(P + "/config", put_project_config, methods=["PUT"]),
        Route("/config", get_config, methods=["GET"]),
        Route("/config", put_config, methods=["PUT"]),
        Route("/config/schema", config_schema),
        Route("/secrets", secrets),
        Route("/secrets/{name}", put_secret, methods=["PUT"]),
        Route("/providers", providers),
        Route("/providers/{backend}/models", provider_models),
        Route("/workspace", workspace),
        Route("/workspace/projects", enroll, methods=["POST"]),
        Route("/workspace/projects/{pid}", unenroll, methods=["DELETE"]),
        Route("/fs/list", fs_list, methods=["GET"]),
        *read_routes(),  # what an attached console reads beyond the spec's routes
    ]
