"""``GET /projects/{id}/log`` streams the read model while the supervised task runs (spec §5.3)."""

from __future__ import annotations

import json

from loom_core.control import demo_task
from tests.plane.conftest import TOKEN, client, demo


def test_sse_delivers_status_updates_while_a_demo_task_runs(start_plane, tmp_path):
    plane = start_plane(token=TOKEN, demo_delay_s=0.05)
    proj = demo(tmp_path)
    with client(plane, TOKEN) as c:
        pid = c.post("/projects", json={"dir": str(proj)}).json()["id"]
        snaps = []
        # a browser's EventSource cannot send headers: the query token is accepted on this route
        with client(plane) as anon, anon.stream("GET", f"/projects/{pid}/log", params={"token": TOKEN}) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            assert stream.headers["cache-control"] == "no-cache"
            for line in stream.iter_lines():
                if not line.startswith("data: "):
                    continue
                snap = json.loads(line[len("data: "):])
                snaps.append(snap)
                if len(snaps) == 1:  # the first message comes at once, before any task
                    assert snap["supervised"] is True and snap["status"]["has_task"] is False
                    submitted = c.post("/submit", json={"project": pid, "task": demo_task(), "backend": "demo",
                                                        "policy_preset": "auto"})
                    assert submitted.status_code == 200, submitted.text
                if snap["status"]["status"] == "completed" or len(snaps) > 300:
                    break
    assert snaps[-1]["status"]["status"] == "completed" and snaps[-1]["status"]["verdict"] == "accepted"
    phases = {s["status"]["active_phase"] for s in snaps if s["status"]["has_task"]}
    assert len(phases) >= 2, phases  # updates arrived while it ran, not only the end
    events = {e.get("event") for s in snaps for e in s["log"]}
    assert events & {"spawn-start", "spawn-end", "phase", "complete"}, events
