"""Shared plumbing for executors that drive an agent CLI as a child process.

Engine spec §7.5: a missing binary is ``EXECUTOR_NOT_FOUND``; the session timeout gives
``EXECUTOR_TIMEOUT``; the idle timeout (off by default) ``EXECUTOR_IDLE_TIMEOUT``; cancel
``EXECUTOR_ABORTED``; stopping is SIGTERM to the whole process group, then SIGKILL after a grace
period. A non-zero exit is classified rate limit first, then permanent (invalid model, auth), else
``EXECUTOR_FAILED`` with the stream head/tail in the message.

Pure classification lives here (``is_rate_limited``, ``permanent_failure``, ``classify_failure``)
together with :func:`run_streaming`, the poll loop every CLI executor shares (Claude Code, aider,
opencode).
"""

from __future__ import annotations

import logging
import os
import queue
import re
import shutil
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from loom_core.errors import ExecutorError
from loom_core.procs import group_alive, kill_group, reap_group
from loom_core.workspace import children

RATE_LIMITED = "EXECUTOR_RATE_LIMITED"
INVALID_MODEL = "EXECUTOR_INVALID_MODEL"
AUTH_FAILED = "EXECUTOR_AUTH_FAILED"
FAILED = "EXECUTOR_FAILED"
NOT_FOUND = "EXECUTOR_NOT_FOUND"
TIMEOUT = "EXECUTOR_TIMEOUT"
IDLE_TIMEOUT = "EXECUTOR_IDLE_TIMEOUT"
ABORTED = "EXECUTOR_ABORTED"
OUTPUT_INVALID = "EXECUTOR_OUTPUT_INVALID"

# ---------------------------------------------------------------------------- classification

_RATE_WORDS = (r"rate[\s_-]?limit|usage[\s_-]?limit|too many requests"
               r"|hit your (?:session|weekly|opus|usage) limit"
               r"|(?<!insufficient )(?<!insufficient_)quota")
_RATE = re.compile(_RATE_WORDS + r"|\b429\b", re.I)            # envelope result / stderr
_RATE_RAW = re.compile(_RATE_WORDS + r"|overloaded", re.I)     # non-JSON stdout: never a bare 429

_INVALID_MODEL = re.compile(
    r"(?:invalid|unknown|unsupported)[\s_-]+model"
    r"|model[\s_-]+(?:not[\s_-]+found|does not exist|is not supported|not supported|not available)"
    r"|issue with the selected model"
    r"|model\b[^\n]{0,80}\b(?:not[\s_-]+found|does not exist|may not exist|is not supported|is invalid)"
    r"|not_found_error[^\n]{0,40}\bmodel\b",
    re.I)
_AUTH = re.compile(
    r"invalid[\s_-]*(?:x-)?api[\s_-]*key|authentication[\s_]*(?:error|failed)|authentication_error"
    r"|unauthori[sz]ed|not authenticated|not logged in|please run /login"
    r"|credit balance (?:is )?too low|insufficient[\s_]+quota",
    re.I)


def is_rate_limited(text: str | None, status: int | None = None, *, raw: bool = False) -> bool:
    """Rate-limit check. ``status`` is the envelope's ``api_error_status``. ``raw=True`` is for
    stdout that was not JSON: there "overloaded" counts too, a bare 429 does not. Inside a parsed
    envelope (``raw=False``), 5xx / overloaded is not a rate limit."""
    if status == 429:
        return True
    if not text:
        return False
    return bool((_RATE_RAW if raw else _RATE).search(text))


def permanent_failure(text: str | None) -> str | None:
    """``EXECUTOR_INVALID_MODEL`` / ``EXECUTOR_AUTH_FAILED`` when ``text`` says so, else None."""
    if not text:
        return None
    if _INVALID_MODEL.search(text):
        return INVALID_MODEL
    if _AUTH.search(text):
        return AUTH_FAILED
    return None


def classify_failure(text: str | None, status: int | None = None, *, raw: bool = False) -> str:
    """The error code for a failed run: rate limit first, then permanent, else ``EXECUTOR_FAILED``."""
    if is_rate_limited(text, status, raw=raw):
        return RATE_LIMITED
    return permanent_failure(text) or FAILED


def excerpt(text: str, head: int = 1500, tail: int = 1500) -> str:
    """One line: the first ``head`` and last ``tail`` characters, whitespace collapsed."""
    flat = " ".join(text.split())
    if len(flat) <= head + tail + 5:
        return flat
    return f"{flat[:head]} … {flat[-tail:]}"


def short(text: str, n: int = 120) -> str:
    """One line of at most ``n`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= n else flat[: n - 1] + "…"


# ---------------------------------------------------------------------------- binaries

def resolve_binary(binary: str, path: str | None = None) -> str | None:
    """An explicit path must be an executable file; a bare name is looked up on ``path``
    (default: this process's PATH)."""
    if os.sep in binary or (os.altsep and os.altsep in binary):
        return binary if os.path.isfile(binary) and os.access(binary, os.X_OK) else None
    return shutil.which(binary, path=path)


# ---------------------------------------------------------------------------- the run loop

class StreamTail:
    """Head (first ~``head_chars``) and tail (last ``tail_lines`` lines) of a stream, for messages."""

    def __init__(self, head_chars: int = 4000, tail_lines: int = 100) -> None:
        self.head: list[str] = []
        self.head_chars = 0
        self.limit = head_chars
        self.tail: deque[str] = deque(maxlen=tail_lines)

    def add(self, line: str) -> None:
        if self.head_chars < self.limit:
            self.head.append(line)
            self.head_chars += len(line)
        else:
            self.tail.append(line[-2000:])

    def __bool__(self) -> bool:
        return bool(self.head)

    def text(self) -> str:
        return "\n".join(self.head + list(self.tail))


_log = logging.getLogger("loom.spawn")  # the debug log (--debug / LOOM_DEBUG=1); silent otherwise


@dataclass
class RunOutcome:
    returncode: int
    stopped: str | None   # EXECUTOR_ABORTED | EXECUTOR_TIMEOUT | EXECUTOR_IDLE_TIMEOUT, or None
    stderr: str            # head + tail
    elapsed: float         # seconds


def run_streaming(argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], stdin_data: bytes | None,
                  on_line: Callable[[str], list[str]], log: Callable[[str], None], cancel: threading.Event,
                  session_timeout_s: float, idle_timeout_s: float | None = None, kill_grace_s: float = 5.0,
                  poll_s: float = 0.05, name: str = "cli") -> RunOutcome:
    """Run ``argv`` in its own process group and stream it.

    ``stdin_data`` is written then stdin closed (``None``: stdin is ``/dev/null``). Each stdout
    line goes to ``on_line`` in a reader thread; the log lines it returns are passed to ``log`` on
    the calling thread. Any output (stdout or stderr) counts as activity for the idle timeout.
    Cancel and timeouts stop the whole group (SIGTERM, SIGKILL after ``kill_grace_s``); after a
    normal exit, leftovers in the group are stopped too. The child dies with loom (see
    :mod:`.children`: PDEATHSIG, and a pid file the next driver reaps). Raises ``FileNotFoundError`` /
    ``PermissionError`` when the binary cannot be started.
    """
    proc = subprocess.Popen(list(argv), cwd=cwd, env=dict(env),
                            stdin=subprocess.DEVNULL if stdin_data is None else subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            preexec_fn=children.preexec())
    _log.debug("spawned %s: %s (pid %d) in %s", name, argv[0], proc.pid, cwd)
    with children.tracked(proc.pid, cwd, name):
        out = _stream(proc, stdin_data=stdin_data, on_line=on_line, log=log, cancel=cancel,
                      session_timeout_s=session_timeout_s, idle_timeout_s=idle_timeout_s,
                      kill_grace_s=kill_grace_s, poll_s=poll_s, name=name)
    _log.debug("%s (pid %d) exited %s after %.1f s%s", name, proc.pid, out.returncode, out.elapsed,
               f" ({out.stopped})" if out.stopped else "")
    return out


def _stream(proc: subprocess.Popen, *, stdin_data: bytes | None, on_line: Callable[[str], list[str]],
            log: Callable[[str], None], cancel: threading.Event, session_timeout_s: float,
            idle_timeout_s: float | None, kill_grace_s: float, poll_s: float, name: str) -> RunOutcome:
    lines: queue.SimpleQueue[str] = queue.SimpleQueue()
    last_activity = [time.monotonic()]
    stderr = StreamTail()

    def feed() -> None:
        try:
            assert proc.stdin is not None
            proc.stdin.write(stdin_data or b"")
            proc.stdin.close()
        except (BrokenPipeError, OSError, ValueError):
            pass

    def read_stdout() -> None:
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            last_activity[0] = time.monotonic()
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            try:
                out = on_line(line)
            except Exception as exc:  # a parser bug must not hang the run
                out = [short(f"could not read a line of output: {type(exc).__name__}: {exc}")]
            for entry in out:
                lines.put(entry)

    def read_stderr() -> None:
        assert proc.stderr is not None
        for raw in iter(proc.stderr.readline, b""):
            last_activity[0] = time.monotonic()
            stderr.add(raw.decode("utf-8", errors="replace").rstrip("\r\n"))

    jobs = [("stdout", read_stdout), ("stderr", read_stderr)]
    if stdin_data is not None:
        jobs.insert(0, ("stdin", feed))
    threads = [threading.Thread(target=f, name=f"{name}-{n}", daemon=True) for n, f in jobs]
    for t in threads:
        t.start()

    def drain() -> None:
        while True:
            try:
                entry = lines.get_nowait()
            except queue.Empty:
                return
            log(entry)

    started = time.monotonic()
    stopped: str | None = None
    while proc.poll() is None:
        drain()
        now = time.monotonic()
        if cancel.is_set():
            stopped = ABORTED
        elif now - started > session_timeout_s:
            stopped = TIMEOUT
        elif idle_timeout_s is not None and now - last_activity[0] > idle_timeout_s:
            stopped = IDLE_TIMEOUT
        if stopped:
            kill_group(proc, kill_grace_s)
            break
        cancel.wait(poll_s)
    rc = proc.wait()
    if not stopped:
        reap_group(proc, kill_grace_s)
    for t in threads:
        if t.name.endswith("-stdin"):
            continue
        t.join(timeout=kill_grace_s + 1)
    drain()
    return RunOutcome(returncode=rc, stopped=stopped, stderr=stderr.text(), elapsed=time.monotonic() - started)


def stopped_error(stopped: str, who: str, agent: str, *, session_timeout_s: float,
                  idle_timeout_s: float | None) -> ExecutorError:
    """The error for a run that loom stopped (cancel, session timeout, idle timeout)."""
    if stopped == ABORTED:
        return ExecutorError(f"{agent}: {who} run cancelled", code=stopped)
    if stopped == TIMEOUT:
        return ExecutorError(f"{agent}: {who} ran past the session timeout ({session_timeout_s:g} s); stopped",
                             code=stopped)
    return ExecutorError(f"{agent}: {who} printed nothing for {idle_timeout_s or 0:g} s; stopped", code=stopped)


__all__ = ["RATE_LIMITED", "INVALID_MODEL", "AUTH_FAILED", "FAILED", "NOT_FOUND", "TIMEOUT", "IDLE_TIMEOUT",
           "ABORTED", "OUTPUT_INVALID", "is_rate_limited", "permanent_failure", "classify_failure", "excerpt",
           "short", "resolve_binary", "group_alive", "kill_group", "reap_group", "StreamTail", "RunOutcome",
           "run_streaming", "stopped_error"]


def require_workdir(intent, cancel):
    """The sandbox directory a subprocess agent must run in; never whatever directory loom runs in."""
    from pathlib import Path

    from loom_core.errors import ExecutorError

    if cancel.is_set():
        raise ExecutorError(f"{intent.agent}: cancelled before start", code="EXECUTOR_ABORTED")
    if not intent.extras.get("workdir"):
        raise ExecutorError(f"{intent.agent}: no workdir in the intent's extras", code="EXECUTOR_FAILED")
    workdir = Path(str(intent.extras["workdir"]))
    if not workdir.is_dir():
        raise ExecutorError(f"{intent.agent}: workdir {workdir} is not a directory", code="EXECUTOR_FAILED")
    return workdir.resolve()
