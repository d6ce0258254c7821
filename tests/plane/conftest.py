"""Plane tests: a real uvicorn on a free loopback port (in a thread), a real httpx client, real demo
projects and stores; sandboxes stay in the test's tmp dir."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from loom_core.control import create_demo_project
from loom_core.surfaces.plane.server import Plane

TOKEN = "s3cret-token"


@pytest.fixture(autouse=True)
def _sandboxes_in_tmp(tmp_path, monkeypatch):
    base = tmp_path / "tmp"
    base.mkdir()
    monkeypatch.setenv("TMPDIR", str(base))
    monkeypatch.setattr(tempfile, "tempdir", str(base))


@pytest.fixture
def start_plane(tmp_path) -> Any:
    planes: list[Plane] = []

    def start(**kw: Any) -> Plane:
        kw.setdefault("state_dir", tmp_path / "server")
        kw.setdefault("port", 0)
        kw.setdefault("sse_period_s", 0.2)
        plane = Plane(**kw).start()
        planes.append(plane)
        return plane

    yield start
    for plane in planes:
        plane.stop()


def client(plane: Plane, token: str | None = None, **kw: Any) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=plane.url, headers=headers, timeout=15, **kw)


def demo(tmp_path: Path, name: str = "shop") -> Path:
    """A demo project, allowlisted (an un-tokened plane adopts only those, spec §5.1 guard 6)."""
    from loom_core.config import allowlist

    proj = tmp_path / name
    create_demo_project(proj)
    allowlist.add(proj)
    return proj


def wait_for(fn: Callable[[], Any], timeout_s: float = 30.0, every_s: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        got = fn()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(every_s)


def envelope(resp: httpx.Response, status: int, code: str) -> None:
    """The one error shape."""
    assert resp.status_code == status, (resp.status_code, resp.text)
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
