"""GET /projects/{id}/agents and GET /providers/{backend}/models over real HTTP. No network: Ollama is a
local stub server (then a closed port), OpenRouter has no key."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from loom_core.control import LocalControl
from tests.plane.conftest import client, demo, envelope


def test_agents_of_a_project(start_plane, tmp_path):
    plane = start_plane()
    proj = demo(tmp_path)
    with client(plane) as c:
        pid = c.post("/projects", json={"dir": str(proj)}).json()["id"]
        got = c.get(f"/projects/{pid}/agents").json()
        assert got["bundle"] == "code"
        want = LocalControl().models("code")
        assert [a["agent"] for a in got["agents"]] == [r["agent"] for r in want] and want
        for a, r in zip(got["agents"], want, strict=True):
            assert {k: a[k] for k in ("ref", "source", "model")} == {k: r[k] for k in ("ref", "source", "model")}
            if ":" in r["ref"]:
                assert a["family"] == r["ref"].split(":")[0]
        envelope(c.get("/projects/nosuch/agents"), 404, "PROJECT_NOT_FOUND")

        # a catalog project whose bundle is not installed
        other = demo(tmp_path, "odd")
        odd = plane.registry.control.add_project(other)
        odd.bundle = "no-such-bundle"  # as if the catalog named a bundle this install lacks
        envelope(c.get(f"/projects/{odd.id}/agents"), 400, "REGISTRY_UNAVAILABLE")


class _Tags(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        body = json.dumps({"models": [{"name": "qwen3:8b"}, {"model": "llama3"}]}).encode()
        self.send_response(200 if self.path == "/api/tags" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def ollama_stub():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Tags)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_provider_models(start_plane, monkeypatch, ollama_stub):
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    plane = start_plane()
    with client(plane) as c:
        for backend in ("anthropic", "claude-code"):
            got = c.get(f"/providers/{backend}/models").json()
            assert got["backend"] == backend and got["models"] and "reason" not in got
            assert all(m.startswith("anthropic:claude-") for m in got["models"])

        demo_models = c.get("/providers/demo/models").json()
        assert demo_models["models"] == [] and demo_models["reason"]

        no_key = c.get("/providers/openrouter/models").json()
        assert no_key["models"] == [] and "key" in no_key["reason"]

        monkeypatch.setenv("OLLAMA_HOST", ollama_stub)
        live = c.get("/providers/ollama/models").json()
        assert live == {"backend": "ollama", "models": ["ollama:qwen3:8b", "ollama:llama3"]}

        monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{_closed_port()}")
        down = c.get("/providers/ollama/models")
        assert down.status_code == 200
        assert down.json()["models"] == [] and down.json()["reason"]

        envelope(c.get("/providers/nosuch/models"), 404, "BACKEND_NOT_FOUND")
