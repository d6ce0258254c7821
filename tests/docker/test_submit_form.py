"""The console's submit form: the "run in Docker" box is offered only when containers can run (the line
under it says with what, or why not), and what it says reaches the run's options."""

from __future__ import annotations

import pytest

from loom_tui.app import make_app
from loom_tui.screens.submit import SubmitScreen
from tests.support.git import make_repo
from tests.tui.conftest import catalog_with
from tests.tui.test_project_gate import SIZE, is_screen, open_project, settle

pytestmark = [pytest.mark.anyio, pytest.mark.xdist_group("docker")]


@pytest.fixture
def anyio_backend():
    return "asyncio"


async def _form(tmp_path, submitted: list):
    proj = tmp_path / "app"
    make_repo(proj, {"a.txt": "a\n"})
    cat, (pid,) = catalog_with(tmp_path, proj)
    app = make_app(cat, watch=False)
    app.submit_task = lambda p, text, opts: submitted.append(opts)  # record instead of driving
    return app, pid


async def _open(app, pilot, pid):
    await open_project(pilot, pid)
    await pilot.press("n")
    await settle(pilot, lambda: is_screen(app, SubmitScreen))
    form = app.screen
    await settle(pilot, lambda: "checking" not in str(form.query_one("#submit-docker-reason").content))
    return form


async def test_the_docker_box_is_off_and_says_why_when_containers_cannot_run(tmp_path, monkeypatch):
    monkeypatch.delenv("LOOM_DOCKER_IMAGE", raising=False)
    submitted: list = []
    app, pid = await _form(tmp_path, submitted)
    async with app.run_test(size=(SIZE[0], 40)) as pilot:
        form = await _open(app, pilot, pid)
        box = form.query_one("#submit-docker")
        assert box.disabled and not box.value
        assert str(form.query_one("#submit-docker-reason").content).startswith(
            "containers unavailable: no image is configured (set LOOM_DOCKER_IMAGE")
        form.query_one("#submit-text").insert("do it")
        await pilot.press("ctrl+s")
        await settle(pilot, lambda: submitted)
    assert submitted[0].docker is None  # auto: the run says why it uses a sandbox copy


async def test_the_docker_box_is_offered_when_containers_can_run(docker_env, tmp_path):
    submitted: list = []
    app, pid = await _form(tmp_path, submitted)
    async with app.run_test(size=(SIZE[0], 40)) as pilot:
        form = await _open(app, pilot, pid)
        box = form.query_one("#submit-docker")
        assert not box.disabled and box.value
        line = str(form.query_one("#submit-docker-reason").content)
        assert line.startswith("Docker ")
        assert "agents run in containers of loom-test/claude:tiny as 1000:1000" in line
        form.query_one("#submit-text").insert("do it")
        box.value = False
        await pilot.pause()
        await pilot.press("ctrl+s")
        await settle(pilot, lambda: submitted)
    assert submitted[0].docker is False
