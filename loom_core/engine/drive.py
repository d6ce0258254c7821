"""The drive loop: ask the engine what to do, do it, deliver, repeat.

Spawns run on a thread pool with a concurrency limit and a shared cancel token; a finished
sibling's result is cached by ``agent_run_id`` so a batch retry never re-runs (or re-bills)
it. The loop never answers a human gate: it returns ``paused``. An invariant veto returns a
structured ``parked`` outcome, never a traceback.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from typing import Any

from loom_core.agents.executors import ExecResult, Executor, failed_usage, usage_dict
from loom_core.crash import crashpoint
from loom_core.engine import budget as budgetmod
from loom_core.engine.engine import Engine, Response
from loom_core.engine.events import EngineEvent, EventSink, NullSink
from loom_core.errors import (
    BudgetExceeded,
    ExecutorError,
    InvariantViolation,
    KernelRefusal,
    LoomError,
    NoActiveTask,
)
from loom_core.kernel.types import AgentResult, Directive, Intent

_log = logging.getLogger("loom.drive")  # the debug log (--debug / LOOM_DEBUG=1); silent otherwise
PERMANENT = {"EXECUTOR_RATE_LIMITED", "EXECUTOR_OVERLOADED", "EXECUTOR_OUTPUT_TRUNCATED", "EXECUTOR_INVALID_MODEL",
             "EXECUTOR_AUTH_FAILED", "NO_BACKEND_RESOLVED", "EXECUTOR_NOT_FOUND", "EXECUTOR_READ_ONLY_ROLE"}


@dataclass
class UsageTotal:
    """What a drive consumed: delivered spawns plus every failed or stopped attempt (billed all the same)."""

    spawns: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    tokens_cached: int = 0
    cache_write: int = 0
    cost_usd: float | None = None
    turns: int = 0
    failed: int = 0  # attempts that ended in an error (their usage is in the figures above)

    def add(self, r: ExecResult) -> None:
        self.spawns += 1
        self._add(usage_dict(r.usage))

    def add_failed(self, usage: dict[str, Any]) -> None:
        self.failed += 1
        self._add(usage)

    def _add(self, u: dict[str, Any]) -> None:
        self.tokens_in += int(u.get("tokens_in") or 0)
        self.tokens_out += int(u.get("tokens_out") or 0)
        self.tokens_cached += int(u.get("tokens_cached") or 0)
        self.cache_write += int(u.get("cache_write") or 0)
        self.turns += int(u.get("num_turns") or 0)
        if u.get("cost_usd") is not None:
            self.cost_usd = (self.cost_usd or 0.0) + float(u["cost_usd"])

    def merge(self, other: UsageTotal) -> None:
        """Add another drive's total (a plain-mode run that answers gates drives several times)."""
        self.spawns += other.spawns
        self.failed += other.failed
        self._add({"tokens_in": other.tokens_in, "tokens_out": other.tokens_out, "tokens_cached": other.tokens_cached,
                   "cache_write": other.cache_write, "num_turns": other.turns, "cost_usd": other.cost_usd})


@dataclass
class Outcome:
    kind: str  # complete | paused | parked | error | aborted
    task_id: str | None = None
    verdict: str | None = None
    summary: str = ""
    gate: str | None = None
    gate_event_id: str | None = None
    message: str = ""
    options: list[dict[str, Any]] = field(default_factory=list)
    code: str | None = None
    violations: list[dict[str, str]] = field(default_factory=list)
    recovery_options: list[str] = field(default_factory=list)
    usage: UsageTotal = field(default_factory=UsageTotal)

    @property
    def exit_code(self) -> int:
        if self.kind == "complete":
            return 0 if self.verdict == "accepted" else 1
        if self.kind in ("paused", "parked"):
            return 3
        return 1


@dataclass
class DriveOptions:
    max_total_spawns: int = 40  # 0 = off
    max_concurrent: int = 4
    max_executor_retries: int = 2
    budget: budgetmod.Limits = field(default_factory=budgetmod.Limits)  # the task's cost / token budgets


class Driver:
    def __init__(self, engine: Engine, executor: Executor, *, sink: EventSink | None = None,
                 options: DriveOptions | None = None, cancel: threading.Event | None = None,
                 spawn_gate: Any = None) -> None:
        self.engine = engine
        self.spawn_gate = spawn_gate  # a context manager around every spawn (the plane's shared semaphore)
        self.executor = executor
        self.sink = sink or NullSink()
        self.opts = options or DriveOptions()
        self.cancel = cancel or threading.Event()
        self._done: dict[str, ExecResult] = {}
        from loom_core.config.redact import Redactor

        self.redactor = Redactor.from_environment()
        self._spawned: set[str] = set()
        self.usage = UsageTotal()
        self._usage_lock = threading.Lock()
        self.budget = budgetmod.Keeper(engine.project, engine.store.path, self.opts.budget) \
            if self.opts.budget.active else None
        self._task_id = ""
        st = engine.state()
        self._seen_verdicts = len(st.verdicts)
        self._seen_findings: set[str] = set(st.findings)

    def emit(self, kind: str, **data: Any) -> None:
        _log.debug("%s %s %s", self.engine.project, kind, data)
        self.sink.emit(EngineEvent(kind, str(self.engine.project), data))

    # ------------------------------------------------------------------ entry
    def start(self, task: str, *, replace: bool = False, **create_kw: Any) -> Outcome:
        """Create a task in the slot: a finished task is archived first (auto-rotate); a task
        still in progress is refused unless ``replace`` (it is archived as discarded)."""
        st = self.engine.state()
        if st.exists:
            if st.status == "in_progress" and not replace:
                raise KernelRefusal(f"task {st.pipeline['task_id']} is still in progress in this project; "
                                    "resume it, or replace it", code="PROJECT_TASK_ACTIVE")
            dest = self.engine.rotate(reason="auto-rotate", force=replace)
            self._seen_verdicts, self._seen_findings = 0, set()
            self.emit("notice", message=f"archived the previous task to {dest}")
        # a key pasted into the task would otherwise reach the store, the task id, the branch and the commit
        resp = self.engine.create(self.redactor.redact(task), **create_kw)
        self._emit_state(resp)
        return self.run(resp)

    def resume(self) -> Outcome:
        try:
            resp = self.engine.advance()
        except NoActiveTask:
            raise
        return self.run(resp)

    # ------------------------------------------------------------------ loop
    def run(self, resp: Response) -> Outcome:
        try:
            return self._loop(resp)
        except InvariantViolation as exc:
            return self._parked(exc)
        finally:
            self._flush_transcripts()

    def _flush_transcripts(self) -> None:
        """Transcripts ride on the next tick's commit; a drive that stops without one writes them now."""
        try:
            self.engine.store.flush_staged()
        except LoomError as exc:  # best effort, like every transcript
            self.emit("notice", message=f"transcripts not saved: {exc}")

    def _directive(self, resp: Response) -> Directive:
        if resp.directive is not None:
            return resp.directive
        # a replayed (duplicate) response carries only the wire; ask the store what is next
        return self.engine.advance().directive  # type: ignore[return-value]

    def _loop(self, resp: Response) -> Outcome:
        while True:
            if self.cancel.is_set():
                return Outcome("aborted", code="DRIVE_ABORTED", message="the drive was cancelled", usage=self.usage)
            d = self._directive(resp)
            _log.debug("%s next step: %s", self.engine.project, d.kind)
            if d.kind == "shuttle":
                new = [i.agent_run_id for i in d.intents if i.agent_run_id not in self._spawned]
                self._spawned.update(new)
                cap = self.opts.max_total_spawns
                if cap and len(self._spawned) > cap:
                    return Outcome("error", code="DRIVE_SPAWN_CAP_EXCEEDED", usage=self.usage,
                                   message=f"this drive spawned more than {cap} agents; the task stays in progress "
                                           "(raise the cap with LOOM_MAX_SPAWNS or inspect the run)")
                stop = self._admit(d.intents)
                if stop is not None:
                    return stop
                results = self._run_batch(d.intents)
                if isinstance(results, Outcome):
                    return results
                crashpoint("before-deliver")
                resp = self.engine.deliver(results if len(results) > 1 else results[0])
                for r in results:
                    self._done.pop(r.agent_run_id, None)
                delivered = getattr(self.executor, "delivered", None)
                if delivered is not None:
                    delivered([r.agent_run_id for r in results])
                self._emit_state(resp)
            elif d.kind == "ask-user":
                self.emit("gate-opened", gate=d.gate, gate_event_id=d.gate_event_id, message=d.message)
                return Outcome("paused", gate=d.gate, gate_event_id=d.gate_event_id, message=d.message,
                               options=d.to_wire()["options"], usage=self.usage,
                               task_id=self.engine.state().pipeline.get("task_id"))
            elif d.kind == "complete":
                self.emit("verdict", verdict=d.verdict, summary=d.summary)
                return Outcome("complete", task_id=d.task_id, verdict=d.verdict, summary=d.summary, usage=self.usage)
            else:
                return Outcome("error", code=d.code, message=d.message, usage=self.usage,
                               recovery_options=["retry", "force-close", "abandon"])

    def _emit_state(self, resp: Response) -> None:
        st = self.engine.state()
        if len(st.verdicts) > self._seen_verdicts:
            self.emit("verdicts", verdicts=st.verdicts[self._seen_verdicts:])
            self._seen_verdicts = len(st.verdicts)
        new = [f for fid, f in st.findings.items() if fid not in self._seen_findings]
        if new:
            self._seen_findings.update(f["id"] for f in new)
            self.emit("findings", findings=new)
        self.emit("phase", flow=st.driver.get("flow_name"), step=st.driver.get("step_index"),
                  phases={k: v["status"] for k, v in st.phases.items()})

    def _parked(self, exc: InvariantViolation) -> Outcome:
        st = self.engine.state()
        return Outcome("parked", code="INVARIANT_VIOLATION", message=str(exc), usage=self.usage,
                       task_id=st.pipeline.get("task_id"),
                       violations=[{"id": v.id, "message": v.message} for v in exc.violations],
                       recovery_options=["force-close", "abandon", "retry"])

    # ------------------------------------------------------------------ budget
    def _admit(self, intents: tuple[Intent, ...]) -> Outcome | None:
        """Stop before a batch whose worst case could pass the task's budget (already-finished siblings
        are not spawned again, so not counted); None lets it run."""
        if self.budget is None:
            return None
        self._task_id = self.engine.state().pipeline.get("task_id") or ""
        todo = [self.engine.render_intent(i) for i in intents if i.agent_run_id not in self._done]
        why = self.budget.admit(self._task_id, todo) if todo else None
        return self._over_budget(why) if why else None

    def _over_budget(self, why: str) -> Outcome:
        self.emit("budget", code=budgetmod.CODE, message=why)
        return Outcome("parked", code=budgetmod.CODE, message=why, usage=self.usage, task_id=self._task_id or None)

    # ------------------------------------------------------------------ spawns
    def _run_one(self, intent: Intent) -> ExecResult:
        cached = self._done.get(intent.agent_run_id)
        if cached is not None:
            return cached
        full = self.engine.render_intent(intent)
        key = self.budget.reserve(self._task_id, full) if self.budget is not None else None  # before the spawn
        self.emit("spawn-start", agent=intent.agent, agent_run_id=intent.agent_run_id, model=intent.model,
                  phase=intent.phase)
        started = time.monotonic()
        crashpoint("spawn-start")
        redact = self.redactor.redact
        try:
            with self.spawn_gate if self.spawn_gate is not None else nullcontext():
                result = self.executor.execute(full, self.cancel,
                                               lambda line: self.emit("log", agent=intent.agent, line=redact(line)))
        except ExecutorError as exc:
            exc.message = redact(exc.message)
            exc.args = (exc.message,)
            attempts = _failed_attempts(exc, intent.model, started)
            self._bill_failed(full, attempts)
            if key is not None:
                self.budget.settle(key, intent.model, attempts)
            raise
        if key is not None:  # failed fallback attempts and this one; an executor bug keeps the worst case
            self.budget.settle(key, result.model or intent.model,
                               [*result.attempts, {"usage": usage_dict(result.usage)}])
        self._bill_failed(full, list(result.attempts))  # fallback attempts that failed before this one
        crashpoint("spawn-end")  # the agent's file effects are done, its result not yet delivered
        result.output = redact(result.output)
        full = replace(full, prompt=redact(result.prompt or full.prompt))
        if result.usage.duration_ms is None:
            result.usage.duration_ms = int((time.monotonic() - started) * 1000)
        self._done[intent.agent_run_id] = result
        self._record_transcript(full, result)
        self.emit("spawn-end", agent=intent.agent, agent_run_id=intent.agent_run_id,
                  model=result.model or intent.model, tokens_in=result.usage.tokens_in,
                  tokens_out=result.usage.tokens_out, cost_usd=result.usage.cost_usd,
                  duration_ms=result.usage.duration_ms)
        return result

    def _bill_failed(self, intent: Intent, attempts: list[dict[str, Any]]) -> None:
        """Count failed attempts in the drive's total and keep each as a transcript row of its own
        (``<run id>#failed-…``, usage marked ``failed``), so the task's figures include them too."""
        redact = self.redactor.redact
        for a in attempts:
            usage = dict(a.get("usage") or {})
            with self._usage_lock:
                self.usage.add_failed(usage)
            try:
                self.engine.store.stage_transcript({
                    "agent_run_id": f"{intent.agent_run_id}#failed-{self.engine.new_id().replace('-', '')[:8]}", "agent": intent.agent,
                    "phase": intent.phase, "model": a.get("model") or intent.model, "prompt": redact(intent.prompt),
                    "output": redact(f"[{a.get('code')}] {a.get('error') or ''}"),
                    "usage": {**usage, "failed": True, "code": a.get("code")}, "cost_usd": usage.get("cost_usd"),
                    "duration_ms": usage.get("duration_ms"), "recorded_at": self.engine.clock.now()})
            except LoomError as exc:  # best effort, like every transcript
                self.emit("notice", message=f"transcript of a failed attempt not saved: {exc}")

    def _record_transcript(self, intent: Intent, r: ExecResult) -> None:
        try:
            self.engine.store.stage_transcript({
                "agent_run_id": intent.agent_run_id, "agent": intent.agent, "phase": intent.phase,
                "model": r.model or intent.model, "prompt": intent.prompt, "output": r.output,
                "files": {"modified": list(r.files_modified), "created": list(r.files_created)},
                "usage": {"tokens_in": r.usage.tokens_in, "tokens_out": r.usage.tokens_out,
                          "tokens_cached": r.usage.tokens_cached, "cache_write": r.usage.cache_write,
                          "num_turns": r.usage.num_turns, "attempts": list(r.attempts)},
                "cost_usd": r.usage.cost_usd, "duration_ms": r.usage.duration_ms,
                "recorded_at": self.engine.clock.now()})
        except LoomError as exc:  # best effort: a transcript never fails a drive
            self.emit("notice", message=f"transcript not saved: {exc}")

    def _run_batch(self, intents: tuple[Intent, ...]) -> list[AgentResult] | Outcome:
        failures = 0
        while True:
            errors: list[ExecutorError] = []
            results: dict[str, ExecResult] = {}
            width = max(1, min(8, self.opts.max_concurrent, len(intents)))
            with ThreadPoolExecutor(max_workers=width, thread_name_prefix="loom-spawn") as pool:
                futures = {pool.submit(self._run_one, i): i for i in intents}
                for fut, intent in futures.items():
                    try:
                        results[intent.agent_run_id] = fut.result()
                    except ExecutorError as exc:
                        errors.append(exc)
                    except KernelRefusal:
                        raise
                    except Exception as exc:  # an executor bug is a failed spawn, not a crash
                        errors.append(ExecutorError(f"{intent.agent}: {type(exc).__name__}: {exc}"))
            if not errors:
                out = []
                for i in intents:
                    r = results[i.agent_run_id]
                    with self._usage_lock:
                        self.usage.add(r)
                    out.append(AgentResult(i.agent_run_id, r.output, tuple(r.files_modified), tuple(r.files_created),
                                           r.usage.tokens_in, r.usage.tokens_out, r.usage.tokens_cached,
                                           harness_findings=tuple(r.findings)))
                return out
            err = next((e for e in errors if isinstance(e, BudgetExceeded)), errors[0])
            if isinstance(err, BudgetExceeded):
                return self._over_budget(err.message)
            if self.cancel.is_set():
                return Outcome("aborted", code="DRIVE_ABORTED", message="the drive was cancelled", usage=self.usage)
            failures += 1
            if err.code in PERMANENT or failures > self.opts.max_executor_retries:
                return Outcome("error", code=err.code, message=str(err), usage=self.usage,
                               recovery_options=["retry-failed", "cancel-pending", "abandon"])
            self.emit("notice", message=f"an agent failed: {err} ({err.code}); trying again ({failures} of "
                                        f"{self.opts.max_executor_retries})")


def _failed_attempts(exc: ExecutorError, model: str, started: float) -> list[dict[str, Any]]:
    """The attempts a failed spawn made: the fallback chain's record when there was one (its last entry
    is this failure), else this one attempt with whatever usage its executor reported."""
    chain = exc.detail.get("attempts")
    if isinstance(chain, list) and chain:
        return [a for a in chain if isinstance(a, dict)]
    billed = failed_usage(exc)
    usage = usage_dict(billed) if billed is not None else {}
    usage.setdefault("duration_ms", None)
    if usage["duration_ms"] is None:
        usage["duration_ms"] = int((time.monotonic() - started) * 1000)
    return [{"model": model, "code": exc.code, "error": str(exc)[:300], "usage": usage}]
