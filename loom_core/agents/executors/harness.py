"""External editing harnesses — aider and opencode — as executors (engine spec §7.4, surfaces §3.8, §10.6).

A file-editing ("agentic") agent on a raw provider (Anthropic API, OpenRouter, Ollama) can run under
one of these CLIs instead of loom's native tool loop. The CLI runs headless in the task sandbox
(``intent.extras["workdir"]``) in its own process group, with the system prompt folded into the
message:

- **aider**: ``--model <prefix><model> --message-file <scratch>/message.md --yes-always --no-stream
  --no-pretty --no-auto-commits --no-dirty-commits --no-gitignore --no-check-update
  --analytics-disable --no-show-model-warnings --no-detect-urls --disable-playwright --map-tokens N``
  with the input / chat history files in the scratch directory too. Usage comes from its
  ``Tokens: … sent, … received. Cost: $… message, $… session.`` lines, the answer from the chat
  history file (its stdout when that is missing).
- **opencode**: ``run --format json --dangerously-skip-permissions --model <prefix><model> --dir
  <sandbox> <message>`` with stdin closed. Its NDJSON events give the answer (text parts joined),
  the tool calls (log lines) and usage (tokens and cost summed over ``step_finish`` events). A
  message too long for one argv entry goes in a scratch file attached with ``--file``.

The scratch directory (message, history files) is a fresh temporary directory **outside** the
sandbox, removed afterwards, so nothing of the harness's own bookkeeping lands in the diff; aider's
repo-map cache (``.aider.tags.cache.*``), which it always writes at the git root, is removed again
when this run created it.

Credentials are exported by environment variable name (``ANTHROPIC_API_KEY``, ``OPENAI_API_KEY``,
``OPENROUTER_API_KEY``, ``GEMINI_API_KEY``, ``OLLAMA_API_BASE``), never placed on argv.

Failures are classified like the Claude Code executor (:mod:`.subprocess_util`): missing binary
``EXECUTOR_NOT_FOUND``; session timeout (10 min default) ``EXECUTOR_TIMEOUT``; idle timeout (off by
default) ``EXECUTOR_IDLE_TIMEOUT``; cancel ``EXECUTOR_ABORTED``; a failed run is rate limit first,
then invalid model / auth, else ``EXECUTOR_FAILED`` with the streams' head and tail in the message.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

from loom_core.agents.executors import ExecResult
from loom_core.agents.executors.harness_config import (
    CREDENTIAL_ENV,
    DISPLAY,
    HARNESSES,
    INSTALL_HINT,
    MODEL_PREFIX,
    HarnessKind,
    check_kind,
    harness_binary,
    harness_env,
    harness_model,
)
from loom_core.agents.executors.harness_output import AiderRun, OpencodeRun, aider_answer
from loom_core.agents.executors.harness_workdir import (
    aider_artefacts,
    changes,
    git_top,
    remove_new_artefacts,
    scratch_dir,
    snapshot,
)
from loom_core.agents.executors.subprocess_util import (
    AUTH_FAILED,
    FAILED,
    NOT_FOUND,
    OUTPUT_INVALID,
    RATE_LIMITED,
    StreamTail,
    excerpt,
    is_rate_limited,
    permanent_failure,
    require_workdir,
    resolve_binary,
    run_streaming,
    stopped_error,
)
from loom_core.errors import ConfigError, ExecutorError
from loom_core.kernel.types import Intent

ARGV_PROMPT_LIMIT = 100_000  # bytes; one argv entry may not exceed 128 KiB on Linux


class HarnessExecutor:
    """Run an agentic spawn under aider or opencode in the sandbox (see the module docstring).

    ``family`` picks the model prefix and which credential variable ``env`` is expected to carry
    (build it with :func:`harness_env`); ``model`` is the default when the intent names none (the
    intent's model, without a ``family:`` prefix, wins). ``binary`` defaults to
    ``LOOM_AIDER_BIN`` / ``LOOM_OPENCODE_BIN`` or the harness name on PATH.
    """

    idempotent = False
    kill_grace_s = 5.0   # SIGTERM → SIGKILL
    poll_s = 0.05

    def __init__(self, kind: HarnessKind, *, family: str, model: str, env: dict[str, str],
                 binary: str | None = None, session_timeout_s: float = 600,
                 idle_timeout_s: float | None = None, map_tokens: int | None = 1024) -> None:
        self.kind = check_kind(kind)
        if family not in MODEL_PREFIX[self.kind]:
            raise ConfigError(f"{self.kind} cannot run models of provider family '{family}' "
                              f"(known: {', '.join(sorted(MODEL_PREFIX[self.kind]))})", code="NO_BACKEND_RESOLVED")
        self.family = family
        self.model = model
        self.env = {k: str(v) for k, v in (env or {}).items()}
        self.binary = binary or harness_binary(self.kind)
        self.session_timeout_s = session_timeout_s
        self.idle_timeout_s = idle_timeout_s
        self.map_tokens = map_tokens
        self.name = self.kind
        self.label = f"{DISPLAY[self.kind]} ({family})"

    # ------------------------------------------------------------------ discovery
    @staticmethod
    def on_path(kind: str, binary: str | None = None, path: str | None = None) -> str | None:
        """The harness's executable, or None when it is not installed."""
        return resolve_binary(binary or harness_binary(kind), path)

    # ------------------------------------------------------------------ argv
    def model_for(self, intent: Intent) -> str:
        """The harness model id (``<prefix><model>``) this intent runs on."""
        model = (intent.model or "").strip()
        family, sep, rest = model.partition(":")
        if sep and family in CREDENTIAL_ENV:
            model = rest
        if not model or model == "default":
            model = self.model
        return harness_model(self.kind, self.family, model)

    @staticmethod
    def message(intent: Intent) -> str:
        """The prompt the harness gets: the system prompt folded in ahead of the task prompt."""
        system = (intent.system_prompt or "").strip()
        return f"{system}\n\n---\n\n{intent.prompt}" if system else intent.prompt

    def aider_argv(self, exe: str, model: str, scratch: Path) -> list[str]:
        args = [exe]
        if model:
            args += ["--model", model]
        args += ["--message-file", str(scratch / "message.md"),
                 "--yes-always", "--no-stream", "--no-pretty", "--no-auto-commits", "--no-dirty-commits",
                 "--no-gitignore", "--no-check-update", "--analytics-disable", "--no-show-model-warnings",
                 "--no-detect-urls", "--disable-playwright",
                 "--input-history-file", str(scratch / "input.history"),
                 "--chat-history-file", str(scratch / "chat.history.md")]
        if self.map_tokens is not None:
            args += ["--map-tokens", str(int(self.map_tokens))]
        return args

    def opencode_argv(self, exe: str, model: str, root: Path, message: str, scratch: Path) -> list[str]:
        args = [exe, "run", "--format", "json", "--dangerously-skip-permissions"]
        if model:
            args += ["--model", model]
        args += ["--dir", str(root)]
        if len(message.encode("utf-8")) <= ARGV_PROMPT_LIMIT:
            return args + [message]
        attached = scratch / "instructions.md"
        attached.write_text(message, encoding="utf-8")
        return args + ["Your complete instructions are in the attached file instructions.md. Follow them.",
                       "--file", str(attached)]

    # ------------------------------------------------------------------ run
    def execute(self, intent: Intent, cancel: threading.Event, log: Callable[[str], None]) -> ExecResult:
        who = DISPLAY[self.kind]
        if not intent.extras.get("edits_files"):
            # aider and opencode have no read-only mode loom can rely on: never run a read-only role
            raise ExecutorError(f"{intent.agent} is a read-only role; {who} only runs agents that edit files",
                                code="EXECUTOR_READ_ONLY_ROLE")
        root = require_workdir(intent, cancel)
        env = {**os.environ, **self.env}
        if self.kind == "opencode":
            env.setdefault("OPENCODE_DISABLE_AUTOUPDATE", "1")
        exe = resolve_binary(self.binary, env.get("PATH"))
        if exe is None:
            raise ExecutorError(f"{who} `{self.binary}` not found; {INSTALL_HINT[self.kind]}", code=NOT_FOUND)
        model = self.model_for(intent)
        message = self.message(intent)
        scratch = scratch_dir(root)
        top = git_top(root)
        artefacts_before = aider_artefacts(top) if self.kind == "aider" else set()
        before = snapshot(root)
        try:
            if self.kind == "aider":
                (scratch / "message.md").write_text(message, encoding="utf-8")
                argv = self.aider_argv(exe, model, scratch)
                tr: AiderRun | OpencodeRun = AiderRun()
            else:
                argv = self.opencode_argv(exe, model, root, message, scratch)
                tr = OpencodeRun(root)
            try:
                run = run_streaming(argv, cwd=root, env=env, stdin_data=None, on_line=tr.handle, log=log,
                                    cancel=cancel, session_timeout_s=self.session_timeout_s,
                                    idle_timeout_s=self.idle_timeout_s, kill_grace_s=self.kill_grace_s,
                                    poll_s=self.poll_s, name=f"{self.kind}-{intent.agent_run_id}")
            except (FileNotFoundError, PermissionError) as exc:
                raise ExecutorError(f"{who} `{self.binary}` cannot run ({exc}); {INSTALL_HINT[self.kind]}",
                                    code=NOT_FOUND) from exc
            history = ""
            if self.kind == "aider":
                try:
                    history = (scratch / "chat.history.md").read_text(encoding="utf-8", errors="replace")
                except OSError:
                    history = ""
        finally:
            if self.kind == "aider":
                remove_new_artefacts(top, artefacts_before)
            shutil.rmtree(scratch, ignore_errors=True)
        try:
            if run.stopped:
                raise stopped_error(run.stopped, who, intent.agent, session_timeout_s=self.session_timeout_s,
                                    idle_timeout_s=self.idle_timeout_s)
            modified, created = changes(before, snapshot(root))
            bare_model = model.split("/", 1)[1] if "/" in model and model.startswith(
                MODEL_PREFIX[self.kind][self.family]) else model
            if isinstance(tr, AiderRun):
                result = self._finish_aider(intent, tr, run.returncode, run.stderr, run.elapsed, history)
                for rel in tr.applied:
                    if rel not in modified and rel not in created and (root / rel).is_file():
                        modified.append(rel)
            else:
                result = self._finish_opencode(intent, tr, run.returncode, run.stderr, run.elapsed)
                for rel in tr.touched:
                    if rel not in modified and rel not in created and (root / rel).is_file():
                        modified.append(rel)
        except ExecutorError as exc:  # a failed or stopped session is billed too
            exc.detail.setdefault("usage", tr.usage(run.elapsed))
            raise
        result.files_modified = tuple(modified)
        result.files_created = tuple(created)
        result.model = result.model or bare_model or None
        return result

    # ------------------------------------------------------------------ outcome
    def _fail(self, intent: Intent, rc: int, *, parsed: str, raw: str, stderr: str, status: int | None,
              streams: str, why: str) -> ExecutorError:
        detail = {"exit_code": rc, "stderr_tail": stderr[-2000:]}
        who = DISPLAY[self.kind]
        if status == 429 or is_rate_limited(parsed) or is_rate_limited(stderr) or is_rate_limited(raw, raw=True):
            return ExecutorError(f"{intent.agent}: {who} is rate limited: {excerpt(streams, 300, 300)}",
                                 code=RATE_LIMITED, **detail)
        code = permanent_failure(parsed) or permanent_failure(stderr) or permanent_failure(raw) or FAILED
        return ExecutorError(f"{intent.agent}: {who} {why}: {excerpt(streams)}", code=code, **detail)

    @staticmethod
    def _streams(stdout: StreamTail, stderr: str) -> str:
        return (f"stdout: {stdout.text()}" if stdout else "stdout: (empty)") + \
            (f" | stderr: {stderr}" if stderr.strip() else "")

    def _finish_aider(self, intent: Intent, tr: AiderRun, rc: int, stderr: str, elapsed: float,
                      history: str) -> ExecResult:
        streams = self._streams(tr.stdout, stderr)
        errors = "\n".join(tr.errors)
        if rc != 0:
            raise self._fail(intent, rc, parsed="", raw=tr.stdout.text(), stderr=stderr, status=None,
                             streams=streams, why=f"exited with code {rc}")
        if tr.errors and tr.calls == 0:
            # aider reports API failures on stdout and still exits 0: no model reply at all is a failure
            raise self._fail(intent, rc, parsed="", raw=errors, stderr=stderr, status=None, streams=streams,
                             why="got no reply from the model")
        answer = aider_answer(history) or tr.answer_from_stdout()
        model = tr.model
        if model and model.startswith(MODEL_PREFIX["aider"][self.family]):
            model = model[len(MODEL_PREFIX["aider"][self.family]):]
        return ExecResult(output=answer, usage=tr.usage(elapsed), model=model)

    def _finish_opencode(self, intent: Intent, tr: OpencodeRun, rc: int, stderr: str,
                         elapsed: float) -> ExecResult:
        streams = self._streams(tr.stdout, stderr)
        raw = "\n".join(tr.raw)
        if rc != 0 or tr.errors:
            parsed = "\n".join(msg for msg, _ in tr.errors)
            status = next((s for _, s in tr.errors if s == 429), None) or next(
                (s for _, s in tr.errors if s is not None), None)
            if any(msg.startswith("ProviderAuthError") for msg, _ in tr.errors) and status != 429 \
                    and not is_rate_limited(parsed):
                raise ExecutorError(f"{intent.agent}: opencode could not authenticate: {excerpt(parsed)}",
                                    code=AUTH_FAILED, exit_code=rc, stderr_tail=stderr[-2000:])
            why = f"exited with code {rc}" if rc != 0 else "reported an error"
            if tr.errors:
                why += f" ({excerpt(parsed, 300, 0)})"
            raise self._fail(intent, rc, parsed=parsed, raw=raw, stderr=stderr, status=status, streams=streams,
                             why=why)
        if tr.events == 0:
            raise ExecutorError(f"{intent.agent}: opencode printed no JSON events: {excerpt(streams)}",
                                code=OUTPUT_INVALID, exit_code=rc, stderr_tail=stderr[-2000:])
        return ExecResult(output="\n".join(t.strip() for t in tr.texts if t.strip()), usage=tr.usage(elapsed))


__all__ = ["HarnessExecutor", "HARNESSES", "MODEL_PREFIX", "CREDENTIAL_ENV", "check_kind", "harness_binary",
           "harness_env", "harness_model", "aider_answer"]
