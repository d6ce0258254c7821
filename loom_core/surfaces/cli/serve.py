"""``loom serve [--project DIR]… [--host] [--port] [--token] [--detach]``, ``loom serve stop``,
``loom serve status``: the HTTP control plane (spec §5).

Flags win over the ``server`` settings (``LOOM_SERVER_HOST`` / ``_PORT`` / ``_TOKEN`` / ``_STATE_DIR``).
A non-loopback address without a token is refused before anything starts. ``--detach`` starts the same
command in its own session (output in ``<state dir>/server.out``) and returns once it serves.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Annotated, Any

import typer

from loom_core.surfaces.cli.common import JsonOpt, echo_json

serve_app = typer.Typer(help="Serve the HTTP control plane (JSON API + live status) for remote surfaces.",
                        invoke_without_command=True, add_completion=False, rich_markup_mode=None)
DETACH_WAIT_S = 20.0


def _settings() -> Any:
    from loom_core.config.settings import load_settings

    return load_settings().server


def _state_dir(configured: str | None) -> Path:
    from loom_core.surfaces.plane.lockfile import default_state_dir

    return Path(configured).expanduser() if configured else default_state_dir()


@serve_app.callback()
def serve(ctx: typer.Context,
          project: Annotated[list[Path] | None, typer.Option("--project", "-C", help="Supervise this project "
                                                             "(repeatable; saved projects are re-attached too).",
                                                             exists=True, file_okay=False, resolve_path=True)] = None,
          host: Annotated[str | None, typer.Option("--host", help="Address to listen on (default 127.0.0.1, "
                                                   "server.host).")] = None,
          port: Annotated[int | None, typer.Option("--port", help="Port (default 4317, server.port).")] = None,
          token: Annotated[str | None, typer.Option("--token", help="Bearer token clients must send (or "
                                                    "secret:<name>); required off loopback.")] = None,
          detach: Annotated[bool, typer.Option("--detach", help="Run in the background and return.")] = False,
          telegram: Annotated[bool, typer.Option("--telegram", help="Also run the Telegram bot (`loom bot "
                                                 "telegram`) against this plane; it stops with the plane.")] = False,
          ) -> None:
    """Serve the plane in the foreground until Ctrl-C / SIGTERM (`loom serve stop`)."""
    if ctx.invoked_subcommand is not None:
        return
    from loom_core.surfaces.plane.server import refuse_open_bind, resolve_token

    cfg = _settings()
    host = host or cfg.host
    port = cfg.port if port is None else port
    token = resolve_token(token or cfg.token)
    try:
        refuse_open_bind(host, token)
    except Exception as exc:
        typer.echo(f"loom: {exc}", err=True)
        typer.echo(f"hint: {getattr(exc, 'detail', {}).get('hint', '')}", err=True)
        raise typer.Exit(2) from None
    state_dir = _state_dir(cfg.state_dir)
    if telegram:
        from loom_core.surfaces.cli.bot import preflight

        preflight()  # no token or nobody allowed: refused before the plane starts
    if detach:
        _detach(state_dir, project or [], host, port, token, ["--telegram"] if telegram else [])
        return
    from loom_core.surfaces.plane.server import Plane

    plane = Plane(host=host, port=port, token=token, state_dir=state_dir, permits=cfg.spawn_permits,
                  projects=tuple(project or ()))
    typer.echo(f"loom: serving on {plane.url} (stop with Ctrl-C or `loom serve stop`)", err=True)
    from loom_core.surfaces.cli.bot import beside

    with _sigterm_unwinds(), beside(plane, token) if telegram else nullcontext():
        plane.run()


@contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """uvicorn re-raises the SIGTERM it caught once it has stopped serving; as ``SystemExit(0)`` (instead of the
    default action, which ends the process at once) the plane's own stop (fleet shutdown, lock release) and a
    ``--telegram`` bot's stop still run."""
    import signal

    def unwind(sig: int, frame: Any) -> None:
        raise SystemExit(0)

    before = signal.signal(signal.SIGTERM, unwind)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def _detach(state_dir: Path, projects: list[Path], host: str, port: int, token: str | None,
            extra: list[str] | None = None) -> None:
    from loom_core.surfaces.plane import lockfile

    args = [sys.executable, "-m", "loom_core.surfaces.cli", "serve", "--host", host, "--port", str(port),
            *(extra or [])]
    for p in projects:
        args += ["--project", str(p)]
    env = dict(os.environ)
    if token:
        env["LOOM_SERVER_TOKEN"] = token  # never on the command line (ps shows it)
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / "server.out", "ab") as out:
        child = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env,
                                 start_new_session=True)
    deadline = time.monotonic() + DETACH_WAIT_S
    while time.monotonic() < deadline:
        info = lockfile.read(state_dir)
        if info and info.get("pid") == child.pid and info.get("phase") == "serving":
            typer.echo(f"loom: serving on http://{host}:{info.get('port')} (pid {child.pid})")
            return
        if child.poll() is not None:
            typer.echo(f"loom: the plane did not start (see {state_dir / 'server.out'})", err=True)
            raise typer.Exit(1)
        time.sleep(0.1)
    typer.echo(f"loom: the plane has not started yet (pid {child.pid}; see {state_dir / 'server.out'})", err=True)
    raise typer.Exit(1)


@serve_app.command("stop")
def stop() -> None:
    """Stop the running plane (its supervised projects are re-attached at the next start)."""
    from loom_core.surfaces.plane import lockfile

    result = lockfile.stop(_state_dir(_settings().state_dir))
    typer.echo(f"loom: {result}")
    if result == "timeout":
        raise typer.Exit(1)


@serve_app.command("status")
def status(as_json: JsonOpt = False) -> None:
    """Whether a plane runs, where, and how many projects it supervises (exit 1 when none runs)."""
    from loom_core.surfaces.plane import lockfile

    state_dir = _state_dir(_settings().state_dir)
    info = lockfile.running(state_dir)
    if as_json:
        echo_json(info or {"phase": "stopped"})
    elif info:
        typer.echo(f"serving on {info.get('host')}:{info.get('port')} (pid {info.get('pid')}, phase "
                   f"{info.get('phase')}, {info.get('project_count')} projects, since {info.get('started_at')})")
    else:
        typer.echo("not running")
    if not info:
        raise typer.Exit(1)
