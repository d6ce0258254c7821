"""Bot tests: python-telegram-bot, unmodified, against the Telegram stub (a subprocess per test: it plays the
user), and a real plane (``loom serve`` in a subprocess, one for the folder) with demo projects on the demo backend.
The bot itself runs on a thread with its own event loop, stopped the way a signal stops it."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from loom_core.control import create_demo_project

STUB = Path(__file__).resolve().parents[1] / "support" / "telegram_stub.py"  # shared/stubs' copy, unmodified
PLANE_TOKEN = "plane-s3cret"
ME = 42  # the allowed user (in a private chat, chat id = user id)


def wait_for(fn: Callable[[], Any], timeout_s: float = 20.0, every_s: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        got = fn()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(every_s)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stub:
    """The Telegram stub and the user it plays."""

    def __init__(self, port: int = 0) -> None:
        self.proc = subprocess.Popen([sys.executable, str(STUB), "--port", str(port)], stdout=subprocess.PIPE,
                                     text=True)
        self.url = self.proc.stdout.readline().strip().rsplit(" ", 1)[-1]
        self.http = httpx.Client(base_url=self.url, timeout=30)

    def say(self, text: str, chat: int = ME) -> None:
        self.http.post("/_fake/message", json={"chat_id": chat, "text": text}).raise_for_status()

    def tap(self, message_id: int, data: str, chat: int = ME) -> None:
        self.http.post("/_fake/click", json={"chat_id": chat, "message_id": message_id, "data": data}
                       ).raise_for_status()

    def calls(self, method: str | None = None) -> list[dict[str, Any]]:
        return [c for c in self.http.get("/_fake/calls").json() if method is None or c["method"] == method]

    def messages(self, chat: int = ME) -> list[dict[str, Any]]:
        return [m for m in self.http.get("/_fake/messages").json() if m["chat"]["id"] == chat]

    def message(self, needle: str, chat: int = ME, timeout_s: float = 20.0, after: int = 0) -> dict[str, Any]:
        """The first bot message in ``chat`` (id above ``after``) whose text has ``needle`` (waits for it)."""
        return wait_for(lambda: next((m for m in self.messages(chat) if m["message_id"] > after and
                                      needle in (m.get("text") or m.get("caption") or "")), None), timeout_s)

    def toasts(self) -> list[str | None]:
        return [c["params"].get("text") for c in self.calls("answerCallbackQuery")]

    def close(self) -> None:
        self.http.close()
        self.proc.terminate()
        self.proc.wait(5)


class PlaneProc:
    """``loom serve`` in a subprocess with its own homes, the demo backend and the demo-gates policy."""

    def __init__(self, root: Path, *, port: int = 0, token: str | None = PLANE_TOKEN) -> None:
        self.root = root
        (root / "tmp").mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "LOOM_HOME": str(root / "home"), "XDG_CONFIG_HOME": str(root / "config"),
                    "LOOM_USER_DIR": str(root / "dot"), "TMPDIR": str(root / "tmp"),
                    "LOOM_SERVER_STATE_DIR": str(root / "server"), "LOOM_BACKEND": "demo",
                    "LOOM_GENERAL__DEFAULT_POLICY": "demo-gates", "GIT_CONFIG_NOSYSTEM": "1"}
        self.env.pop("LOOM_SERVER_TOKEN", None)
        args = [sys.executable, "-m", "loom_core.surfaces.cli", "serve", "--port", str(port)]
        if token:
            args += ["--token", token]
        self.token = token
        self.proc = subprocess.Popen(args, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        info = wait_for(self._serving, 30)
        self.url = f"http://127.0.0.1:{info['port']}"
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def _serving(self) -> dict[str, Any] | None:
        if self.proc.poll() is not None:
            raise AssertionError(f"the plane exited: {self.proc.stderr.read().decode()}")
        try:
            info = json.loads((self.root / "server" / "server.json").read_text())
        except (OSError, ValueError):
            return None
        return info if info.get("phase") == "serving" and info.get("pid") == self.proc.pid else None

    def demo(self, name: str) -> tuple[str, Path]:
        """A demo project in the plane's catalog: ``(id, dir)``."""
        proj = self.root / name
        create_demo_project(proj)
        got = self.http.post("/workspace/projects", json={"dir": str(proj), "label": name})
        assert got.status_code == 201, got.text
        return got.json()["id"], proj

    def status(self, pid: str) -> dict[str, Any]:
        return self.http.get(f"/projects/{pid}").json()["status"]

    def close(self) -> None:
        self.http.close()
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class RunningBot:
    """A :class:`TelegramBot` serving on a thread until :meth:`stop`."""

    def __init__(self, bot: Any) -> None:
        self.bot = bot
        self.loop = asyncio.new_event_loop()
        self.error: BaseException | None = None
        self.stop_event: asyncio.Event | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def main() -> None:
            self.stop_event = asyncio.Event()
            await self.bot.serve(self.stop_event)

        try:
            self.loop.run_until_complete(main())
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            self.error = exc

    def stop(self, timeout_s: float = 15.0) -> float:
        t0 = time.monotonic()
        if self.stop_event is not None and self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(timeout_s)
        assert not self.thread.is_alive(), "the bot did not stop"
        return time.monotonic() - t0


@pytest.fixture(scope="session")
def plane(tmp_path_factory):
    """One plane for the folder (each test uses its own demo project)."""
    p = PlaneProc(tmp_path_factory.mktemp("plane"))
    yield p
    p.close()


@pytest.fixture
def stub():
    s = Stub()
    yield s
    s.close()


@pytest.fixture
def start_bot(stub, tmp_path):
    """Start a bot against the stub: ``start_bot(plane_url, plane_token, allowed=..., **kw)``; waits until it
    polls (its first ``getUpdates``) so what the user says next is not dropped."""
    from loom_core.surfaces.bot.plane import PlaneLink
    from loom_core.surfaces.bot.state import BotState
    from loom_core.surfaces.bot.telegram import TelegramBot

    running: list[RunningBot] = []

    def start(url: str, token: str | None, *, allowed: frozenset[int] = frozenset({ME}), link_cls: Any = PlaneLink,
              **kw: Any) -> Any:
        kw.setdefault("watch_period_s", 0.25)
        kw.setdefault("poll_timeout_s", 2.0)
        bot = TelegramBot(token="123:TEST", allowed=allowed, link=link_cls(url, token, timeout_s=10),
                          state=BotState(tmp_path / "bot" / "telegram.json"), api_url=stub.url, **kw)
        polls = len(stub.calls("getUpdates"))
        rb = RunningBot(bot)
        running.append(rb)
        got = stub.http.get("/_fake/wait", params={"method": "getUpdates", "count": polls + 1, "timeout": 20}).json()
        assert got["ok"], rb.error
        return rb

    yield start
    for rb in running:
        rb.stop()
