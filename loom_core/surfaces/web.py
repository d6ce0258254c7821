"""Web mode: the console in a browser through textual-serve (``loom web``, ``loom up``).

Every browser tab that connects gets its own ``loom console`` process, spoken to over a websocket. The
server has no login of its own, so it binds loopback addresses only, answers only requests whose
``Host`` is loopback (DNS rebinding), and refuses a cross-site ``Origin`` (a page on another site may open
a websocket to localhost: without this check it could type into the console). Reach it from elsewhere
through an SSH tunnel: ``ssh -L 4318:127.0.0.1:4318 host`` then http://127.0.0.1:4318.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from loom_core.errors import LoomError
from loom_core.surfaces.netloc import is_loopback

DEFAULT_PORT = 4318  # the plane's 4317 + 1
TITLE = "loom"


def split_host(value: str) -> tuple[str, int | None]:
    """``Host`` header → (name, port); a bad port is None."""
    parts = urlsplit(f"//{value}")
    try:
        return parts.hostname or "", parts.port
    except ValueError:
        return parts.hostname or "", None


def check_host(host: str) -> None:
    if not is_loopback(host):
        raise LoomError(f"loom web binds loopback addresses only ({host} is not): it has no login of its own. "
                        "From another machine, tunnel it: ssh -L 4318:127.0.0.1:4318 <this host>", code="USAGE")


def pick_port(host: str, port: int) -> int:
    """``port``, checked free; 0 picks a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError as exc:
            raise LoomError(f"cannot listen on {host}:{port}: {exc.strerror or exc} (another `loom web`? "
                            "choose another --port)") from None
        return s.getsockname()[1]


def url_of(host: str, port: int) -> str:
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def console_command() -> str:
    """The command textual-serve runs per connection: this interpreter's ``loom console``."""
    return shlex.join([sys.executable, "-m", "loom_core.surfaces.cli", "console"])


def _guard() -> Any:
    from aiohttp import web

    @web.middleware
    async def guard(request: Any, handler: Any) -> Any:
        name, port = split_host(request.host)
        if not is_loopback(name):
            return web.Response(status=403, text="loom web answers loopback hosts only\n")
        origin = request.headers.get("Origin")
        if origin is not None:
            o = urlsplit(origin)
            try:
                same = o.scheme in ("http", "https") and is_loopback(o.hostname or "") and o.port == port
            except ValueError:
                same = False
            if not same:
                return web.Response(status=403, text="cross-site request refused\n")
        return await handler(request)

    return guard


def make_server(host: str, port: int, *, command: str | None = None) -> Any:
    """A textual-serve ``Server`` with the loopback guard, quiet on start-up (the caller prints the URL)."""
    from textual_serve.server import Server

    class _Server(Server):
        def initialize_logging(self) -> None:
            super().initialize_logging()
            logging.getLogger("textual-serve").setLevel(logging.WARNING)

        async def _make_app(self) -> Any:
            app = await super()._make_app()
            app.middlewares.append(_guard())
            return app

        async def on_startup(self, app: Any) -> None:
            pass

    return _Server(command or console_command(), host=host, port=port, title=TITLE, public_url=url_of(host, port))


def wait_listening(host: str, port: int, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def open_browser(url: str) -> bool:
    """Best-effort: ``open`` (macOS), ``start`` (Windows), ``xdg-open``; never a text browser in this
    terminal. False when there is nothing to open it with."""
    if sys.platform == "darwin":
        argv = ["open", url]
    elif os.name == "nt":
        argv = ["cmd", "/c", "start", "", url]
    elif shutil.which("xdg-open") and (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        argv = ["xdg-open", url]
    else:
        return False
    try:
        subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    except OSError:
        return False
    return True


def serve(host: str = "127.0.0.1", port: int = DEFAULT_PORT, *, command: str | None = None,
          on_ready: Callable[[str], None] | None = None) -> None:
    """Serve the console until SIGINT/SIGTERM. ``on_ready(url)`` runs on a thread once the port accepts."""
    check_host(host)
    port = pick_port(host, port)
    url = url_of(host, port)
    server = make_server(host, port, command=command)
    if on_ready is not None:
        def ready() -> None:
            if wait_listening(host, port):
                on_ready(url)

        threading.Thread(target=ready, name="loom-web-ready", daemon=True).start()
    server.serve()


__all__ = ["DEFAULT_PORT", "is_loopback", "check_host", "pick_port", "url_of", "console_command", "make_server",
           "open_browser", "serve", "wait_listening"]
