"""A real MCP session against the real server process: the official SDK's stdio client on a background event
loop, so synchronous tests call tools one after another on one module-scoped session."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from loom_core.config import allowlist

SERVER = [sys.executable, "-m", "loom_core.surfaces.mcp"]


class McpSession:
    def __init__(self, command: list[str], env: dict[str, str], cwd: Path) -> None:
        from mcp import ClientSession, StdioServerParameters
        from mcp.client.stdio import stdio_client

        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self._stop: asyncio.Event | None = None
        ready: asyncio.Future = asyncio.run_coroutine_threadsafe(asyncio.sleep(0), self.loop)
        ready.result()
        params = StdioServerParameters(command=command[0], args=command[1:], env=env, cwd=str(cwd))
        self.stderr = open(cwd / "server.err", "w+")  # noqa: SIM115 - closed in close()

        async def main(started: asyncio.Future) -> None:
            self._stop = asyncio.Event()
            try:
                async with stdio_client(params, errlog=self.stderr) as (r, w), ClientSession(r, w) as s:
                    await s.initialize()
                    self.session = s
                    started.set_result(True)
                    await self._stop.wait()
            except BaseException as exc:
                if not started.done():
                    started.set_exception(exc)
                raise

        async def start() -> None:
            started = self.loop.create_future()
            self._main = asyncio.ensure_future(main(started))
            await started

        asyncio.run_coroutine_threadsafe(start(), self.loop).result(timeout=30)

    def run(self, coro: Any, timeout: float = 60) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=timeout)

    def tools(self) -> list[Any]:
        return self.run(self.session.list_tools()).tools

    def call(self, tool: str, **args: Any) -> dict[str, Any]:
        """Call a tool; it must answer with exactly one JSON text item (never an MCP error)."""
        res = self.run(self.session.call_tool(tool, args))
        assert not res.is_error, res.content
        assert len(res.content) == 1 and res.content[0].type == "text"
        return json.loads(res.content[0].text)

    def close(self) -> None:
        async def stop() -> None:
            self._stop.set()
            await self._main

        try:
            self.run(stop(), timeout=20)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)
            self.stderr.close()


@pytest.fixture(scope="module")
def mcp_home(tmp_path_factory) -> dict[str, Any]:
    """One loom home for the module's server process (the per-test isolation cannot reach into it)."""
    home = tmp_path_factory.mktemp("mcp-home")
    env = {**os.environ, "LOOM_HOME": str(home / "loom"), "XDG_CONFIG_HOME": str(home / "config"),
           "LOOM_USER_DIR": str(home / "dot-loom")}
    env.pop("LOOM_CRASH_AT", None)
    return {"root": home, "env": env, "allow": home / "dot-loom" / "projects.allow"}


@pytest.fixture(scope="module")
def mcp(mcp_home) -> McpSession:
    s = McpSession(SERVER, mcp_home["env"], mcp_home["root"])
    yield s
    s.close()


@pytest.fixture
def allow(mcp_home):
    """Enroll a project in the server's allowlist (what `loom allowlist add` does)."""
    def add(project: Path) -> Path:
        allowlist.add(project, path=mcp_home["allow"])
        return project
    return add
