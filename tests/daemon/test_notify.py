"""The supervisor's notifications through the real notifier (spec §4.8): a terminal error reaches a local
webhook receiver as ``failed``; a dead receiver neither slows nor breaks supervision, and its failure is
logged as ``notify-failed``."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from loom_core.surfaces.cli.daemon import _notifier
from loom_core.surfaces.daemon import DaemonLog, Supervisor, read_log
from tests.daemon.support import FakeClock, ScriptedControl, accepted, error


@pytest.fixture
def receiver():
    got: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", got
    server.shutdown()


def test_a_terminal_error_is_posted_to_the_webhook_as_failed(tmp_path, monkeypatch, receiver):
    url, got = receiver
    monkeypatch.setenv("LOOM_NOTIFY_WEBHOOK_URL", url)
    log = DaemonLog.for_project(tmp_path)
    notifier = _notifier(log)
    result = Supervisor(ScriptedControl([error("EXECUTOR_AUTH_FAILED")]), tmp_path, clock=FakeClock(),
                        notifier=notifier, log=log).run()
    notifier.flush(5)
    assert result == "failed"
    assert [e["event"] for e in got] == ["failed"]
    assert got[0]["code"] == "EXECUTOR_AUTH_FAILED" and got[0]["task_id"] == "t-1"


def test_a_dead_receiver_does_not_slow_or_break_supervision(tmp_path, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    monkeypatch.setenv("LOOM_NOTIFY_WEBHOOK_URL", f"http://127.0.0.1:{port}/hook")
    log = DaemonLog.for_project(tmp_path)
    notifier = _notifier(log)
    started = time.monotonic()
    result = Supervisor(ScriptedControl([error("EXECUTOR_FAILED"), accepted()]), tmp_path, clock=FakeClock(),
                        notifier=notifier, log=log).run()
    assert result == "accepted" and time.monotonic() - started < 1.0
    notifier.flush(10)
    failed = [e for e in read_log(tmp_path) if e["event"] == "notify-failed"]
    assert failed and failed[0]["detail"]["channel"] == "webhook"
