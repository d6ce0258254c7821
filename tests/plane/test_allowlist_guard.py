"""Spec §5.1 guard 6 over real HTTP: a plane without a token adopts (POST /submit, POST /projects) only
allowlisted projects — 403 PROJECT_DIR_NOT_ALLOWED with the reason, nothing created; a token stands the
guard aside; the UI's "add project" (POST /workspace/projects) enrolls best-effort (spec §3.10)."""

from __future__ import annotations

from loom_core.config import allowlist
from loom_core.control import create_demo_project, demo_task
from tests.plane.conftest import TOKEN, client


def refused(resp, reason: str) -> None:
    assert resp.status_code == 403, resp.text
    err = resp.json()["error"]
    assert err["code"] == "PROJECT_DIR_NOT_ALLOWED" and err["reason"] == reason, err
    assert "loom allowlist add" in err["message"]


def bare_demo(tmp_path, name="shop"):
    proj = tmp_path / name
    create_demo_project(proj)
    return proj


def test_without_a_token_only_allowlisted_projects_are_adopted(start_plane, tmp_path):
    plane = start_plane()
    proj = bare_demo(tmp_path)
    job = {"project": str(proj), "task": demo_task(), "backend": "demo", "demo_delay_s": 0}
    with client(plane) as c:
        refused(c.post("/submit", json=job), "allowlist-missing")
        refused(c.post("/projects", json={"dir": str(proj)}), "allowlist-missing")
        other = tmp_path / "other"
        other.mkdir()
        allowlist.add(other)
        refused(c.post("/submit", json=job), "not-in-allowlist")
        refused(c.post("/projects", json={"dir": str(proj)}), "not-in-allowlist")
        assert c.get("/projects").json() == []  # nothing supervised
        assert not (proj / ".loom" / "state.db").exists()  # nothing created

        allowlist.add(proj)
        made = c.post("/submit", json=job)
        assert made.status_code == 200, made.text
        assert made.json()["task_id"]


def test_a_token_is_the_operator(start_plane, tmp_path):
    plane = start_plane(token=TOKEN)
    proj = bare_demo(tmp_path)
    with client(plane, TOKEN) as c:
        assert c.post("/projects", json={"dir": str(proj)}).status_code == 201
        made = c.post("/submit", json={"project": str(bare_demo(tmp_path, "two")), "task": demo_task(),
                                       "backend": "demo", "demo_delay_s": 0})
        assert made.status_code == 200, made.text
    assert not allowlist.allowlist_path().exists()  # and the allowlist is not touched


def test_add_project_in_the_ui_enrolls_best_effort(start_plane, tmp_path):
    plane = start_plane()
    proj = bare_demo(tmp_path)
    with client(plane) as c:
        added = c.post("/workspace/projects", json={"dir": str(proj), "label": "Shop"})
        assert added.status_code == 201 and added.json()["enrolled"] is True, added.text
        assert allowlist.is_allowed(proj)
        assert allowlist.allowlist_path().read_text().startswith("#")  # a new file gets its header comment
        again = c.post("/workspace/projects", json={"dir": str(proj)})
        assert again.status_code == 201 and again.json()["enrolled"] is True  # already in: still enrolled
        assert allowlist.entries().count(str(proj.resolve())) == 1
        pid = added.json()["id"]
        made = c.post("/submit", json={"project": pid, "task": demo_task(), "backend": "demo", "demo_delay_s": 0})
        assert made.status_code == 200, made.text  # the enrolled project is adopted without a token

        f = allowlist.allowlist_path()
        f.unlink()
        f.mkdir()  # an allowlist that cannot be written: the project is still added, just not enrolled
        two = bare_demo(tmp_path, "two")
        added = c.post("/workspace/projects", json={"dir": str(two)})
        assert added.status_code == 201 and added.json()["enrolled"] is False, added.text
        assert str(two) in [p["dir"] for p in c.get("/workspace").json()["projects"]]


def test_a_project_the_operator_supervises_is_not_adopted_again(start_plane, tmp_path):
    """`loom serve --project DIR` is the operator's choice: submitting to it (by dir or id) needs no allowlist."""
    proj = bare_demo(tmp_path)
    plane = start_plane(projects=(proj,))
    with client(plane) as c:
        made = c.post("/submit", json={"project": str(proj), "task": demo_task(), "backend": "demo",
                                       "demo_delay_s": 0})
        assert made.status_code == 200, made.text
        assert c.post("/projects", json={"dir": str(proj)}).status_code == 201  # idempotent, not refused
    assert not allowlist.allowlist_path().exists()
