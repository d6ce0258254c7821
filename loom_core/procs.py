"""Process groups: the one place loom signals, watches and stops a child's whole group.

Every child loom starts (agent CLIs, harnesses, checks) runs with ``start_new_session=True``, so its
pid is also its process-group id and one signal reaches its descendants too. Stopping is SIGTERM to
the group, then SIGKILL once a grace period has passed. Used by the executors
(``agents.executors.subprocess_util``) and the checks runner (``workspace.checks.run``); it imports
nothing of loom.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

POLL_S = 0.05


def signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to group ``pgid``; False when the group is gone or not ours."""
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def group_alive(pgid: int) -> bool:
    """True while a live (non-zombie) process is in group ``pgid``."""
    proc_dir = Path("/proc")
    if proc_dir.is_dir():
        for entry in proc_dir.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2:].split()
            if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
                return True
        return False
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def leader_exited(proc: subprocess.Popen) -> bool:
    """Has the group leader exited? Uses WNOWAIT where available, so the unreaped leader keeps the
    process-group id reserved until any stragglers have been signalled."""
    if hasattr(os, "waitid"):
        try:
            return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            return proc.poll() is not None
    return proc.poll() is not None


def terminate_group(proc: subprocess.Popen, grace_s: float = 5.0, poll_s: float = POLL_S) -> bool:
    """SIGTERM the group of a leader not yet reaped, SIGKILL it once the leader has exited (the
    stragglers that ignored SIGTERM) or after ``grace_s``. True when SIGKILL was needed for the leader.
    The caller reaps the leader afterwards."""
    signal_group(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if leader_exited(proc):
            signal_group(proc.pid, signal.SIGKILL)
            return False
        time.sleep(poll_s)
    signal_group(proc.pid, signal.SIGKILL)
    return True


def kill_group(proc: subprocess.Popen, grace_s: float = 5.0) -> None:
    """SIGTERM the whole group of ``proc``; SIGKILL whatever is left after ``grace_s`` (or as soon as
    the leader and every member are gone); then reap the leader."""
    signal_group(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if proc.poll() is not None and not group_alive(proc.pid):
            break
        time.sleep(POLL_S)
    signal_group(proc.pid, signal.SIGKILL)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


def reap_group(proc: subprocess.Popen, grace_s: float = 5.0) -> None:
    """After a normal exit: stop leftovers (background shells) still in the session's group."""
    if group_alive(proc.pid):
        kill_group(proc, grace_s)


__all__ = ["POLL_S", "group_alive", "kill_group", "leader_exited", "reap_group", "signal_group", "terminate_group"]


# ---------------------------------------------------------------------------- process identity
def _stat_fields(pid: int) -> list[str] | None:
    """``/proc/<pid>/stat`` from field 3 on (the command name, field 2, may hold spaces and parentheses)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return raw[raw.rfind(")") + 2:].split()


def start_token(pid: int) -> str | None:
    """Field 22 of ``/proc/<pid>/stat`` (start time in clock ticks since boot); None off Linux or when gone.
    A lock file records it so a pid reused by an unrelated process is never taken for its owner."""
    fields = _stat_fields(pid)
    return fields[19] if fields and len(fields) > 19 else None


def alive(pid: object, token: str | None = None) -> bool:
    """Whether ``pid`` names a running process (a zombie is not) that, given ``token``, is the one that
    recorded it (an unreadable start time is given the benefit of the doubt)."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    fields = _stat_fields(pid)
    if fields and fields[0] in ("Z", "X"):
        return False
    return token is None or start_token(pid) in (None, token)
