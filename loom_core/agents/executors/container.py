"""The Claude Code CLI in a Docker container (surfaces spec §9): the same command line and envelope as
:mod:`.claude_code`, run through the ``docker`` SDK (``docker.from_env()``, so ``DOCKER_HOST`` —
unix, tcp or ssh — picks the engine).

Each spawn is one container: ``--init`` (signals reach the agent), a numeric non-root user, a tmpfs
HOME, the sandbox copy at ``/workspace`` (bind-mounted, or shipped in and out as archives for a remote
engine), the credential by environment name (``CLAUDE_CODE_OAUTH_TOKEN``; never in the command line or
labels) or the login file mounted read-only, network and memory / pids / cpu limits from the settings,
and labels naming the loom process that owns it. The prompt goes in on stdin; stdout is the same
stream-json the host executor reads. A timeout or a cancel stops the container (TERM through init,
KILL after the grace) and it is always removed; a container whose loom was killed is removed by the
next loom that plans containers (:func:`~.container_plan.sweep_orphans`).
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loom_core.agents.executors import ExecResult
from loom_core.agents.executors.claude_code import ClaudeCodeExecutor, _Transcript
from loom_core.agents.executors.container_plan import (
    PASSED_ENV,
    TOKEN_ENV,
    ContainerPlan,
    client,
    credentials_file,
)
from loom_core.agents.executors.subprocess_util import (
    ABORTED,
    IDLE_TIMEOUT,
    TIMEOUT,
    require_workdir,
    stopped_error,
)
from loom_core.errors import ExecutorError
from loom_core.kernel.types import Intent
from loom_core.store import slot
from loom_core.workspace import container_io

WORKSPACE = container_io.WORKSPACE
FAILED = "CONTAINER_FAILED"


def _api_error(exc: Exception) -> str:
    return str(getattr(exc, "explanation", None) or exc)[:400]


class ContainerExecutor:
    name = "claude-code"
    label = "Claude Code CLI (container)"
    idempotent = True

    kill_grace_s = 5.0
    poll_s = 0.1
    api_timeout_s = 60

    def __init__(self, plan: ContainerPlan, *, max_turns: int | None = None, session_timeout_s: float = 1800,
                 idle_timeout_s: float | None = None, engine: Any = None) -> None:
        self.plan = plan
        self.session_timeout_s = session_timeout_s
        self.idle_timeout_s = idle_timeout_s
        # the host executor's command line and envelope, with the permissions a container can afford
        self.cli = ClaudeCodeExecutor("claude", permission_mode="bypassPermissions", max_turns=max_turns)
        self._engine = engine
        self._streamer = None
        self._engine_lock = threading.Lock()
        self.label = f"Claude Code CLI in {plan.image}"

    # ------------------------------------------------------------------ container spec
    def engine(self) -> Any:
        """The engine for requests that end (create, archives, stop, remove): each waits at most
        ``api_timeout_s``."""
        with self._engine_lock:
            if self._engine is None:
                self._engine = client(timeout=self.api_timeout_s)
            return self._engine

    def streamer(self) -> Any:
        """The engine for the agent's output stream, which may stay silent for minutes (no read timeout)."""
        with self._engine_lock:
            if self._streamer is None:
                self._streamer = client(timeout=None)
            return self._streamer

    def argv(self, intent: Intent) -> list[str]:
        args = self.cli.argv(intent, "claude")
        if self.plan.strict_mcp and "--strict-mcp-config" not in args:
            args.append("--strict-mcp-config")
        return args

    def environment(self) -> dict[str, str]:
        # git in the container must take /workspace, owned by whoever owns the copy, as safe (GIT_CONFIG_*
        # is command-line config, which git honours for safe.directory; git 2.31+)
        env = {"HOME": self.plan.home, "DISABLE_AUTOUPDATER": "1", "GIT_CONFIG_COUNT": "1",
               "GIT_CONFIG_KEY_0": "safe.directory", "GIT_CONFIG_VALUE_0": "*"}
        if self.plan.credential == "token":
            env[TOKEN_ENV] = os.environ.get(TOKEN_ENV, "")
        for name in PASSED_ENV:
            if os.environ.get(name):
                env[name] = os.environ[name]
        return env

    def create_kwargs(self, intent: Intent, lay: container_io.Layout) -> dict[str, Any]:
        p = self.plan
        labels = {**p.labels, "loom.run": intent.agent_run_id, "loom.agent": intent.agent}
        task = slot.marked(Path(p.project)) if p.project else None  # the project's task, once created
        if task:
            labels["loom.task"] = task
        volumes: dict[str, dict[str, str]] = {}
        if p.bind_mounts:
            volumes[str(lay.top)] = {"bind": WORKSPACE, "mode": "rw"}
            for borrowed in lay.stores + lay.linked:  # what the copy points at, read-only at the same path
                volumes[str(borrowed)] = {"bind": str(borrowed), "mode": "ro"}
            if p.credential == "file":
                volumes[str(credentials_file())] = {"bind": f"{p.home}/.claude/.credentials.json", "mode": "ro"}
        tmpfs = {p.home: "rw,mode=1777"}
        if p.bind_mounts and p.credential == "file":  # ~/.claude stays writable around the mounted login file
            tmpfs[f"{p.home}/.claude"] = "rw,mode=1777"
        kw: dict[str, Any] = dict(
            image=p.image, command=self.argv(intent), stdin_open=True, init=True, user=p.user,
            working_dir=lay.workdir, environment=self.environment(), labels=labels, volumes=volumes,
            tmpfs=tmpfs,
            name=f"loom-{re.sub(r'[^A-Za-z0-9_.-]', '-', intent.agent_run_id)[:80]}-{time.time_ns() % 10**9}")
        if p.network != "default":
            kw["network_mode"] = p.network
        if p.memory:
            kw["mem_limit"] = p.memory
        if p.pids:
            kw["pids_limit"] = p.pids
        if p.cpus:
            kw["nano_cpus"] = int(p.cpus * 1e9)
        return kw

    # ------------------------------------------------------------------ run
    def execute(self, intent: Intent, cancel: threading.Event, log: Callable[[str], None]) -> ExecResult:
        lay = container_io.layout(require_workdir(intent, cancel))
        if self.plan.bind_mounts:
            container_io.share(lay.top, self.plan.uid)
        return self._run(intent, lay, cancel, log)

    def _run(self, intent: Intent, lay: container_io.Layout, cancel: threading.Event,
             log: Callable[[str], None]) -> ExecResult:
        import docker

        eng = self.engine()
        try:
            ct = eng.containers.create(**self.create_kwargs(intent, lay))
        except docker.errors.ImageNotFound as exc:
            raise ExecutorError(f"{intent.agent}: the Docker engine has no image {self.plan.image} (see "
                                f"docker/README.md)", code="EXECUTOR_NOT_FOUND") from exc
        except docker.errors.DockerException as exc:
            raise ExecutorError(f"{intent.agent}: the agent container cannot be created: {_api_error(exc)}",
                                code=FAILED) from exc
        tr = _Transcript(Path(lay.workdir))
        try:
            if not self.plan.bind_mounts:
                ct.put_archive("/", container_io.pack(lay.top, self.plan.uid, self.plan.gid, lay.stores))
            started = time.monotonic()
            stopped, rc = self._drive(ct, intent, tr, cancel, log)
            elapsed = time.monotonic() - started
            stderr = ct.logs(stdout=False, stderr=True, tail=200).decode("utf-8", "replace")
            if not self.plan.bind_mounts:
                bits, _stat = ct.get_archive(WORKSPACE)
                container_io.unpack(bits, lay.top)
        except docker.errors.DockerException as exc:
            raise ExecutorError(f"{intent.agent}: the agent container failed: {_api_error(exc)}", code=FAILED) from exc
        finally:
            try:
                ct.remove(force=True, v=True)
            except docker.errors.DockerException:
                pass  # already gone, or the engine went away: the next start sweeps it by its labels
        if stopped:
            err = stopped_error(stopped, "Claude Code (container)", intent.agent,
                                session_timeout_s=self.session_timeout_s, idle_timeout_s=self.idle_timeout_s)
            billed = tr.streamed_usage(elapsed)
            if billed is not None:
                err.detail.setdefault("usage", billed)
            raise err
        return self.cli._finish(intent, tr, rc, stderr, elapsed)

    def _drive(self, ct: Any, intent: Intent, tr: _Transcript, cancel: threading.Event,
               log: Callable[[str], None]) -> tuple[str | None, int]:
        """Start ``ct`` with the prompt on stdin, stream its stdout into ``tr`` and ``log``, stop it on a
        cancel or a timeout; ``(stop code or None, exit code)``."""
        sock = ct.attach_socket(params={"stdin": 1, "stream": 1})
        ct.start()
        raw = getattr(sock, "_sock", sock)
        try:
            raw.sendall(intent.prompt.encode("utf-8"))
            with contextlib.suppress(OSError):  # an ssh tunnel cannot half-close: closing it ends stdin too
                raw.shutdown(socket.SHUT_WR)  # end of the prompt: the container's stdin closes (StdinOnce)
        finally:
            sock.close()
        last = [time.monotonic()]
        seen = [0]  # stdout bytes the stream delivered
        pending = [b""]

        def feed(chunk: bytes) -> None:
            seen[0] += len(chunk)
            pending[0] += chunk
            *lines, pending[0] = pending[0].split(b"\n")
            for line in lines:
                self._line(tr, line, log)

        def read() -> None:
            try:
                for chunk in self.streamer().api.logs(ct.id, stream=True, follow=True, stdout=True, stderr=False):
                    last[0] = time.monotonic()
                    feed(chunk)
            except Exception:  # noqa: BLE001  (the stream broke: the rest is read back once the container ends)
                pass

        outcome: dict[str, Any] = {}

        def wait() -> None:
            try:
                outcome["status"] = ct.wait()
            except Exception as exc:  # noqa: BLE001  (reported as the run's failure below)
                outcome["error"] = exc

        reader = threading.Thread(target=read, name=f"container-out-{intent.agent_run_id}", daemon=True)
        waiter = threading.Thread(target=wait, name=f"container-wait-{intent.agent_run_id}", daemon=True)
        reader.start()
        waiter.start()
        started, stopped = time.monotonic(), None
        while waiter.is_alive():
            now = time.monotonic()
            if cancel.is_set():
                stopped = ABORTED
            elif now - started > self.session_timeout_s:
                stopped = TIMEOUT
            elif self.idle_timeout_s and now - last[0] > self.idle_timeout_s:
                stopped = IDLE_TIMEOUT
            if stopped:
                log(f"stopping the agent container ({stopped})")
                ct.stop(timeout=int(self.kill_grace_s))  # TERM through init, KILL after the grace
                break
            waiter.join(self.poll_s)
        waiter.join(self.kill_grace_s + 10)
        reader.join(5)
        if not reader.is_alive():
            rest = ct.logs(stdout=True, stderr=False)[seen[0]:]  # whatever a broken stream missed
            if rest:
                feed(rest)
            if pending[0]:
                self._line(tr, pending[0], log)
        if "error" in outcome and not stopped:
            raise ExecutorError(f"{intent.agent}: lost the agent container: {_api_error(outcome['error'])}",
                                code=FAILED)
        return stopped, int((outcome.get("status") or {}).get("StatusCode", -1))

    @staticmethod
    def _line(tr: _Transcript, raw: bytes, log: Callable[[str], None]) -> None:
        line = raw.decode("utf-8", "replace").rstrip("\r")
        with tr.lock:
            out = tr.handle(line)
        for text in out:
            log(text)
