"""``loom web [--port]``: the console in a browser (loopback only); ``loom up``: the HTTP plane in the
background (started unless one runs), then the web console, then the browser (``--no-open`` over SSH).

Only typer at module load; textual-serve and aiohttp are imported by the commands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

DEFAULT_WEB_PORT = 4318  # = loom_core.surfaces.web.DEFAULT_PORT, here without importing it
PortOpt = Annotated[int, typer.Option("--port", help="Port of the web console (0 picks a free one).", min=0,
                                      max=65535)]
HostOpt = Annotated[str, typer.Option("--host", help="Loopback address to bind (it has no login: nothing else "
                                                     "is accepted; tunnel it over SSH instead).")]


def _serve_web(host: str, port: int, *, open_it: bool) -> None:
    from loom_core.surfaces import web

    web.check_host(host)

    def ready(url: str) -> None:
        typer.echo(f"loom web: the console is at {url}  (loopback only; Ctrl-C stops)")
        if not open_it:
            typer.echo(f"open {url} in a browser (over SSH: ssh -L {url.rsplit(':', 1)[1]}:127.0.0.1:"
                       f"{url.rsplit(':', 1)[1]} <host>, then the same URL on your machine)")
        elif web.open_browser(url):
            typer.echo(f"opening {url}")
        else:
            typer.echo(f"no browser to open here: open {url} yourself")

    web.serve(host, port, on_ready=ready)
    typer.echo("loom web: stopped")


def web(port: PortOpt = DEFAULT_WEB_PORT, host: HostOpt = "127.0.0.1") -> None:
    """Serve the console in a browser through textual-serve; prints the URL to open."""
    _serve_web(host, port, open_it=False)


def _loom(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "loom_core.surfaces.cli", *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=timeout)


def ensure_plane(projects: list[Path], plane_port: int | None) -> str:
    """Start ``loom serve --detach`` unless a plane runs; one line saying what happened (never raises:
    without a plane the console still drives in-process)."""
    try:
        status = _loom("serve", "status", "--json")
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"plane: cannot ask `loom serve status` ({exc}); the console drives in-process"
    if status.returncode == 2 and "serve" in status.stderr and ("No such command" in status.stderr
                                                                 or "unknown" in status.stderr.lower()):
        return "plane: `loom serve` is not in this build yet; the console drives tasks in-process"
    if status.returncode == 0:
        try:
            info = json.loads(status.stdout or "{}")
        except ValueError:
            info = {}
        return f"plane: already running on http://{info.get('host')}:{info.get('port')} (pid {info.get('pid')})"
    args = ["serve", "--detach"]
    for p in projects:
        args += ["--project", str(p)]
    if plane_port is not None:
        args += ["--port", str(plane_port)]
    try:
        started = _loom(*args)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"plane: `loom serve --detach` did not answer ({exc}); the console drives in-process"
    said = " ".join((started.stdout + " " + started.stderr).split()).removeprefix("loom: ")
    if started.returncode != 0:
        return f"plane: did not start ({said or 'exit ' + str(started.returncode)}); the console drives in-process"
    return f"plane: {said or 'started'} (`loom serve stop` stops it)"


def up(project: Annotated[list[Path] | None, typer.Option("--project", "-C", help="Supervise this project too "
                                                          "(repeatable).", exists=True, file_okay=False,
                                                          resolve_path=True)] = None,
       plane_port: Annotated[int | None, typer.Option("--plane-port", help="Port of the HTTP plane (default "
                                                      "server.port, 4317).", min=1, max=65535)] = None,
       port: PortOpt = DEFAULT_WEB_PORT, host: HostOpt = "127.0.0.1",
       no_open: Annotated[bool, typer.Option("--no-open", help="Print the URL instead of opening a browser "
                                                               "(over SSH).")] = False) -> None:
    """One command: the HTTP plane in the background, the console in a browser, the browser opened."""
    from loom_core.surfaces import web as web_mode

    web_mode.check_host(host)  # refuse before starting anything
    typer.echo(ensure_plane(list(project or ()), plane_port))
    _serve_web(host, port, open_it=not no_open)


__all__ = ["web", "up", "ensure_plane"]
