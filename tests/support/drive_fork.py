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


def _child(req: dict) -> None:
    from loom_core import crash as crash_mod

    crash, out = req.get("crash"), req["out"]
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)  # never the server's request pipe
    for fd, suffix in ((1, ".stdout"), (2, ".stderr")):
        os.dup2(os.open(out + suffix, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), fd)
    crash_mod._SPEC, crash_mod._TRACE, crash_mod._counts = crash or "", "", {}
    os.environ.pop("LOOM_CRASH_AT", None)
    if crash:
        os.environ["LOOM_CRASH_AT"] = crash
    rc = 1
    try:
        if "argv" in req:  # the loom CLI, as `python -m loom_core.surfaces.cli ARGV` in cwd runs it
            from loom_core.surfaces.cli import main

            os.chdir(req["cwd"])
            sys.argv = ["loom", *req["argv"]]
            try:
                main()
                rc = 0
            except SystemExit as exc:
                rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
                if isinstance(exc.code, str):
                    print(exc.code, file=sys.stderr)
        else:
            rc = drive_spec.main(req["project"])
    except BaseException:  # noqa: BLE001 - reported on stderr like an uncaught error
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(rc)


def serve() -> None:
    if "--cli" in sys.argv:  # what `loom run` / `loom proceed` load, imported once here
        import loom_core.control.local  # noqa: F401
        import loom_core.engine.runner  # noqa: F401
        import loom_core.surfaces.cli  # noqa: F401
    for line in sys.stdin:
        req = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(req)
        _, status = os.waitpid(pid, 0)
        rc = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        print(json.dumps({"rc": rc}), flush=True)


class ForkDriver:
    """The test side: ``drive(project, crash)`` → a ``CompletedProcess`` like ``subprocess.run`` gives."""

    def __init__(self, root: Path, env: dict[str, str], *, cli: bool = False):
        self.proc = subprocess.Popen([sys.executable, "-m", "tests.support.drive_fork", *(["--cli"] if cli else [])],
                                     cwd=root, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     start_new_session=True)  # its children in its group: killed with it

    def drive(self, project: Path, crash: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        """``python -m tests.support.drive_spec PROJECT`` in a forked child."""
        return self._ask({"project": str(project), "crash": crash}, str(project) + ".out", timeout)

    def loom(self, cwd: Path, *argv: str, crash: str | None = None, tag: str = "",
             timeout: float = 120) -> subprocess.CompletedProcess:
        """``loom ARGV`` in ``cwd`` in a forked child (the server must be started with ``cli=True``)."""
        return self._ask({"argv": list(argv), "cwd": str(cwd), "crash": crash},
                         f"{cwd}.{tag or argv[0]}.out", timeout)

    def _ask(self, req: dict, out: str, timeout: float) -> subprocess.CompletedProcess:
        self.proc.stdin.write(json.dumps({**req, "out": out}) + "\n")
        self.proc.stdin.flush()
        if not select.select([self.proc.stdout], [], [], timeout)[0]:
            os.killpg(self.proc.pid, signal.SIGKILL)
            raise subprocess.TimeoutExpired(self.proc.args, timeout)
        reply = self.proc.stdout.readline()
        if not reply:
            raise RuntimeError(f"the fork server died (rc={self.proc.poll()})")
        rc = json.loads(reply)["rc"]
        return subprocess.CompletedProcess([req.get("project") or req.get("argv")], rc, Path(out + ".stdout").read_text(),
                                           Path(out + ".stderr").read_text())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(30)


if __name__ == "__main__":
    serve()
