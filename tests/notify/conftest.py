"""Real receivers on loopback: an HTTP server in a thread that records what it is sent (and can stall),
and the shared Telegram Bot API stub in its own process."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TELEGRAM_STUB = next((p for p in (ROOT.parent / "shared" / "stubs" / "telegram_stub.py",
                                  Path("/work/shared/stubs/telegram_stub.py")) if p.exists()), None)


class Receiver:
    """``url(path)``; ``got`` = [(path, headers, body)]; ``stall_s`` makes every answer wait that long."""

    def __init__(self, stall_s: float = 0.0, status: int = 200) -> None:
        self.got: list[tuple[str, dict[str, str], dict]] = []
        self.stall_s = stall_s
        self.status = status
        self.released = threading.Event()
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.arrived:
                    receiver.got.append((self.path, dict(self.headers), json.loads(body)))
                    receiver.arrived.notify_all()
                if receiver.stall_s:
                    receiver.released.wait(receiver.stall_s)
                self.send_response(receiver.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def stalled():
    r = Receiver(stall_s=30)
    yield r
    r.close()


@pytest.fixture
def dead_url() -> str:
    """A loopback port nobody listens on."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/hook"


class TelegramStub:
    def __init__(self, proc: subprocess.Popen, url: str) -> None:
        self.proc = proc
        self.url = url

    def get(self, path: str) -> object:
        with urllib.request.urlopen(self.url + path, timeout=15) as r:
            return json.loads(r.read())


@pytest.fixture
def telegram():
    if TELEGRAM_STUB is None:
        pytest.skip("shared/stubs/telegram_stub.py is not beside the repository")
    proc = subprocess.Popen([sys.executable, str(TELEGRAM_STUB), "--port", "0"], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "listening on" in line, line
        yield TelegramStub(proc, line.split("listening on", 1)[1].strip())
    finally:
        proc.terminate()
        proc.wait(5)
