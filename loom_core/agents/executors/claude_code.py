"""Headless Claude Code executor: ``claude -p --output-format stream-json --verbose`` in the sandbox.

The prompt goes in on stdin (never argv), the CLI runs in ``intent.extras["workdir"]`` in its own
process group (file-editing agents in ``acceptEdits``; every other role with the read tools only), and its stream-json events become short human log lines as they arrive. The final
``result`` event is the envelope: result text, usage, cost, turns, duration. Never ``--bare``: the
CLI keeps using the user's own login (subscription or API key from the environment).

Failure classification (engine spec §7.5, surfaces §10.1) lives in pure functions
(``is_rate_limited``, ``permanent_failure``, ``classify_failure``) in :mod:`.subprocess_util`, shared
with the aider / opencode harness executor together with the process-group run loop; they are
re-exported here.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from loom_core.agents.executors import ExecResult, Usage
from loom_core.agents.executors.subprocess_util import (  # noqa: F401  (re-exported: the classifiers' historical home)
    AUTH_FAILED,
    FAILED,
    INVALID_MODEL,
    RATE_LIMITED,
    classify_failure,
    excerpt,
    group_alive,
    is_rate_limited,
    permanent_failure,
    require_workdir,
    resolve_binary,
    run_streaming,
    stopped_error,
)
from loom_core.agents.executors.subprocess_util import short as _short
from loom_core.errors import ExecutorError
from loom_core.kernel.types import Intent

PROBE_TIMEOUT_S = 30  # `claude --version`; node's start can be slow on a loaded machine
INSTALL_HINT = "install it with `npm i -g @anthropic-ai/claude-code` or set LOOM_CLAUDE_BIN"
# Agents without the ``edits_files`` extra get only these built-in tools (``--tools``; checked with
# Claude Code 2.1.197: any other tool call is answered "No such tool available"), in the
# ``default`` permission mode, with the editing tools and Bash denied outright as well.
READ_ONLY_TOOLS = ("Read", "Grep", "Glob")
EDIT_TOOLS = ("Edit", "Write", "NotebookEdit", "Bash")


# ---------------------------------------------------------------------------- event → log line

def _rel(path: Any, root: Path) -> str:
    s = str(path)
    try:
        p = Path(s)
        if p.is_absolute():
            return p.relative_to(root).as_posix() or "."
    except ValueError:
        pass
    return s


def describe_tool(name: str, args: Mapping[str, Any] | None, root: Path) -> str:
    """``Read shop/pricing.py``, ``Bash pytest -q``, ``Grep TODO`` ..."""
    args = args if isinstance(args, Mapping) else {}
    for key in ("file_path", "notebook_path", "path"):
        if args.get(key):
            detail = _rel(args[key], root)
            if name in ("Grep", "Glob") and args.get("pattern"):
                detail = f"{args['pattern']} in {detail}"
            return _short(f"{name} {detail}")
    for key in ("command", "pattern", "url", "query", "description", "prompt", "skill"):
        if args.get(key):
            return _short(f"{name} {args[key]}")
    return name


class _Transcript:
    """What the reader thread learns from the stream (touched under ``lock``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.lock = threading.Lock()
        self.envelope: dict[str, Any] | None = None
        self.init_model: str | None = None
        self.assistant_model: str | None = None
        self.version: str | None = None
        self.raw_lines: list[str] = []   # non-JSON stdout lines (capped)
        self.raw_chars = 0
        self.head: list[str] = []        # stdout head / tail for messages
        self.head_chars = 0
        self.tail: deque[str] = deque(maxlen=200)
        self.tool_paths: dict[str, tuple[str, str]] = {}  # tool_use_id -> (tool, path)
        self.created: list[str] = []
        self.modified: list[str] = []
        self.message_usage: dict[str, dict] = {}  # assistant message id -> its usage (a killed session's bill)

    def keep(self, line: str) -> None:
        if self.head_chars < 4000:
            self.head.append(line)
            self.head_chars += len(line)
        else:
            self.tail.append(line[-2000:])

    def streamed_usage(self, elapsed: float) -> Usage | None:
        """What the assistant messages seen so far consumed (cost unknown), for a session that ended
        without its result event (stopped, killed or crashed)."""
        if not self.message_usage:
            return None
        us = list(self.message_usage.values())
        return Usage(tokens_in=sum(_int(u.get("input_tokens")) for u in us),
                     tokens_out=sum(_int(u.get("output_tokens")) for u in us),
                     tokens_cached=sum(_int(u.get("cache_read_input_tokens")) for u in us),
                     cache_write=sum(_int(u.get("cache_creation_input_tokens")) for u in us),
                     num_turns=len(us), duration_ms=int(elapsed * 1000))

    def stdout_text(self) -> str:
        return "\n".join(self.head + list(self.tail))

    def handle(self, line: str) -> list[str]:
        """One stdout line → log lines."""
        self.keep(line)
        try:
            ev = json.loads(line)
        except ValueError:
            ev = None
        if not isinstance(ev, dict):
            if self.raw_chars < 64_000:
                self.raw_lines.append(line)
                self.raw_chars += len(line)
            return [_short(line)] if line.strip() else []
        kind = ev.get("type")
        if kind == "system":
            return self._system(ev)
        if kind == "assistant":
            return self._assistant(ev)
        if kind == "user":
            return self._user(ev)
        if kind == "result":
            self.envelope = ev
            denials = ev.get("permission_denials") or []
            if denials:
                what = ", ".join(describe_tool(str(d.get("tool_name", "?")), d.get("tool_input"), self.root)
                                 for d in denials if isinstance(d, dict))
                return [_short(f"permission denied ({len(denials)}): {what}", 300)]
        return []

    def _system(self, ev: dict) -> list[str]:
        sub = ev.get("subtype")
        if sub == "init":
            self.init_model = ev.get("model") or self.init_model
            self.version = ev.get("claude_code_version") or self.version
            bits = [f"Claude Code {self.version}" if self.version else "Claude Code",
                    f"model {self.init_model}" if self.init_model else None,
                    f"permission mode {ev['permissionMode']}" if ev.get("permissionMode") else None]
            return ["session started: " + ", ".join(b for b in bits if b)]
        if sub == "api_retry":
            return [_short(f"API retry {ev.get('attempt')}/{ev.get('max_retries')}"
                           f" ({ev.get('error_status') or ev.get('error') or 'error'})")]
        return []

    def _assistant(self, ev: dict) -> list[str]:
        msg = ev.get("message") or {}
        if isinstance(msg.get("model"), str) and not msg["model"].startswith("<"):
            self.assistant_model = msg["model"]
        if isinstance(msg.get("usage"), dict):
            self.message_usage[str(msg.get("id") or len(self.message_usage))] = msg["usage"]
        out = []
        for block in msg.get("content") or []:
            if not isinstance(block, dict):
                continue
            if block.get("type") == "text" and str(block.get("text", "")).strip():
                out.append(_short(block["text"]))
            elif block.get("type") == "tool_use":
                name, args = str(block.get("name", "tool")), block.get("input")
                out.append(describe_tool(name, args, self.root))
                if name in ("Write", "Edit", "MultiEdit", "NotebookEdit") and isinstance(args, dict):
                    path = args.get("file_path") or args.get("notebook_path")
                    if path and block.get("id"):
                        self.tool_paths[str(block["id"])] = (name, str(path))
        return out

    def _user(self, ev: dict) -> list[str]:
        msg = ev.get("message") or {}
        content = msg.get("content")
        out = []
        for block in content if isinstance(content, list) else []:
            if not isinstance(block, dict) or block.get("type") != "tool_result":
                continue
            tool = self.tool_paths.pop(str(block.get("tool_use_id")), None)
            if block.get("is_error"):
                text = block.get("content")
                if isinstance(text, list):
                    text = " ".join(str(b.get("text", "")) for b in text if isinstance(b, dict))
                out.append(_short(f"tool error: {text}"))
            elif tool:
                self._record_file(tool, ev.get("tool_use_result"))
        return out

    def _record_file(self, tool: tuple[str, str], meta: Any) -> None:
        name, path = tool
        p = Path(path)
        try:
            rel = (p.relative_to(self.root) if p.is_absolute() else p).as_posix()
        except ValueError:
            return  # outside the sandbox: not ours to report
        created = name == "Write" and isinstance(meta, dict) and meta.get("type") == "create"
        target = self.created if created else self.modified
        if rel not in self.created and rel not in self.modified:
            target.append(rel)

    def model(self) -> str | None:
        usage = (self.envelope or {}).get("modelUsage")
        if isinstance(usage, dict) and usage:
            if self.init_model in usage:
                return self.init_model
            return max(usage, key=lambda k: (usage[k] or {}).get("outputTokens", 0)
                       if isinstance(usage[k], dict) else 0)
        return self.init_model or self.assistant_model


# ---------------------------------------------------------------------------- executor

def _int(v: Any) -> int:
    try:
        return int(v or 0)
    except (TypeError, ValueError):
        return 0


class ClaudeCodeExecutor:
    name = "claude-code"
    label = "Claude Code CLI"
    idempotent = True

    kill_grace_s = 5.0   # SIGTERM → SIGKILL
    poll_s = 0.05

    _available: dict[str, tuple[bool, str]] = {}
    _available_lock = threading.Lock()

    def __init__(self, binary: str | None = None, *, permission_mode: str = "acceptEdits",
                 max_turns: int | None = None, session_timeout_s: float = 1800,
                 idle_timeout_s: float | None = None, env: dict | None = None) -> None:
        self.binary = binary or os.environ.get("LOOM_CLAUDE_BIN", "claude")
        self.permission_mode = permission_mode
        self.max_turns = max_turns
        self.session_timeout_s = session_timeout_s
        self.idle_timeout_s = idle_timeout_s
        self.env = dict(env or {})

    # ------------------------------------------------------------------ discovery
    @staticmethod
    def _resolve(binary: str, path: str | None = None) -> str | None:
        return resolve_binary(binary, path)

    @classmethod
    def available(cls, binary: str | None = None) -> tuple[bool, str]:
        """``(True, "2.1.197 (Claude Code)")`` or ``(False, why)``; the answer is cached per binary."""
        binary = binary or os.environ.get("LOOM_CLAUDE_BIN", "claude")
        with cls._available_lock:
            if binary in cls._available:
                return cls._available[binary]
        exe = cls._resolve(binary)
        if exe is None:
            answer = (False, f"`{binary}` not found; {INSTALL_HINT}")
        else:
            try:
                quiet = {"DISABLE_AUTOUPDATER": "1", "DISABLE_TELEMETRY": "1",  # a version probe, nothing else
                         "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}
                cp = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=PROBE_TIMEOUT_S,
                                    stdin=subprocess.DEVNULL, env={**os.environ, **quiet})
                out = (cp.stdout or cp.stderr).strip().splitlines()
                if cp.returncode == 0:
                    answer = (True, out[0] if out else "unknown version")
                else:
                    answer = (False, f"`{binary} --version` exited {cp.returncode}: {excerpt(' '.join(out), 200, 0)}")
            except subprocess.TimeoutExpired:
                answer = (False, f"`{binary} --version` did not answer within {PROBE_TIMEOUT_S} s")
            except OSError as exc:
                answer = (False, f"`{binary}` cannot run: {exc}")
        with cls._available_lock:
            cls._available[binary] = answer
        return answer

    # ------------------------------------------------------------------ argv
    def argv(self, intent: Intent, exe: str) -> list[str]:
        if intent.extras.get("edits_files"):
            args = [exe, "-p", "--output-format", "stream-json", "--verbose", "--permission-mode", self.permission_mode]
        else:  # a read-only role: only the read tools exist in the session, anything else is denied
            args = [exe, "-p", "--output-format", "stream-json", "--verbose", "--permission-mode", "default",
                    "--tools", ",".join(READ_ONLY_TOOLS), "--disallowedTools", ",".join(EDIT_TOOLS),
                    "--strict-mcp-config"]  # no MCP server (configured tools may write) for a read-only role
        model = (intent.model or "").strip()
        if model and model != "default":
            args += ["--model", model]
        if intent.system_prompt:
            args += ["--append-system-prompt", intent.system_prompt]
        if self.max_turns:
            args += ["--max-turns", str(int(self.max_turns))]
        return args

    # ------------------------------------------------------------------ run
    def execute(self, intent: Intent, cancel: threading.Event, log: Callable[[str], None]) -> ExecResult:
        root = require_workdir(intent, cancel)
        env = {**os.environ, **{k: str(v) for k, v in self.env.items()}}
        exe = self._resolve(self.binary, env.get("PATH"))
        if exe is None:
            raise ExecutorError(f"Claude Code CLI `{self.binary}` not found; {INSTALL_HINT}",
                                code="EXECUTOR_NOT_FOUND")
        tr = _Transcript(root)

        def on_line(line: str) -> list[str]:
            with tr.lock:
                return tr.handle(line)

        try:
            run = run_streaming(self.argv(intent, exe), cwd=root, env=env, stdin_data=intent.prompt.encode("utf-8"),
                                on_line=on_line, log=log, cancel=cancel, session_timeout_s=self.session_timeout_s,
                                idle_timeout_s=self.idle_timeout_s, kill_grace_s=self.kill_grace_s,
                                poll_s=self.poll_s, name=f"claude-{intent.agent_run_id}")
        except (FileNotFoundError, PermissionError) as exc:
            raise ExecutorError(f"Claude Code CLI `{self.binary}` cannot run ({exc}); {INSTALL_HINT}",
                                code="EXECUTOR_NOT_FOUND") from exc
        if run.stopped:
            err = stopped_error(run.stopped, "Claude Code", intent.agent, session_timeout_s=self.session_timeout_s,
                                idle_timeout_s=self.idle_timeout_s)
            billed = tr.streamed_usage(run.elapsed)
            if billed is not None:  # a stopped session is billed for what it streamed
                err.detail.setdefault("usage", billed)
            raise err
        rc, stderr, elapsed = run.returncode, run.stderr, run.elapsed
        return self._finish(intent, tr, rc, stderr, elapsed)

    def _finish(self, intent: Intent, tr: _Transcript, rc: int, stderr: str, elapsed: float) -> ExecResult:
        env = tr.envelope
        streams = (f"stdout: {tr.stdout_text()}" if tr.head else "stdout: (empty)") + \
            (f" | stderr: {stderr}" if stderr.strip() else "")
        detail = {"exit_code": rc, "stderr_tail": stderr[-2000:]}

        if env is None:
            if tr.streamed_usage(elapsed) is not None:
                detail["usage"] = tr.streamed_usage(elapsed)
            raw = "\n".join(tr.raw_lines)
            if is_rate_limited(stderr) or is_rate_limited(raw, raw=True):
                raise ExecutorError(f"{intent.agent}: Claude Code is rate limited: {excerpt(streams, 300, 300)}",
                                    code=RATE_LIMITED, **detail)
            if rc != 0:
                code = permanent_failure(stderr) or permanent_failure(raw) or FAILED
                raise ExecutorError(f"{intent.agent}: Claude Code exited with code {rc}: {excerpt(streams)}",
                                    code=code, **detail)
            raise ExecutorError(f"{intent.agent}: Claude Code printed no result event: {excerpt(streams)}",
                                code="EXECUTOR_OUTPUT_INVALID", **detail)

        detail["usage"] = _usage(env, elapsed)  # a failed session is billed too: its usage travels with the error
        result = env.get("result")
        status = env.get("api_error_status")
        status = status if isinstance(status, int) else None
        failed = bool(env.get("is_error")) or rc != 0
        if status == 429 or (failed and (is_rate_limited(result if isinstance(result, str) else None)
                                         or is_rate_limited(stderr))):
            raise ExecutorError(f"{intent.agent}: Claude Code is rate limited: {excerpt(str(result or stderr), 300, 300)}",
                                code=RATE_LIMITED, **detail)
        if failed:
            text = " ".join(str(x) for x in (env.get("subtype"), result, stderr) if x)
            code = permanent_failure(text) or FAILED
            why = f"exit code {rc}" if rc != 0 else f"is_error ({env.get('subtype') or 'error'})"
            if status:
                why += f", API status {status}"
            raise ExecutorError(f"{intent.agent}: Claude Code failed ({why}): "
                                f"{excerpt(str(result) if isinstance(result, str) else streams)}",
                                code=code, **detail)
        if not isinstance(result, str):
            raise ExecutorError(f"{intent.agent}: Claude Code result event has no string `result`: "
                                f"{excerpt(streams)}", code="EXECUTOR_OUTPUT_INVALID", **detail)

        usage = detail["usage"]
        return ExecResult(output=result, files_modified=tuple(tr.modified), files_created=tuple(tr.created),
                          usage=usage, model=tr.model())


def _usage(env: dict, elapsed: float) -> Usage:
    u = env.get("usage") if isinstance(env.get("usage"), dict) else {}
    cost = env.get("total_cost_usd")
    return Usage(tokens_in=_int(u.get("input_tokens")), tokens_out=_int(u.get("output_tokens")),
                 tokens_cached=_int(u.get("cache_read_input_tokens")),
                 cache_write=_int(u.get("cache_creation_input_tokens")),
                 cost_usd=float(cost) if isinstance(cost, int | float) and not isinstance(cost, bool) else None,
                 num_turns=_int(env["num_turns"]) if env.get("num_turns") is not None else None,
                 duration_ms=_int(env["duration_ms"]) if env.get("duration_ms") is not None else int(elapsed * 1000))
