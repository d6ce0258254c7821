"""Child processes (checks, agent CLIs, harnesses) that never outlive a killed loom.

Two ties, because a SIGKILL of loom runs no clean-up code:

- **PR_SET_PDEATHSIG** (Linux): :func:`preexec` gives ``Popen`` a ``preexec_fn`` that asks the
  kernel to SIGKILL the child when the thread that started it dies. That thread is always the one
  that then waits for the child (``run_streaming``, ``checks.run.run_one``: they block until it
  ends and stop its group on cancel or timeout), so it outlives the child in a normal run and dies
  with the process under kill -9. The setting is not inherited across ``fork``: a grandchild (a
  shell's background job, a test runner's workers) is not covered by it.
- **A pid file per child** in ``<project>/.loom/children/`` (only when the project already has a
  ``.loom`` folder): leader pid = process group = session (children start in their own session)
  and the leader's start time. :func:`reap` — run by the driver before it spawns anything for the
  project, under the project lock — SIGKILLs every recorded group that still has members, so the
  grandchildren of a killed run go too. A group is recognised by its id and a start time no earlier
  than the recorded one, so a recycled id is never hit.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

PR_SET_PDEATHSIG = 1
CHILDREN = "children"

_prctl: Callable[..., int] | None = None
if sys.platform.startswith("linux"):
    try:
        import ctypes

        _prctl = ctypes.CDLL(None, use_errno=True).prctl  # resolved here: nothing to look up after fork
    except (OSError, AttributeError):
        _prctl = None


def preexec() -> Callable[[], None] | None:
    """A ``preexec_fn`` tying the child to the calling thread (None where prctl is unavailable)."""
    if _prctl is None:
        return None
    prctl, parent = _prctl, os.getpid()

    def tie() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # loom died between fork and prctl: nobody would reap us
            os.kill(os.getpid(), signal.SIGKILL)

    return tie


# ---------------------------------------------------------------------------- pid files

def _stat(pid: int | str) -> list[str] | None:
    """Fields of ``/proc/<pid>/stat`` after the command name (index 0 = state, 2 = pgrp, 3 = session,
    19 = start time in clock ticks)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2:].split()


def start_time(pid: int) -> int | None:
    f = _stat(pid)
    try:
        return int(f[19]) if f else None
    except (IndexError, ValueError):
        return None


def _me() -> list[int | None]:
    """This process, recognisably: pid and start time (a pid alone may be a dead loom's, reused)."""
    return [os.getpid(), start_time(os.getpid())]


def registry(cwd: Path | str) -> Path | None:
    """``<project>/.loom/children`` for a child started in ``cwd`` (a sandbox maps to its user's
    project), or None when that project has no ``.loom`` folder."""
    from loom_core.workspace.checks.step import sandbox_info

    try:
        project = sandbox_info(Path(cwd))[0] or Path(cwd)
    except Exception:  # damaged sandbox metadata: the child is still tied by PDEATHSIG
        project = Path(cwd)
    loom = Path(project) / ".loom"
    return loom / CHILDREN if loom.is_dir() else None


@contextlib.contextmanager
def tracked(pid: int, cwd: Path | str, what: str) -> Iterator[None]:
    """Keep a pid file for the child ``pid`` (its own session leader) while the block runs."""
    path = None
    folder = registry(cwd)
    if folder is not None:
        try:
            folder.mkdir(exist_ok=True)
            path = folder / f"{pid}.json"
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"pid": pid, "start": start_time(pid), "what": what[:200],
                                       "loom": _me()}), encoding="utf-8")
            os.replace(tmp, path)
        except OSError:
            path = None
    try:
        yield
    finally:
        if path is not None:
            with contextlib.suppress(OSError):
                path.unlink()


def _members(pgid: int, since: int | None) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        f = _stat(entry.name)
        if not f or len(f) < 20 or f[0] in ("Z", "X"):
            continue
        if f[2] == str(pgid) and f[3] == str(pgid) and (since is None or int(f[19]) >= since):
            out.append(int(entry.name))
    return out


def reap(project: Path | str) -> list[int]:
    """SIGKILL the process groups recorded under ``project`` by runs that are gone; the pids killed.

    Call it only while holding the project lock (no live driver of this project has children)."""
    folder = Path(project) / ".loom" / CHILDREN
    if not folder.is_dir() or not Path("/proc").is_dir():
        return []
    killed: list[int] = []
    for path in sorted(folder.glob("*.json")):
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
            pgid, since = int(rec["pid"]), rec.get("start")
            since = int(since) if since is not None else None
        except (OSError, ValueError, KeyError, TypeError):
            rec = None
        if rec is not None and rec.get("loom") == _me():
            continue  # a child of this very process (another drive of it): alive and looked after
        if rec is not None:
            members = _members(pgid, since)
            if members:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pgid, signal.SIGKILL)
                killed += members
        with contextlib.suppress(OSError):
            path.unlink()
    return killed


__all__ = ["preexec", "tracked", "reap", "registry", "start_time"]
