"""The plane's watchers notify (spec §4.8): a supervised task parking at a gate reaches a webhook, tagged
with its project id."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from loom_core.control import demo_task
from tests.plane.conftest import client, demo, wait_for


def test_a_parked_task_notifies_with_its_project_id(start_plane, tmp_path, monkeypatch):
    got: list[dict] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("LOOM_NOTIFY_WEBHOOK_URL", f"http://127.0.0.1:{server.server_port}/hook")
    try:
        plane = start_plane()
        with client(plane) as c:
            pid = c.post("/submit", json={"project": str(demo(tmp_path)), "task": demo_task(), "backend": "demo",
                                          "policy_preset": "demo-gates"}).json()["id"]
            event = wait_for(lambda: next((e for e in got if e.get("event") == "parked"), None))
        assert event["project_id"] == pid and event["gate"] == "gate-plan" and event["task_id"]
    finally:
        server.shutdown()
