"""`loom web` / `loom up`: the console served by textual-serve on loopback, checked over real HTTP and
websockets, and in a real browser (headless Chromium via Playwright, see tests/support/web_shot.py)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from loom_core.surfaces.web import is_loopback
from tests.conftest import run_loom
from tests.support import web_shot
from tests.support.web_shot import WebServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, **headers: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.mark.parametrize("host, ok", [("127.0.0.1", True), ("127.9.9.9", True), ("localhost", True),
                                      ("app.localhost", True), ("::1", True), ("[::1]", True), ("0.0.0.0", False),
                                      ("::", False), ("10.0.0.5", False), ("example.com", False), ("", False)])
def test_loopback_names(host, ok):
    assert is_loopback(host) is ok


@pytest.mark.parametrize("command", ["web", "up"])
def test_a_non_loopback_bind_is_refused_before_anything_starts(tmp_path, command):
    cp = run_loom(command, "--host", "0.0.0.0", "--no-open" if command == "up" else "--port=0", cwd=tmp_path,
                  env={"HOME": str(tmp_path)})
    assert cp.returncode == 2
    assert "loopback addresses only (0.0.0.0 is not)" in cp.stderr and "ssh -L" in cp.stderr
    assert "plane" not in cp.stdout and not (tmp_path / ".loom").exists()  # `up` started no plane


def test_guards_and_a_console_over_the_websocket(tmp_path):
    server = WebServer({"HOME": str(tmp_path)})
    try:
        url = server.url
        assert url.startswith("http://127.0.0.1:")
        status, page = get(url + "/")
        assert status == 200 and f'data-session-websocket-url="ws://{url.removeprefix("http://")}/ws"' in page
        assert get(url + "/", Host="evil.example:80")[0] == 403  # DNS rebinding
        assert get(url + "/", Origin="http://evil.example")[0] == 403
        assert get(url + "/", Origin="http://localhost:1")[0] == 403  # another loopback port is another site
        assert get(url + "/", Origin=url.replace("127.0.0.1", "localhost"))[0] == 200  # same port, loopback name
        assert asyncio.run(_websocket(url, origin="https://evil.example")) == 403
        first = asyncio.run(_websocket(url, origin=url))
        assert isinstance(first, bytes) and len(first) > 100  # the console painted its first screen
    finally:
        assert server.stop() == 0
    assert "loom web: stopped" in server.lines[-1]


async def _websocket(url: str, *, origin: str) -> int | bytes:
    """The handshake's refusal status, or the first data the console sends."""
    import aiohttp

    async with aiohttp.ClientSession() as session:
        try:
            async with session.ws_connect(url.replace("http", "ws") + "/ws?width=80&height=24",
                                          headers={"Origin": origin}) as ws:
                got = b""
                while len(got) < 100:
                    msg = await asyncio.wait_for(ws.receive(), 30)
                    if msg.type != aiohttp.WSMsgType.BINARY:
                        continue
                    got += msg.data
                await ws.send_json(["stdin", "\x11"])  # ctrl+q: the console quits
                return got
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status


def test_up_starts_the_plane_then_the_web_console(tmp_path):
    env = {"HOME": str(tmp_path)}
    has_serve = run_loom("serve", "--help", cwd=tmp_path, env=env).returncode == 0
    plane_port = free_port()
    server = WebServer(env, "--no-open", "--plane-port", str(plane_port), command="up")
    try:
        said = "\n".join(server.lines) + server.proc.stdout.readline()
        assert get(server.url + "/")[0] == 200
        assert f"open {server.url} in a browser" in said
        if has_serve:
            assert f"plane: serving on http://127.0.0.1:{plane_port}" in said, said
            status = run_loom("serve", "status", "--json", cwd=tmp_path, env=env)
            assert status.returncode == 0 and json.loads(status.stdout)["phase"] == "serving"
        else:
            assert "plane: `loom serve` is not in this build yet" in said
    finally:
        server.stop()
        if has_serve:
            run_loom("serve", "stop", cwd=tmp_path, env=env)


def test_in_a_real_browser_the_fleet_renders_and_enter_opens_the_project(tmp_path):
    why = web_shot.missing()
    if why:
        pytest.skip(why)
    web_shot.playwright_core()  # installed with npm (.ci/run does it up front); a failure here fails the test
    env = web_shot.build_fleet(tmp_path / "fleet")
    server = WebServer(env)
    try:
        report = web_shot.browse(server.url, tmp_path / "shots")
    finally:
        server.stop()
    assert "error" not in report, report["error"]
    assert report["firstByte"], report  # the page got the console's first frame
    assert report["fleet"], f"the fleet never showed: missing {report['missing']}"
    assert report["project"], f"Enter did not open the project view: missing {report['missing']}"
    assert report["pixelsChanged"]  # and the browser painted it
    for shot in report["shots"]:
        assert Path(shot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for _ in range(100):  # a console quits within a second or two of its websocket closing
        left = processes_with(f"LOOM_HOME={env['LOOM_HOME']}")
        if not left:
            break
        time.sleep(0.1)
    assert left == []  # no console outlived the server


def processes_with(variable: str) -> list[int]:
    """Live processes whose environment holds ``variable`` (``NAME=value``)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and variable.encode() + b"\0" in (proc / "environ").read_bytes():
                if (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                    found.append(int(proc.name))
        except OSError:
            continue
    return found
