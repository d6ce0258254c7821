"""The verbs every surface needs, as one protocol.

The console, ``loom run`` / plain mode and the CLI verbs talk to the engine only through a
:class:`ControlClient`. :class:`loom_core.control.local.LocalControl` is the in-process
implementation; the HTTP plane serves the same verbs and its client implements the same protocol,
so the Telegram bot and the MCP server are further clients of one vocabulary.

A project is named by a :data:`ProjectRef`: a catalog id (``"a1b2c3d4"``) or a directory. Every
verb that changes a task takes the project's lock, so two surfaces (or two processes) never drive,
answer or cancel the same task at once. Errors are typed (:mod:`loom_core.errors`): a stale gate
answer raises :class:`~loom_core.errors.GateAlreadyAnswered`, a project another process drives
raises ``ProjectBusy``, an unknown project ``LoomError(code="NOT_IN_CATALOG")``.

This module stays import-light (no engine, no store): ``loom --help`` imports it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from loom_core.control.catalog import Project
    from loom_core.engine.runner import RunOptions, RunResult

ProjectRef = str | Path
"""A catalog id or a project directory."""

DECISIONS = ("accept", "reject", "abandon", "auto-apply")
RECOVERIES = ("retry", "retry-failed", "cancel-pending", "force-close", "abandon")


@runtime_checkable
class ControlClient(Protocol):
    """What a surface may ask of loom. Reads never change anything; mutating verbs take the lock."""

    # ---------------------------------------------------------------- projects
    def projects(self) -> list[Project]:
        """The catalog's projects, in catalog order."""

    def project(self, ref: ProjectRef) -> Project:
        """One project by id or directory (a directory need not be in the catalog)."""

    def add_project(self, path: Path | str, *, label: str | None = None, create: bool = False) -> Project: ...

    def remove_project(self, ref: ProjectRef) -> Project: ...

    # ---------------------------------------------------------------- reads
    def fleet(self) -> list[dict[str, Any]]:
        """One status row per catalog project (``status``, ``task_id``, ``gate``, cost, …, ``driving``)."""

    def status(self, ref: ProjectRef, *, stall_after_min: float | None = None,
               with_sandbox: bool = False) -> dict[str, Any]:
        """The project's task as ``loom status --json`` shows it."""

    def is_driving(self, ref: ProjectRef) -> bool:
        """Whether this client is driving the project right now."""

    def wait_stopped(self, ref: ProjectRef, timeout_s: float = 120.0) -> bool:
        """Wait until this client no longer drives the project; ``False`` on timeout."""

    def now(self) -> str:
        """The client's clock (an ISO timestamp), so ages shown agree with the engine's."""

    def history(self, ref: ProjectRef) -> list[dict[str, Any]]:
        """Archived tasks, newest first."""

    def chain(self, ref: ProjectRef, task_id: str | None = None) -> dict[str, Any] | None:
        """The agent chain (runs, verdicts, gates) of the live task or an archived one; ``None`` if none."""

    def run_detail(self, ref: ProjectRef, agent_run_id: str, task_id: str | None = None) -> dict[str, Any]: ...

    def trace(self, ref: ProjectRef, task_id: str | None = None) -> dict[str, Any]:
        """The spec's trace of the live task or an archived one (``BAD_TASK_ID``, ``ARCHIVE_NOT_FOUND``)."""

    def gate(self, ref: ProjectRef) -> dict[str, Any] | None:
        """The gate waiting for an answer (with its ``gate_event_id``), or ``None``."""

    def store_of(self, ref: ProjectRef, task_id: str | None = None) -> Path | None:
        """Where the live or an archived task's store is; ``None`` when there is none."""

    def work_dirs(self, ref: ProjectRef) -> list[Path]:
        """Where the task's working documents (plan, reviews) are, the sandbox's first."""

    def states(self, ref: ProjectRef, task_id: str) -> tuple[dict[int, dict[str, Any]], list[str]]:
        """Each tick's state of a recorded task, and the bundle's phase order (the replay view)."""

    def history_index(self, ref: ProjectRef) -> list[dict[str, Any]]:
        """The project's history index as ``loom history`` prints it (unreadable lines kept raw)."""

    def task_refs(self, ref: ProjectRef) -> list[dict[str, str]]:
        """Task ids for completion: the live task's, then the archived ones newest first (``ref``, ``label``)."""

    def completion_words(self) -> dict[str, list[str]]:
        """For completion: ``config_keys`` (per agent where a key names one) and ``agents`` (the code bundle's)."""

    def run_options(self, ref: ProjectRef) -> RunOptions:
        """The options the project's task was started with (``task-exec.json``)."""

    def in_place_question(self, ref: ProjectRef, *, any_task: bool = False) -> str | None:
        """The consent question for running in place in a non-git project, or ``None`` when not needed."""

    def diff(self, ref: ProjectRef) -> str:
        """The sandbox's diff against where the task started ("" when there is none)."""

    def ticks(self, ref: ProjectRef, task_id: str | None = None) -> list[dict[str, Any]]: ...

    def verify(self, ref: ProjectRef, task_id: str | None = None) -> Any:
        """The audit-chain report of the live or an archived store."""

    def replay(self, ref: ProjectRef, task_id: str, *, extra_invariants: list[Any] | None = None) -> Any: ...

    # ---------------------------------------------------------------- task verbs (take the lock)
    def submit(self, ref: ProjectRef, task: str, opts: RunOptions) -> RunResult:
        """Start ``task`` and drive it until it ends, parks at a gate or is paused."""

    def proceed(self, ref: ProjectRef, opts: RunOptions | None = None) -> RunResult:
        """Drive the current task on (``resume`` is the same verb); ``opts`` replace its options."""

    def take_over(self, ref: ProjectRef) -> dict[str, Any]:
        """Hand a task Claude Code drives (over loom's MCP server) to loom, so ``proceed`` and supervisors
        drive it; ``{task_id, host}`` (``host``: the dropped marker, None when none). NO_ACTIVE_TASK if none."""

    def answer(self, ref: ProjectRef, decision: str, note: str | None = None, *,
               gate_event_id: str | None = None) -> dict[str, Any]:
        """Answer the waiting gate; with ``gate_event_id`` only that gate (else ``GateAlreadyAnswered``)."""

    def wait_answered(self, ref: ProjectRef, gate_event_id: str, timeout_s: float = 1.0) -> bool:
        """Wait up to ``timeout_s`` until that gate no longer waits (answered anywhere, or its task ended);
        True when so. Cheap: no busy polling of the store."""

    def wait_changed(self, ref: ProjectRef, timeout_s: float = 1.0) -> bool:
        """Wait up to ``timeout_s`` until anything is committed to the project's task store; True when so."""

    def pause(self, ref: ProjectRef) -> bool:
        """Ask this client's drive of the project to stop after the current step; ``False`` if none."""

    def cancel(self, ref: ProjectRef) -> dict[str, Any]:
        """Stop the drive and abandon the task."""

    def recover(self, ref: ProjectRef, choice: str) -> dict[str, Any]: ...

    def reset(self, ref: ProjectRef, *, force: bool = False) -> dict[str, Any]:
        """Archive the task into the project's history and clear the slot."""

    def push(self, ref: ProjectRef, branch: str, remote: str | None = None) -> str: ...

    def merge(self, ref: ProjectRef, branch: str) -> str:
        """Squash-merge ``branch`` into the user's checked-out branch (refused on a dirty tree)."""

    def branch_exists(self, ref: ProjectRef, branch: str) -> bool: ...

    # ---------------------------------------------------------------- housekeeping
    def init(self, ref: ProjectRef) -> Path:
        """Create the project's ``.loom`` folder (with its ``.gitignore``)."""

    def gc(self, *, dry_run: bool = False) -> list[tuple[Path, int]]:
        """Remove sandboxes no task owns any more; what was (or would be) removed and its size."""

    # ---------------------------------------------------------------- settings, secrets, models (control/config.py)
    def config(self, *, file_only: bool = False) -> dict[str, Any]:
        """The effective settings as data (``file_only``: the file over the defaults, no environment)."""

    def config_text(self) -> str: ...

    def config_get(self, key: str) -> Any: ...

    def config_set(self, key: str, value: str) -> Any:
        """Set one dotted key from its text form ("" resets it); returns the effective value after."""

    def config_keys(self) -> list[str]: ...

    def config_key_help(self) -> dict[str, str]: ...

    def config_source(self, key: str) -> str: ...

    def config_schema(self) -> dict[str, Any]: ...

    def config_path(self) -> Path: ...

    def config_check(self, doc: dict[str, Any]) -> dict[str, str]:
        """Errors of a whole settings document by dotted key ({} = valid); nothing is written."""

    def config_save(self, doc: dict[str, Any], *, keep: tuple[str, ...] = ("models", "fallbacks")) -> dict[str, Any]:
        """Validate and write a whole settings document (``keep`` sections stay as on disk)."""

    def secrets(self) -> dict[str, Any]:
        """``{"where", "secrets": [(name, mask)]}``; values never leave."""

    def set_secret(self, name: str, value: str) -> dict[str, str]: ...

    def unset_secret(self, name: str) -> bool: ...

    def models(self, bundle: str = "code", *, stray: bool = False) -> list[dict[str, Any]]:
        """Each agent's default, override and effective model."""

    def set_model(self, agent: str, ref: str, bundle: str = "code") -> dict[str, Any]: ...

    def backends(self, *, check: bool = True) -> list[dict[str, Any]]:
        """Every backend (``auto`` first) with ``usable`` and ``why``."""

    def policies(self) -> tuple[str, ...]: ...

    def docker_status(self, *, fresh: bool = False) -> dict[str, Any]:
        """Can agents run in containers here: ``{available, reason, image, credential, engine}``."""

    # ---------------------------------------------------------------- remote intake and reads (control/plane_verbs.py)
    def create_task(self, ref: ProjectRef, task: str, opts: RunOptions) -> dict[str, Any]:
        """Create a task and stop at its first step (a supervisor drives it); same text in progress replays."""

    def read_model(self, ref: ProjectRef, *, stall_after_min: float | None = None) -> dict[str, Any]:
        """The project's read model (``has_task``, ``status``, ``parked_gate``, ``pending_agents``, …)."""

    def log_tail(self, ref: ProjectRef, lines: int = 60) -> list[dict[str, Any]]:
        """The last entries of the project's supervisor log."""

    def artifacts(self, ref: ProjectRef) -> list[dict[str, Any]]: ...

    def artifact(self, ref: ProjectRef, path: str) -> dict[str, Any]: ...

    def held_elsewhere(self, ref: ProjectRef) -> bool:
        """Whether a drive this client does not own holds the project's lock."""

    def complexities(self, bundle: str = "code") -> tuple[str, ...]: ...

    def fs_list(self, path: str | None = None) -> dict[str, Any]:
        """One folder of the folder picker (``$LOOM_FS_ROOT`` or home): ``{root, path, parent, entries}``."""

    def provider_models(self, backend: str, *, timeout_s: float = 5.0) -> dict[str, Any]:
        """``{backend, models: ["family:model"], reason?}``; unreachable → ``[]`` and the reason."""

    def project_config_doc(self, ref: ProjectRef) -> dict[str, Any]:
        """The project's ``.loom/loom.json``, credential-like values masked (``{}`` when there is none)."""

    def project_config_save(self, ref: ProjectRef, doc: dict[str, Any]) -> dict[str, Any]:
        """Validate and write the project's ``.loom/loom.json`` (masked values sent back keep the stored ones)."""

    # ---------------------------------------------------------------- a host that runs the agents (control/shuttle.py, MCP)
    def shuttle_meta(self, ref: ProjectRef) -> dict[str, Any]:
        """Versions, policy flags, provider, bundles and sandbox kind (the MCP ``pipeline_meta``)."""

    def shuttle_start(self, ref: ProjectRef, task: str, *, client_key: str, on_active_task: str = "refuse",
                      policy: str | None = None, gate_policies: dict[str, str] | None = None,
                      complexity: str | None = None, initial_decisions: dict[str, Any] | None = None,
                      bundle: str = "code") -> dict[str, Any]:
        """Create a task whose agents the host runs: ``{response, task_id, driver_state_id, warnings?}``."""

    def shuttle_continue(self, ref: ProjectRef, driver_state_id: str, delivery: dict[str, Any]) -> dict[str, Any]:
        """Deliver agent result(s) or a gate answer: ``{response}`` (a duplicate replays, ``replayed``)."""

    def shuttle_resume(self, ref: ProjectRef, driver_state_id: str | None = None) -> dict[str, Any]: ...

    def shuttle_prompt(self, ref: ProjectRef, driver_state_id: str, agent_run_id: str) -> dict[str, Any]: ...

    def shuttle_recover(self, ref: ProjectRef, driver_state_id: str, choice: str, *,
                        recovery_id: str | None = None, agent_run_ids: list[str] | None = None) -> dict[str, Any]: ...

    def shuttle_state(self, ref: ProjectRef, *, format: str = "summary", table: str | None = None,
                      since: str | None = None, limit: int = 100) -> dict[str, Any]:
        """The task store: ``summary`` counts, ``json`` full state, or a table as ``jsonl`` / ``pretty-table``."""

    def shuttle_extensions(self, ref: ProjectRef, *, kind: str | None = None, status: str | None = None,
                           include_manifest: bool = False) -> dict[str, Any]: ...

    def store_backup(self, ref: ProjectRef, to: str) -> dict[str, Any]:
        """``{bytes_written, ts, backup_path}``; a path leaving the project is ``BACKUP_PATH_REJECTED``."""

    def store_restore(self, ref: ProjectRef, source: str, *, format: str = "sql",
                      confirm: bool = False) -> dict[str, Any]:
        """``{restored, ts, error?}``; needs ``confirm``; disallowed SQL is ``RESTORE_REJECTED``."""
