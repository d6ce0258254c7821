"""The plane's submit carries a task's budgets: the supervised task stops before the spawn that could pass
its token budget, the read model shows spent / budget and the stop's words, and the watcher notifies it as
parked at the budget gate; a negative budget is a usage error that creates nothing."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from loom_core.control import demo_task
from tests.plane.conftest import client, demo, envelope, wait_for


def test_a_submitted_budget_stops_the_task_and_is_announced(start_plane, tmp_path, monkeypatch):
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
        proj = demo(tmp_path)
        with client(start_plane()) as c:
            envelope(c.post("/submit", json={"project": str(proj), "task": demo_task(), "backend": "demo",
                                             "max_tokens": -1}), 400, "USAGE")
            assert not (proj / ".loom" / "state.db").exists()
            pid = c.post("/submit", json={"project": str(proj), "task": demo_task(), "backend": "demo",
                                          "policy_preset": "auto", "max_tokens": 20000}).json()["id"]
            event = wait_for(lambda: next((e for e in got if e.get("event") == "parked"), None))
            model = wait_for(lambda: (m := c.get(f"/projects/{pid}").json()["status"])["state"] == "over-budget" and m)
        assert event["project_id"] == pid and event["gate"] == "budget" and event["code"] == "BUDGET_EXCEEDED"
        assert event["message"].startswith("stopped before the ") and "20k-token budget" in event["message"]
        assert model["budget"]["max_tokens"] == 20000
        assert model["budget"]["stopped"] == event["message"] and model["budget"]["text"].endswith("/ 20k tokens")
        assert json.loads((proj / ".loom" / "task-exec.json").read_text())["max_tokens"] == 20000
    finally:
        server.shutdown()
