"""A fork server for the crash matrix: one process imports loom once, then every drive runs in a fresh
child forked from it (its own pid, killed for real by ``LOOM_CRASH_AT``, nothing of a store open in the
parent). Same drive as ``python -m tests.support.drive_spec``, without paying the interpreter and
import start-up ~150 times.

Protocol (``python -m tests.support.drive_fork``): one JSON line in per drive, ``{"project", "crash",
"out"}``; the child's stdout and stderr go to ``<out>.stdout`` / ``<out>.stderr``; one JSON line back,
``{"rc"}`` (``-9`` when the child killed itself, as ``subprocess`` reports it).
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import traceback
from pathlib import Path

from tests.support import drive_spec


def _child(project: str, crash: str | None, out: str) -> None:
    from loom_core import crash as crash_mod

    for fd, suffix in ((1, ".stdout"), (2, ".stderr")):
        os.dup2(os.open(out + suffix, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), fd)
    crash_mod._SPEC, crash_mod._TRACE, crash_mod._counts = crash or "", "", {}
    os.environ.pop("LOOM_CRASH_AT", None)
    if crash:
        os.environ["LOOM_CRASH_AT"] = crash
    rc = 1
    try:
        rc = drive_spec.main(project)
    except BaseException:  # noqa: BLE001 - reported on stderr like an uncaught error
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(rc)


def serve() -> None:
    for line in sys.stdin:
        req = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(req["project"], req.get("crash"), req["out"])
        _, status = os.waitpid(pid, 0)
        rc = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        print(json.dumps({"rc": rc}), flush=True)


class ForkDriver:
    """The test side: ``drive(project, crash)`` → a ``CompletedProcess`` like ``subprocess.run`` gives."""

    def __init__(self, root: Path, env: dict[str, str]):
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.support.drive_fork"], cwd=root, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     start_new_session=True)  # its children in its group: killed with it

    def drive(self, project: Path, crash: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        out = str(project) + ".out"
        self.proc.stdin.write(json.dumps({"project": str(project), "crash": crash, "out": out}) + "\n")
        self.proc.stdin.flush()
        if not select.select([self.proc.stdout], [], [], timeout)[0]:
            os.killpg(self.proc.pid, signal.SIGKILL)
            raise subprocess.TimeoutExpired(self.proc.args, timeout)
        reply = self.proc.stdout.readline()
        if not reply:
            raise RuntimeError(f"the fork server died (rc={self.proc.poll()})")
        rc = json.loads(reply)["rc"]
        return subprocess.CompletedProcess([str(project)], rc, Path(out + ".stdout").read_text(),
                                           Path(out + ".stderr").read_text())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(30)


if __name__ == "__main__":
    serve()
