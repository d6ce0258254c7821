"""The supervisor (spec §4.2–4.6, §4.9): drives one project's task to its end with nobody at a terminal.

It goes through the facade only: ``submit`` / ``proceed`` drive, ``wait_answered`` parks at a human gate
until someone answers it (from any process), ``pause`` stops the drive on shutdown. Errors are retried,
waited out or escalated by the classes of :mod:`.retry`. In watch mode it keeps looking after the
project's slot until stopped. Everything it does is logged (:mod:`.log`), its phase is kept in the status
file (:mod:`.status`), and notable events go to the notifier (``emit(event)``; None = no notifications).

``run()`` returns how supervision ended: the verdict of a finished task (``accepted``, ``rejected``, …),
``failed`` (escalated), ``aborted`` (stopped by a shutdown), ``noop`` (nothing to supervise) or, in watch
mode, ``stopped``.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from loom_core.errors import LoomError
from loom_core.surfaces.daemon import retry
from loom_core.surfaces.daemon.log import DaemonLog
from loom_core.surfaces.daemon.status import DaemonStatus

GATE_WAIT_S = 0.5  # one wait_answered call; the stop event is looked at between calls
IDLE_WAIT_S = 1.0  # one wait_changed call of an idle watcher


class Supervisor:
    def __init__(self, control: Any, project: Path, *, watch: bool = False, task: str | None = None,
                 opts: Any = None, notifier: Any = None, clock: Any = None, stop: threading.Event | None = None,
                 log: DaemonLog | None = None, hold_lock: bool = True) -> None:
        self.control = control
        self.project = Path(project).resolve()
        self.watch = watch
        self.task = task
        self.opts = opts
        self.notifier = notifier
        self.clock = clock or retry.WallClock()
        self.stop_event = stop or threading.Event()
        self.log = log or DaemonLog.for_project(self.project)
        self.status = DaemonStatus(self.project) if hold_lock else None
        self.phase = "starting"
        self.task_id: str | None = None
        self._seeded = False  # the task text was submitted (it is never submitted twice)
        self._parked_slots: set[str] = set()  # watch mode: task ids parked on errors
        self._driving = False  # inside a submit / proceed call
        self._hosted_logged: str | None = None  # the task last logged as driven by a host (Claude Code)
        self._timed_out = False  # this drive ran past the deadline (LOOM_DRIVE_DEADLINE_MS)
        self._thrown: tuple[str, str, str] = ("DRIVE_CRASHED", "", "error")

    # ------------------------------------------------------------------ public
    def stop(self) -> None:
        """Ask the supervisor to stop: the running drive stops after its current step (the agent is stopped)."""
        self.stop_event.set()
        self._set_phase("stopping")
        threading.Thread(target=self._pause_drive, name="loom-daemon-stop", daemon=True).start()

    def _pause_drive(self) -> None:
        """Pause the drive; a drive about to start is paused as soon as it registers."""
        while self._driving:
            try:
                if self.control.pause(self.project):
                    return
            except LoomError:
                return
            self.stop_event.wait(0.05)

    def run(self) -> str:
        if self.status is not None:
            self.status.acquire()
        try:
            self._set_phase("starting")
            return self._watch() if self.watch else self._once()
        finally:
            self._set_phase("stopped")
            if self.status is not None:
                self.status.release()

    # ------------------------------------------------------------------ modes
    def _once(self) -> str:
        st = self.control.status(self.project)
        if st.get("state") == "in_progress" and st.get("host"):
            self.task_id = st.get("task_id")
            return self._hosted(st.get("driven_by"))
        if st.get("state") == "in_progress":
            self._recovered(st)
        elif not self.task:
            self.log.write("nothing-to-supervise", reason="no-active-task" if not st.get("task_id")
                           else f"slot-{st.get('state') or st.get('status')}")
            return "noop"
        return self._supervise()

    def _watch(self) -> str:
        self.log.write("watch-start", task=bool(self.task))
        idle_logged = False
        while not self.stop_event.is_set():
            try:
                st = self.control.status(self.project)
                tid = st.get("task_id")
                hosted = st.get("state") == "in_progress" and bool(st.get("host"))
                if hosted:
                    self.task_id = tid
                    self._hosted(st.get("driven_by"))
                if st.get("state") == "in_progress" and tid not in self._parked_slots and not hosted:
                    idle_logged = False
                    self._recovered(st)
                    self._supervise()
                    continue
                if self.task and not self._seeded:
                    idle_logged = False
                    self._supervise()
                    continue
                detail = "parked-on-error" if tid in self._parked_slots else "host-driven" if hosted else None
                if not idle_logged:
                    self.log.write("idle", detail=detail)
                    idle_logged = True
                self._set_phase("idle", detail=detail)
            except Exception as exc:  # the scaffolding must not die: log and look again later
                self.log.write("watch-crash", level="error", error=f"{type(exc).__name__}: {exc}"[:300])
                self.clock.sleep(retry.IDLE_POLL_S, self.stop_event)
                continue
            self._idle_wait()
        self.log.write("watch-stop")
        return "stopped"

    def _idle_wait(self) -> None:
        """Up to ``IDLE_POLL_S`` between looks at an idle slot, cut short when its store changes (a task was
        created elsewhere) or a shutdown comes."""
        waited = 0.0
        while waited < retry.IDLE_POLL_S and not self.stop_event.is_set():
            if self.control.wait_changed(self.project, IDLE_WAIT_S):
                return
            waited += IDLE_WAIT_S

    def _recovered(self, st: dict[str, Any]) -> None:
        self._seeded = True  # a task in progress wins over new text (§4.2)
        self.task_id = st.get("task_id")
        self.log.write("recover-on-start", task_id=self.task_id, status=st.get("status"), gate=st.get("gate"),
                       stalled=st.get("stalled"))

    # ------------------------------------------------------------------ one task
    def _supervise(self) -> str:
        """Drive the slot's task until it ends, a shutdown stops it, or errors escalate (watch: park it)."""
        errors = 0  # errors in a row (transient ones are retried; a gate answered resets it)
        while True:
            if self.stop_event.is_set():
                return "aborted"
            self._set_phase("driving", detail=None)
            outcome, merge = self._drive()
            if outcome is None:
                code, message, kind = self._thrown
            else:
                code, message, kind = outcome.code, outcome.message, outcome.kind
                self.task_id = outcome.task_id or self.task_id
                self._usage(outcome)
            if kind == "complete":
                return self._complete(outcome, merge)
            if kind == "paused":
                if not self._park(outcome):
                    self.log.write("aborted", reason="shutdown", task_id=self.task_id, gate=outcome.gate)
                    return "aborted"
                errors = 0
                continue
            if kind == "aborted" or self.stop_event.is_set():
                self.log.write("aborted", reason="shutdown" if self.stop_event.is_set() else "paused elsewhere",
                               task_id=self.task_id)
                return "aborted"
            if code == "TASK_HOST_DRIVEN":  # Claude Code drives it (loom's MCP server): never taken over here
                return self._hosted(message)
            if code == "BUDGET_EXCEEDED":  # stopped before a spawn that could pass the budget: a person raises it
                return self._over_budget(message)
            if kind == "parked":  # an invariant violation: a person must look
                code = code or "INVARIANT_VIOLATION"
            cls = retry.classify(code) if kind != "parked" else "terminal"
            if cls == "busy":  # a console or `loom run` drives it right now: look again later
                self._set_phase("backing-off", detail=code)
                if self.clock.sleep(retry.IDLE_POLL_S, self.stop_event):
                    return "aborted"
                continue
            if cls == "rate-limited":
                wait = retry.rate_limit_wait_s()
                self.log.write("rate-limit-wait", level="warn", wait_ms=int(wait * 1000), code=code)
                self._set_phase("backing-off", detail="rate-limited")
                self._notify("rate-limit-wait", code=code, message=message)
                if self.clock.sleep(wait, self.stop_event):
                    return "aborted"
                continue
            errors += 1
            if self.watch:
                if cls == "terminal" or errors >= retry.WATCH_MAX_ERRORS:
                    return self._watch_park(code, message, errors)
                delay = retry.backoff_s(errors)
                self.log.write("watch-cool-down", level="warn", attempt=errors, delay_ms=int(delay * 1000), code=code)
            else:
                if cls == "terminal":
                    return self._escalate("escalate", code, message)
                if errors > retry.MAX_RETRIES:
                    return self._escalate("escalate-ceiling", code, message, attempts=errors - 1)
                delay = retry.backoff_s(errors)
                self.log.write("retry", level="warn", attempt=errors, delay_ms=int(delay * 1000), code=code,
                               message=(message or "")[:300])
                self._notify("retry", code=code, message=message)
            self._set_phase("backing-off", detail=code)
            if self.clock.sleep(delay, self.stop_event):
                return "aborted"

    def _drive(self) -> tuple[Any, Any]:
        """One attempt: submit the task text once, else proceed. A thrown drive becomes an error (``drive-threw``)."""
        self._thrown = ("DRIVE_CRASHED", "", "error")
        self._driving, self._timed_out = True, False
        deadline = retry.drive_deadline_s()
        timer = threading.Timer(deadline, self._deadline_hit) if deadline else None
        if timer is not None:
            timer.daemon = True
            timer.start()
        try:
            if self.task and not self._seeded:
                st = self.control.status(self.project)
                if st.get("state") == "in_progress":
                    self._recovered(st)
                    result = self.control.proceed(self.project, self._overrides())
                else:
                    self._seeded = True
                    result = self.control.submit(self.project, self.task, self._new_options())
            else:
                result = self.control.proceed(self.project, self._overrides())
        except Exception as exc:
            code = getattr(exc, "code", None) or "DRIVE_CRASHED"
            self.log.write("drive-threw", level="error", code=code, error=f"{type(exc).__name__}: {exc}"[:300])
            self._thrown = (code, str(exc), "error")
            return None, None
        finally:
            self._driving = False
            if timer is not None:
                timer.cancel()
        outcome = result.outcome
        if outcome.kind == "aborted" and self._timed_out and not self.stop_event.is_set():
            self.log.write("drive-deadline", level="warn", deadline_ms=int((deadline or 0) * 1000))
            outcome.kind, outcome.code = "error", "DRIVE_TIMEOUT"
            outcome.message = "the drive ran past LOOM_DRIVE_DEADLINE_MS"
        return outcome, result.merge

    def _deadline_hit(self) -> None:
        self._timed_out = True
        self._pause_drive()

    def _new_options(self) -> Any:
        if self.opts is not None:
            return self.opts
        from loom_core.control import RunOptions

        return RunOptions()

    def _overrides(self) -> Any:
        """Options given on the command line replace the task's own on every re-drive; None keeps them."""
        return self.opts if self.task is None else None

    # ------------------------------------------------------------------ endings
    def _park(self, outcome: Any) -> bool:
        """Wait at a human gate until it is answered (True) or a shutdown comes (False)."""
        gate, gev = outcome.gate, outcome.gate_event_id
        self.log.write("parked", gate=gate, gate_event_id=gev, message=(outcome.message or "")[:500],
                       task_id=self.task_id)
        self._set_phase("parked", detail=gate)
        self._notify("parked", gate=gate, message=outcome.message)
        while not self.stop_event.is_set():
            if self.control.wait_answered(self.project, gev, GATE_WAIT_S):
                self.log.write("woken", gate=gate, gate_event_id=gev)
                return True
        return False

    def _complete(self, outcome: Any, merge: Any) -> str:
        verdict = outcome.verdict or "complete"
        self.log.write("complete", task_id=outcome.task_id, verdict=verdict, summary=(outcome.summary or "")[:300])
        branch = getattr(merge, "branch", None)
        if merge is not None:
            self.log.write("merge-back", merged=merge.status == "merged", branch=branch, files=len(merge.files),
                           reason=merge.status)
        if verdict == "accepted" and merge is not None and merge.status == "merged" and branch:
            self._ship(branch)
        self._set_phase("stopping", detail=verdict)
        self._notify("complete", verdict=verdict, branch=branch, message=outcome.summary)
        return verdict

    def _ship(self, branch: str) -> None:
        """Ship on accept (§4.9): the task's persisted ``push`` / ``squash_merge`` choices."""
        try:
            opts = self.control.run_options(self.project)
        except LoomError as exc:
            self.log.write("auto-push", level="error", branch=branch, error=str(exc)[:300])
            return
        for wanted, event, verb in ((opts.push, "auto-push", self.control.push),
                                    (opts.squash_merge, "auto-merge", self.control.merge)):
            if not wanted:
                continue
            try:
                self.log.write(event, branch=branch, ok=True, message=str(verb(self.project, branch))[:300])
            except LoomError as exc:
                self.log.write(event, level="error", branch=branch, ok=False, code=exc.code, error=str(exc)[:300])

    def _escalate(self, event: str, code: str | None, message: str | None, **extra: Any) -> str:
        self.log.write(event, level="error", code=code, message=(message or "")[:500], task_id=self.task_id, **extra)
        self._set_phase("stopping", detail=code)
        self._notify("failed", code=code, message=message)
        return "failed"

    def _over_budget(self, message: str | None) -> str:
        """Announced like a parked gate (the ``budget`` gate); the task stays in progress for ``loom proceed
        --max-cost`` / ``--max-tokens``. Watching, the slot is left alone until then."""
        if self.task_id:
            self._parked_slots.add(self.task_id)
        self.log.write("budget-stop", level="warn", code="BUDGET_EXCEEDED", task_id=self.task_id,
                       message=(message or "")[:500])
        self._set_phase("idle" if self.watch else "stopping", detail="BUDGET_EXCEEDED")
        self._notify("parked", gate="budget", code="BUDGET_EXCEEDED", message=message)
        return "over-budget"

    def _hosted(self, why: str | None) -> str:
        """A task a host drives (``loom proceed --take-over`` hands it to loom): left alone, nothing spawned."""
        if self._hosted_logged != self.task_id:  # once per task, however often the watcher looks
            self._hosted_logged = self.task_id
            self.log.write("host-driven", task_id=self.task_id, message=(why or "")[:300])
        self._set_phase("idle" if self.watch else "stopping", detail="host-driven")
        return "noop"

    def _watch_park(self, code: str | None, message: str | None, errors: int) -> str:
        if self.task_id:
            self._parked_slots.add(self.task_id)
        self.log.write("watch-park", level="error", code=code, errors=errors, task_id=self.task_id,
                       message=(message or "")[:500])
        self._set_phase("idle", detail="parked-on-error")
        self._notify("watch-park", code=code, message=message)
        return "failed"

    # ------------------------------------------------------------------ bits
    def _usage(self, outcome: Any) -> None:
        u = outcome.usage
        self.log.write("drive-usage-total", spawns=u.spawns, cost_usd=u.cost_usd, tokens_in=u.tokens_in,
                       tokens_out=u.tokens_out, tokens_cached=u.tokens_cached, cache_write=u.cache_write)

    def _set_phase(self, phase: str, *, detail: str | None = None) -> None:
        if self.stop_event.is_set() and phase != "stopped":
            phase = "stopping"  # once asked to stop, nothing shows it driving or parked again
        self.phase = phase
        if self.status is not None:
            self.status.update(phase, task_id=self.task_id, detail=detail)

    def _notify(self, event: str, **fields: Any) -> None:
        if self.notifier is None:
            return
        payload = {"event": event, "task_id": self.task_id, "ts": self.clock.now()}
        try:
            payload["project_id"] = self.control.project(self.project).id
        except (LoomError, AttributeError):
            pass
        payload.update({k: v for k, v in fields.items() if v is not None})
        try:
            self.notifier.emit(payload)
        except Exception as exc:  # a notifier must never break the drive
            self.log.write("notify-failed", level="warn", notify_event=event, error=str(exc)[:300])
