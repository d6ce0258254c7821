"""The guards of spec §5.1 over real HTTP: token, Host, Origin, body size, JSON only, one error envelope."""

from __future__ import annotations

import pytest

from tests.plane.conftest import TOKEN, client, envelope

# every route (a placeholder id: the guards answer before any handler looks it up)
ROUTES = [
    ("GET", "/projects"), ("POST", "/projects"), ("POST", "/submit"), ("GET", "/projects/abc"),
    ("DELETE", "/projects/abc"), ("POST", "/projects/abc/answer"), ("POST", "/projects/abc/cancel"),
    ("POST", "/projects/abc/push"), ("POST", "/projects/abc/merge"), ("GET", "/projects/abc/log"),
    ("GET", "/projects/abc/history"), ("GET", "/projects/abc/trace"), ("GET", "/projects/abc/artifacts"),
    ("GET", "/projects/abc/artifact"), ("GET", "/projects/abc/spawn/run-1"), ("GET", "/config"),
    ("PUT", "/config"), ("GET", "/config/schema"), ("GET", "/secrets"), ("PUT", "/secrets/x"),
    ("GET", "/providers"), ("GET", "/workspace"), ("POST", "/workspace/projects"),
    ("DELETE", "/workspace/projects/abc"), ("GET", "/fs/list"), ("GET", "/projects/abc/agents"),
    ("GET", "/projects/abc/config"), ("PUT", "/projects/abc/config"),
    ("GET", "/providers/ollama/models"), ("GET", "/no/such/route"),
]


@pytest.fixture
def tokened(start_plane):
    return start_plane(token=TOKEN)


def test_every_route_needs_the_token_but_health(tokened):
    with client(tokened) as anon, client(tokened, "wrong-token") as wrong:
        for method, path in ROUTES:
            envelope(anon.request(method, path), 401, "UNAUTHORIZED")
            envelope(wrong.request(method, path), 401, "UNAUTHORIZED")
            envelope(anon.request(method, path, headers={"Authorization": f"Basic {TOKEN}"}), 401, "UNAUTHORIZED")
        assert anon.get("/health").json() == {"ok": True, "projects": 0}
    with client(tokened, TOKEN) as good:
        assert good.get("/projects").json() == []
        envelope(good.get("/no/such/route"), 404, "NOT_FOUND")


def test_query_token_only_on_the_sse_route(tokened):
    with client(tokened) as anon:
        envelope(anon.get("/projects", params={"token": TOKEN}), 401, "UNAUTHORIZED")
        envelope(anon.get("/config", params={"token": TOKEN}), 401, "UNAUTHORIZED")
        # on the log route the query token passes the guard (the project is unknown: a JSON 404)
        envelope(anon.get("/projects/abc/log", params={"token": TOKEN}), 404, "PROJECT_NOT_FOUND")
        envelope(anon.get("/projects/abc/log", params={"token": "nope"}), 401, "UNAUTHORIZED")


def test_without_a_token_only_loopback_host_names(start_plane):
    plane = start_plane()
    with client(plane) as c:
        assert c.get("/projects").status_code == 200
        for host in ("evil.example", "0.0.0.0", f"attacker.test:{plane.port}", "127.0.0.1.nip.io"):
            envelope(c.get("/projects", headers={"Host": host}), 403, "FORBIDDEN_HOST")
        envelope(c.get("/health", headers={"Host": "evil.example"}), 403, "FORBIDDEN_HOST")
        for host in (f"localhost:{plane.port}", "app.localhost", "127.0.0.2", f"[::1]:{plane.port}"):
            assert c.get("/projects", headers={"Host": host}).status_code == 200, host


def test_cross_origin_mutations_are_refused(tokened):
    own = f"http://127.0.0.1:{tokened.port}"
    with client(tokened, TOKEN) as c:
        for origin in ("http://evil.example", "null", "not a url", f"http://127.0.0.1:{tokened.port + 1}"):
            envelope(c.post("/projects", json={}, headers={"Origin": origin}), 403, "FORBIDDEN_ORIGIN")
            envelope(c.put("/config", json={}, headers={"Origin": origin}), 403, "FORBIDDEN_ORIGIN")
            envelope(c.delete("/projects/abc", headers={"Origin": origin}), 403, "FORBIDDEN_ORIGIN")
        # a read may come from anywhere (the token guards it); the own origin and no origin may mutate
        assert c.get("/projects", headers={"Origin": "http://evil.example"}).status_code == 200
        envelope(c.post("/projects", json={}, headers={"Origin": own}), 400, "DIR_REQUIRED")
        envelope(c.post("/projects", json={}), 400, "DIR_REQUIRED")
        # the Origin check comes before the token: a cross-site form never learns whether a token is right
        with client(tokened) as anon:
            envelope(anon.post("/projects", json={}, headers={"Origin": "http://evil.example"}), 403,
                     "FORBIDDEN_ORIGIN")


def test_body_limits_and_json_only(tokened):
    big = b'{"dir": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    with client(tokened, TOKEN) as c:
        resp = c.post("/projects", content=big, headers={"Content-Type": "application/json"})
        envelope(resp, 413, "PAYLOAD_TOO_LARGE")

        def chunks():  # streamed, no Content-Length: counted as it arrives
            for i in range(0, len(big), 64 * 1024):
                yield big[i:i + 64 * 1024]

        envelope(c.post("/projects", content=chunks(), headers={"Content-Type": "application/json"}), 413,
                 "PAYLOAD_TOO_LARGE")
        envelope(c.post("/projects", content=b"dir=/tmp", headers={"Content-Type": "application/x-www-form-urlencoded"}),
                 415, "UNSUPPORTED_MEDIA_TYPE")
        envelope(c.post("/projects", content=b'{"dir": ', headers={"Content-Type": "application/json"}), 400,
                 "BAD_JSON")
        envelope(c.post("/projects", content=b'["a list"]', headers={"Content-Type": "application/json"}), 400,
                 "BAD_JSON")
        envelope(c.post("/projects"), 400, "DIR_REQUIRED")  # an empty body is {}
        envelope(c.post("/projects", content=b'{"dir": "/no/such/dir"}',
                        headers={"Content-Type": "application/json; charset=utf-8"}), 404, "DIR_NOT_FOUND")
