"""Verbs the HTTP control plane needs beyond the console's: create a task without driving it, the
spec's read model of a project, the supervisor's log tail, the task's working documents.

:class:`PlaneVerbs` is mixed into :class:`~loom_core.control.local.LocalControl` (it uses its
``project``, ``status``, ``work_dirs``, ``is_driving`` and ``_runner``). Everything returned is
JSON-able data.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loom_core.errors import LoomError

if TYPE_CHECKING:
    from loom_core.control.client import ProjectRef
    from loom_core.engine.options import RunOptions

ARTIFACT_CAP = 512 * 1024  # bytes of one working document a read returns
LOG_LINES = 60
MODELS_TTL_S = 60.0
_MODELS: dict[tuple[str, str | None], tuple[float, list[str]]] = {}  # (backend, base URL) → (when, refs)
CREDENTIAL_DIRS = (".ssh", ".gnupg", ".aws", ".loom", ".docker", ".kube", ".netrc")  # under home: never browsed


def fs_root() -> Path:
    """The folder pickers' root (the console's add-project tree, the plane's ``/fs/list``): ``$LOOM_FS_ROOT``,
    else the ``ui.browse_root`` setting, else the home folder (also when the settings cannot be read);
    symlinks resolved. A root that does not exist stays the root (never widened to home): the pickers say so."""
    raw = os.environ.get("LOOM_FS_ROOT", "").strip()
    if not raw:
        from loom_core.config.settings import load_settings

        try:
            raw = load_settings().ui.browse_root
        except LoomError:
            raw = ""
    return Path(os.path.realpath(Path(raw).expanduser() if raw else Path.home()))


def _credential_store(p: Path) -> bool:
    from loom_core.config.paths import loom_home

    home = Path(os.path.realpath(Path.home()))
    stores = [home / d for d in CREDENTIAL_DIRS] + [Path(os.path.realpath(loom_home()))]
    return any(p == s or s in p.parents for s in stores)


def fs_list(raw: str | None = None, root: Path | None = None) -> dict[str, Any]:
    """One folder of the picker: ``{root, path, parent|null, entries: [{name, path}]}`` (immediate child
    directories, no dot-dirs, sorted). ``raw`` is absolute (relative = under the root; empty = the root) and
    canonicalised through its longest existing ancestor; outside the root or in a credential store →
    ``PATH_REFUSED``; missing → ``DIR_NOT_FOUND``; a file → ``NOT_A_DIRECTORY``; unreadable → ``DIR_UNREADABLE``."""
    root = Path(os.path.realpath(root)) if root is not None else fs_root()
    text = (raw or "").strip()
    if "\x00" in text:
        raise LoomError("not a path", code="PATH_REFUSED")
    given = Path(text).expanduser() if text else root
    real = Path(os.path.realpath(given if given.is_absolute() else root / given))  # symlinks and '..' resolved
    if (real != root and root not in real.parents) or _credential_store(real):
        raise LoomError(f"{text or real} is outside the browsable folder {root}", code="PATH_REFUSED")
    if not real.exists():
        raise LoomError(f"no folder {real}", code="DIR_NOT_FOUND")
    if not real.is_dir():
        raise LoomError(f"{real} is a file, not a folder", code="NOT_A_DIRECTORY")
    try:
        with os.scandir(real) as it:
            names = sorted(e.name for e in it if not e.name.startswith(".") and _is_dir(e))
    except OSError as exc:
        raise LoomError(f"cannot read {real}: {exc.strerror or exc}", code="DIR_UNREADABLE") from None
    entries = []
    for name in names:
        child = Path(os.path.realpath(real / name))
        if (child == root or root in child.parents) and not _credential_store(child):  # a symlink may escape
            entries.append({"name": name, "path": str(real / name)})
    return {"root": str(root), "path": str(real), "parent": None if real == root else str(real.parent),
            "entries": entries}


# ---------------------------------------------------------------------- the project's .loom/loom.json
SENSITIVE = {("notify", "webhook_url"), ("notify", "slack_url"), ("notify", "telegram_token"),
             ("credentials", "*", "key_ref")}
HARNESSES = ("opencode", "aider")


def _sensitive(path: tuple[str, ...], value: Any) -> bool:
    from loom_core.config.redact import Redactor

    if not isinstance(value, str) or not value or value.startswith("secret:"):
        return False
    wild = tuple("*" if i == 1 and path[:1] == ("credentials",) else p for i, p in enumerate(path))
    return wild in SENSITIVE or Redactor(shapes=True).redact(value) != value


def _walk(doc: Any, fn: Any, path: tuple[str, ...] = ()) -> Any:
    if isinstance(doc, dict):
        return {k: _walk(v, fn, (*path, str(k))) for k, v in doc.items()}
    return fn(path, doc)


def _at(doc: Any, path: tuple[str, ...]) -> Any:
    for p in path:
        doc = doc.get(p) if isinstance(doc, dict) else None
    return doc


def masked_config(doc: dict[str, Any]) -> dict[str, Any]:
    """A project document with its credential-like values masked (``secret:<name>`` refs are shown)."""
    from loom_core.config.secrets import mask

    return _walk(doc, lambda path, v: mask(v) if _sensitive(path, v) else v)


def check_project_config(doc: dict[str, Any]) -> dict[str, str]:
    """Errors of a ``.loom/loom.json`` document by dotted key ({} = valid); unknown keys are tolerated."""
    from loom_core.config.project import CHECK_COMMANDS
    from loom_core.config.redact import Redactor
    from loom_core.config.sections import check_model_ref
    from loom_core.control.config import backend_names

    errors: dict[str, str] = {}

    def sub(key: str) -> dict[str, Any]:
        v = doc.get(key)
        if v is not None and not isinstance(v, dict):
            errors[key] = "must be an object"
        return v if isinstance(v, dict) else {}

    def ref(key: str, v: Any) -> None:
        try:
            check_model_ref(v if isinstance(v, str) else "")
        except ValueError as exc:
            errors[key] = str(exc)

    if "backend" in doc and doc["backend"] not in backend_names():
        errors["backend"] = f"one of {', '.join(backend_names())}"
    if "harness" in doc and doc["harness"] not in HARNESSES:
        errors["harness"] = f"one of {', '.join(HARNESSES)}"
    checks = doc.get("checks")
    if checks is not None and checks != "none":
        if not isinstance(checks, dict):
            errors["checks"] = 'must map test/lint/typecheck to commands, or be "none"'
        for k, v in (checks or {}).items() if isinstance(checks, dict) else ():
            if k not in CHECK_COMMANDS:
                errors[f"checks.{k}"] = f"not a check (one of {', '.join(CHECK_COMMANDS)})"
            elif v is not None and not isinstance(v, str):
                errors[f"checks.{k}"] = "must be a command line"
    for b, spec in sub("bundles").items():
        if not isinstance(spec, dict):
            errors[f"bundles.{b}"] = "must be an object"
            continue
        for agent, v in (spec.get("agents") or {}).items() if isinstance(spec.get("agents"), dict) else ():
            ref(f"bundles.{b}.agents.{agent}", v)
        for agent, refs in (spec.get("fallbacks") or {}).items() if isinstance(spec.get("fallbacks"), dict) else ():
            for i, v in enumerate(refs if isinstance(refs, list) else [None]):
                ref(f"bundles.{b}.fallbacks.{agent}[{i}]", v)
    notify = sub("notify")
    for k, v in notify.items():
        if k == "events" and not (isinstance(v, list) and all(isinstance(e, str) for e in v)):
            errors["notify.events"] = "must be a list of event names"
        elif k == "timeout_ms" and not (isinstance(v, int) and not isinstance(v, bool) and v >= 0):
            errors["notify.timeout_ms"] = "must be an integer ≥ 0"
        elif k not in ("events", "timeout_ms") and not isinstance(v, str):
            errors[f"notify.{k}"] = "must be a string"
    for k, v in sub("resilience").items():
        if k.endswith("_ms") and not (isinstance(v, int) and not isinstance(v, bool) and v >= 0):
            errors[f"resilience.{k}"] = "must be an integer ≥ 0"
    for b, fields in sub("credentials").items():
        if not isinstance(fields, dict) or not all(isinstance(v, str) for v in fields.values()):
            errors[f"credentials.{b}"] = "must map key_ref/base_url_ref to strings"
    shapes = Redactor(shapes=True)

    def literal(path: tuple[str, ...], v: Any) -> None:
        if isinstance(v, str) and shapes.redact(v) != v:
            errors[".".join(path)] = "a credential does not belong in a committable file: store it with " \
                                     "'loom secrets set <name>' and write secret:<name>"
    _walk(doc, literal)
    return errors


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def task_key(task: str) -> str:
    """The deterministic idempotency key of a task's create: the same text gives the same key, so a create
    retried after a crash (or a second identical submit) replays instead of starting a second task."""
    return "plane-" + hashlib.sha256(task.strip().encode("utf-8")).hexdigest()[:32]


class PlaneVerbs:
    """Task intake and reads for remote surfaces (the HTTP plane, later the bot)."""

    def fs_list(self, path: str | None = None) -> dict[str, Any]:
        """One folder of the folder picker under :func:`fs_root` (see :func:`fs_list`)."""
        return fs_list(path)

    def project_config_doc(self, ref: ProjectRef) -> dict[str, Any]:
        """The project's ``.loom/loom.json`` (``{}`` when there is none), credential-like values masked."""
        from loom_core.config.project import project_config

        return masked_config(project_config(self.project(ref).path))

    def project_config_save(self, ref: ProjectRef, doc: dict[str, Any]) -> dict[str, Any]:
        """Validate and write the project's ``.loom/loom.json`` atomically; a value sent back masked keeps the
        one on disk. Invalid → ``BAD_CONFIG`` with ``detail["errors"]`` (dotted key → message). Returns it masked."""
        from loom_core.config.paths import atomic_write, check_regular
        from loom_core.config.project import project_config
        from loom_core.config.secrets import mask
        from loom_core.errors import ConfigError

        if not isinstance(doc, dict):
            raise ConfigError("the project settings must be a JSON object", code="BAD_CONFIG", errors={})
        path = self.project(ref).path
        try:
            current = project_config(path)
        except ConfigError:  # a broken file is replaced by a valid one
            current = {}

        def keep(p: tuple[str, ...], v: Any) -> Any:
            old = _at(current, p)
            return old if isinstance(v, str) and "*" in v and _sensitive(p, old) and v == mask(old) else v

        doc = _walk(doc, keep)
        errors = check_project_config(doc)
        if errors:
            raise ConfigError("not saved: " + "; ".join(f"{k}: {m}" for k, m in errors.items()), code="BAD_CONFIG",
                              errors=errors)
        target = path / ".loom" / "loom.json"
        check_regular(target)
        atomic_write(target, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
        return masked_config(doc)

    def provider_models(self, backend: str, *, timeout_s: float = 5.0) -> dict[str, Any]:
        """``{backend, models: ["family:model"], reason?}`` (spec §10.5): the Anthropic backends list the static
        Claude ids; OpenRouter and Ollama are asked live (``timeout_s``, a good answer kept 60 s); anything that
        fails, and a backend without a list, is ``[]`` with the reason. Unknown → ``BACKEND_NOT_FOUND``."""
        import time

        from loom_core.agents import registry

        entry = registry.get(backend)
        if entry is None:
            raise LoomError(f"no backend {backend!r} (known: {', '.join(registry.names())})",
                            code="BACKEND_NOT_FOUND")
        if entry.family == "anthropic":
            from loom_core.agents.providers.anthropic import STATIC_MODELS

            return {"backend": backend, "models": [f"anthropic:{m}" for m in STATIC_MODELS]}
        if not entry.raw:
            return {"backend": backend, "models": [], "reason": f"{entry.label} has no model list"}
        try:
            from loom_core.agents.backends import Resolver

            key, base = Resolver().credential(backend)
        except LoomError as exc:
            return {"backend": backend, "models": [], "reason": str(exc)}
        if entry.needs_key and not key:
            return {"backend": backend, "models": [], "reason": f"no key for {backend} (loom secrets set {backend} …)"}
        cached = _MODELS.get((backend, base))
        if cached and time.monotonic() - cached[0] < MODELS_TTL_S:
            return {"backend": backend, "models": list(cached[1])}
        from loom_core.agents.providers import make_provider

        try:
            kw: dict[str, Any] = {"host": base} if backend == "ollama" else {"api_key": key, "base_url": base}
            provider = make_provider(backend, timeout=timeout_s, **{k: v for k, v in kw.items() if v is not None})
            try:
                refs = [f"{entry.family}:{m}" for m in provider.list_models()]
            finally:
                getattr(getattr(provider, "client", None), "close", lambda: None)()
        except Exception as exc:  # unreachable, refused, a bad answer: an empty list that says why
            return {"backend": backend, "models": [], "reason": f"{type(exc).__name__}: {exc}"[:300]}
        _MODELS[(backend, base)] = (time.monotonic(), refs)
        return {"backend": backend, "models": refs}

    def create_task(self, ref: ProjectRef, task: str, opts: RunOptions) -> dict[str, Any]:
        """Create ``task`` and stop at its first step (a supervisor drives it on); a finished task is
        archived first. The same text while that task is in progress replays (``replayed: true``); a
        different task in progress is refused (``PROJECT_TASK_ACTIVE``)."""
        from loom_core.config.redact import Redactor
        from loom_core.errors import KernelRefusal

        if not task.strip():
            raise LoomError("the task text is empty", code="TASK_REQUIRED")
        path = self.project(ref).path
        before = self._pipeline(path)
        if before and before.get("status") == "in_progress":
            if (before.get("task") or "").strip() != Redactor.from_environment().redact(task).strip():
                raise KernelRefusal(f"task {before.get('task_id')} is still in progress in this project; "
                                    "cancel it first", code="PROJECT_TASK_ACTIVE")
            return self._created(path, before, replayed=True)
        self._runner(path, opts).start(task, client_key=task_key(task), drive=False)
        return self._created(path, self._pipeline(path) or {}, replayed=False)

    def _pipeline(self, path: Path) -> dict[str, Any] | None:
        from loom_core.store import db as dbmod
        from loom_core.store.read import status_facts

        if not dbmod.state_path(path).exists():
            return None
        facts = status_facts(dbmod.state_path(path))
        return None if facts is None else dict(facts.state.pipeline)

    def _created(self, path: Path, p: dict[str, Any], *, replayed: bool) -> dict[str, Any]:
        return {"task_id": p.get("task_id"), "driver_state_id": p.get("driver_state_id"),
                "status": p.get("status"), "replayed": replayed, "dir": str(path)}

    def read_model(self, ref: ProjectRef, *, stall_after_min: float | None = None) -> dict[str, Any]:
        """The project's read model (spec §5.4): an unreadable or task-less store is ``has_task: false``.
        ``stall_after_min`` spares a settings read per project when a caller polls many."""
        path = self.project(ref).path
        try:
            st = self.status(path, stall_after_min=stall_after_min)
        except (LoomError, OSError) as exc:
            st = {"task_id": None, "error": str(exc)}
        has = bool(st.get("task_id"))
        task = st.get("task")
        gate = ({"gate": st["gate"], "message": st.get("gate_message"), "gate_event_id": st.get("gate_event_id")}
                if st.get("gate") else None)
        return {
            "project_dir": str(path), "has_task": has, "task_id": st.get("task_id"),
            "task_label": st.get("task_short") or (task[:72] if task else None), "task": task,
            "status": st.get("state") if has else None, "verdict": st.get("verdict"),
            "flow": {"name": st["flow"], "step_index": st.get("step")} if st.get("flow") else None,
            "active_phase": st.get("phase"), "parked_gate": gate,
            "pending_agents": [{"agent": a["agent"], "phase": a["phase"], "age_ms": int(a["age_s"] * 1000)}
                               for a in st.get("pending") or ()],
            "stalled": bool(st.get("stalled")), "started_at": st.get("started_at"), "ended_at": st.get("ended_at"),
            "state": st.get("status"),  # loom's own word (running, parked, stopped, over-budget, host-driven, …)
            "driven_by": st.get("driven_by"),  # "driven from Claude Code": its agents run there (a /task)
            "budget": st.get("budget"),  # spent / budget, and a budget stop's words (engine/budget.py)
            **({"error": st["error"]} if st.get("error") else {}),
        }

    def log_tail(self, ref: ProjectRef, lines: int = LOG_LINES) -> list[dict[str, Any]]:
        """The last ``lines`` entries of the project's supervisor log (``.loom/daemon/log.jsonl``); [] when none.
        An unreadable line is kept as ``{"raw": …}``."""
        from loom_core.store import db as dbmod

        path = dbmod.loom_dir(self.project(ref).path) / "daemon" / "log.jsonl"
        try:
            with open(path, "rb") as fh:
                fh.seek(0, 2)
                size = fh.tell()
                fh.seek(max(0, size - 64 * 1024))
                tail = fh.read().decode("utf-8", errors="replace").splitlines()
        except OSError:
            return []
        out: list[dict[str, Any]] = []
        for line in tail[-lines:]:
            try:
                row = json.loads(line)
                out.append(row if isinstance(row, dict) else {"raw": line})
            except ValueError:
                out.append({"raw": line})
        return out

    def artifacts(self, ref: ProjectRef) -> list[dict[str, Any]]:
        """The task's working documents (``.loom/work/*``) from the first work folder that has any."""
        for d in self.work_dirs(ref):
            if d.is_dir():
                rows = [{"path": f".loom/work/{f.name}", "size": f.stat().st_size,
                         "modified_at": datetime.fromtimestamp(f.stat().st_mtime, UTC).isoformat()}
                        for f in sorted(d.iterdir()) if f.is_file() and not f.is_symlink()]
                if rows:
                    return rows
        return []

    def artifact(self, ref: ProjectRef, path: str) -> dict[str, Any]:
        """One working document by its ``.loom/work/<name>`` path (first 512 KiB)."""
        name = path.removeprefix(".loom/work/")
        if not path.startswith(".loom/work/") or not name or "/" in name or name in (".", ".."):
            raise LoomError(f"not a working document path: {path!r}", code="BAD_ARTIFACT_PATH")
        for d in self.work_dirs(ref):
            f = d / name
            if f.is_file() and not f.is_symlink():
                with open(f, "rb") as fh:
                    data = fh.read(ARTIFACT_CAP + 1)
                return {"path": path, "content": data[:ARTIFACT_CAP].decode("utf-8", errors="replace"),
                        "truncated": len(data) > ARTIFACT_CAP}
        raise LoomError(f"no working document {path}", code="ARTIFACT_NOT_FOUND")

    def held_elsewhere(self, ref: ProjectRef) -> bool:
        """Whether another drive (another process, or a drive this client does not own) holds the project."""
        from loom_core.control.status import driver_alive

        return not self.is_driving(ref) and driver_alive(self.project(ref).path)
