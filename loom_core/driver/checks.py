"""Checks runner: detect and run a repo's typecheck / lint / test commands, no model involved.

Resolution per check (always run in the order typecheck, lint, test): a configured command string
runs verbatim via ``/bin/sh -c``; else a ``package.json`` script of that exact name runs as
``<pm> run <name>`` (pm by lockfile); else a conservatively detected Python / Go / Rust tool (only one
that will actually run here); else the check is **skipped**, which is never a failure.

Each command runs with cwd = the root, stdin closed, in its own process group, with a per-command
time cap (SIGTERM to the group, SIGKILL 5 s later, a kill note appended). Output is captured
combined; the first 32 KB and the last 16 KB are kept, and ``path:line[:col]`` references to files
under the root are parsed into bounded :class:`Location` lists.
"""

from __future__ import annotations

import codecs
import functools
import importlib.util
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ..errors import ExecutorError
from ..kernel.types import Intent
from .executors import ExecResult, Usage

CHECK_NAMES: tuple[str, ...] = ("typecheck", "lint", "test")

HEAD_BYTES = 32 * 1024
TAIL_BYTES = 16 * 1024
FAILURE_TAIL_CHARS = 8 * 1024
MAX_LOCATIONS = 20
MESSAGE_CHARS = 200
KILL_GRACE_S = 5.0
POLL_S = 0.05
FAILURES_FILE = Path(".loom") / "work" / "check-failures.txt"

_SKIP_REASON = {"typecheck": "no typecheck command found", "lint": "no lint command found",
                "test": "no test command found"}


# --------------------------------------------------------------------------- data
@dataclass
class CheckSpec:
    name: str  # "test" | "lint" | "typecheck"
    argv: list[str] | None  # exact argv, or None when `shell` is used
    shell: str | None = None  # a configured command string, run via /bin/sh -c
    reason: str = ""  # why this command was chosen (e.g. "pytest: tests/ found")

    @property
    def command(self) -> str:
        if self.shell is not None:
            return self.shell
        return shlex.join(self.argv or [])


@dataclass
class Location:
    file: str
    line: int | None
    message: str


@dataclass
class CheckResult:
    name: str
    status: str  # "ok" | "fail" | "skipped"
    command: str
    exit_code: int | None
    output_head: str
    output_tail: str
    reason: str = ""
    locations: list[Location] = field(default_factory=list)
    duration_ms: int = 0


# --------------------------------------------------------------------------- detection
_WALK_SKIP = {".git", ".hg", ".svn", ".loom", "node_modules", ".venv", "venv", "env", ".env", ".tox", ".nox",
              "__pycache__", "site-packages", "target", "dist", "build", ".mypy_cache", ".ruff_cache",
              ".pytest_cache", "vendor"}


@functools.lru_cache(maxsize=64)
def _tool_runs(argv: tuple[str, ...]) -> bool:
    """True when ``argv`` (a ``--version`` style probe) starts and exits 0. Guards against PATH
    shims and proxies (pyenv, rustup) that exist but cannot run the tool."""
    try:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return r.returncode == 0


def _which_runs(tool: str) -> str | None:
    path = shutil.which(tool)
    if path and _tool_runs((path, "--version")):
        return path
    return None


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _ini_section(text: str, section: str) -> str | None:
    """The body of ``[section]`` in an ini-style text, or None when absent."""
    m = re.search(rf"^\[{re.escape(section)}\]\s*$", text, re.M)
    if not m:
        return None
    nxt = re.search(r"^\[", text[m.end():], re.M)
    return text[m.end(): m.end() + nxt.start()] if nxt else text[m.end():]


class _Repo:
    """What a root contains, read once per detection."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.pyproject_text = _read(root / "pyproject.toml") if (root / "pyproject.toml").is_file() else ""
        self.tool: dict[str, Any] = {}
        if self.pyproject_text:
            try:
                tool = tomllib.loads(self.pyproject_text).get("tool", {})
                self.tool = tool if isinstance(tool, dict) else {}
            except tomllib.TOMLDecodeError:
                # unparsable: fall back to spotting the table headers
                for key in ("pytest", "ruff", "mypy", "pyright"):
                    if re.search(rf"^\s*\[tool\.{key}[.\]]", self.pyproject_text, re.M):
                        self.tool[key] = {}
        self.uv_lock = _read(root / "uv.lock") if (root / "uv.lock").is_file() else ""
        self._py_files_cache: bool | None = None

    def exists(self, *names: str) -> bool:
        return any((self.root / n).exists() for n in names)

    # -- python environment
    def in_uv_lock(self, package: str) -> bool:
        return bool(self.uv_lock) and re.search(rf'^name = "{re.escape(package)}"$', self.uv_lock, re.M) is not None

    def py_tool(self, module: str, script: str | None = None) -> tuple[list[str], str] | None:
        """argv prefix that runs ``module`` inside the project's environment, plus a note on which.

        uv (uv.lock lists the package and ``uv`` is on PATH) > the repo's ``.venv`` > this
        interpreter (module importable) > a console script on PATH that answers ``--version``."""
        script = script or module
        if self.in_uv_lock(module) and shutil.which("uv"):
            return ["uv", "run", "--frozen", script], "uv run"
        venv_py = self.root / ".venv" / "bin" / "python"
        if venv_py.exists() and any((self.root / ".venv" / "lib").glob(f"python*/site-packages/{module}")):
            return [str(venv_py), "-m", module], ".venv"
        if importlib.util.find_spec(module) is not None:
            return [sys.executable, "-m", module], "python"
        found = _which_runs(script)
        if found:
            return [found], "PATH"
        return None

    # -- python evidence
    def pytest_evidence(self) -> str | None:
        if "pytest" in self.tool:
            return "[tool.pytest] in pyproject.toml"
        if (self.root / "pytest.ini").is_file():
            return "pytest.ini found"
        if (self.root / "conftest.py").is_file():
            return "conftest.py found"
        if _ini_section(_read(self.root / "setup.cfg"), "tool:pytest") is not None:
            return "[tool:pytest] in setup.cfg"
        if _ini_section(_read(self.root / "tox.ini"), "pytest") is not None:
            return "[pytest] in tox.ini"
        for d in ("tests", "test"):
            if (self.root / d).is_dir() and any((self.root / d).rglob("*.py")):
                return f"{d}/ found"
        if self.has_python_test_files():
            return "test files found"
        return None

    def has_python_test_files(self, max_entries: int = 20000, max_depth: int = 6) -> bool:
        if self._py_files_cache is not None:
            return self._py_files_cache
        seen = 0
        base_depth = len(self.root.parts)
        found = False
        for dirpath, dirnames, filenames in os.walk(self.root):
            depth = len(Path(dirpath).parts) - base_depth
            dirnames[:] = [] if depth >= max_depth else [
                d for d in dirnames if d not in _WALK_SKIP and not d.startswith(".")]
            seen += len(filenames) + len(dirnames)
            if any(f.endswith(".py") and (f.startswith("test_") or f.endswith("_test.py")) for f in filenames):
                found = True
                break
            if seen > max_entries:
                break
        self._py_files_cache = found
        return found

    def ruff_evidence(self) -> str | None:
        if "ruff" in self.tool:
            return "[tool.ruff] in pyproject.toml"
        for n in ("ruff.toml", ".ruff.toml"):
            if (self.root / n).is_file():
                return f"{n} found"
        return None

    def mypy_config(self) -> tuple[str, bool] | None:
        """(evidence, config names the files to check) or None when mypy is not configured."""
        if "mypy" in self.tool:
            cfg = self.tool["mypy"]
            return "[tool.mypy] in pyproject.toml", isinstance(cfg, dict) and bool(cfg.get("files"))
        for n in ("mypy.ini", ".mypy.ini"):
            if (self.root / n).is_file():
                body = _ini_section(_read(self.root / n), "mypy") or ""
                return f"{n} found", re.search(r"^\s*files\s*=", body, re.M) is not None
        body = _ini_section(_read(self.root / "setup.cfg"), "mypy")
        if body is not None:
            return "[mypy] in setup.cfg", re.search(r"^\s*files\s*=", body, re.M) is not None
        return None

    def pyright_evidence(self) -> str | None:
        if (self.root / "pyrightconfig.json").is_file():
            return "pyrightconfig.json found"
        if "pyright" in self.tool:
            return "[tool.pyright] in pyproject.toml"
        return None

    # -- node
    def node_script(self, name: str) -> tuple[list[str], str] | None:
        pkg = self.root / "package.json"
        if not pkg.is_file():
            return None
        try:
            data = json.loads(_read(pkg))
        except ValueError:
            return None
        scripts = data.get("scripts") if isinstance(data, dict) else None
        body = scripts.get(name) if isinstance(scripts, dict) else None
        if not isinstance(body, str) or not body.strip():
            return None
        if name == "test" and "no test specified" in body:  # `npm init`'s placeholder always exits 1
            return None
        if (self.root / "pnpm-lock.yaml").is_file():
            pm = "pnpm"
        elif (self.root / "yarn.lock").is_file():
            pm = "yarn"
        elif (self.root / "bun.lockb").is_file() or (self.root / "bun.lock").is_file():
            pm = "bun"
        else:
            pm = "npm"
        if not shutil.which(pm):
            return None
        return [pm, "run", name], f"package.json script '{name}' ({pm})"


def _detect_python(repo: _Repo, name: str) -> CheckSpec | None:
    if name == "test":
        evidence = repo.pytest_evidence()
        tool = repo.py_tool("pytest") if evidence else None
        if tool:
            argv, how = tool
            return CheckSpec("test", [*argv, "-q", "-x", "-p", "no:cacheprovider"], reason=f"pytest ({how}): {evidence}")
    elif name == "lint":
        evidence = repo.ruff_evidence()
        tool = repo.py_tool("ruff") if evidence else None
        if tool:
            argv, how = tool
            return CheckSpec("lint", [*argv, "check", "--no-cache", "."], reason=f"ruff ({how}): {evidence}")
    elif name == "typecheck":
        mypy = repo.mypy_config()
        tool = repo.py_tool("mypy") if mypy else None
        if mypy and tool:
            (evidence, has_files), (argv, how) = mypy, tool
            return CheckSpec("typecheck", argv if has_files else [*argv, "."], reason=f"mypy ({how}): {evidence}")
        evidence = repo.pyright_evidence()
        path = _which_runs("pyright") if evidence else None
        if path:
            return CheckSpec("typecheck", [path], reason=f"pyright: {evidence}")
    return None


def _detect_go(repo: _Repo, name: str) -> CheckSpec | None:
    if not (repo.root / "go.mod").is_file() or not shutil.which("go"):
        return None
    if name == "test":
        return CheckSpec("test", ["go", "test", "./..."], reason="go: go.mod found")
    if name == "lint":
        return CheckSpec("lint", ["go", "vet", "./..."], reason="go vet: go.mod found")
    return None


def _detect_rust(repo: _Repo, name: str) -> CheckSpec | None:
    if not (repo.root / "Cargo.toml").is_file() or not shutil.which("cargo"):
        return None
    if name == "test":
        return CheckSpec("test", ["cargo", "test"], reason="cargo: Cargo.toml found")
    if name == "lint" and _tool_runs(("cargo", "clippy", "--version")):
        return CheckSpec("lint", ["cargo", "clippy", "-q"], reason="cargo clippy: Cargo.toml found")
    return None


def detect_checks(root: Path, configured: dict[str, str] | None = None) -> dict[str, CheckSpec | None]:
    """For each of typecheck, lint, test (in that order): the configured command string wins; else
    detect by what the repo contains; None = skipped (with no failure). An empty configured string
    counts as not configured."""
    root = Path(root)
    configured = configured or {}
    repo = _Repo(root)
    out: dict[str, CheckSpec | None] = {}
    for name in CHECK_NAMES:
        cmd = configured.get(name)
        if isinstance(cmd, str) and cmd.strip():
            out[name] = CheckSpec(name, None, shell=cmd, reason=f"configured: checks.{name}")
            continue
        spec: CheckSpec | None = None
        node = repo.node_script(name)
        if node:
            spec = CheckSpec(name, node[0], reason=node[1])
        for detect in (_detect_python, _detect_go, _detect_rust):
            if spec is not None:
                break
            spec = detect(repo, name)
        out[name] = spec
    return out


# --------------------------------------------------------------------------- location parsing
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_P = r"[\w.@+\-/\\]+"
_ARROW = re.compile(rf"^\s*-->\s*(?P<path>{_P}):(?P<line>\d+)(?::\d+)?")
_PYTB = re.compile(r'^\s*File "(?P<path>[^"]+)", line (?P<line>\d+)(?:, in (?P<msg>.*))?')
_TSC = re.compile(rf"(?:^|(?<=[\s'\"(\[]))(?P<path>{_P})\((?P<line>\d+),\d+\):\s*(?P<msg>.*)")
_GENERIC = re.compile(rf"(?:^|(?<=[\s'\"(\[]))(?P<path>{_P}):(?P<line>\d+)(?::\d+)?(?=:|\s|$):?\s*(?P<msg>.*)")


class _LocationParser:
    """Streams output lines into at most MAX_LOCATIONS deduplicated locations under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        try:
            self.root_resolved = root.resolve()
        except OSError:
            self.root_resolved = root
        self.locations: list[Location] = []
        self._seen: set[tuple[str, int | None, str]] = set()
        self._paths: dict[str, str | None] = {}
        self._prev = ""

    @property
    def full(self) -> bool:
        return len(self.locations) >= MAX_LOCATIONS

    def _rel(self, raw: str) -> str | None:
        if raw in self._paths:
            return self._paths[raw]
        if len(self._paths) >= 4096:  # bounded work on pathological output
            return None
        rel: str | None = None
        p = raw
        while p.startswith("./"):
            p = p[2:]
        if p and not p.isdigit():
            full = Path(p) if os.path.isabs(p) else self.root / p
            try:
                resolved = full.resolve()
                r = resolved.relative_to(self.root_resolved)
                if resolved.is_file():
                    rel = r.as_posix()
            except (OSError, ValueError, RuntimeError):
                rel = None
        self._paths[raw] = rel
        return rel

    def _add(self, raw: str, line: str, msg: str) -> bool:
        rel = self._rel(raw)
        if rel is None:
            return False
        loc = Location(rel, int(line), msg.strip()[:MESSAGE_CHARS])
        key = (loc.file, loc.line, loc.message)  # two rules on one line are two locations
        if key not in self._seen:
            self._seen.add(key)
            self.locations.append(loc)
        return True

    def feed_line(self, text: str) -> None:
        if self.full:
            return
        line = _ANSI.sub("", text).rstrip("\r\n")
        if len(line) > 2000:
            line = line[:2000]
        stripped = line.strip()
        m = _ARROW.match(line)
        if m:  # rust / ruff "full" format: the message is the line above
            self._add(m["path"], m["line"], self._prev)
            return
        if (m := _PYTB.match(line)) and self._add(m["path"], m["line"], f"in {m['msg']}" if m["msg"] else stripped):
            self._prev = stripped
            return
        for rx in (_GENERIC, _TSC):
            for m in rx.finditer(line):
                if self._add(m["path"], m["line"], m["msg"] or stripped):
                    self._prev = stripped
                    return
        if stripped:
            self._prev = stripped


def parse_locations(root: Path, text: str) -> list[Location]:
    """``path:line[:col]`` references in ``text`` to files under ``root`` (deduplicated, at most 20)."""
    parser = _LocationParser(Path(root))
    for line in text.splitlines():
        parser.feed_line(line)
    return parser.locations


# --------------------------------------------------------------------------- running
class _Capture:
    """Bounded capture of a byte stream: head, rolling tail, total size, streamed locations."""

    def __init__(self, root: Path) -> None:
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0
        self.parser = _LocationParser(root)
        self._partial = bytearray()
        self.lock = threading.Lock()

    def feed(self, data: bytes) -> None:
        with self.lock:
            self.total += len(data)
            if len(self.head) < HEAD_BYTES:
                self.head += data[: HEAD_BYTES - len(self.head)]
            self.tail += data
            if len(self.tail) > TAIL_BYTES:
                del self.tail[: len(self.tail) - TAIL_BYTES]
            if self.parser.full:
                return
            self._partial += data
            *lines, rest = self._partial.split(b"\n")
            for raw in lines:
                self.parser.feed_line(raw.decode("utf-8", "replace"))
            self._partial = bytearray(rest[:4096]) if len(rest) > 4096 else bytearray(rest)

    def finish(self) -> None:
        with self.lock:
            if self._partial and not self.parser.full:
                self.parser.feed_line(self._partial.decode("utf-8", "replace"))
            self._partial = bytearray()

    def texts(self) -> tuple[str, str]:
        with self.lock:
            head = codecs.getincrementaldecoder("utf-8")("replace").decode(bytes(self.head), final=len(self.head) >= self.total)
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


def _exited(proc: subprocess.Popen[bytes]) -> bool:
    """Has the leader exited? Uses WNOWAIT where available so the zombie keeps the process group id
    reserved until we have signalled any stragglers."""
    if hasattr(os, "waitid"):
        try:
            return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            return proc.poll() is not None
    return proc.poll() is not None


def _killpg(pgid: int, sig: int) -> bool:
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def _terminate(proc: subprocess.Popen[bytes]) -> bool:
    """SIGTERM the group, SIGKILL it after KILL_GRACE_S; True when SIGKILL was needed for the leader."""
    _killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + KILL_GRACE_S
    while time.monotonic() < deadline:
        if _exited(proc):
            _killpg(proc.pid, signal.SIGKILL)  # stragglers that ignored SIGTERM
            return False
        time.sleep(POLL_S)
    _killpg(proc.pid, signal.SIGKILL)
    return True


def _base_env(extra: dict[str, str] | None) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("NO_COLOR", "1")
    env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    env.update(extra or {})
    return env


def _fmt_s(seconds: float) -> str:
    return f"{seconds:g}"


def _safe_log(log: Callable[[str], None] | None, line: str) -> None:
    if log is None:
        return
    try:
        log(line)
    except Exception:  # a log sink never fails a check
        pass


def _run_one(root: Path, spec: CheckSpec, timeout_s: float, cancel: threading.Event | None,
             env: dict[str, str], log: Callable[[str], None] | None) -> CheckResult:
    command = spec.command
    argv = ["/bin/sh", "-c", spec.shell] if spec.shell is not None else list(spec.argv or [])
    _safe_log(log, f"running {spec.name}: {command[:200]}")
    started = time.monotonic()

    def elapsed_ms() -> int:
        return int((time.monotonic() - started) * 1000)

    if not argv:
        return CheckResult(spec.name, "fail", command, None, "", "", reason="empty command", duration_ms=0)
    try:
        proc = subprocess.Popen(argv, cwd=root, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True, env=env)
    except (FileNotFoundError, PermissionError) as exc:
        code = 127 if isinstance(exc, FileNotFoundError) else 126
        what = "command not found" if code == 127 else "command not executable"
        text = f"{argv[0]}: {what}\n"
        _safe_log(log, f"{spec.name}: FAILED ({what}: {argv[0]})")
        return CheckResult(spec.name, "fail", command, code, text, text, reason=f"{what}: {argv[0]}",
                           duration_ms=elapsed_ms())
    except OSError as exc:
        text = f"{argv[0]}: {exc}\n"
        _safe_log(log, f"{spec.name}: FAILED (could not start: {exc})")
        return CheckResult(spec.name, "fail", command, None, text, text, reason=f"could not start: {exc}",
                           duration_ms=elapsed_ms())

    cap = _Capture(root)
    assert proc.stdout is not None
    reader = threading.Thread(target=_pump, args=(proc.stdout, cap), name=f"loom-check-{spec.name}", daemon=True)
    reader.start()
    deadline = started + timeout_s
    stopped: str | None = None
    while not _exited(proc):
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
        hard = _terminate(proc)
        why = f"timed out after {_fmt_s(timeout_s)} s" if stopped == "timeout" else "cancelled"
        note = f"\n[loom] {spec.name} {why}: sent SIGTERM to its process group"
        note += f"; still running after {_fmt_s(KILL_GRACE_S)} s, sent SIGKILL\n" if hard else "\n"
    else:
        _killpg(proc.pid, signal.SIGKILL)  # background leftovers of a finished check
    rc = proc.wait()
    reader.join(timeout=5)
    if reader.is_alive():  # a detached descendant still holds the pipe
        note += "\n[loom] output still open after the command ended; stopped reading\n"
    else:
        proc.stdout.close()
    if note:
        cap.feed(note.encode())
    cap.finish()
    head, tail = cap.texts()
    duration_ms = elapsed_ms()
    secs = duration_ms / 1000
    locations = list(cap.parser.locations)

    if stopped:
        reason = f"timed out after {_fmt_s(timeout_s)} s" if stopped == "timeout" else "cancelled"
        _safe_log(log, f"{spec.name}: FAILED ({reason})")
        return CheckResult(spec.name, "fail", command, None, head, tail, reason=reason, locations=locations,
                           duration_ms=duration_ms)
    reason = spec.reason
    if rc < 0:  # killed by a signal: report it the way a shell would
        try:
            signame = signal.Signals(-rc).name
        except ValueError:
            signame = f"signal {-rc}"
        reason = f"killed by {signame}"
        rc = 128 - rc
    if rc == 0:
        _safe_log(log, f"{spec.name}: ok ({secs:.1f} s)")
        return CheckResult(spec.name, "ok", command, 0, head, tail, reason=reason, locations=locations,
                           duration_ms=duration_ms)
    if rc == 5 and spec.shell is None and "pytest" in " ".join(spec.argv or []):
        reason = "pytest collected no tests (exit 5)"
        _safe_log(log, f"{spec.name}: skipped ({reason})")
        return CheckResult(spec.name, "skipped", command, rc, head, tail, reason=reason, duration_ms=duration_ms)
    if rc == 127 and spec.shell is not None:
        reason = "command not found (exit 127)"
    elif rc == 126 and spec.shell is not None:
        reason = "command not executable (exit 126)"
    _safe_log(log, f"{spec.name}: FAILED exit {rc} ({secs:.1f} s)")
    return CheckResult(spec.name, "fail", command, rc, head, tail, reason=reason, locations=locations,
                       duration_ms=duration_ms)


def _ordered(specs: dict[str, CheckSpec | None]) -> list[str]:
    return [n for n in CHECK_NAMES if n in specs] + [n for n in specs if n not in CHECK_NAMES]


def run_checks(root: Path, specs: dict[str, CheckSpec | None], *, timeout_s: float = 600,
               cancel: threading.Event | None = None, log: Callable[[str], None] | None = None,
               env: dict[str, str] | None = None) -> list[CheckResult]:
    """Run the checks sequentially (typecheck, lint, test first, then any other names in the given
    order) with cwd=root. ``env`` is layered over ``os.environ``. A None spec is skipped; once
    ``cancel`` is set the running check is stopped (fail, kill note) and the rest are skipped."""
    root = Path(root)
    if not root.is_dir():
        raise ExecutorError(f"checks: root {root} is not a directory", code="CHECKS_ROOT_MISSING")
    full_env = _base_env(env)
    results: list[CheckResult] = []
    for name in _ordered(specs):
        spec = specs[name]
        if spec is None:
            reason = _SKIP_REASON.get(name, f"no {name} command found")
            _safe_log(log, f"{name}: skipped ({reason})")
            results.append(CheckResult(name, "skipped", "", None, "", "", reason=reason))
            continue
        if cancel is not None and cancel.is_set():
            _safe_log(log, f"{name}: skipped (cancelled)")
            results.append(CheckResult(name, "skipped", spec.command, None, "", "", reason="cancelled before it ran"))
            continue
        results.append(_run_one(root, spec, timeout_s, cancel, full_env, log))
    return results


# --------------------------------------------------------------------------- output
def _result_dict(r: CheckResult) -> dict[str, Any]:
    return {"name": r.name, "status": r.status, "exit_code": r.exit_code, "command": r.command,
            "output_head": r.output_head, "output_tail": r.output_tail, "reason": r.reason,
            "locations": [{"file": loc.file, "line": loc.line, "message": loc.message} for loc in r.locations]}


def envelope(results: list[CheckResult]) -> str:
    """The executor's output text: ``{"checks": [{name, status, exit_code, command, output_head,
    output_tail, reason, locations: [{file, line, message}]}]}``."""
    return json.dumps({"checks": [_result_dict(r) for r in results]}, ensure_ascii=False)


def _failure_block(r: CheckResult) -> str:
    exit_text = str(r.exit_code) if r.exit_code is not None else "none"
    lines = [f"== {r.name}: FAILED ==", f"command: {r.command}", f"exit: {exit_text}"]
    if r.reason:
        lines.append(f"reason: {r.reason}")
    if r.locations:
        lines.append("locations:")
        lines += [f"  {loc.file}:{loc.line}: {loc.message}" if loc.line is not None else f"  {loc.file}: {loc.message}"
                  for loc in r.locations]
    lines.append("--- output (head) ---")
    lines.append(r.output_head.rstrip("\n"))
    tail = r.output_tail[-FAILURE_TAIL_CHARS:]
    if tail and not r.output_head.endswith(tail):  # the head already holds a short output whole
        lines.append(f"--- output (last {len(tail.encode()) // 1024 or 1} KB) ---")
        lines.append(tail.rstrip("\n"))
    return "\n".join(lines) + "\n"


def write_failures(root: Path, results: Iterable[CheckResult]) -> None:
    """Write ``<root>/.loom/work/check-failures.txt`` for the next implementer (per failed check: name,
    command, exit, head + <=8 KB tail), or delete it when nothing failed."""
    path = Path(root) / FAILURES_FILE
    failed = [r for r in results if r.status == "fail"]
    if not failed:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    text = ("# Checks that failed on the last run (loom checks runner). Fix them; the checks run again.\n\n"
            + "\n".join(_failure_block(r) for r in failed))
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


# --------------------------------------------------------------------------- executor
class ChecksExecutor:
    """Deterministic executor for the ``checks`` step: detects and runs the checks in ``root_for()``
    (the task's sandbox), writes check-failures.txt, and answers with :func:`envelope`. A cancel
    raises ExecutorError (code CHECKS_CANCELLED) so a cut-short run is never recorded as a result."""

    name = "checks"
    label = "checks (deterministic, no model)"
    idempotent = True

    def __init__(self, root_for: Callable[[], Path], configured: dict[str, str] | None = None,
                 timeout_s: float = 600) -> None:
        self.root_for = root_for
        self.configured = dict(configured or {})
        self.timeout_s = timeout_s

    def execute(self, intent: Intent, cancel: threading.Event, log: Callable[[str], None]) -> ExecResult:
        started = time.monotonic()
        root = Path(self.root_for())
        if not root.is_dir():
            raise ExecutorError(f"checks: root {root} is not a directory", code="CHECKS_ROOT_MISSING")
        specs = detect_checks(root, self.configured)
        results = run_checks(root, specs, timeout_s=self.timeout_s, cancel=cancel, log=log)
        if cancel is not None and cancel.is_set():
            raise ExecutorError("checks cancelled", code="CHECKS_CANCELLED")
        write_failures(root, results)
        duration_ms = int((time.monotonic() - started) * 1000)
        return ExecResult(output=envelope(results), usage=Usage(duration_ms=duration_ms, num_turns=0))
