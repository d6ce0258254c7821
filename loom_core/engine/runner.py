"""Run a task in a project: the composition every surface (CLI, console, daemon) uses.

Takes the per-project lock, opens the engine, provisions the sandbox, resolves the backend,
drives, and on an accepted finish commits the work to ``loom/<task_id>`` in the user's repo.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loom_core.bundles import load_bundle
from loom_core.config.project import configured_checks, project_config
from loom_core.engine import budget
from loom_core.engine.clock import Clock, SystemClock
from loom_core.engine.drive import DriveOptions, Driver, Outcome
from loom_core.engine.engine import Engine, random_id
from loom_core.engine.events import EngineEvent, EventSink, NullSink
from loom_core.engine.exec_file import exec_file, load_exec, save_exec
from loom_core.engine.lock import ProjectBusy, ProjectLock
from loom_core.engine.options import RunOptions, RunResult
from loom_core.engine.options import user_settings as _settings
from loom_core.errors import ConfigError, GateAlreadyAnswered, KernelRefusal, NoActiveTask
from loom_core.store import db as dbmod


class TaskRunner:
    """One project's task verbs (start, proceed, answer, recover), each under the project lock."""

    def __init__(self, project: Path | str, opts: RunOptions | None = None, *, sink: EventSink | None = None,
                 clock: Clock | None = None, cancel: threading.Event | None = None,
                 new_id: Callable[[], str] = random_id, spawn_gate: Any = None) -> None:
        self.project = Path(project).resolve()
        if not self.project.is_dir():
            raise ConfigError(f"{self.project} is not a directory")
        self.opts = opts or RunOptions()
        self.opts.validate()
        self.sink = sink or NullSink()
        self.clock = clock or SystemClock()
        self.new_id = new_id  # the engine's id source
        self.cancel = cancel or threading.Event()
        self.spawn_gate = spawn_gate  # wraps every spawn (a fleet's shared semaphore); None = no limit
        self._resolved = None

    def emit(self, kind: str, **data: Any) -> None:
        self.sink.emit(EngineEvent(kind, str(self.project), data))

    # ------------------------------------------------------------------ parts
    def _backend(self):
        """Resolved once, before anything is written: an unusable backend refuses up front."""
        if self._resolved is None:
            from loom_core.agents.backends import resolve_backend
            from loom_core.agents.executors.container_plan import decide

            plan, notice = decide(self.opts.docker, self.opts.backend, self.project)  # --docker impossible: refused
            if notice:
                self.emit("notice", message=notice, level="info" if plan else "warning")
            self._resolved = resolve_backend(self.opts.backend, demo_delay_s=self.opts.demo_delay_s, container=plan)
        return self._resolved

    def _executor(self, engine: Engine, workspace) -> Any:
        from loom_core.agents.executors.checks import ChecksExecutor
        from loom_core.agents.spawn import SpawnExecutor

        backend = self._backend()
        limits = _settings().checks
        checks = ChecksExecutor(lambda: workspace.root, configured_checks(self.project), limits.timeout_s,
                                workspace=workspace, test_timeout_s=limits.test_timeout_s)
        return SpawnExecutor(backend, workspace, checks=checks)

    def _workspace(self, *, fresh: bool):
        from loom_core.workspace import Workspace

        ws = Workspace.provision(self.project, fresh=fresh)
        if ws.warning:
            self.emit("notice", message=ws.warning, level="warning")
        left_out = ws.left_out_notice()
        if left_out:
            self.emit("notice", message=left_out, level="warning")
        return ws

    def _driver(self, engine: Engine, workspace, cancel: threading.Event | None = None) -> Driver:
        ex = self._executor(engine, workspace)
        self.emit("backend", name=ex.name, label=ex.label, sandbox=str(workspace.root), isolated=workspace.isolated)
        return Driver(engine, ex, sink=self.sink, cancel=cancel or self.cancel, spawn_gate=self.spawn_gate,
                      options=DriveOptions(max_total_spawns=self.opts.spawn_cap(),
                                           max_concurrent=self.opts.concurrency(),
                                           budget=budget.limits_for(self.opts)))

    def _finish(self, engine: Engine, workspace, outcome: Outcome) -> RunResult:
        """Land accepted work on ``loom/<task_id>``; a task finished in any way loses its sandbox (a failed
        merge-back keeps it, with the work); an unfinished one keeps it, tagged with the task id."""
        merge = None
        if outcome.kind == "complete" and outcome.verdict == "accepted" and outcome.task_id:
            merge = self._land(outcome.task_id, workspace)
        elif outcome.kind == "complete" and workspace.isolated:
            workspace.discard()  # rejected, abandoned or failed: nothing will come back to it
        elif outcome.task_id and workspace.isolated:
            workspace.note_task(outcome.task_id)
        return RunResult(outcome, merge, workspace.warning, str(workspace.root), outcome.task_id)

    def _land(self, task_id: str, workspace=None):
        """The recorded landing sequence (see ``sandbox.landing``): resumable after a kill at any point."""
        from loom_core.engine.verify import trailers
        from loom_core.workspace.landing import land

        merge = land(self.project, task_id, workspace, trailers=trailers(self.project))  # the audit head, anchored
        if merge is not None:
            self.emit("merge", status=merge.status, branch=merge.branch, files=list(merge.files),
                      message=merge.message)
        return merge

    def _finish_ended(self, st, *, before_new_task: bool = False) -> Any:
        """A task that ended earlier: land its accepted work if that was interrupted, drop any other
        sandbox (a half-deleted one included) without opening it. Before a new task, a task that had
        landed completely is not announced again."""
        task_id = st.pipeline.get("task_id")
        if st.pipeline.get("verdict") == "accepted" and task_id:
            from loom_core.workspace import landing

            record = landing.read(self.project, task_id)
            if not (before_new_task and record and record.get("stage") == "landed"):
                return self._land(task_id)
        self._drop_sandbox()
        return None

    def _require_isolation_or_consent(self) -> None:
        """A new task in a non-git directory runs in place only with ``in_place`` (``--in-place``)."""
        if self.opts.in_place:
            return
        from loom_core.workspace import discover

        if discover(self.project) is None:
            raise ConfigError(in_place_refusal(self.project), code="USAGE")

    def _drop_sandbox(self) -> None:
        from loom_core.workspace import Workspace
        from loom_core.workspace.sandbox import remove_sandbox

        remove_sandbox(Workspace.sandbox_path(self.project))

    def _clear_partials(self) -> None:
        from loom_core.workspace.cleanup import clear_partials

        clear_partials(self.project)

    # ------------------------------------------------------------------ verbs
    def start(self, task: str, *, client_key: str | None = None, drive: bool = True) -> RunResult:
        """New task (a finished one is archived first; an in-progress one is resumed unless
        ``replace``). ``client_key`` makes the create idempotent (a retried create replays); with
        ``drive=False`` the task is created and left at its first step (another drive takes it on)."""
        if not task.strip():
            raise ConfigError("the task text is empty", code="USAGE")
        if self._backend().backend == "demo":
            from loom_core.agents.executors.demo_project import require_demo_project

            require_demo_project(self.project)
        if not dbmod.state_path(self.project).exists():
            self._require_isolation_or_consent()
        with ProjectLock(self.project):
            engine = Engine(self.project, bundle=load_bundle(self.opts.bundle), clock=self.clock, new_id=self.new_id)
            try:
                st = engine.state()
                if st.exists and st.status == "in_progress" and not self.opts.replace:
                    if not drive:
                        raise KernelRefusal(f"task {st.pipeline['task_id']} is still in progress in this project",
                                            code="PROJECT_TASK_ACTIVE")
                    self.emit("notice", message=f"resuming the task already in progress ({st.pipeline['task_id']}); "
                                                "the new text is ignored (use --replace to discard it)")
                    return self._resume(engine)
                self._require_isolation_or_consent()
                self._clear_partials()
                if st.exists and st.status != "in_progress":
                    self._finish_ended(st, before_new_task=True)  # an interrupted landing completes first
                ws = self._workspace(fresh=True)
                stopped = threading.Event()
                if not drive:
                    stopped.set()  # the loop stops before its first spawn: only the create is written
                driver = self._driver(engine, ws, cancel=stopped if not drive else None)
                budget.pin(self.opts)  # the task keeps the budgets it started with
                save_exec(self.project, self.opts)
                outcome = driver.start(task, replace=self.opts.replace, gate_policies=self.opts.gate_policies(),
                                       initial_decisions=self.opts.initial_decisions(), client_key=client_key)
                return self._finish(engine, ws, outcome)
            finally:
                engine.close()

    def proceed(self) -> RunResult:
        self._backend()
        with ProjectLock(self.project):
            if not dbmod.state_path(self.project).exists():
                raise NoActiveTask(f"no active task in {self.project}")
            engine = Engine(self.project, clock=self.clock, create=False, new_id=self.new_id)
            try:
                return self._resume(engine)
            finally:
                engine.close()

    def _resume(self, engine: Engine) -> RunResult:
        st = engine.state()
        if not st.exists:
            raise NoActiveTask(f"no active task in {self.project}")
        if st.status == "in_progress":
            refuse_hosted(self.project, st.pipeline.get("task_id"))
        self._clear_partials()
        if st.status != "in_progress":
            d = engine.resume_directive()
            outcome = Outcome("complete", task_id=st.pipeline["task_id"], verdict=d.verdict, summary=d.summary)
            # finished by an answer, or interrupted while landing: land accepted work now, drop any other sandbox
            return RunResult(outcome, self._finish_ended(st), task_id=outcome.task_id)
        budget.sync(self.project, self.opts)  # `loom proceed --max-cost` raising a budget keeps it
        ws = self._workspace(fresh=False)
        driver = self._driver(engine, ws)
        return self._finish(engine, ws, driver.resume())

    def answer(self, decision: str, note: str | None = None, *, gate_event_id: str | None = None) -> dict[str, Any]:
        """Answer the parked gate (does not drive; ``proceed`` continues).

        With ``gate_event_id`` (what a surface showed the user), only that gate is answered: if it was
        answered elsewhere meanwhile, :class:`GateAlreadyAnswered` is raised and nothing is sent. The
        check and the answer happen under the project lock, so two surfaces cannot both answer it."""
        if decision not in ("accept", "reject", "abandon", "auto-apply"):
            raise ConfigError(f"expected accept, reject, abandon or auto-apply, got '{decision}'", code="USAGE")
        with ProjectLock(self.project):
            if not dbmod.state_path(self.project).exists():
                raise NoActiveTask(f"no active task in {self.project}")
            engine = Engine(self.project, clock=self.clock, create=False, new_id=self.new_id)
            try:
                st = engine.state()
                pua = st.driver.get("pending_user_answer") if st.exists else None
                if gate_event_id is not None and (not pua or pua.get("gate_event_id") != gate_event_id):
                    raise GateAlreadyAnswered("this gate was already answered elsewhere; nothing was sent")
                if not pua:
                    raise KernelRefusal("no gate is waiting for an answer in this project", code="NO_PENDING_GATE")
                if decision == "reject" and not note:
                    raise ConfigError("a rejection needs a note saying what to change (--note)", code="USAGE")
                if decision == "abandon" and not _offers_abandon(engine, st, pua["gate"]):
                    raise ConfigError(f"gate '{pua['gate']}' offers accept or reject, not abandon; to end the task "
                                      "run 'loom recover abandon'", code="ANSWER_INVALID")
                resp = engine.answer(pua["gate_event_id"], "reject" if decision == "abandon" else decision,
                                     reject_intent="abandon" if decision == "abandon" else
                                     ("revise" if decision == "reject" else None), message=note)
                self.emit("gate-answered", gate=pua["gate"], decision=decision)
                d = resp.wire["directive"]
                if d["kind"] == "complete":
                    _ended(self.project)
                if d["kind"] == "complete" and d.get("verdict") != "accepted":
                    self._drop_sandbox()  # ended without accepted work: nothing will come back to it
                return {"gate": pua["gate"], "decision": decision, "next": d["kind"], "verdict": d.get("verdict")}
            finally:
                engine.close()

    RECOVERIES = ("retry", "retry-failed", "cancel-pending", "force-close", "abandon")

    def recover(self, choice: str) -> dict[str, Any]:
        """Recover or end the task under the project lock (``abandon`` is the console's cancel). Does not
        drive: ``proceed`` continues a task a recovery left in progress."""
        if choice not in self.RECOVERIES:
            raise ConfigError(f"expected {', '.join(self.RECOVERIES[:-1])} or abandon, got '{choice}'", code="USAGE")
        with ProjectLock(self.project):
            if not dbmod.state_path(self.project).exists():
                raise NoActiveTask(f"no active task in {self.project}")
            engine = Engine(self.project, clock=self.clock, create=False, new_id=self.new_id)
            try:
                d = engine.recover(choice).wire["directive"]
            finally:
                engine.close()
            self.emit("recovered", choice=choice, next=d["kind"])
            if d["kind"] == "complete":
                _ended(self.project)
            if d["kind"] == "complete" and d.get("verdict") != "accepted":
                self._drop_sandbox()
            return {"choice": choice, "next": d["kind"], "verdict": d.get("verdict"), "summary": d.get("summary")}


def _offers_abandon(engine: Engine, st: Any, gate_name: str) -> bool:
    """Whether the gate has an abandon answer (one that does not would take it as a rejection and ask again)."""
    from loom_core.kernel.gates import DEFAULT_OPTIONS
    from loom_core.kernel.types import Gate

    gate = engine.bundle_for(st).stages.get(gate_name)
    options = (gate.options if isinstance(gate, Gate) and gate.options else DEFAULT_OPTIONS)
    return any(o.reject_intent == "abandon" for o in options)


def refuse_hosted(project: Path, task_id: str | None) -> None:
    """A task a host drives (Claude Code over loom's MCP server) is not driven here until a user takes it over."""
    from loom_core.engine.host_mark import host_of

    host = host_of(project, task_id)
    if host is not None:
        raise KernelRefusal(f"task {task_id} is driven from {host['label']} (its agents run there); continue it "
                            f"there with /proceed, or take it over here with 'loom proceed --take-over'",
                            code="TASK_HOST_DRIVEN", host=host)


def _ended(project: Path) -> None:
    """The task ended (an answer, a recovery): whoever drove it, nobody does now."""
    from loom_core.engine.host_mark import clear_host

    clear_host(project)


def in_place_warning(project: Path) -> str:
    return (f"{project} is not a git repository: agents will edit files in {project} directly; there is no "
            f"isolation, no diff review and no branch")


def in_place_refusal(project: Path) -> str:
    return (f"{in_place_warning(project)}. Make it a repository first (git init && git add -A && git commit -m "
            f"init), or pass --in-place to run there anyway")


def demo_task() -> str:
    from loom_core.agents.executors.demo import DEMO_TASK

    return DEMO_TASK


# the names callers used from here before the split (options, project config, lock, exec file)
__all__ = ["ProjectBusy", "ProjectLock", "RunOptions", "RunResult", "TaskRunner", "configured_checks", "demo_task",
           "exec_file", "in_place_refusal", "in_place_warning", "load_exec", "project_config", "save_exec"]
