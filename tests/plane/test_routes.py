"""Every route of spec §5.2 over real HTTP: its success shape and its error shapes, on a demo project the
plane supervises (parked at its plan gate)."""

from __future__ import annotations

import pytest

from loom_core.control import demo_task
from tests.plane.conftest import client, demo, envelope, wait_for


@pytest.fixture
def parked(start_plane, tmp_path):
    """A plane supervising a demo project whose task waits at gate-plan."""
    plane = start_plane()
    proj = demo(tmp_path)
    c = client(plane)
    resp = c.post("/submit", json={"project": str(proj), "task": demo_task(), "backend": "demo",
                                   "policy_preset": "demo-gates"})
    assert resp.status_code == 200, resp.text
    pid = resp.json()["id"]
    status = wait_for(lambda: (s := c.get(f"/projects/{pid}").json()["status"])["parked_gate"] and s)
    assert status["parked_gate"]["gate"] == "gate-plan"
    yield plane, c, pid, proj, status
    c.close()


def test_submit_replays_the_same_text_and_refuses_another(parked):
    plane, c, pid, proj, status = parked
    again = c.post("/submit", json={"project": pid, "task": demo_task(), "backend": "demo"})
    assert again.status_code == 200
    body = again.json()
    assert body["replayed"] is True and body["task_id"] == status["task_id"]
    assert set(body) == {"id", "dir", "task_id", "driver_state_id", "status", "replayed"}
    envelope(c.post("/submit", json={"project": pid, "task": "Something else entirely", "backend": "demo"}),
             409, "PROJECT_TASK_ACTIVE")
    envelope(c.post("/submit", json={"task": "x"}), 400, "PROJECT_REQUIRED")
    envelope(c.post("/submit", json={"project": pid}), 400, "TASK_REQUIRED")
    envelope(c.post("/submit", json={"project": "nosuchid", "task": "x"}), 404, "PROJECT_NOT_FOUND")


def test_project_reads(parked):
    plane, c, pid, proj, status = parked
    listed = c.get("/projects").json()
    assert [(p["id"], p["dir"], p["supervised"]) for p in listed] == [(pid, str(proj.resolve()), True)]
    assert status["has_task"] and status["status"] == "in_progress" and status["project_dir"] == str(proj.resolve())
    assert set(status) >= {"task_id", "task_label", "task", "verdict", "flow", "active_phase", "parked_gate",
                           "pending_agents", "stalled", "started_at", "ended_at"}
    envelope(c.get("/projects/nosuch"), 404, "PROJECT_NOT_FOUND")
    assert c.get("/health").json() == {"ok": True, "projects": 1}

    assert c.get(f"/projects/{pid}/history").json() == {"tasks": []}
    trace = c.get(f"/projects/{pid}/trace").json()
    assert trace["archived"] is False and trace["agents"]
    envelope(c.get(f"/projects/{pid}/trace", params={"task": "t-none"}), 404, "ARCHIVE_NOT_FOUND")
    envelope(c.get(f"/projects/{pid}/trace", params={"task": "../x"}), 400, "BAD_TASK_ID")

    run_id = trace["agents"][0]["agent_run_id"]
    spawn = c.get(f"/projects/{pid}/spawn/{run_id}").json()
    assert spawn["run_id"] == run_id and spawn["transcript"]
    envelope(c.get(f"/projects/{pid}/spawn/no-such-run"), 404, "TRANSCRIPT_NOT_FOUND")

    docs = c.get(f"/projects/{pid}/artifacts").json()["artifacts"]
    assert ".loom/work/plan.md" in [d["path"] for d in docs]
    assert all(set(d) == {"path", "size", "modified_at"} for d in docs)
    plan = c.get(f"/projects/{pid}/artifact", params={"path": ".loom/work/plan.md"}).json()
    assert plan["content"] and plan["truncated"] is False
    envelope(c.get(f"/projects/{pid}/artifact", params={"path": "../../etc/passwd"}), 400, "BAD_ARTIFACT_PATH")
    envelope(c.get(f"/projects/{pid}/artifact", params={"path": ".loom/work/none.md"}), 404, "ARTIFACT_NOT_FOUND")


def test_answer_push_merge_cancel(parked):
    plane, c, pid, proj, status = parked
    gate = status["parked_gate"]
    envelope(c.post(f"/projects/{pid}/answer", json={"decision": "accept"}), 400, "ANSWER_INVALID")
    envelope(c.post(f"/projects/{pid}/answer", json={"gate_event_id": gate["gate_event_id"], "decision": "maybe"}),
             400, "ANSWER_INVALID")
    envelope(c.post(f"/projects/{pid}/answer", json={"gate_event_id": "gev-stale", "decision": "accept"}),
             409, "GATE_ALREADY_ANSWERED")
    envelope(c.post("/projects/nosuch/answer", json={"gate_event_id": "g", "decision": "accept"}), 404,
             "PROJECT_NOT_FOUND")
    ok = c.post(f"/projects/{pid}/answer", json={"gate_event_id": gate["gate_event_id"], "decision": "accept"})
    assert ok.status_code == 200 and ok.json()["id"] == pid
    envelope(c.post(f"/projects/{pid}/answer", json={"gate_event_id": gate["gate_event_id"], "decision": "accept"}),
             409, "GATE_ALREADY_ANSWERED")
    # the watcher drives on to the next gate
    nxt = wait_for(lambda: (g := c.get(f"/projects/{pid}").json()["status"]["parked_gate"]) and
                   g["gate_event_id"] != gate["gate_event_id"] and g)
    assert nxt["gate"] != "gate-plan"

    pushed = c.post(f"/projects/{pid}/push").json()  # a refusal is a 200 outcome
    assert pushed["pushed"] is False and pushed["branch"].startswith("loom/") and pushed["reason"]
    merged = c.post(f"/projects/{pid}/merge").json()
    assert merged["merged"] is False and merged["reason"]

    cancelled = c.post(f"/projects/{pid}/cancel").json()
    assert cancelled["cancelled"] is True and cancelled["task_id"] == status["task_id"] and cancelled["archived"]
    assert c.get("/projects").json() == []  # cancel pauses: the project leaves the supervised set
    after = c.get(f"/projects/{pid}")  # still known through the catalog? no: it never was in it
    assert after.status_code in (200, 404)
    envelope(c.post(f"/projects/{pid}/cancel"), 404, "PROJECT_NOT_FOUND")


def test_supervise_and_unsupervise(start_plane, tmp_path):
    plane = start_plane()
    proj = demo(tmp_path, "other")
    with client(plane) as c:
        made = c.post("/projects", json={"dir": str(proj)})
        assert made.status_code == 201 and made.json()["dir"] == str(proj.resolve())
        pid = made.json()["id"]
        assert c.post("/projects", json={"dir": str(proj)}).status_code == 201  # idempotent
        got = c.get(f"/projects/{pid}").json()
        assert got["supervised"] is True and got["status"]["has_task"] is False
        assert c.delete(f"/projects/{pid}").json() == {"id": pid, "unregistered": True}
        envelope(c.delete(f"/projects/{pid}"), 404, "PROJECT_NOT_FOUND")
        envelope(c.post("/projects", json={"dir": 7}), 400, "DIR_REQUIRED")


def test_settings_secrets_providers_workspace(start_plane, tmp_path, no_keyring):
    plane = start_plane()
    proj = demo(tmp_path, "cat")
    with client(plane) as c:
        doc = c.get("/config").json()
        assert doc["server"]["port"] == 4317 and "general" in doc
        doc["general"]["max_spawns"] = 12
        assert c.put("/config", json=doc).json()["general"]["max_spawns"] == 12
        assert c.get("/config").json()["general"]["max_spawns"] == 12
        envelope(c.put("/config", json={"general": {"max_spawns": -1}}), 400, "BAD_CONFIG")
        assert "properties" in c.get("/config/schema").json()

        stored = c.put("/secrets/openrouter", json={"value": "sk-or-123456789"}).json()
        assert stored["stored"] is True and stored["ref"] == "secret:openrouter" and "123456789" not in stored["masked"]
        listed = c.get("/secrets").json()["secrets"]
        assert "openrouter" in listed and "123456789" not in str(listed)
        envelope(c.put("/secrets/x", json={}), 400, "BAD_REQUEST")

        prov = c.get("/providers").json()
        assert prov["backend_mode"] == "auto" and "demo" in [p["name"] for p in prov["providers"]]

        added = c.post("/workspace/projects", json={"dir": str(proj), "label": "Cat"})
        assert added.status_code == 201 and added.json()["label"] == "Cat"
        pid = added.json()["id"]
        assert [p["id"] for p in c.get("/workspace").json()["projects"]] == [pid]
        assert c.get(f"/projects/{pid}").json()["supervised"] is False  # a catalog project: known, not driven
        envelope(c.post("/workspace/projects", json={}), 400, "DIR_REQUIRED")
        assert c.delete(f"/workspace/projects/{pid}").json() == {"id": pid, "removed": True}
        envelope(c.delete(f"/workspace/projects/{pid}"), 404, "NOT_IN_CATALOG")
        envelope(c.get("/config/nope"), 404, "NOT_FOUND")
        envelope(c.patch("/config", json={}), 405, "METHOD_NOT_ALLOWED")


def test_an_unexpected_failure_is_one_internal_envelope(start_plane, tmp_path, monkeypatch):
    plane = start_plane()
    proj = demo(tmp_path, "boom")

    def broken(ref):  # a bug in a verb: the client sees the envelope, never a traceback
        raise RuntimeError("secret detail of a bug")

    with client(plane) as c:
        pid = c.post("/projects", json={"dir": str(proj)}).json()["id"]
        monkeypatch.setattr(plane.registry.control, "history", broken)
        resp = c.get(f"/projects/{pid}/history")
        envelope(resp, 500, "INTERNAL")
        assert "secret detail" not in resp.text
