"""What the harnesses print: aider's log lines and chat history, opencode's NDJSON events, turned into
log lines, the answer, the files edited and usage."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from loom_core.agents.executors import Usage
from loom_core.agents.executors.subprocess_util import StreamTail, short

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


class AiderRun:
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


class OpencodeRun:
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
            msg, status = opencode_error(err)
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


def opencode_error(err: Any) -> tuple[str, int | None]:
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

