"""GET/PUT /projects/{id}/config: the project's own .loom/loom.json over real HTTP (masked reads, validated
atomic writes, masked values sent back keep the stored ones)."""

from __future__ import annotations

import json

from loom_core.config import allowlist
from tests.plane.conftest import client, demo, envelope

HOOK = "https://hooks.example.test/T000/B000/abcdefghijklmnop"


def test_read_and_write_the_project_settings(start_plane, tmp_path):
    plane = start_plane()
    proj = demo(tmp_path)
    loom_json = proj / ".loom" / "loom.json"
    on_disk = json.loads(loom_json.read_text())  # the demo project's checks
    with client(plane) as c:
        pid = c.post("/projects", json={"dir": str(proj)}).json()["id"]
        assert c.get(f"/projects/{pid}/config").json() == on_disk

        doc = {**on_disk, "backend": "demo", "notify": {"webhook_url": HOOK, "slack_url": "secret:slack",
                                                        "timeout_ms": 500},
               "bundles": {"code": {"agents": {"planner": "anthropic:claude-sonnet-4-5"},
                                    "fallbacks": {"planner": ["ollama:qwen3"]}}}, "x-unknown": {"kept": True}}
        saved = c.put(f"/projects/{pid}/config", json=doc)
        assert saved.status_code == 200, saved.text
        masked = saved.json()
        assert masked["notify"]["webhook_url"] != HOOK and masked["notify"]["webhook_url"].endswith(HOOK[-4:])
        assert masked["notify"]["slack_url"] == "secret:slack"  # a reference is not a secret
        assert json.loads(loom_json.read_text()) == doc  # written as sent
        assert c.get(f"/projects/{pid}/config").json() == masked
        assert not list(loom_json.parent.glob(".loom.json.*.tmp"))  # atomic: no temp file left behind

        # the form sends the masked value back: the stored one stays
        masked["backend"] = "ollama"
        assert c.put(f"/projects/{pid}/config", json=masked).status_code == 200
        stored = json.loads(loom_json.read_text())
        assert stored["notify"]["webhook_url"] == HOOK and stored["backend"] == "ollama"


def test_bad_documents_are_refused_and_nothing_is_written(start_plane, tmp_path):
    plane = start_plane()
    proj = demo(tmp_path)
    loom_json = proj / ".loom" / "loom.json"
    before = loom_json.read_text()
    with client(plane) as c:
        pid = c.post("/projects", json={"dir": str(proj)}).json()["id"]
        for bad, key in ((({"backend": "nope"}), "backend"), ({"checks": {"test": 7}}, "checks.test"),
                         ({"checks": ["pytest"]}, "checks"), ({"checks": {"deploy": "make"}}, "checks.deploy"),
                         ({"bundles": {"code": {"agents": {"planner": "nosuchfamily:x"}}}},
                          "bundles.code.agents.planner"),
                         ({"notify": {"timeout_ms": -1}}, "notify.timeout_ms"), ({"harness": "vim"}, "harness"),
                         ({"notes": "sk-ant-api03-abcdefghijklmnopqrstuvwxyz"}, "notes")):
            resp = c.put(f"/projects/{pid}/config", json=bad)
            envelope(resp, 400, "BAD_CONFIG")
            assert key in resp.json()["error"]["message"], (bad, resp.text)
            assert "sk-ant-api03" not in resp.text
        assert loom_json.read_text() == before
        envelope(c.get("/projects/nosuch/config"), 404, "PROJECT_NOT_FOUND")
        envelope(c.put("/projects/nosuch/config", json={}), 404, "PROJECT_NOT_FOUND")

        loom_json.write_text("{not json")  # a broken file: the read says so; a valid save replaces it
        envelope(c.get(f"/projects/{pid}/config"), 400, "BAD_CONFIG")
        assert c.put(f"/projects/{pid}/config", json={"checks": "none"}).json() == {"checks": "none"}
        assert json.loads(loom_json.read_text()) == {"checks": "none"}


def test_a_project_without_settings(start_plane, tmp_path):
    plane = start_plane()
    proj = tmp_path / "bare"
    proj.mkdir()
    allowlist.add(proj)  # an un-tokened plane adopts only allowlisted projects
    with client(plane) as c:
        pid = c.post("/projects", json={"dir": str(proj)}).json()["id"]
        assert c.get(f"/projects/{pid}/config").json() == {}
        assert c.put(f"/projects/{pid}/config", json={"checks": {"test": "pytest -q"}}).status_code == 200
        assert json.loads((proj / ".loom" / "loom.json").read_text()) == {"checks": {"test": "pytest -q"}}
