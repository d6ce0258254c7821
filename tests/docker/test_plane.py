"""The plane and containers: ``GET /providers`` says whether Docker can run agents (and why not), a submit
with ``docker: true`` is refused at once with DOCKER_UNAVAILABLE when it cannot, and otherwise the task
runs its agents in containers (kept in task-exec.json) and lands on ``loom/<task>``."""

from __future__ import annotations

import json

import pygit2
import pytest

from loom_core.config import allowlist
from loom_core.control.http import HttpControl
from loom_core.engine.exec_file import exec_file
from loom_core.store import db as dbmod
from tests.plane import conftest as plane
from tests.plane.conftest import client, envelope, wait_for
from tests.support.git import branch_files, make_repo

start_plane = plane.start_plane  # the plane tests' fixtures: a real plane on a free port, sandboxes in tmp
_sandboxes_in_tmp = plane._sandboxes_in_tmp

pytestmark = pytest.mark.xdist_group("docker")


def repo(tmp_path):
    proj = tmp_path / "app"
    make_repo(proj, {"app/core.py": "def f():\n    return 1\n", "README.md": "# app\n"})
    allowlist.add(proj)
    return proj


def test_submit_with_docker_is_refused_when_containers_cannot_run(start_plane, tmp_path, monkeypatch):
    monkeypatch.delenv("LOOM_DOCKER_IMAGE", raising=False)
    proj = repo(tmp_path)
    plane = start_plane()
    with client(plane) as c:
        docker = c.get("/providers").json()["docker"]
        assert docker["available"] is False and docker["reason"].startswith("no image is configured")
        resp = c.post("/submit", json={"project": str(proj), "task": "do it", "backend": "claude-code",
                                       "docker": True})
        envelope(resp, 400, "DOCKER_UNAVAILABLE")
        assert "docker: true requires container isolation, but no image is configured" in resp.json()["error"]["message"]
    assert not dbmod.state_path(proj).exists()  # nothing was created
    assert HttpControl(plane.url).docker_status() == docker


def test_a_submitted_docker_task_runs_in_containers_and_lands(docker_env, start_plane, tmp_path):
    proj = repo(tmp_path)
    plane = start_plane()
    with client(plane) as c:
        docker = c.get("/providers").json()["docker"]
        assert docker["available"] is True and docker["image"] == docker_env.image and docker["credential"] == "token"
        resp = c.post("/submit", json={"project": str(proj), "task": "@@write app/core.py def f(): return 7",
                                       "backend": "claude-code", "docker": True, "fast": True})
        assert resp.status_code == 200, resp.text
        pid = resp.json()["id"]
        assert json.loads(exec_file(proj).read_text())["docker"] is True
        done = wait_for(lambda: (s := c.get(f"/projects/{pid}").json()["status"]).get("verdict") and s, 60)
    assert done["verdict"] == "accepted", done
    (branch,) = wait_for(lambda: [b for b in pygit2.Repository(str(proj)).branches.local if b.startswith("loom/")],
                         30)  # landed right after the verdict
    assert branch_files(proj, branch)["app/core.py"] == "def f(): return 7\n"
