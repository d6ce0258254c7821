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

import json
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from loom_core.agents.executors import ExecResult, Usage
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
    short,
    stopped_error,
)
from loom_core.errors import ConfigError, ExecutorError
from loom_core.kernel.types import Intent

HarnessKind = Literal["aider", "opencode"]
HARNESSES: tuple[str, ...] = ("aider", "opencode")

MODEL_PREFIX: dict[str, dict[str, str]] = {
    "aider": {"anthropic": "anthropic/", "openai": "openai/", "google": "gemini/", "gemini": "gemini/",
              "openrouter": "openrouter/", "ollama": "ollama_chat/"},
    "opencode": {"anthropic": "anthropic/", "openai": "openai/", "google": "google/", "gemini": "google/",
                 "openrouter": "openrouter/", "ollama": "ollama/"},
}
CREDENTIAL_ENV: dict[str, str] = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY",
                                  "openrouter": "OPENROUTER_API_KEY", "google": "GEMINI_API_KEY",
                                  "gemini": "GEMINI_API_KEY", "ollama": "OLLAMA_API_BASE"}
INSTALL_HINT = {
    "aider": "install it with `python -m pip install aider-install && aider-install`, or set LOOM_AIDER_BIN",
    "opencode": "install it with `npm i -g opencode-ai`, or set LOOM_OPENCODE_BIN",
}
DISPLAY = {"aider": "aider", "opencode": "opencode"}
ARGV_PROMPT_LIMIT = 100_000  # bytes; one argv entry may not exceed 128 KiB on Linux
SNAPSHOT_LIMIT = 100_000     # files; past that the sandbox's own diff is the only file list
_SNAPSHOT_SKIP = frozenset({".git", ".loom", "node_modules", ".venv", "__pycache__"})


# ---------------------------------------------------------------------------- configuration helpers

def check_kind(kind: str) -> str:
    """``kind`` normalised, or ConfigError naming the harnesses loom can drive."""
    name = (kind or "").strip().lower()
    if name not in HARNESSES:
        raise ConfigError(f"unknown harness '{kind}' (known: {', '.join(HARNESSES)})")
    return name


def harness_binary(kind: str) -> str:
    """The binary to run: ``LOOM_AIDER_BIN`` / ``LOOM_OPENCODE_BIN`` when set, else the harness name."""
    return os.environ.get(f"LOOM_{kind.upper()}_BIN", "").strip() or kind


def harness_model(kind: str, family: str, model: str) -> str:
    """``<prefix><model>`` for the harness (``anthropic/claude-sonnet-4-5``, ``ollama_chat/qwen3``).
    A model that already carries the prefix is left alone; an empty model stays empty."""
    prefix = MODEL_PREFIX[kind].get(family)
    if prefix is None:
        raise ConfigError(f"{kind} cannot run models of provider family '{family}' "
                          f"(known: {', '.join(sorted(MODEL_PREFIX[kind]))})", code="NO_BACKEND_RESOLVED")
    model = model.strip()
    if not model or model.startswith(prefix):
        return model
    return prefix + model


def harness_env(family: str, credential: str | None, base_url: str | None = None) -> dict[str, str]:
    """The environment that hands ``family``'s credential to a harness, by variable name.

    ``ollama`` has no key: its server address goes in ``OLLAMA_API_BASE``. A non-default base URL
    for Anthropic / OpenRouter is exported for the harnesses' client libraries too."""
    env: dict[str, str] = {}
    name = CREDENTIAL_ENV.get(family)
    if family == "ollama":
        if base_url or credential:
            env["OLLAMA_API_BASE"] = str(base_url or credential)
        return env
    if name and credential:
        env[name] = credential
    if base_url:
        if family == "anthropic":
            env["ANTHROPIC_BASE_URL"] = base_url
            env["ANTHROPIC_API_BASE"] = base_url
        elif family == "openrouter" and base_url.rstrip("/") != "https://openrouter.ai/api/v1":
            env["OPENROUTER_API_BASE"] = base_url
        elif family == "openai":
            env["OPENAI_API_BASE"] = base_url
            env["OPENAI_BASE_URL"] = base_url
    return env


# ---------------------------------------------------------------------------- aider output

_NUM = r"([\d][\d.,]*)\s*([kKmM]?)"
_AIDER_TOKENS = re.compile(r"^\s*Tokens:\s*(?P<body>.*)$")
_AIDER_TOKEN_PART = re.compile(_NUM + r"\s+(sent|received|cache write|cache hit)", re.I)
_AIDER_COST_MSG = re.compile(r"\$\s*([\d.]+)\s+message", re.I)
_AIDER_COST_SESSION = re.compile(r"\$\s*([\d.]+)\s+session", re.I)
_AIDER_APPLIED = re.compile(r"^\s*Applied edit to\s+(.+?)\s*$")
_AIDER_MODEL = re.compile(r"^\s*(?:Main model|Model):\s*(\S+)")
_AIDER_ERROR = re.compile(r"litellm\.\w*(?:Error|Exception)"
                          r"|^\s*(?:The API provider\b|\w*(?:Error|Exception):|(?:Error|ERROR)\b)")
_AIDER_LOGGED = re.compile(r"^\s*(?:Aider v|Main model:|Model:|Applied edit to|Added .* to the chat|Tokens:|"
                           r"Retrying in|Creating empty file|Running )")
_AIDER_NOISE = re.compile(r"^\s*(?:Aider v|Main model:|Model:|Weak model:|Editor model:|Git repo:|Repo-map:|"
                          r"Tokens:|Cost:|Applied edit to|Added .* to the chat|Use /help|https://aider\.chat|"
                          r"Warning for |Creating empty file|Commit |Retrying in)")


def _count(number: str, suffix: str) -> int:
    try:
        value = float(number.replace(",", ""))
    except ValueError:
        return 0
    return int(round(value * {"k": 1_000, "m": 1_000_000}.get(suffix.lower(), 1)))


class _AiderRun:
    """What aider's plain stdout tells (touched from the reader thread only, read after it ended)."""

    def __init__(self) -> None:
        self.stdout = StreamTail(head_chars=8000, tail_lines=400)
        self.lines: list[str] = []   # capped copy of stdout, for the answer when there is no history file
        self.chars = 0
        self.tokens_in = self.tokens_out = self.cached = self.cache_write = 0
        self.calls = 0
        self.message_cost: float | None = None
        self.session_cost: float | None = None
        self.applied: list[str] = []
        self.model: str | None = None
        self.errors: list[str] = []

    def handle(self, line: str) -> list[str]:
        self.stdout.add(line)
        if self.chars < 200_000:
            self.lines.append(line)
            self.chars += len(line)
        m = _AIDER_TOKENS.match(line)
        if m:
            self.calls += 1
            for num, suffix, kind in _AIDER_TOKEN_PART.findall(m.group("body")):
                n = _count(num, suffix)
                kind = kind.lower()
                if kind == "sent":
                    self.tokens_in += n
                elif kind == "received":
                    self.tokens_out += n
                elif kind == "cache hit":
                    self.cached += n
                else:
                    self.cache_write += n
            cost = _AIDER_COST_MSG.search(line)
            if cost:
                self.message_cost = (self.message_cost or 0.0) + float(cost.group(1))
            session = _AIDER_COST_SESSION.search(line)
            if session:
                self.session_cost = float(session.group(1))
            return [short(line)]
        m = _AIDER_APPLIED.match(line)
        if m:
            self.applied.append(m.group(1))
            return [short(line)]
        m = _AIDER_MODEL.match(line)
        if m and self.model is None:
            self.model = m.group(1)
        if _AIDER_ERROR.search(line) and not line.lstrip().startswith(("Tokens:", "Cost:")):
            if len(self.errors) < 50:
                self.errors.append(line.strip())
            return [short(line)]
        if _AIDER_LOGGED.match(line):
            return [short(line)]
        return []

    def usage(self, elapsed: float) -> Usage:
        cost = self.session_cost if self.session_cost is not None else self.message_cost
        return Usage(tokens_in=self.tokens_in, tokens_out=self.tokens_out, tokens_cached=self.cached,
                     cache_write=self.cache_write, cost_usd=cost, num_turns=self.calls or None,
                     duration_ms=int(elapsed * 1000))

    def answer_from_stdout(self) -> str:
        return "\n".join(x for x in self.lines if not _AIDER_NOISE.match(x)).strip()


def aider_answer(chat_history: str) -> str:
    """The assistant's words from an aider chat history file: everything after the first user
    message (``#### …`` lines), without aider's own ``>`` notes."""
    out: list[str] = []
    seen_user = False
    for line in chat_history.splitlines():
        if line.startswith("####"):
            seen_user = True
            continue
        if not seen_user or line.startswith(">") or line.startswith("# aider chat started"):
            continue
        out.append(line)
    return "\n".join(out).strip()


# ---------------------------------------------------------------------------- opencode output

_OPENCODE_FILE_TOOLS = ("edit", "write", "patch", "multiedit", "apply_patch")


class _OpencodeRun:
    """What opencode's ``--format json`` stream tells."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.stdout = StreamTail()
        self.raw: list[str] = []      # non-JSON stdout lines (capped)
        self.raw_chars = 0
        self.events = 0
        self.texts: list[str] = []
        self.tools = 0
        self.steps = 0
        self.tokens_in = self.tokens_out = self.cached = self.cache_write = 0
        self.cost: float | None = None
        self.errors: list[tuple[str, int | None]] = []
        self.touched: list[str] = []

    def handle(self, line: str) -> list[str]:
        self.stdout.add(line)
        try:
            ev = json.loads(line)
        except ValueError:
            ev = None
        if not isinstance(ev, dict) or not isinstance(ev.get("type"), str):
            if self.raw_chars < 64_000:
                self.raw.append(line)
                self.raw_chars += len(line)
            return [short(line)] if line.strip() else []
        self.events += 1
        kind = ev["type"]
        part = ev.get("part") if isinstance(ev.get("part"), dict) else {}
        if kind == "text":
            text = part.get("text")
            if isinstance(text, str) and text.strip():
                self.texts.append(text)
                return [short(text.strip().splitlines()[0])]
            return []
        if kind == "tool_use":
            return self._tool(part)
        if kind == "step_finish":
            self._step(part)
            return []
        if kind == "error":
            err = ev.get("error")
            msg, status = _opencode_error(err)
            self.errors.append((msg, status))
            return [short(f"error: {msg}", 300)]
        return []

    def _tool(self, part: Mapping[str, Any]) -> list[str]:
        self.tools += 1
        tool = str(part.get("tool") or "tool")
        state = part.get("state") if isinstance(part.get("state"), dict) else {}
        args = state.get("input") if isinstance(state.get("input"), dict) else {}
        detail = ""
        for key in ("filePath", "file_path", "path", "command", "pattern", "url", "query", "description"):
            if args.get(key):
                detail = self._rel(str(args[key])) if key in ("filePath", "file_path", "path") else str(args[key])
                break
        if tool in _OPENCODE_FILE_TOOLS and state.get("status") != "error":
            path = args.get("filePath") or args.get("file_path") or args.get("path")
            if path:
                rel = self._rel(str(path), inside_only=True)
                if rel and rel not in self.touched:
                    self.touched.append(rel)
        if state.get("status") == "error":
            return [short(f"tool error: {tool} {detail}: {state.get('error') or ''}".strip())]
        return [short(f"{tool} {detail}".strip())]

    def _rel(self, path: str, *, inside_only: bool = False) -> str:
        p = Path(path)
        if not p.is_absolute():
            return p.as_posix()
        for root in (self.root, self.root.resolve()):
            try:
                return p.relative_to(root).as_posix()
            except ValueError:
                continue
        return "" if inside_only else path

    def _step(self, part: Mapping[str, Any]) -> None:
        self.steps += 1
        tokens = part.get("tokens") if isinstance(part.get("tokens"), dict) else {}
        cache = tokens.get("cache") if isinstance(tokens.get("cache"), dict) else {}
        self.tokens_in += _int(tokens.get("input"))
        self.tokens_out += _int(tokens.get("output")) + _int(tokens.get("reasoning"))
        self.cached += _int(cache.get("read"))
        self.cache_write += _int(cache.get("write"))
        cost = part.get("cost")
        if isinstance(cost, int | float) and not isinstance(cost, bool):
            self.cost = (self.cost or 0.0) + float(cost)

    def usage(self, elapsed: float) -> Usage:
        return Usage(tokens_in=self.tokens_in, tokens_out=self.tokens_out, tokens_cached=self.cached,
                     cache_write=self.cache_write, cost_usd=self.cost, num_turns=self.steps or None,
                     duration_ms=int(elapsed * 1000))


def _opencode_error(err: Any) -> tuple[str, int | None]:
    """``("ProviderAuthError: …", status)`` from an opencode error object."""
    if not isinstance(err, dict):
        return (str(err) if err is not None else "unknown error"), None
    name = str(err.get("name") or "Error")
    data = err.get("data") if isinstance(err.get("data"), dict) else {}
    message = data.get("message") or err.get("message") or ""
    status = data.get("statusCode")
    status = status if isinstance(status, int) and not isinstance(status, bool) else None
    body = data.get("responseBody")
    text = f"{name}: {message}" if message else name
    if isinstance(body, str) and body and body not in text:
        text += f" {body[:500]}"
    return text, status


def _int(v: Any) -> int:
    try:
        return int(v or 0)
    except (TypeError, ValueError):
        return 0


# ---------------------------------------------------------------------------- workdir snapshot

def _snapshot(root: Path) -> dict[str, tuple[int, int]] | None:
    """``{relative path: (size, mtime_ns)}`` of the sandbox's files (None when it is too big)."""
    out: dict[str, tuple[int, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _SNAPSHOT_SKIP and not d.startswith(".aider")]
        base = Path(dirpath)
        for name in filenames:
            if name.startswith(".aider"):
                continue
            p = base / name
            try:
                st = p.lstat()
            except OSError:
                continue
            out[p.relative_to(root).as_posix()] = (st.st_size, st.st_mtime_ns)
            if len(out) > SNAPSHOT_LIMIT:
                return None
    return out


def _changes(before: dict | None, after: dict | None) -> tuple[list[str], list[str]]:
    if before is None or after is None:
        return [], []
    modified = sorted(k for k, v in after.items() if k in before and before[k] != v)
    created = sorted(k for k in after if k not in before)
    return modified, created


def _git_top(root: Path) -> Path:
    """The nearest directory at or above ``root`` holding ``.git`` (aider writes its cache there)."""
    for p in (root, *root.parents):
        if (p / ".git").exists():
            return p
    return root


def _aider_artefacts(top: Path) -> set[str]:
    try:
        return {p.name for p in top.iterdir() if p.name.startswith(".aider")}
    except OSError:
        return set()


# ---------------------------------------------------------------------------- executor

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
        scratch = _scratch_dir(root)
        top = _git_top(root)
        artefacts_before = _aider_artefacts(top) if self.kind == "aider" else set()
        before = _snapshot(root)
        try:
            if self.kind == "aider":
                (scratch / "message.md").write_text(message, encoding="utf-8")
                argv = self.aider_argv(exe, model, scratch)
                tr: _AiderRun | _OpencodeRun = _AiderRun()
            else:
                argv = self.opencode_argv(exe, model, root, message, scratch)
                tr = _OpencodeRun(root)
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
                _remove_new_artefacts(top, artefacts_before)
            shutil.rmtree(scratch, ignore_errors=True)
        try:
            if run.stopped:
                raise stopped_error(run.stopped, who, intent.agent, session_timeout_s=self.session_timeout_s,
                                    idle_timeout_s=self.idle_timeout_s)
            modified, created = _changes(before, _snapshot(root))
            bare_model = model.split("/", 1)[1] if "/" in model and model.startswith(
                MODEL_PREFIX[self.kind][self.family]) else model
            if isinstance(tr, _AiderRun):
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

    def _finish_aider(self, intent: Intent, tr: _AiderRun, rc: int, stderr: str, elapsed: float,
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

    def _finish_opencode(self, intent: Intent, tr: _OpencodeRun, rc: int, stderr: str,
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


def _scratch_dir(root: Path) -> Path:
    """A fresh temporary directory that is not inside the sandbox."""
    path = Path(tempfile.mkdtemp(prefix="loom-harness-")).resolve()
    if path == root or root in path.parents:
        shutil.rmtree(path, ignore_errors=True)
        path = Path(tempfile.mkdtemp(prefix="loom-harness-", dir=str(root.parent))).resolve()
    return path


def _remove_new_artefacts(top: Path, before: set[str]) -> None:
    """Remove aider's ``.aider*`` files this run left at the git root (they would land in the diff)."""
    for name in _aider_artefacts(top) - before:
        p = top / name
        try:
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
        except OSError:
            pass


__all__ = ["HarnessExecutor", "HARNESSES", "MODEL_PREFIX", "CREDENTIAL_ENV", "check_kind", "harness_binary",
           "harness_env", "harness_model", "aider_answer"]
