"""The shuttle drive: a task whose agents run in the host (Claude Code over MCP), not in loom.

Spec surfaces §8, engine §7.1 and §10.1 (``claude-code-shuttle``): the engine decides, the host executes.
Each call opens the project's engine under the project lock, applies one delivery (create, agent result(s),
gate answer, recovery) and shapes what comes next as a wire directive for the host:

- ``spawn-agent`` / ``spawn-agents-parallel``: the agent, its run id (the pending row's: the host delivers
  under the same id), model, and the prompt re-rendered from state with the agent's system prompt in front
  and the sandbox to work in (``spawn_request.extras.workdir``);
- ``ask-user`` with the gate's ``valid_answers``; ``complete``; ``error`` with ``recovery_options``.

Deterministic agents (capability ``checks``) are never shuttled: the server runs them in the sandbox and
delivers their result itself, then shapes the next directive. An agent result's files are the union of what
the host lists and the sandbox's own delta. An accepted task lands on ``loom/<task_id>`` like any other
drive; a task that ended otherwise loses its sandbox. A duplicate delivery ticks nothing (the idempotency
ledger) and answers with the task's current directive, flagged ``replayed``.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from loom_core.engine.clock import Clock
from loom_core.engine.engine import Engine, Response
from loom_core.errors import LoomError
from loom_core.kernel.types import AgentResult, Directive, Intent

PROMPTS_BY_REFERENCE_CHARS = 50_000  # a fan-out whose prompts total more omits them (fetch each by id)
SHUTTLE = Path(".loom") / "work" / "shuttle"  # per-run hand-off notes in the sandbox (document digests)
RUNNER_HINT = "general-purpose"  # the host's sub-agent type unless the agent names one (extras.subagent_type)


def error_wire(code: str, message: str, *, driver_state_id: str | None = None,
               options: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    """A structured refusal in the wire's ``error`` shape."""
    return {"kind": "error", "driver_state_id": driver_state_id, "code": code, "message": message,
            "recovery_options": list(options or []), **extra}


RECOVERY_LABELS = {"retry": "Run the machine again from where it stands",
                   "retry-failed": "Hand the pending agents out again (same run ids)",
                   "cancel-pending": "Drop the pending agents and move past the failing stage",
                   "force-close": "Close the task now (verdict failed_force_closed)",
                   "abandon": "Abandon the task (no verdict)"}


def recovery_options(choices: tuple[str, ...], run_ids: list[str] | None = None) -> list[dict[str, Any]]:
    out = []
    for c in choices:
        opt: dict[str, Any] = {"choice": c, "label": RECOVERY_LABELS[c]}
        if c == "retry-failed" and run_ids:
            opt["agent_run_ids"] = list(run_ids)
        out.append(opt)
    return out


class HostDrive:
    """One tool call's engine, workspace and shaping. Use as a context manager (closes the engine)."""

    def __init__(self, engine: Engine, workspace: Any, *, clock: Clock) -> None:
        self.engine = engine
        self.ws = workspace
        self.clock = clock
        self.notes: list[str] = []
        self.landed: dict[str, Any] | None = None
        self._checks = None

    def __enter__(self) -> HostDrive:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.engine.close()

    @property
    def dsid(self) -> str | None:
        return self.engine.state().pipeline.get("driver_state_id")

    # ------------------------------------------------------------------ deliveries
    def deliver_results(self, results: list[dict[str, Any]]) -> Response:
        """Agent results from the host: files unioned with the sandbox's delta, documents saved, transcripts."""
        st = self.engine.state()
        built = []
        agents = [st.pending[str(r.get("agent_run_id"))]["agent"] for r in results
                  if isinstance(r, dict) and str(r.get("agent_run_id")) in st.pending]
        for r in results:  # every result is checked before anything happens
            if not r.get("agent_run_id") or not isinstance(r.get("agent_output"), str):
                raise LoomError("an agent result needs agent_run_id and agent_output (text)", code="BAD_INPUT")
            _tokens(r.get("tokens"))
            _paths(r, "files_modified")
            _paths(r, "files_created")
        for r in results:
            rid, output = str(r["agent_run_id"]), r["agent_output"]
            row = st.pending.get(rid)
            findings = self._role_check(row, [a for a in agents if row and a != row["agent"]]) if row else []
            modified, created = self._delta() if row is not None else ([], [])
            if row is not None:
                self._save_doc(row["agent"], rid, output)
            tokens = _tokens(r.get("tokens"))
            mod = tuple(dict.fromkeys([*_paths(r, "files_modified"), *modified]))
            new = tuple(dict.fromkeys([*_paths(r, "files_created"), *created]))
            built.append(AgentResult(rid, output, mod, new, tokens["in"], tokens["out"], tokens["cached"],
                                     harness_findings=tuple(findings)))
            if row is not None:
                self._transcript(row, output, mod, new, tokens)
        return self.engine.deliver(built if len(built) > 1 else built[0])

    def _role_check(self, row: dict[str, Any], beside: list[str]) -> list[dict[str, Any]]:
        """A read-only agent's changes to the sandbox (since its hand-off) are reverted and become a blocking
        ``role-violation`` finding: only agents with ``edits_files`` may change the work."""
        from loom_core.agents.spawn import violation
        from loom_core.workspace.checks.treesnap import TreeSnapshot

        note = self._handoff(row["agent_run_id"])
        if not note.get("tree") or self.ws is None:
            return []
        snap = TreeSnapshot(self.ws.root, str(note.get("id") or ""), "git", tree=note["tree"],
                            prefix=str(note.get("prefix") or ""))
        try:
            changed, failed = snap.revert()
        except Exception as exc:  # pygit2 / filesystem trouble: report it, never fail the delivery
            self.notes.append(f"could not check what {row['agent']} changed in the sandbox: {exc}")
            return []
        if not changed:
            return []
        self.notes.append(f"{row['agent']} may not change files; reverted: {', '.join(changed[:8])}")
        return [violation(row["agent"], changed, failed, sorted(set(beside)))]

    def _delta(self) -> tuple[list[str], list[str]]:
        try:
            modified, created = self.ws.delta()
        except LoomError as exc:
            self.notes.append(f"the sandbox delta could not be computed: {exc}")
            return [], []
        if self.ws.isolated:
            with contextlib.suppress(Exception):
                from loom_core.agents import agent_view

                agent_view.refresh_diff(self.ws)
        return modified, created

    def _save_doc(self, agent: str, rid: str, output: str) -> None:
        """An agent that describes (extra ``writes_doc``) and did not write its document gets its answer saved."""
        from loom_core.agents import agent_view

        spec = self.engine.bundle.agents.get(agent)
        doc = spec.extras.get("writes_doc") if spec else None
        if not doc:
            return
        before = self._handoff(rid).get("doc_digest")
        if agent_view.doc_digest(self.ws.root, doc) == before:
            with contextlib.suppress(OSError):
                agent_view.save_document(self.ws.root, doc, output)

    def _handoff(self, rid: str) -> dict[str, Any]:
        try:
            return json.loads((self.ws.root / SHUTTLE / f"{_safe(rid)}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def _transcript(self, row: dict[str, Any], output: str, mod: tuple[str, ...], new: tuple[str, ...],
                    tokens: dict[str, Any]) -> None:
        try:  # the prompt as the host got it (rendered from the same state: the run is still pending)
            prompt = self.engine.render_intent(Intent(row["agent"], row["agent_run_id"], row["phase"],
                                                      row.get("model") or "", "")).prompt
        except (LoomError, KeyError):
            prompt = ""
        with contextlib.suppress(LoomError):
            self.engine.store.save_transcript({
                "agent_run_id": row["agent_run_id"], "agent": row["agent"], "phase": row["phase"],
                "model": row.get("model"), "prompt": prompt, "output": output,
                "files": {"modified": list(mod), "created": list(new)},
                "usage": {"tokens_in": tokens["in"], "tokens_out": tokens["out"], "tokens_cached": tokens["cached"],
                          "host": True},
                "cost_usd": None, "duration_ms": None, "recorded_at": self.clock.now()})

    # ------------------------------------------------------------------ what next
    def next_wire(self, resp: Response | None, *, placeholders: bool = False) -> dict[str, Any]:
        """The host-facing directive after ``resp`` (None: the task's current one). Deterministic spawns run
        here first; an accepted finish lands the work."""
        d = self._directive(resp)
        while d.kind == "shuttle":
            local = [i for i in d.intents if i.extras.get("capability") == "checks"]
            if not local:
                break
            for intent in local:
                self._run_checks(intent)
            d = self._directive(None)
        if d.kind == "complete":
            self._finish(d)
        return self.wire(d, placeholders=placeholders)

    def _directive(self, resp: Response | None) -> Directive:
        if resp is not None and resp.directive is not None:
            return resp.directive
        return self.engine.advance().directive  # type: ignore[return-value]

    def _run_checks(self, intent: Intent) -> None:
        from loom_core.agents.spawn import SpawnExecutor

        if self._checks is None:
            from loom_core.agents.executors.checks import ChecksExecutor
            from loom_core.config.project import configured_checks
            from loom_core.engine.options import user_settings

            limits = user_settings().checks
            checks = ChecksExecutor(lambda: self.ws.root, configured_checks(self.engine.project), limits.timeout_s,
                                    workspace=self.ws, test_timeout_s=limits.test_timeout_s)
            self._checks = SpawnExecutor(_NoHost(), self.ws, checks=checks)
        full = self.engine.render_intent(intent)
        r = self._checks.execute(full, threading.Event(), lambda line: None)
        self.engine.deliver(AgentResult(intent.agent_run_id, r.output, tuple(r.files_modified),
                                        tuple(r.files_created)))

    def _finish(self, d: Directive) -> None:
        """Accepted: land on ``loom/<task_id>``; otherwise drop the sandbox."""
        if d.verdict == "accepted" and d.task_id:
            self.land(d.task_id)
        elif self.ws is not None and self.ws.isolated:
            self.ws.discard()

    def land(self, task_id: str) -> None:
        """Land accepted work (resumable and idempotent: a landed task only reports its branch again)."""
        from loom_core.engine.verify import trailers
        from loom_core.workspace.landing import land

        try:
            merge = land(self.engine.project, task_id, self.ws, trailers=trailers(self.engine.project))
        except LoomError as exc:
            self.notes.append(f"the accepted work could not land yet: {exc}")
            return
        if merge is not None:
            self.landed = {"status": merge.status, "branch": merge.branch, "files": list(merge.files),
                           "message": merge.message}

    # ------------------------------------------------------------------ wire
    def wire(self, d: Directive, *, placeholders: bool = False) -> dict[str, Any]:
        dsid = self.dsid
        if d.kind == "shuttle":
            spawns = [self.spawn(i, with_prompt=not placeholders) for i in d.intents]
            if len(spawns) == 1:
                return {"kind": "spawn-agent", **spawns[0]}
            out: dict[str, Any] = {"kind": "spawn-agents-parallel", "driver_state_id": dsid, "spawns": spawns,
                                   "prompts_by_reference": False}
            if sum(len(s["spawn_request"].get("prompt") or "") for s in spawns) > PROMPTS_BY_REFERENCE_CHARS:
                for s in spawns:
                    s["spawn_request"]["prompt"] = None
                out["prompts_by_reference"] = True
            return out
        if d.kind == "ask-user":
            opts = d.to_wire()["options"]
            return {"kind": "ask-user", "driver_state_id": dsid, "gate": d.gate, "gate_event_id": d.gate_event_id,
                    "message": d.message, "valid_answers": [o["verbs"][0] for o in opts], "options": opts}
        if d.kind == "complete":
            out = {"kind": "complete", "task_id": d.task_id, "verdict": d.verdict, "summary": d.summary}
            if self.landed:
                out["landed"] = self.landed
            return out
        pending = sorted(self.engine.state().pending)
        return error_wire(d.code or "ERROR", d.message, driver_state_id=dsid,
                          options=recovery_options(("retry", "cancel-pending", "force-close", "abandon")
                                                   if not pending else
                                                   ("retry-failed", "cancel-pending", "force-close", "abandon"),
                                                   pending))

    def spawn(self, intent: Intent, *, with_prompt: bool = True) -> dict[str, Any]:
        extras = {k: v for k, v in intent.extras.items() if isinstance(v, str | int | float | bool | type(None))}
        extras["workdir"] = str(self.ws.root) if self.ws is not None else str(self.engine.project)
        prompt = self.prompt(intent) if with_prompt else None
        return {"driver_state_id": self.dsid, "agent_run_id": intent.agent_run_id, "agent": intent.agent,
                "spawn_request": {"runner_hint": str(intent.extras.get("subagent_type") or RUNNER_HINT),
                                  "description": f"loom {intent.agent} ({intent.phase})"[:80],
                                  "prompt": prompt, "model": intent.model, "extras": extras}}

    def prompt(self, intent: Intent) -> str:
        """The full prompt for the host: system prompt, where to work, the rendered task prompt (and the work
        under review for a judging agent). Records the hand-off (document digest) for the delivery."""
        from loom_core.agents import agent_view

        full = self.engine.render_intent(intent)
        if intent.extras.get("judges") and self.ws is not None:
            with contextlib.suppress(Exception):
                full = replace(full, prompt=full.prompt.rstrip("\n") + agent_view.review_section(self.ws, full.phase))
        root = self.ws.root if self.ws is not None else self.engine.project
        isolated = self.ws is not None and self.ws.isolated
        if isolated:
            where = (f"Work only inside {root}: loom's sandbox copy of the project. Your current directory is "
                     f"probably not it: use absolute paths under {root} (or cd there in shell commands), and "
                     f"never change files in {self.engine.project} itself. Paths in this prompt are relative to "
                     "the sandbox. ")
        else:
            where = f"Work inside {root} (the project itself). Paths in this prompt are relative to it. "
        where += ("You may edit files there." if intent.extras.get("edits_files") else
                  "Do not change any file: read, judge and answer.")
        where += " Your final message is delivered to loom verbatim: end with the output the instructions ask for."
        parts = [full.system_prompt or "", where, full.prompt]
        self._note_handoff(intent)
        return "\n\n".join(p.strip("\n") for p in parts if p)

    def _note_handoff(self, intent: Intent) -> None:
        """What the delivery compares with, recorded once per run when its prompt is first handed out: the
        document's digest (an agent that describes) and the sandbox tree (an agent that may not edit)."""
        from loom_core.agents import agent_view

        doc = intent.extras.get("writes_doc")
        read_only = not intent.extras.get("edits_files") and intent.extras.get("capability") != "checks"
        if self.ws is None or not (doc or (read_only and self.ws.isolated)):
            return
        path = self.ws.root / SHUTTLE / f"{_safe(intent.agent_run_id)}.json"
        if path.exists():
            return
        note: dict[str, Any] = {"agent": intent.agent}
        if doc:
            note["doc_digest"] = agent_view.doc_digest(self.ws.root, doc)
        if read_only and self.ws.isolated:
            from loom_core.workspace.checks.treesnap import TreeSnapshot

            try:
                snap = TreeSnapshot.take(self.ws.root)
            except Exception as exc:
                self.notes.append(f"could not snapshot the sandbox before {intent.agent}: {exc}")
            else:
                if snap.kind == "git":
                    note.update(tree=snap.tree, id=snap.id, prefix=snap.prefix)
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(note), encoding="utf-8")


class _NoHost:
    """The backend behind the server-side checks runner: anything else is the host's to run."""

    name = "claude-code-shuttle"
    label = "the MCP host (Claude Code)"
    idempotent = False

    def execute(self, intent: Intent, cancel: threading.Event, log: Callable[[str], None]) -> Any:
        raise LoomError(f"{intent.agent} runs in the host, not in the server", code="PROVIDER_NOT_HEADLESS")


def _tokens(value: Any) -> dict[str, int]:
    """``{in, out, cached}`` as whole numbers ≥ 0 (absent: zeros); anything else is BAD_INPUT."""
    value = value or {}
    if not isinstance(value, dict):
        raise LoomError("tokens must be an object {in, out, cached?}", code="BAD_INPUT")
    out = {}
    for k in ("in", "out", "cached"):
        v = value.get(k) or 0
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise LoomError(f"tokens.{k} must be a whole number ≥ 0, got {v!r}"[:120], code="BAD_INPUT")
        out[k] = v
    return out


def _paths(result: dict[str, Any], key: str) -> list[str]:
    value = result.get(key) or []
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        raise LoomError(f"{key} must be a list of paths", code="BAD_INPUT")
    return value


def _safe(rid: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in rid)
