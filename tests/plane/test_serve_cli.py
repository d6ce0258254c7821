"""``loom serve``: refuses an open bind without a token before anything starts; --detach, status, the
server.json lock against a second plane, stop. Real processes."""

from __future__ import annotations

import json

import httpx

from tests.conftest import run_loom


def test_an_open_bind_without_a_token_is_refused_before_anything_starts(tmp_path):
    state = tmp_path / "server"
    env = {"LOOM_SERVER_STATE_DIR": str(state), "LOOM_SERVER_TOKEN": ""}
    for args, extra in ((["serve", "--host", "0.0.0.0"], {}), (["serve"], {"LOOM_SERVER_HOST": "::"})):
        r = run_loom(*args, cwd=tmp_path, env={**env, **extra}, timeout=30)
        assert r.returncode == 2, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 2 and lines[0].startswith("loom: refusing to listen on") and "without a token" in lines[0]
        assert lines[1].startswith("hint: ") and "--token" in lines[1]
        assert not state.exists()  # no lock, no state, nothing bound


def test_detach_status_lock_and_stop(tmp_path):
    env = {"LOOM_SERVER_STATE_DIR": str(tmp_path / "server"), "LOOM_SERVER_TOKEN": "tok-123"}
    started = run_loom("serve", "--port", "0", "--detach", cwd=tmp_path, env=env, timeout=60)
    try:
        assert started.returncode == 0, started.stderr
        url = started.stdout.strip().split("serving on ")[1].split(" ")[0]
        assert httpx.get(url + "/health").json() == {"ok": True, "projects": 0}
        assert httpx.get(url + "/projects").status_code == 401
        assert httpx.get(url + "/projects", headers={"Authorization": "Bearer tok-123"}).json() == []

        status = run_loom("serve", "status", "--json", cwd=tmp_path, env=env, timeout=30)
        info = json.loads(status.stdout)
        assert status.returncode == 0 and info["phase"] == "serving" and url.endswith(f":{info['port']}")
        assert set(info) == {"pid", "host", "port", "started_at", "updated_at", "phase", "project_count",
                             "start_token"}

        second = run_loom("serve", "--port", "0", cwd=tmp_path, env=env, timeout=30)
        assert second.returncode == 1 and "already running" in second.stderr, second.stderr
    finally:
        stopped = run_loom("serve", "stop", cwd=tmp_path, env=env, timeout=60)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    after = run_loom("serve", "status", cwd=tmp_path, env=env, timeout=30)
    assert after.returncode == 1 and "not running" in after.stdout
