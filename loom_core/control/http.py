"""``HttpControl``: the :class:`~loom_core.control.client.ControlClient` of a running plane (``loom serve``),
over HTTP. The console uses it when it attaches to a plane (``server.json``, or ``loom --server URL --token T``).

The plane drives: ``submit``, ``proceed`` and ``answer`` hand the work to the plane's watcher and return at
once (``None`` for the drives: there is no outcome to wait for here); the fleet shows how it goes. ``pause``
stops the plane's supervision of the project after its current step. ``is_driving`` is the plane's word.
Errors come back as the loom error of the envelope's code (a stale gate → ``GateAlreadyAnswered``). Paths
the plane names are paths on the plane's host.
"""

from __future__ import annotations

import inspect
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from loom_core import errors
from loom_core.control.client import ProjectRef
from loom_core.errors import LoomError

TIMEOUT_S = 30.0


def _error_classes() -> dict[str, type[LoomError]]:
    out: dict[str, type[LoomError]] = {}
    todo: list[type[LoomError]] = [LoomError]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if cls.__module__ == errors.__name__:
            param = inspect.signature(cls.__init__).parameters.get("code")
            default = param.default if param is not None else None  # GateAlreadyAnswered sets its code there
            out.setdefault(default if isinstance(default, str) else cls.code, cls)
    return out


def error_of(code: str, message: str) -> LoomError:
    """The loom error the plane's envelope names (its class when loom has one for the code)."""
    cls = _error_classes().get(code, LoomError)
    try:
        exc = cls(message, code=code)
    except Exception:  # noqa: BLE001 - a class that wants more than a message: the plain error
        exc = LoomError(message, code=code)
    return exc


class HttpControl:
    """The facade of a plane at ``url`` (``token``: its bearer token, if it has one)."""

    remote = True

    def __init__(self, url: str, token: str | None = None, *, timeout_s: float = TIMEOUT_S) -> None:
        import httpx

        self.url = url.rstrip("/")
        self.token = token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s)
        self._lock = threading.Lock()
        self._rows: dict[str, dict[str, Any]] = {}
        self.sink_for: Any = None  # the console sets it; the plane's events arrive over SSE instead

    # ---------------------------------------------------------------- transport
    def _call(self, method: str, path: str, *, params: dict[str, Any] | None = None, body: Any = None) -> Any:
        import httpx

        try:
            resp = self.http.request(method, path, params={k: v for k, v in (params or {}).items() if v is not None},
                                     json=body if body is not None or method in ("POST", "PUT") else None)
        except httpx.HTTPError as exc:
            raise LoomError(f"the plane at {self.url} is unreachable: {exc}", code="PLANE_UNREACHABLE") from None
        try:
            doc = resp.json()
        except ValueError:
            doc = None
        if resp.status_code >= 400:
            err = doc.get("error") if isinstance(doc, dict) else None
            if isinstance(err, dict):
                raise error_of(str(err.get("code") or "LOOM_ERROR"), str(err.get("message") or resp.text))
            raise LoomError(f"the plane answered {resp.status_code}", code="PLANE_ERROR")
        return doc

    def _view(self, ref: ProjectRef, verb: str, **params: Any) -> Any:
        return self._call("GET", f"/projects/{self._id(ref)}/view/{verb}", params=params)["result"]

    def _read(self, verb: str, **params: Any) -> Any:
        return self._call("GET", f"/facade/{verb}", params=params)["result"]

    def _write(self, verb: str, *args: Any, **kwargs: Any) -> Any:
        return self._call("POST", f"/facade/{verb}", body={"args": list(args), "kwargs": kwargs})["result"]

    def _id(self, ref: ProjectRef) -> str:
        if isinstance(ref, Path) or "/" in str(ref):
            return self.project(ref).id
        return str(ref)

    def __getattr__(self, name: str) -> Any:
        """A verb of the protocol the plane does not serve yet fails as a loom error, not an AttributeError."""
        from loom_core.control.client import ControlClient

        if name.startswith("_") or not callable(getattr(ControlClient, name, None)):
            raise AttributeError(name)

        def unavailable(*args: Any, **kwargs: Any) -> Any:
            raise LoomError(f"{name} is not available from a plane (run it on the plane's host)", code="NOT_OVER_HTTP")

        return unavailable

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/health")

    def close(self) -> None:
        self.http.close()

    # ---------------------------------------------------------------- projects
    def projects(self) -> list[Any]:
        from loom_core.control.catalog import Project

        return [Project(**p) for p in self._call("GET", "/catalog")["result"]]

    def project(self, ref: ProjectRef) -> Any:
        from loom_core.control.catalog import Project

        key = str(Path(ref).expanduser()) if isinstance(ref, Path) or "/" in str(ref) else str(ref)
        for p in self.projects():
            if key in (p.id, p.dir):
                return p
        if "/" in key:
            return Project.at(key)
        raise LoomError(f"no project {ref} in the plane's catalog", code="NOT_IN_CATALOG")

    def add_project(self, path: Path | str, *, label: str | None = None, create: bool = False) -> Any:
        from loom_core.control.catalog import Project

        got = self._call("POST", "/workspace/projects", body={"dir": str(path), "label": label})
        return Project(id=got["id"], dir=got["dir"], label=got.get("label"), bundle=got.get("bundle"))

    def remove_project(self, ref: ProjectRef) -> Any:
        p = self.project(ref)
        self._call("DELETE", f"/workspace/projects/{p.id}")
        return p

    # ---------------------------------------------------------------- reads
    def fleet(self) -> list[dict[str, Any]]:
        rows = self._call("GET", "/workspace")["projects"]
        with self._lock:
            self._rows = {r["id"]: r for r in rows}
        return rows

    def status(self, ref: ProjectRef, *, stall_after_min: float | None = None,
               with_sandbox: bool = False) -> dict[str, Any]:
        return self._view(ref, "status")

    def is_driving(self, ref: ProjectRef) -> bool:
        """Whether the plane drives the project (as of the last fleet read)."""
        with self._lock:
            return bool(self._rows.get(self._id(ref), {}).get("driving"))

    def wait_stopped(self, ref: ProjectRef, timeout_s: float = 120.0) -> bool:
        import time

        deadline = time.monotonic() + timeout_s
        pid = self._id(ref)
        while time.monotonic() < deadline:
            self.fleet()
            if not self.is_driving(pid):
                return True
            time.sleep(0.25)
        return False

    def now(self) -> str:
        return self._read("now")

    def history(self, ref: ProjectRef) -> list[dict[str, Any]]:
        return self._call("GET", f"/projects/{self._id(ref)}/history")["tasks"]

    def history_index(self, ref: ProjectRef) -> list[dict[str, Any]]:
        return self._view(ref, "history_index")

    def chain(self, ref: ProjectRef, task_id: str | None = None) -> dict[str, Any] | None:
        return self._view(ref, "chain", task=task_id)

    def run_detail(self, ref: ProjectRef, agent_run_id: str, task_id: str | None = None) -> dict[str, Any]:
        return self._view(ref, "run_detail", run=agent_run_id, task=task_id)

    def trace(self, ref: ProjectRef, task_id: str | None = None) -> dict[str, Any]:
        return self._call("GET", f"/projects/{self._id(ref)}/trace", params={"task": task_id})

    def gate(self, ref: ProjectRef) -> dict[str, Any] | None:
        return self._view(ref, "gate")

    def store_of(self, ref: ProjectRef, task_id: str | None = None) -> Path | None:
        got = self._view(ref, "store_of", task=task_id)
        return None if got is None else Path(got)

    def work_dirs(self, ref: ProjectRef) -> list[Path]:
        return [Path(d) for d in self._view(ref, "work_dirs")]

    def states(self, ref: ProjectRef, task_id: str) -> tuple[dict[int, dict[str, Any]], list[str]]:
        got, order = self._view(ref, "states", task=task_id)
        return {int(k): v for k, v in got.items()}, order

    def diff(self, ref: ProjectRef) -> str:
        return self._view(ref, "diff")

    def ticks(self, ref: ProjectRef, task_id: str | None = None) -> list[dict[str, Any]]:
        return self._view(ref, "ticks", task=task_id)

    def branch_exists(self, ref: ProjectRef, branch: str) -> bool:
        return bool(self._view(ref, "branch_exists", branch=branch))

    def in_place_question(self, ref: ProjectRef, *, any_task: bool = False) -> str | None:
        return self._view(ref, "in_place_question", any_task="1" if any_task else None)

    def run_options(self, ref: ProjectRef) -> Any:
        from loom_core.control import RunOptions

        doc = self._view(ref, "run_options") or {}
        known = {f for f in RunOptions.__dataclass_fields__}
        return RunOptions(**{k: v for k, v in doc.items() if k in known})

    def verify(self, ref: ProjectRef, task_id: str | None = None) -> Any:
        """The audit-chain report (its fields as attributes)."""
        from types import SimpleNamespace

        return SimpleNamespace(**self._view(ref, "verify", task=task_id))

    def replay(self, ref: ProjectRef, task_id: str, *, extra_invariants: list[Any] | None = None) -> Any:
        """The replay report (its fields as attributes, ``lines()`` as the plane wrote them)."""
        from types import SimpleNamespace

        if extra_invariants:
            raise LoomError("extra invariants cannot be sent to a plane", code="NOT_OVER_HTTP")
        doc = self._view(ref, "replay", task=task_id)
        lines = doc.pop("lines", [])
        return SimpleNamespace(**doc, lines=lambda: list(lines))

    def artifact(self, ref: ProjectRef, path: str) -> dict[str, Any]:
        """One working document (``.loom/work/<name>``) as the plane reads it: ``{path, content, truncated}``."""
        return self._call("GET", f"/projects/{self._id(ref)}/artifact", params={"path": path})

    def artifacts(self, ref: ProjectRef) -> list[dict[str, Any]]:
        return self._call("GET", f"/projects/{self._id(ref)}/artifacts")["artifacts"]

    def read_model(self, ref: ProjectRef, *, stall_after_min: float | None = None) -> dict[str, Any]:
        return self._call("GET", f"/projects/{self._id(ref)}")["status"]

    def log(self, ref: ProjectRef, *, token_in_query: bool = False) -> Iterator[dict[str, Any]]:
        """The project's live snapshots (``{status, log, supervised}``) from the plane's SSE stream, as they come."""
        import httpx

        with self.http.stream("GET", f"/projects/{self._id(ref)}/log", timeout=httpx.Timeout(30.0, read=None)) as resp:
            if resp.status_code >= 400:
                resp.read()
                err = (resp.json() or {}).get("error") or {}
                raise error_of(err.get("code", "PLANE_ERROR"), err.get("message", f"HTTP {resp.status_code}"))
            for line in resp.iter_lines():
                if line.startswith("data: "):
                    yield json.loads(line[6:])

    # ---------------------------------------------------------------- task verbs: the plane drives
    def submit(self, ref: ProjectRef, task: str, opts: Any) -> None:
        """Create the task on the plane; its watcher drives it. Returns at once."""
        fields = ("push", "squash_merge", "backend", "bundle", "max_spawns", "fast", "demo_delay_s", "max_cost_usd",
                  "max_tokens")
        doc: dict[str, Any] = {"project": self._id(ref), "task": task,
                               "policy_preset": getattr(opts, "policy", None),
                               "complexity": getattr(opts, "complexity", None)}
        doc.update({k: getattr(opts, k) for k in fields if getattr(opts, k, None) is not None})
        if getattr(opts, "replace", False):  # in place of the task in progress: abandon it (archived) first
            self.cancel(ref)
        self._call("POST", "/submit", body={k: v for k, v in doc.items() if v is not None})
        return None

    def proceed(self, ref: ProjectRef, opts: Any = None) -> None:
        """Have the plane supervise (drive) the project. Returns at once."""
        self._call("POST", "/projects", body={"dir": self.project(ref).dir})
        return None

    resume = proceed

    def answer(self, ref: ProjectRef, decision: str, note: str | None = None, *,
               gate_event_id: str | None = None) -> dict[str, Any]:
        pid = self._id(ref)
        if gate_event_id is None:
            waiting = self.gate(pid)
            if not waiting:
                raise errors.GateAlreadyAnswered("no gate waits", code="GATE_ALREADY_ANSWERED")
            gate_event_id = waiting["gate_event_id"]
        doc: dict[str, Any] = {"gate_event_id": gate_event_id, "decision": decision}
        if decision == "abandon":
            doc.update(decision="reject", reject_intent="abandon")
        if note:
            doc["message"] = note
        self.proceed(pid)  # answers go to supervised projects; the watcher then drives on
        return self._call("POST", f"/projects/{pid}/answer", body=doc)

    def pause(self, ref: ProjectRef) -> bool:
        """Stop the plane's supervision after the current step; ``False`` if it did not supervise it."""
        try:
            self._call("DELETE", f"/projects/{self._id(ref)}")
        except LoomError as exc:
            if exc.code == "PROJECT_NOT_FOUND":
                return False
            raise
        return True

    def cancel(self, ref: ProjectRef) -> dict[str, Any]:
        return self._call("POST", f"/projects/{self._id(ref)}/cancel")

    def push(self, ref: ProjectRef, branch: str, remote: str | None = None) -> str:
        return self._ship("push", ref)

    def merge(self, ref: ProjectRef, branch: str) -> str:
        return self._ship("merge", ref)

    def _ship(self, verb: str, ref: ProjectRef) -> str:
        got = self._call("POST", f"/projects/{self._id(ref)}/{verb}")
        if not got.get("pushed" if verb == "push" else "merged"):
            raise LoomError(got.get("message") or f"{verb} refused", code=got.get("reason") or "SHIP_REFUSED")
        return got.get("message") or ""

    # ---------------------------------------------------------------- settings, secrets, models
    def config(self, *, file_only: bool = False) -> dict[str, Any]:
        return self._read("config", file_only="1" if file_only else None)

    def config_get(self, key: str) -> Any:
        return self._read("config_get", key=key)

    def config_keys(self) -> list[str]:
        return self._read("config_keys")

    def config_schema(self) -> dict[str, Any]:
        return self._read("config_schema")

    def config_path(self) -> Path:
        return Path(self._read("config_path"))

    def config_check(self, doc: dict[str, Any]) -> dict[str, str]:
        return self._write("config_check", doc)

    def config_save(self, doc: dict[str, Any], *, keep: tuple[str, ...] = ("models", "fallbacks")) -> dict[str, Any]:
        return self._write("config_save", doc, keep=list(keep))

    def config_set(self, key: str, value: str) -> Any:
        return self._write("config_set", key, value)

    def secrets(self) -> dict[str, Any]:
        got = self._read("secrets")
        got["secrets"] = [tuple(s) for s in got.get("secrets", [])]
        return got

    def set_secret(self, name: str, value: str) -> dict[str, str]:
        return self._write("set_secret", name, value)

    def unset_secret(self, name: str) -> bool:
        return self._write("unset_secret", name)

    def models(self, bundle: str = "code", *, stray: bool = False) -> list[dict[str, Any]]:
        return self._read("models", bundle=bundle, stray="1" if stray else None)

    def set_model(self, agent: str, ref: str, bundle: str = "code") -> dict[str, Any]:
        return self._write("set_model", agent, ref, bundle)

    def backends(self, *, check: bool = True) -> list[dict[str, Any]]:
        return self._read("backends", check=None if check else "0")

    def policies(self) -> tuple[str, ...]:
        return tuple(self._read("policies"))

    def docker_status(self, *, fresh: bool = False) -> dict[str, Any]:
        return self._read("docker_status")

    def complexities(self, bundle: str = "code") -> tuple[str, ...]:
        return tuple(self._read("complexities", bundle=bundle))

    def fs_list(self, path: str | None = None) -> dict[str, Any]:
        return self._call("GET", "/fs/list", params={"path": path})
