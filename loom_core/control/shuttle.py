"""Facade verbs for a host that runs the agents itself (the MCP server's tools; spec surfaces §8.2).

Every verb works under the project lock through :class:`~loom_core.control.shuttle_host.HostDrive` and
returns plain data: ``{"response": <wire directive>, …}``. A refusal the host should act on is an ``error``
directive (code, message, ``recovery_options``), never an exception; only a programming error raises.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from loom_core.control.client import ProjectRef
from loom_core.errors import LoomError

POLICY_FLAGS = ("full-supervised", "review-plan-only", "review-final-only", "gates-on-blockers", "full-autonomous")
ACTIVE_CHOICES = ("refuse", "resume", "archive")


class ShuttleVerbs:
    """Mixed into :class:`~loom_core.control.local.LocalControl`."""

    # ------------------------------------------------------------------ helpers
    def _host_path(self, ref: ProjectRef) -> Path:
        return self.project(ref).path  # type: ignore[attr-defined]

    @contextlib.contextmanager
    def _host(self, ref: ProjectRef, *, create: bool = False, bundle: str | None = None,
              fresh: bool = False) -> Iterator[Any]:
        """The project's HostDrive under its lock (``create``: a store may be made; else NO_ACTIVE_TASK)."""
        from loom_core.bundles import load_bundle
        from loom_core.control.shuttle_host import HostDrive
        from loom_core.engine.engine import Engine, random_id
        from loom_core.engine.lock import ProjectLock
        from loom_core.store import db as dbmod

        proj = self._host_path(ref)
        if not create and not dbmod.state_path(proj).exists():  # before the lock: it would make .loom/
            raise LoomError(f"no active task in {proj}", code="NO_ACTIVE_TASK")
        # a host may call tools at once (prompts of a fan-out): this process's calls queue, other drives are busy
        with _queue(proj), ProjectLock(proj):
            if not create and not dbmod.state_path(proj).exists():
                raise LoomError(f"no active task in {proj}", code="NO_ACTIVE_TASK")
            engine = Engine(proj, bundle=load_bundle(bundle) if bundle else None, clock=self.clock,  # type: ignore[attr-defined]
                            create=create, new_id=self.new_id or random_id)  # type: ignore[attr-defined]
            try:
                ws = self._host_workspace(proj, fresh=fresh, engine=engine) if not create or fresh else None
                with HostDrive(engine, ws, clock=self.clock) as host:  # type: ignore[attr-defined]
                    yield host
                _settle_host(engine)
            finally:
                engine.close()

    @staticmethod
    def _host_workspace(proj: Path, *, fresh: bool, engine: Any = None) -> Any:
        from loom_core.workspace import Workspace

        st = engine.state() if engine is not None else None
        if st is not None and st.exists and st.status != "in_progress" and not fresh:
            # a finished task: reuse the sandbox if it is still there (landing), never build a new one
            return Workspace.provision(proj, fresh=False) if Workspace.sandbox_path(proj).exists() else None
        return Workspace.provision(proj, fresh=fresh)

    @staticmethod
    def _dsid_check(host: Any, driver_state_id: str | None) -> dict[str, Any] | None:
        from loom_core.control.shuttle_host import error_wire

        st = host.engine.state()
        if not st.exists:
            return error_wire("NO_ACTIVE_TASK", f"no active task in {host.engine.project}")
        current = st.pipeline.get("driver_state_id")
        if driver_state_id and driver_state_id != current:
            return error_wire("DRIVER_STATE_MISMATCH", f"driver_state_id {driver_state_id} is not the project's "
                              f"current task ({current}); call pipeline_resume for the current directive",
                              driver_state_id=current)
        return None

    # ------------------------------------------------------------------ verbs
    def shuttle_meta(self, ref: ProjectRef) -> dict[str, Any]:
        """What a host needs to know first: versions, the policy flags, the provider, bundles, sandbox kind."""
        from loom_core import __version__
        from loom_core.bundles import available
        from loom_core.workspace import Workspace, discover

        proj = self._host_path(ref)
        isolated = discover(proj) is not None
        return {"server": {"name": "loom", "version": __version__}, "identifier": "loom",
                "versions": {"loom": __version__},
                "flag_vocabulary": [f"--{f}" for f in POLICY_FLAGS], "transports": ["stdio"],
                "providers": {"enabled": ["claude-code-shuttle"], "active_default": "claude-code-shuttle",
                              "compatible_with_client": True},
                "bundles_available": sorted(available()),
                "sandbox": "worktree" if isolated else "in-place",
                # where the host's agents will work: outside the project, so the host must be allowed there
                "sandbox_dir": str(Workspace.sandbox_path(proj)) if isolated else str(proj)}

    def shuttle_start(self, ref: ProjectRef, task: str, *, client_key: str, on_active_task: str = "refuse",
                      policy: str | None = None, gate_policies: dict[str, str] | None = None,
                      complexity: str | None = None, initial_decisions: dict[str, Any] | None = None,
                      bundle: str = "code") -> dict[str, Any]:
        """Create a task whose agents the host runs. Same ``client_key`` → the cached creation (current
        directive, ``replayed``); a finished task is archived first; one in progress is refused with
        ``PROJECT_TASK_ACTIVE`` (options resume / archive) unless ``on_active_task`` says which."""
        from loom_core.control.shuttle_host import error_wire
        from loom_core.engine.options import RunOptions

        if not client_key.strip():
            return {"response": error_wire("TASK_IDEMPOTENCY_REQUIRED", "client_idempotency_uuid is required: one "
                                           "fresh uuid per /task, reused on a transport retry")}
        if on_active_task not in ACTIVE_CHOICES:
            return {"response": error_wire("BAD_INPUT", f"on_active_task must be one of {', '.join(ACTIVE_CHOICES)}")}
        task, flag = _leading_flag(task) if policy is None else (task, None)
        opts = RunOptions(bundle=bundle, policy=policy or flag, complexity=complexity)
        opts.validate()
        if not task.strip():
            return {"response": error_wire("BAD_INPUT", "the task text is empty")}
        warnings: list[str] = []
        with self._host(ref, create=True, bundle=bundle) as host:
            eng = host.engine
            key = f"task-create:{client_key}"
            st = eng.state()
            if st.exists:
                with eng.store.transaction() as txn:
                    cached = txn.ledger_response([key])
                if cached is not None:  # the same /task retried: its creation, and where it stands now
                    host.ws = self._host_workspace(eng.project, fresh=False, engine=eng)
                    return {"response": host.next_wire(None), "task_id": st.pipeline.get("task_id"),
                            "driver_state_id": st.pipeline.get("driver_state_id"), "replayed": True}
            if st.exists and st.status == "in_progress":
                if on_active_task == "refuse":
                    return {"response": _active(st)}
                if on_active_task == "resume":
                    _mark(eng, self.clock)  # type: ignore[attr-defined]
                    host.ws = self._host_workspace(eng.project, fresh=False, engine=eng)
                    return {"response": host.next_wire(None), "task_id": st.pipeline.get("task_id"),
                            "driver_state_id": st.pipeline.get("driver_state_id"), "warnings":
                            ["resumed the task already in progress; the new text was ignored"]}
            from loom_core.config.redact import Redactor
            from loom_core.workspace.cleanup import clear_partials

            clear_partials(eng.project)
            if st.exists and st.status != "in_progress" and st.pipeline.get("verdict") == "accepted":
                host.land(st.pipeline["task_id"])  # an interrupted landing completes before the slot is reused
            if st.exists:
                dest = eng.rotate(reason="auto-rotate", force=st.status == "in_progress")
                warnings.append(f"archived the previous task to {dest}")
            host.ws = self._host_workspace(eng.project, fresh=True)
            if host.ws.warning:
                warnings.append(host.ws.warning)
            notice = host.ws.left_out_notice()
            if notice:
                warnings.append(notice)
            resp = eng.create(Redactor.from_environment().redact(task), client_key=client_key,
                              gate_policies=gate_policies or opts.gate_policies(),
                              initial_decisions={**opts.initial_decisions(), **(initial_decisions or {})})
            st = eng.state()
            if st.status == "in_progress":  # before the lock is released: no supervisor ever sees it unmarked
                _mark(eng, self.clock, opts)  # type: ignore[attr-defined]
            out = {"response": host.next_wire(resp), "task_id": st.pipeline.get("task_id"),
                   "driver_state_id": st.pipeline.get("driver_state_id")}
            if st.pipeline.get("task_id") and host.ws.isolated:
                host.ws.note_task(st.pipeline["task_id"])
            warnings += host.notes
            if warnings:
                out["warnings"] = warnings
            return out

    def shuttle_continue(self, ref: ProjectRef, driver_state_id: str, delivery: dict[str, Any]) -> dict[str, Any]:
        """Deliver ``agent-result``, ``agents-results`` or ``user-answer`` and get the next directive."""
        from loom_core.control.shuttle_host import error_wire

        kind = delivery.get("kind") if isinstance(delivery, dict) else None
        if kind == "recovery":
            return {"response": error_wire("RECOVERY_VIA_CONTINUE_REFUSED", "recoveries go through pipeline_recover "
                                           "(with the user's choice), not pipeline_continue_task",
                                           driver_state_id=driver_state_id)}
        if kind == "agents-results" and delivery.get("partial"):
            return {"response": error_wire("PARTIAL_FANOUT_REFUSED", "deliver every sibling of a parallel spawn "
                                           "together (partial fan-outs are refused)", driver_state_id=driver_state_id)}
        if kind not in ("agent-result", "agents-results", "user-answer"):
            return {"response": error_wire("BAD_INPUT", "input.kind must be agent-result, agents-results or "
                                           "user-answer", driver_state_id=driver_state_id)}
        with self._host(ref) as host:
            refused = self._dsid_check(host, driver_state_id)
            if refused:
                return {"response": refused}
            if kind == "user-answer":
                try:
                    resp = _answer(host, delivery)
                except LoomError as exc:
                    if exc.code not in ("ANSWER_INVALID", "ANSWER_MESSAGE_REQUIRED"):
                        raise
                    # the same question again, saying what was wrong with the answer: the host just asks anew
                    again = host.next_wire(None)
                    return {"response": {**again, "answer_refused": {"code": exc.code, "message": str(exc)}}}
            else:
                results = delivery.get("results") if kind == "agents-results" else [delivery]
                if not isinstance(results, list) or not results or not all(isinstance(r, dict) for r in results):
                    return {"response": error_wire("BAD_INPUT", "agents-results needs a non-empty list of results",
                                                   driver_state_id=driver_state_id)}
                resp = host.deliver_results(results)
            out = {"response": host.next_wire(resp)}
            if resp.replayed:
                out["replayed"] = True
                out["response"]["replayed"] = True
            if host.notes:
                out["warnings"] = host.notes
            return out

    def shuttle_resume(self, ref: ProjectRef, driver_state_id: str | None = None) -> dict[str, Any]:
        """The current directive: pending spawns handed out again (same ids, placeholder prompts: fetch each
        with ``shuttle_prompt``), an open gate asked again, a finished task's ``complete``."""
        with self._host(ref) as host:
            refused = self._dsid_check(host, driver_state_id)
            if refused:
                return {"response": refused}
            _mark(host.engine, self.clock)  # type: ignore[attr-defined]  # /proceed here: this host drives it again
            return {"response": host.next_wire(None, placeholders=True)}

    def shuttle_prompt(self, ref: ProjectRef, driver_state_id: str, agent_run_id: str) -> dict[str, Any]:
        """``{prompt, agent, model}`` of a pending run, re-rendered from state; nulls + error when not pending."""
        from loom_core.kernel import fsm

        none = {"prompt": None, "agent": None, "model": None}
        with self._host(ref) as host:
            refused = self._dsid_check(host, driver_state_id)
            if refused:
                return {**none, "error": {"code": refused["code"], "message": refused["message"]}}
            st = host.engine.state()
            d = fsm.resume_directive(host.engine.bundle_for(st), st)
            intent = next((i for i in (d.intents if d is not None else ()) if i.agent_run_id == agent_run_id), None)
            if intent is None:
                return {**none, "error": {"code": "PENDING_AGENT_NOT_FOUND",
                                          "message": f"no pending agent run {agent_run_id}"}}
            if intent.agent not in host.engine.bundle_for(st).agents:
                return {**none, "error": {"code": "AGENT_NOT_REGISTERED", "message": f"unknown agent {intent.agent}"}}
            return {"prompt": host.prompt(intent), "agent": intent.agent, "model": intent.model}

    def shuttle_recover(self, ref: ProjectRef, driver_state_id: str, choice: str, *,
                        recovery_id: str | None = None, agent_run_ids: list[str] | None = None) -> dict[str, Any]:
        """Recover the task with the user's ``choice``; ``recovery_id`` is minted on the first call and makes
        a retried call replay."""
        from loom_core.control.client import RECOVERIES
        from loom_core.control.shuttle_host import error_wire

        if choice not in RECOVERIES:
            return {"response": error_wire("RECOVERY_INVALID", f"choice must be one of {', '.join(RECOVERIES)}",
                                           driver_state_id=driver_state_id), "recovery_id": recovery_id}
        with self._host(ref) as host:
            refused = self._dsid_check(host, driver_state_id)
            if refused:
                return {"response": refused, "recovery_id": recovery_id}
            pending = set(host.engine.state().pending)
            if choice == "retry-failed" and agent_run_ids and not set(agent_run_ids) <= pending:
                return {"response": error_wire("RECOVERY_STALE", "some of those runs are no longer pending",
                                               driver_state_id=driver_state_id), "recovery_id": recovery_id}
            rid = recovery_id or f"rec-{host.engine.new_id()}"
            resp = host.engine.recover(choice, rid)
            out = {"response": host.next_wire(resp), "recovery_id": rid}
            if resp.replayed:
                out["replayed"] = True
            return out

    # ------------------------------------------------------------------ store views (control/shuttle_store.py)
    def shuttle_state(self, ref: ProjectRef, *, format: str = "summary", table: str | None = None,
                      since: str | None = None, limit: int = 100) -> dict[str, Any]:
        """The task store as a summary, the full state, or one table's rows (jsonl / pretty-table)."""
        from loom_core.control.shuttle_store import state_view

        return state_view(self._host_path(ref), format=format, table=table, since=since, limit=limit)

    def shuttle_extensions(self, ref: ProjectRef, *, kind: str | None = None, status: str | None = None,
                           include_manifest: bool = False) -> dict[str, Any]:
        from loom_core.control.shuttle_store import extensions

        return extensions(self._host_path(ref), kind=kind, status=status, include_manifest=include_manifest)

    def store_backup(self, ref: ProjectRef, to: str) -> dict[str, Any]:
        """A consistent SQL dump of the task store to ``to`` (relative to the project, inside it)."""
        from loom_core.control.shuttle_store import backup

        return backup(self._host_path(ref), to, self.clock.now())  # type: ignore[attr-defined]

    def store_restore(self, ref: ProjectRef, source: str, *, format: str = "sql",
                      confirm: bool = False) -> dict[str, Any]:
        """Replace the task store from a dump (``sql``, statements allow-listed) or a store file (``binary``)."""
        from loom_core.control.shuttle_store import restore

        return restore(self._host_path(ref), source, format, confirm, self.clock.now())  # type: ignore[attr-defined]


_QUEUES: dict[str, threading.Lock] = {}
_QUEUES_LOCK = threading.Lock()


def _queue(project: Path) -> threading.Lock:
    with _QUEUES_LOCK:
        return _QUEUES.setdefault(str(project), threading.Lock())


def _mark(engine: Any, clock: Any, opts: Any = None) -> None:
    """Mark the task in progress as driven by this host (supervisors and ``loom proceed`` leave it alone)."""
    from loom_core.engine.host_mark import mark_host

    st = engine.state()
    if st.exists and st.status == "in_progress" and st.pipeline.get("task_id"):
        mark_host(engine.project, st.pipeline["task_id"], clock.now(), opts)


def _settle_host(engine: Any) -> None:
    """A task that ended (or is gone) is no longer driven by anyone: its host marker goes."""
    from loom_core.engine.host_mark import clear_host

    st = engine.state()
    if not st.exists or st.status != "in_progress":
        clear_host(engine.project)


def _answer(host: Any, delivery: dict[str, Any]) -> Any:
    """A gate answer: ``decision`` is any verb the gate offers (``approve``, ``revise``, ``abandon``…) or a
    kernel decision (``accept`` / ``reject`` with ``reject_intent``)."""
    from loom_core.kernel.flow import resume_directive

    gev = str(delivery.get("gate_event_id") or "")
    word = str(delivery.get("decision") or "").strip().lower()
    intent = delivery.get("reject_intent")
    st = host.engine.state()
    d = resume_directive(host.engine.bundle_for(st), st)
    if d is None or d.kind != "ask-user" or d.gate_event_id != gev:  # a duplicate replays, a stale one is refused
        return host.engine.answer(gev, word, reject_intent=intent, message=delivery.get("message"))
    options = d.options
    for o in options:
        if word in o.verbs or (word == o.decision and (intent is None or intent == o.reject_intent)):
            decision, intent = o.decision, intent or o.reject_intent
            if o.requires_message and not str(delivery.get("message") or "").strip():
                raise LoomError(f"'{word}' needs a message saying what to change", code="ANSWER_MESSAGE_REQUIRED")
            break
    else:
        valid = ", ".join(o.verbs[0] for o in options)
        raise LoomError(f"'{word}' is not an answer to this gate (valid: {valid})", code="ANSWER_INVALID")
    return host.engine.answer(gev, decision, reject_intent=intent, message=delivery.get("message"))


def _active(st: Any) -> dict[str, Any]:
    from loom_core.control.shuttle_host import error_wire

    p = st.pipeline
    gate = (st.driver.get("pending_user_answer") or {}).get("gate")
    where = (f"waiting for an answer at {gate}" if gate else
             f"{len(st.pending)} agent(s) handed out" if st.pending else "between steps")
    return error_wire(
        "PROJECT_TASK_ACTIVE", f"task {p.get('task_id')} is still in progress in this project ({where})",
        driver_state_id=p.get("driver_state_id"), task_id=p.get("task_id"), task=p.get("task"),
        summary={"started_at": p.get("started_at"), "open_gate": gate, "pending_agents": sorted(
            r["agent"] for r in st.pending.values())},
        options=[{"choice": "resume", "label": "Continue the task in progress (/proceed)"},
                 {"choice": "archive", "label": "Archive it as discarded and start the new task"}])


def _leading_flag(task: str) -> tuple[str, str | None]:
    """``--review-plan-only fix the bug`` → the text and the preset (only the five policy flags)."""
    head, _, rest = task.strip().partition(" ")
    if head.startswith("--") and head[2:] in POLICY_FLAGS:
        return rest.strip(), head[2:]
    return task, None
