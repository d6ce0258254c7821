"""Running one check command: its own process group, a time cap, bounded capture.

Each command runs with cwd = the root, stdin closed, in its own process group, with a per-command
time cap (SIGTERM to the group, SIGKILL 5 s later, a kill note appended). Output is captured
combined; the first 32 KB and the last 16 KB are kept, ``path:line[:col]`` references to files
under the root are parsed into bounded :class:`Location` lists, and every line feeds the failure
keys (:class:`KeyCollector`) the baseline comparison needs.
"""

from __future__ import annotations

import codecs
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from loom_core.errors import ExecutorError
from loom_core.procs import leader_exited, signal_group, terminate_group
from loom_core.workspace import children
from loom_core.workspace.checks.locations import KeyCollector, _LocationParser
from loom_core.workspace.checks.model import (
    CHECK_NAMES,
    HEAD_BYTES,
    SKIP_REASON,
    TAIL_BYTES,
    CheckResult,
    CheckSpec,
)

KILL_GRACE_S = 5.0
POLL_S = 0.05
Log = Callable[[str], None]


class _Capture:
    """Bounded capture of a byte stream: head, rolling tail, total size, streamed locations and keys."""

    def __init__(self, root: Path, keys: KeyCollector | None = None) -> None:
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0
        self.parser = _LocationParser(root)
        self.keys = keys
        self._partial = bytearray()
        self.lock = threading.Lock()

    def _line(self, raw: bytes) -> None:
        text = raw.decode("utf-8", "replace")
        if not self.parser.full:
            self.parser.feed_line(text)
        if self.keys is not None:
            self.keys.feed_line(text)

    def feed(self, data: bytes) -> None:
        with self.lock:
            self.total += len(data)
            if len(self.head) < HEAD_BYTES:
                self.head += data[: HEAD_BYTES - len(self.head)]
            self.tail += data
            if len(self.tail) > TAIL_BYTES:
                del self.tail[: len(self.tail) - TAIL_BYTES]
            if self.parser.full and self.keys is None:
                return
            self._partial += data
            *lines, rest = self._partial.split(b"\n")
            for raw in lines:
                self._line(raw)
            self._partial = bytearray(rest[:4096]) if len(rest) > 4096 else bytearray(rest)

    def finish(self) -> None:
        with self.lock:
            if self._partial:
                self._line(bytes(self._partial))
            self._partial = bytearray()

    def texts(self) -> tuple[str, str]:
        with self.lock:
            head = codecs.getincrementaldecoder("utf-8")("replace").decode(bytes(self.head),
                                                                           final=len(self.head) >= self.total)
            tail = bytes(self.tail)
            if self.total > len(tail):  # cut mid-stream: drop a partial leading character
                i = 0
                while i < 3 and i < len(tail) and 0x80 <= tail[i] < 0xC0:
                    i += 1
                tail = tail[i:]
            return head, tail.decode("utf-8", "replace")


def _pump(stream: IO[bytes], cap: _Capture) -> None:
    fd = stream.fileno()
    try:
        while True:
            data = os.read(fd, 65536)
            if not data:
                break
            cap.feed(data)
    except OSError:
        pass


def base_env(extra: dict[str, str] | None) -> dict[str, str]:
    """``os.environ`` with colour off and bytecode writing off, ``extra`` layered over it."""
    env = dict(os.environ)
    env.setdefault("NO_COLOR", "1")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra or {})
    return env


def _fmt_s(seconds: float) -> str:
    return f"{seconds:g}"


def safe_log(log: Log | None, line: str) -> None:
    if log is None:
        return
    try:
        log(line)
    except Exception:  # a log sink never fails a check
        pass


def _key_style(spec: CheckSpec) -> str:
    if spec.tool == "pytest" or (spec.name == "test" and "pytest" in spec.command):
        return "pytest"
    return "lint"


def run_one(root: Path, spec: CheckSpec, timeout_s: float, cancel: threading.Event | None,
            env: dict[str, str], log: Log | None, *, label: str | None = None) -> CheckResult:
    """Run ``spec`` in ``root`` (``env`` is the whole environment) and classify the exit: ``ok``,
    ``fail`` (exit ≠ 0, timeout, cancel, cannot start) or ``skipped`` (pytest collected nothing)."""
    command = spec.command
    label = label or spec.name
    argv = ["/bin/sh", "-c", spec.shell] if spec.shell is not None else list(spec.argv or [])
    safe_log(log, f"running {label}: {command[:200]}")
    started = time.monotonic()

    def elapsed_ms() -> int:
        return int((time.monotonic() - started) * 1000)

    def result(status: str, rc: int | None, head: str, tail: str, reason: str, **kw) -> CheckResult:
        return CheckResult(spec.name, status, command, rc, head, tail, reason=reason, scope=spec.scope,
                           duration_ms=elapsed_ms(), **kw)

    if not argv:
        return result("fail", None, "", "", "empty command", whole_run=True)
    try:
        proc = subprocess.Popen(argv, cwd=root, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True, env=env,
                                preexec_fn=children.preexec())  # dies with loom: see executors.children
    except (FileNotFoundError, PermissionError) as exc:
        code = 127 if isinstance(exc, FileNotFoundError) else 126
        what = "command not found" if code == 127 else "command not executable"
        text = f"{argv[0]}: {what}\n"
        safe_log(log, f"{label}: FAILED ({what}: {argv[0]})")
        return result("fail", code, text, text, f"{what}: {argv[0]}", whole_run=True, lines=[text.strip()])
    except OSError as exc:
        text = f"{argv[0]}: {exc}\n"
        safe_log(log, f"{label}: FAILED (could not start: {exc})")
        return result("fail", None, text, text, f"could not start: {exc}", whole_run=True, lines=[text.strip()])

    with children.tracked(proc.pid, root, f"check {label}: {command[:150]}"):
        keys = KeyCollector(root, _key_style(spec))
        cap = _Capture(root, keys)
        assert proc.stdout is not None
        reader = threading.Thread(target=_pump, args=(proc.stdout, cap), name=f"loom-check-{spec.name}", daemon=True)
        reader.start()
        deadline = started + timeout_s
        stopped: str | None = None
        while not leader_exited(proc):
            if cancel is not None and cancel.is_set():
                stopped = "cancelled"
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                stopped = "timeout"
                break
            if cancel is not None:
                cancel.wait(min(POLL_S, remaining))
            else:
                time.sleep(min(POLL_S, remaining))
        note = ""
        if stopped:
            hard = terminate_group(proc, KILL_GRACE_S, POLL_S)
            why = f"timed out after {_fmt_s(timeout_s)} s" if stopped == "timeout" else "cancelled"
            note = f"\n[loom] {label} {why}: sent SIGTERM to its process group"
            note += f"; still running after {_fmt_s(KILL_GRACE_S)} s, sent SIGKILL\n" if hard else "\n"
        else:
            signal_group(proc.pid, signal.SIGKILL)  # background leftovers of a finished check
        rc = proc.wait()
        reader.join(timeout=5)
        if reader.is_alive():  # a detached descendant still holds the pipe
            note += "\n[loom] output still open after the command ended; stopped reading\n"
        else:
            proc.stdout.close()
        cap.keys = None  # loom's own notes are not failures
        if note:
            cap.feed(note.encode())
        cap.finish()
        head, tail = cap.texts()
        secs = elapsed_ms() / 1000
        seen = {"locations": list(cap.parser.locations), "keys": list(keys.keys),
                "lines": None if keys.overflow else list(keys.lines)}

        if stopped:
            reason = f"timed out after {_fmt_s(timeout_s)} s" if stopped == "timeout" else "cancelled"
            safe_log(log, f"{label}: FAILED ({reason})")
            return result("fail", None, head, tail, reason, stopped=stopped, whole_run=True, **seen)
        reason = spec.reason
        if rc < 0:  # killed by a signal: report it the way a shell would
            try:
                signame = signal.Signals(-rc).name
            except ValueError:
                signame = f"signal {-rc}"
            reason = f"killed by {signame}"
            rc = 128 - rc
        if rc == 0:
            safe_log(log, f"{label}: ok ({secs:.1f} s)")
            return result("ok", 0, head, tail, reason, **seen)
        if rc == 5 and spec.tool == "pytest":
            reason = "pytest collected no tests (exit 5)"
            safe_log(log, f"{label}: skipped ({reason})")
            return result("skipped", rc, head, tail, reason)
        if rc == 127 and spec.shell is not None:
            reason = "command not found (exit 127)"
        elif rc == 126 and spec.shell is not None:
            reason = "command not executable (exit 126)"
        # keys describe the failure only when the tool ended the normal "found problems" way
        whole = keys.collection_error or not keys.keys or keys.overflow or (spec.tool == "pytest" and rc != 1)
        safe_log(log, f"{label}: FAILED exit {rc} ({secs:.1f} s)")
        return result("fail", rc, head, tail, reason, whole_run=whole, collection_error=keys.collection_error, **seen)


def _ordered(specs: dict[str, CheckSpec | None]) -> list[str]:
    return [n for n in CHECK_NAMES if n in specs] + [n for n in specs if n not in CHECK_NAMES]


def skipped(name: str, command: str, reason: str, scope: str = "full", *, expected: bool = False) -> CheckResult:
    """A check that did not run; ``expected`` when the project has it but it cannot run here."""
    return CheckResult(name, "skipped", command, None, "", "", reason=reason, scope=scope, expected=expected)


def run_checks(root: Path, specs: dict[str, CheckSpec | None], *, timeout_s: float = 600,
               cancel: threading.Event | None = None, log: Log | None = None,
               env: dict[str, str] | None = None, timeouts: dict[str, float] | None = None) -> list[CheckResult]:
    """Run the checks sequentially (typecheck, lint, test first, then any other names in the given
    order) with cwd=root. ``env`` is layered over ``os.environ``; ``timeouts`` overrides ``timeout_s``
    per check name. A None spec, or one with ``skip`` set, is skipped; once ``cancel`` is set the
    running check is stopped (fail, kill note) and the rest are skipped."""
    root = Path(root)
    if not root.is_dir():
        raise ExecutorError(f"checks: root {root} is not a directory", code="CHECKS_ROOT_MISSING")
    full_env = base_env(env)
    results: list[CheckResult] = []
    for name in _ordered(specs):
        spec = specs[name]
        if spec is None or spec.skip:
            reason = spec.skip if spec is not None and spec.skip else SKIP_REASON.get(name, f"no {name} command found")
            safe_log(log, f"{name}: skipped ({reason})")
            results.append(skipped(name, spec.command if spec is not None else "", reason))
            continue
        if cancel is not None and cancel.is_set():
            safe_log(log, f"{name}: skipped (cancelled)")
            results.append(skipped(name, spec.command, "cancelled before it ran"))
            continue
        limit = (timeouts or {}).get(name, timeout_s)
        results.append(run_one(root, spec, limit, cancel, full_env, log))
    return results
