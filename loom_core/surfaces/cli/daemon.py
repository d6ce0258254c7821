"""``loom daemon start | stop | status``: supervise a project's task with nobody at the terminal (spec §4).

``start`` runs the supervisor in the foreground (log lines echoed to stderr; Ctrl-C or SIGTERM stops it
cleanly, and the next start picks the task up again); ``--detach`` starts the same command in its own
session, writes its output to ``.loom/daemon/daemon.out`` and returns at once.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from loom_core.surfaces.cli.common import (
    ComplexityOpt,
    DockerOpt,
    FastOpt,
    JsonOpt,
    MaxCostOpt,
    MaxSpawnsOpt,
    MaxTokensOpt,
    NoDockerOpt,
    PolicyOpt,
    ProjectOpt,
    budget_flags,
    control,
    docker_choice,
    docker_flags,
    echo_json,
    project_dir,
    with_budget,
    with_docker,
)

daemon_app = typer.Typer(help="Supervise a project's task in the background: start, stop, status.",
                         no_args_is_help=True, add_completion=False, rich_markup_mode=None)

PathArg = Annotated[Path | None, typer.Argument(help="Project directory (default: current directory).",
                                                exists=True, file_okay=False, resolve_path=True)]
DETACH_WAIT_S = 10.0  # how long --detach waits for the child to take the status file


def _options(task: str | None, backend: str | None, policy: str | None, complexity: str | None, fast: bool,
             max_spawns: int | None, push: bool, squash_merge: bool, demo_delay: float) -> Any:
    """RunOptions when anything was asked (a new task, or flags that replace the task's own); else None."""
    if task is None and backend is None and policy is None and complexity is None and not fast \
            and max_spawns is None and not push and not squash_merge and not demo_delay:
        return None
    from loom_core.control import RunOptions

    opts = RunOptions(backend=backend or "auto", policy=policy, complexity=complexity, fast=fast,
                      max_spawns=max_spawns, push=push, squash_merge=squash_merge, demo_delay_s=demo_delay)
    opts.validate()
    return opts


def _notifier(log: Any) -> Any:
    """The configured notification channels (delivery failures go to the log as ``notify-failed``); None when
    they cannot be set up (logged: a supervisor runs without notifications)."""
    try:
        from loom_core.surfaces.notify import Notifier

        return Notifier.from_settings(on_error=lambda channel, message: log.write(
            "notify-failed", level="warn", channel=channel, error=message[:300]))
    except Exception as exc:  # notifications are best effort
        log.write("notify-failed", level="warn", error=f"notifications are off: {exc}"[:300])
        return None


def _child_args(words: list[str], proj: Path, watch: bool, backend: str | None, policy: str | None,
                complexity: str | None, fast: bool, max_spawns: int | None, push: bool, squash_merge: bool,
                demo_delay: float) -> list[str]:
    args = [sys.executable, "-m", "loom_core.surfaces.cli", "daemon", "start", "--project", str(proj)]
    for flag, value in (("--backend", backend), ("--policy", policy), ("--complexity", complexity),
                        ("--max-spawns", max_spawns), ("--demo-delay", demo_delay or None)):
        if value is not None:
            args += [flag, str(value)]
    args += [f for f, on in (("--watch", watch), ("--fast", fast), ("--push", push),
                             ("--squash-merge", squash_merge)) if on]
    return args + (["--", *words] if words else [])


def _detach(proj: Path, args: list[str]) -> None:
    import os
    import subprocess
    import time

    from loom_core.errors import LoomError
    from loom_core.surfaces.daemon.log import log_path
    from loom_core.surfaces.daemon.status import daemon_dir, owner_running, read_status

    other = read_status(proj)
    if owner_running(other):
        raise LoomError(f"a loom daemon already supervises {proj} (pid {other['pid']}); stop it with "
                        f"'loom daemon stop {proj}'", code="DAEMON_ALREADY_RUNNING")
    out = daemon_dir(proj) / "daemon.out"
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "ab") as fh:
        child = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT, cwd=proj,
                                 start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + DETACH_WAIT_S
    while time.monotonic() < deadline:
        doc = read_status(proj)
        if doc and doc.get("pid") == child.pid and doc.get("phase") not in ("starting", "stopped"):
            break
        if child.poll() is not None:
            tail = " ".join(out.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-1:])[:300]
            if child.returncode == 0:  # nothing to supervise, or done already
                typer.echo(f"the daemon ended at once: {tail}")
                return
            raise LoomError(f"the daemon exited at once (exit {child.returncode}): {tail}")
        time.sleep(0.05)
    typer.echo(f"loom daemon started (pid {child.pid}) for {proj}")
    typer.echo(f"follow it: tail -f {log_path(proj)}   (output: {out})")
    typer.echo(f"stop it:   loom daemon stop {proj}")


def start(task: Annotated[list[str] | None, typer.Argument(help="A new task, in plain words (ignored when a task "
                                                                "is already in progress: that one is resumed).")]
          = None,
          project: ProjectOpt = None,
          watch: Annotated[bool, typer.Option("--watch", help="Keep looking after the project: drive every task "
                                              "that appears until stopped.")] = False,
          detach: Annotated[bool, typer.Option("--detach", help="Run in the background (own session); output "
                                               "to .loom/daemon/daemon.out.")] = False,
          backend: Annotated[str | None, typer.Option("--backend", "-b", help="Backend for a new task (or to "
                                                      "replace the task's own).")] = None,
          policy: PolicyOpt = None, complexity: ComplexityOpt = None, fast: FastOpt = False,
          max_spawns: MaxSpawnsOpt = None, max_cost: MaxCostOpt = None, max_tokens: MaxTokensOpt = None,
          push: Annotated[bool, typer.Option("--push", help="Ship on accept: push loom/<task> when it is "
                                             "accepted.")] = False,
          squash_merge: Annotated[bool, typer.Option("--squash-merge", help="Ship on accept: squash-merge "
                                                     "loom/<task> into the checked-out branch.")] = False,
          docker: DockerOpt = False, no_docker: NoDockerOpt = False,
          demo_delay: Annotated[float, typer.Option("--demo-delay", hidden=True, help="Seconds each demo agent "
                                                    "takes (tests, demos).")] = 0.0) -> None:
    """Supervise the project's task until it ends (parks at human gates and wakes when they are answered)."""
    proj = project_dir(project)
    words = list(task or [])
    text = " ".join(words).strip() or None
    opts = _options(text, backend, policy, complexity, fast, max_spawns, push, squash_merge, demo_delay)
    opts = with_budget(opts, proj, max_cost, max_tokens)
    choice = docker_choice(docker, no_docker)
    opts = with_docker(opts, proj, choice)
    if detach:
        args = _child_args(words, proj, watch, backend, policy, complexity, fast, max_spawns, push, squash_merge,
                           demo_delay)
        cut = args.index("--") if "--" in args else len(args)
        _detach(proj, args[:cut] + budget_flags(max_cost, max_tokens) + docker_flags(choice) + args[cut:])
        return
    raise typer.Exit(_foreground(proj, text, opts, watch))


def _foreground(proj: Path, text: str | None, opts: Any, watch: bool) -> int:
    import signal
    import threading

    from loom_core.surfaces.daemon import DaemonLog, LogSink, Supervisor

    log = DaemonLog.for_project(proj, echo=sys.stderr)
    notifier = _notifier(log)
    sink = LogSink(log)
    sup = Supervisor(control(sink_for=lambda _pid: sink), proj, watch=watch, task=text, opts=opts,
                     notifier=notifier, log=log)
    got: dict[str, Any] = {}

    def body() -> None:
        try:
            got["result"] = sup.run()
        except BaseException as exc:  # re-raised in the main thread (one-line error there)
            got["error"] = exc

    previous = {sig: signal.signal(sig, lambda *_: sup.stop()) for sig in (signal.SIGTERM, signal.SIGINT)}
    worker = threading.Thread(target=body, name="loom-daemon")
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.2)  # the main thread stays free for the signal handlers
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if notifier is not None:
            try:
                notifier.flush(5.0)
            except Exception:  # best effort
                pass
    if "error" in got:
        raise got["error"]
    result = got.get("result")
    typer.echo(f"loom daemon: {result}", err=True)
    return 0 if result in ("accepted", "noop", "stopped", "aborted") else 1


def stop(path: PathArg = None) -> None:
    """Stop the project's daemon (SIGTERM; its drive stops after the current step). Safe if none runs."""
    from loom_core.surfaces.daemon import stop_daemon

    proj = project_dir(path)
    got = stop_daemon(proj)
    if got["result"] == "not-running":
        typer.echo(f"no daemon is running for {proj}" + (" (cleared a stale status file)" if got.get("cleared")
                                                          else ""))
    elif got["result"] == "stopped":
        typer.echo(f"stopped the daemon (pid {got['pid']}) of {proj}")
    else:
        typer.echo(f"asked the daemon (pid {got['pid']}) to stop; it is still finishing its step", err=True)
        raise typer.Exit(1)


def status(path: PathArg = None, as_json: JsonOpt = False) -> None:
    """Show the project's daemon: running or not, its phase (driving, parked, …), its task."""
    from loom_core.surfaces.daemon import read_status
    from loom_core.surfaces.daemon.status import owner_running

    proj = project_dir(path)
    doc = read_status(proj)
    running = owner_running(doc)
    if as_json:
        echo_json({"running": running, "project_dir": str(proj), **(doc or {})})
        return
    if doc is None:
        typer.echo(f"no daemon has run for {proj}")
        return
    if not running:
        typer.echo(f"not running (last phase {doc.get('phase')}, updated {doc.get('updated_at')})")
        return
    extra = "".join(f"  {k}: {doc[k]}" for k in ("task_id", "detail") if doc.get(k))
    typer.echo(f"running (pid {doc.get('pid')}), {doc.get('phase')}{extra}")


for command in (start, stop, status):
    daemon_app.command()(command)
