"""Which plane the console attaches to: ``--server URL [--token T]``, else a plane running on this host
(its ``server.json``), else none (the console drives in-process, as without a plane)."""

from __future__ import annotations

import os

import typer


def local_plane() -> str | None:
    """The URL of a plane serving on this host (from ``~/.loom/server/server.json``), or ``None``."""
    from loom_core.surfaces.plane import lockfile

    info = lockfile.running(lockfile.default_state_dir())
    if not info or info.get("phase") != "serving":
        return None
    host = str(info.get("host") or "127.0.0.1")
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{info.get('port')}"


def configured_token() -> str | None:
    """``LOOM_SERVER_TOKEN`` or the ``server.token`` setting (a ``secret:<name>`` is resolved)."""
    from loom_core.errors import LoomError
    from loom_core.surfaces.plane.server import resolve_token

    token = os.environ.get("LOOM_SERVER_TOKEN")
    if not token:
        try:
            from loom_core.config.settings import load_settings

            token = load_settings().server.token
        except (LoomError, AttributeError):
            token = None
    try:
        return resolve_token(token)
    except LoomError:
        return None


def plane_to_attach(server: str | None, token: str | None) -> tuple[str | None, str | None]:
    """``(url, token)`` of the plane the console attaches to, or ``(None, None)``. An explicit ``--server``
    that does not answer is an error; a stale ``server.json`` is ignored."""
    from loom_core.control.http import HttpControl
    from loom_core.errors import LoomError

    url = server or local_plane()
    if not url:
        return None, None
    token = token or configured_token()
    probe = HttpControl(url, token, timeout_s=3.0)
    try:
        probe.fleet()  # health and the token at once
    except LoomError as exc:
        if server:
            typer.echo(f"loom: cannot attach to the plane at {url}: {exc}", err=True)
            raise typer.Exit(1) from None
        typer.echo(f"loom: a plane is running at {url} but does not answer ({exc}); driving in-process", err=True)
        return None, None
    finally:
        probe.close()
    return url, token
