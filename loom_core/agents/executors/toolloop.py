"""Native tool loop: an agent on a provider without an agentic CLI works through loom's own
sandboxed tools.

A file-editing agent gets read, write, edit, list, grep and run checks. Every other agent
(``read_only=True``: classifier, planners, analyzers, reviewers, acceptance) gets read, list and
grep only, so it can look at the code it plans for or judges; it runs in fewer turns, and where
there is no sandbox directory at all it falls back to one single-shot call.

Every path goes through the path guard; the loop is bounded in turns; the log shows each tool
call. Works with any provider of ``loom_core.agents.providers`` (Anthropic tools, OpenAI-style
function calls, Ollama tools).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from loom_core.agents.executors import ExecResult, Usage
from loom_core.agents.tools import SandboxTools
from loom_core.errors import ExecutorError, ProviderBadRequest
from loom_core.kernel.types import Intent

SYSTEM_SUFFIX = """

## How you work here
You are running headless inside an isolated copy of the repository. Use the tools to read and
change files (paths are relative to the repository root); nothing outside it is reachable.
Make the change completely, run the project's checks with `run_checks` when available, then
answer with your final report as plain text (no tool call)."""

READ_ONLY_SUFFIX = """

## How you work here
You are running headless inside an isolated copy of the repository. Your tools are read-only:
`read_file`, `list_files` and `grep` (paths relative to the repository root; `.git` and credential
files are not readable). You cannot change files or run commands. Where your instructions ask you
to write a document under `.loom/work/`, put its complete content in your final answer instead:
loom saves it there. Look at what you need, then answer with your final output as plain text
(no tool call)."""
LAST_TURN_NOTE = "\n\n[loom] This was your last tool turn: answer now with your final output, without tool calls."


class ToolLoopExecutor:
    idempotent = False

    def __init__(self, provider, *, label: str, max_turns: int = 40, max_tokens: int = 8192,
                 run_checks: Callable[[Path], str] | None = None, model: str | None = None,
                 notice: str | None = None, read_only: bool = False, single_shot=None) -> None:
        self.provider = provider
        self.read_only = read_only
        self.single_shot = single_shot  # read-only: the executor used when there is no sandbox directory
        if read_only:
            self.idempotent = True  # nothing in the tree changes; each turn carries its idempotency key
        self.notice = notice  # shown once, in the first spawn's log (e.g. why no external harness runs)
        self._notice_lock = threading.Lock()
        self.name = f"{provider.name}+{'read-tools' if read_only else 'tools'}"
        self.label = label
        self.max_turns = max_turns
        self.max_tokens = max_tokens
        self.run_checks = run_checks
        self.model = model

    def execute(self, intent: Intent, cancel: threading.Event, log: Callable[[str], None]) -> ExecResult:
        workdir = intent.extras.get("workdir")
        if self.read_only and self.single_shot is not None and (not workdir or not Path(workdir).is_dir()):
            return self.single_shot.execute(intent, cancel, log)
        if not workdir or not Path(workdir).is_dir():
            raise ExecutorError(f"{intent.agent}: no sandbox directory to edit in", code="EXECUTOR_FAILED")
        root = Path(workdir)
        with self._notice_lock:
            notice, self.notice = self.notice, None
        if notice:
            log(notice)
        calls: list[dict] = []
        checks = (lambda: self.run_checks(root)) if self.run_checks and not self.read_only else None
        tools = SandboxTools(root, run_checks=checks, audit=calls.append, read_only=self.read_only)
        provider = self.provider
        model = self.model or intent.model
        if ":" in model and model.split(":", 1)[0] == provider.name:
            model = model.split(":", 1)[1]
        system = (intent.system_prompt or "") + (READ_ONLY_SUFFIX if self.read_only else SYSTEM_SUFFIX)
        messages = [provider.user_message(intent.prompt)]
        usage = Usage(tokens_in=0, tokens_out=0)
        cost: float | None = None
        started = time.monotonic()
        used_model = model
        for turn in range(1, self.max_turns + 1):
            if cancel.is_set():
                raise _billed(ExecutorError("cancelled", code="EXECUTOR_ABORTED"), usage, cost, turn - 1, started)
            try:
                reply = provider.chat(model=model, system=system, messages=messages, tools=tools.specs(),
                                      max_tokens=intent.extras.get("max_tokens", self.max_tokens),
                                      idempotency_key=f"{intent.agent_run_id}-t{turn}", cancel=cancel)
            except ProviderBadRequest as exc:
                if not (turn == 1 and self.read_only and self.single_shot is not None and _no_tool_support(exc)):
                    raise _billed(exc, usage, cost, turn - 1, started) from None
                log(f"{model} takes no tools ({str(exc)[:120]}) — one plain call without the read tools")
                return self.single_shot.execute(intent, cancel, log)
            except ExecutorError as exc:
                raise _billed(exc, usage, cost, turn - 1, started) from None
            used_model = reply.model or used_model
            u = reply.usage
            usage.tokens_in += u.tokens_in
            usage.tokens_out += u.tokens_out
            usage.tokens_cached += u.tokens_cached
            usage.cache_write += u.cache_write
            if u.cost_usd is not None:
                cost = (cost or 0.0) + u.cost_usd
            if reply.text.strip():
                log(reply.text.strip().splitlines()[0][:160])
            messages.append(reply.raw_assistant)
            if not reply.tool_calls:
                usage.num_turns = turn
                usage.cost_usd = cost
                usage.duration_ms = int((time.monotonic() - started) * 1000)
                changed = sorted(tools.changed)
                return ExecResult(output=reply.text, files_modified=tuple(changed), usage=usage, model=used_model)
            results = []
            for call in reply.tool_calls:
                outcome = tools.call(call.name, call.arguments)
                target = call.arguments.get("path") or call.arguments.get("pattern") or ""
                log(f"{call.name} {target}".strip() + ("" if outcome.ok else f" — {outcome.content[:100]}"))
                results.append((call, outcome.content, not outcome.ok))
            if turn == self.max_turns - 1 and results:
                call, content, failed = results[-1]
                results[-1] = (call, content + LAST_TURN_NOTE, failed)
            messages.extend(provider.tool_result_message(results))
        raise _billed(ExecutorError(f"{intent.agent} did not finish within {self.max_turns} tool turns",
                                    code="EXECUTOR_TURN_LIMIT"), usage, cost, self.max_turns, started)


def _billed(exc: ExecutorError, usage: Usage, cost: float | None, turns: int, started: float) -> ExecutorError:
    """The error, carrying what the turns before it consumed (a failed session costs money too)."""
    if turns and "usage" not in exc.detail:
        usage.num_turns, usage.cost_usd = turns, cost
        usage.duration_ms = int((time.monotonic() - started) * 1000)
        exc.detail["usage"] = usage
    return exc


def _no_tool_support(exc: ProviderBadRequest) -> bool:
    """The model refused the request because it cannot use tools (Ollama: "does not support tools";
    OpenRouter: "No endpoints found that support tool use")."""
    text = str(exc).lower()
    return "tool" in text and "support" in text
