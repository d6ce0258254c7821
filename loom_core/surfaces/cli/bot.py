"""``loom bot telegram [--detach]``: the Telegram bot (spec §7), a client of a running plane.

Its settings (``[telegram]``, or ``LOOM_TG_BOT_TOKEN`` / ``LOOM_TG_ALLOWED_USERS`` / ``LOOM_TG_API_URL``; the plane
from ``telegram.server_url`` › ``LOOM_SERVER_URL`` › the plane running on this host, its token from
``telegram.server_token`` › ``LOOM_SERVER_TOKEN`` / ``server.token``). Without a token or with nobody allowed it
refuses to start (one line and a hint, exit 1). It stops cleanly on Ctrl-C / SIGTERM. ``--detach`` runs it in
its own session (output in ``<loom home>/bot/telegram.out``) and returns once it polls.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

bot_app = typer.Typer(help="Chat bots that answer gates, submit and ship through the plane.", no_args_is_help=True,
                      add_completion=False, rich_markup_mode=None)
DETACH_WAIT_S = 20.0


def _refuse(message: str, hint: str) -> None:
    typer.echo(f"loom: {message}", err=True)
    typer.echo(f"hint: {hint}", err=True)
    raise typer.Exit(1)


def _secret(ref: str | None) -> str | None:
    if ref and ref.startswith("secret:"):
        from loom_core.config.secrets import SecretStore

        return SecretStore().resolve(ref) or None
    return ref or None


def _plane(cfg: Any) -> tuple[str, str | None]:
    from loom_core.config.settings import load_settings
    from loom_core.surfaces.cli.attach import configured_token, local_plane

    url = cfg.server_url or os.environ.get("LOOM_SERVER_URL", "").strip() or local_plane() \
        or f"http://127.0.0.1:{load_settings().server.port}"
    token = _secret(cfg.server_token) if cfg.server_token else configured_token()
    return url, token


def _pidfile() -> Path:
    from loom_core.config.paths import loom_home

    return loom_home() / "bot" / "telegram.pid"


def _running() -> dict[str, Any] | None:
    from loom_core.procs import alive

    try:
        info = json.loads(_pidfile().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and alive(info.get("pid"), info.get("start_token")) else None


@bot_app.command("telegram")
def telegram(detach: Annotated[bool, typer.Option("--detach", help="Run in the background and return once it "
                                                                   "polls.")] = False) -> None:
    """Run the Telegram bot until Ctrl-C / SIGTERM (long polling: no inbound port)."""
    cfg, token, allowed = preflight()
    if detach:
        _detach()
        return
    url, plane_token = _plane(cfg)
    _serve(token, allowed, cfg.api_url, url, plane_token)


def preflight() -> tuple[Any, str, frozenset[int]]:
    """The bot's settings, token and allowed ids; refuses (exit 1, one line and a hint) without a token, with
    nobody allowed, or while another bot of this home runs."""
    from loom_core.config.settings import load_settings

    cfg = load_settings().telegram
    token = _secret(cfg.token)
    if not token:
        _refuse("no Telegram bot token" + (f" ({cfg.token} is not in the secret store)" if cfg.token else ""),
                "create a bot with BotFather, then `loom secrets set telegram <token>` and "
                "`loom config set telegram.token secret:telegram` (or export LOOM_TG_BOT_TOKEN)")
    allowed = cfg.user_ids()
    if not allowed:
        _refuse("no Telegram user is allowed: the bot would answer nobody",
                "`loom config set telegram.allowed_users <your numeric id>` (or LOOM_TG_ALLOWED_USERS); the bot "
                "tells anyone it refuses their id")
    if (other := _running()) is not None:
        _refuse(f"a Telegram bot already runs (pid {other.get('pid')})", f"stop it first: kill {other.get('pid')}")
    return cfg, token, allowed  # type: ignore[return-value]  # _refuse never returns


@contextlib.contextmanager
def beside(plane: Any, token: str | None) -> Iterator[None]:
    """``loom serve --telegram``: once the plane serves, ``loom bot telegram`` runs against it (its URL and token
    in the child's environment, never on its command line); it is stopped when the plane stops."""
    import threading

    from loom_core.procs import terminate_group
    from loom_core.surfaces.plane import lockfile

    child: list[subprocess.Popen] = []
    done = threading.Event()

    def start() -> None:
        while not done.is_set():
            info = lockfile.read(plane.state_dir) or {}
            if info.get("pid") == os.getpid() and info.get("phase") == "serving":
                host = str(info.get("host") or "127.0.0.1")
                host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
                host = f"[{host}]" if ":" in host else host
                env = {**os.environ, "LOOM_SERVER_URL": f"http://{host}:{info['port']}"}
                env.pop("LOOM_SERVER_TOKEN", None)
                if token:
                    env["LOOM_SERVER_TOKEN"] = token
                child.append(subprocess.Popen([sys.executable, "-m", "loom_core.surfaces.cli", "bot", "telegram"],
                                              stdin=subprocess.DEVNULL, env=env, start_new_session=True))
                return
            time.sleep(0.1)

    starter = threading.Thread(target=start, name="loom-bot-start", daemon=True)
    starter.start()
    try:
        yield
    finally:
        done.set()
        starter.join(5)
        for proc in child:
            terminate_group(proc, grace_s=10.0)
            proc.wait(5)


def _serve(token: str, allowed: frozenset[int], api_url: str, url: str, plane_token: str | None) -> None:
    import asyncio
    import logging
    import signal

    from loom_core.errors import LoomError
    from loom_core.procs import start_token
    from loom_core.surfaces.bot.plane import PlaneLink
    from loom_core.surfaces.bot.state import BotState
    from loom_core.surfaces.bot.telegram import TelegramBot

    logging.basicConfig(level=logging.INFO, format="loom bot: %(message)s", stream=sys.stderr)
    for noisy in ("httpx", "telegram", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    bot = TelegramBot(token=token, allowed=allowed, link=PlaneLink(url, plane_token), state=BotState(),
                      api_url=api_url)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        ready = asyncio.create_task(bot.polling.wait())
        ready.add_done_callback(lambda t: t.cancelled() or _announce(url, len(allowed), start_token(os.getpid())))
        try:
            await bot.serve(stop)
        finally:
            ready.cancel()

    try:
        asyncio.run(main())
    except LoomError as exc:
        _refuse(str(exc), str(exc.detail.get("hint") or "see `loom bot telegram --help`"))
    finally:
        info = _running()
        if info is not None and info.get("pid") == os.getpid():
            _pidfile().unlink(missing_ok=True)
    typer.echo("loom: the Telegram bot stopped", err=True)


def _announce(url: str, allowed: int, token: str | None) -> None:
    from loom_core.config.paths import atomic_write

    atomic_write(_pidfile(), json.dumps({"pid": os.getpid(), "start_token": token, "plane": url}))
    typer.echo(f"loom: Telegram bot polling (plane {url}, {allowed} allowed user(s)); stop with Ctrl-C", err=True)


def _detach() -> None:
    out_path = _pidfile().with_name("telegram.out")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with open(out_path, "ab") as out:
        child = subprocess.Popen([sys.executable, "-m", "loom_core.surfaces.cli", "bot", "telegram"],
                                 stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True)
    deadline = time.monotonic() + DETACH_WAIT_S
    while time.monotonic() < deadline:
        info = _running()
        if info and info.get("pid") == child.pid:
            typer.echo(f"loom: Telegram bot polling (pid {child.pid}; output in {out_path})")
            return
        if child.poll() is not None:
            _refuse("the Telegram bot did not start", f"see {out_path}")
        time.sleep(0.1)
    _refuse(f"the Telegram bot has not started polling yet (pid {child.pid})", f"see {out_path}")
