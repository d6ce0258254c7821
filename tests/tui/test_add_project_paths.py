"""Add-project takes any folder the user types (the tree follows it); the browse root is the ``ui.browse_root``
setting (``LOOM_FS_ROOT`` overrides), for the console's tree and the plane's folder picker alike."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

from loom_core.config import paths
from loom_core.control.catalog import Catalog
from loom_tui.app import make_app
from tests.tui.test_history_settings import SIZE, catalog_with, settle


def _git_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    return path


def _set_browse_root(root: Path) -> None:
    paths.config_path().parent.mkdir(parents=True, exist_ok=True)
    paths.config_path().write_text(f'[ui]\nbrowse_root = "{root}"\n', encoding="utf-8")


async def _open_picker(app, pilot):
    from loom_tui.screens.wizard import AddProjectScreen

    app.push_screen(AddProjectScreen())
    await settle(app, pilot)
    assert isinstance(app.screen, AddProjectScreen)
    return app.screen


def test_typing_an_absolute_path_outside_the_root_adds_that_project(tmp_path, monkeypatch):
    from textual.widgets import Input

    from loom_tui.screens.wizard import FolderTree

    root = tmp_path / "home-like"
    root.mkdir()
    monkeypatch.setenv("LOOM_FS_ROOT", str(root))
    elsewhere = _git_repo(tmp_path / "srv" / "app")
    cat = Catalog([], tmp_path / "workspace.json")
    seen: dict = {}

    async def go():
        app = make_app(cat, watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            screen = await _open_picker(app, pilot)
            path_in = screen.query_one("#add-path", Input)
            path_in.value = ""
            await pilot.press(*f"{tmp_path / 'srv'}/")
            await settle(app, pilot)
            seen["tree"] = Path(screen.query_one(FolderTree).path)  # the tree followed the typed folder
            seen["title"] = str(screen.query_one("#add-title").render())
            await pilot.press(*"app", "enter")
            await settle(app, pilot, 6)
            seen["screen"] = type(app.screen).__name__

    asyncio.run(go())
    assert seen["tree"] == (tmp_path / "srv").resolve()
    assert str((tmp_path / "srv").resolve()) in seen["title"]
    assert seen["screen"] != "AddProjectScreen", "the picker closes once the project is added"
    assert [p.dir for p in Catalog.load(tmp_path / "workspace.json").projects] == [str(elsewhere.resolve())]


def test_a_relative_path_is_under_the_browse_root(tmp_path, monkeypatch):
    from textual.widgets import Input

    root = tmp_path / "root"
    proj = _git_repo(root / "code" / "shop")
    monkeypatch.setenv("LOOM_FS_ROOT", str(root))
    cat = catalog_with(tmp_path)

    async def go():
        app = make_app(cat, watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            screen = await _open_picker(app, pilot)
            screen.query_one("#add-path", Input).value = "code/shop"
            await pilot.press("ctrl+s")
            await settle(app, pilot, 6)

    asyncio.run(go())
    assert [p.dir for p in Catalog.load(tmp_path / "workspace.json").projects] == [str(proj.resolve())]


def test_the_browse_root_setting_is_the_trees_root_and_the_env_overrides_it(tmp_path, monkeypatch):
    from loom_core.control import fs_root
    from loom_tui.screens.wizard import FolderTree

    configured = tmp_path / "projects"
    (configured / "alpha").mkdir(parents=True)
    monkeypatch.delenv("LOOM_FS_ROOT", raising=False)
    assert fs_root() == Path.home().resolve()  # the default: home
    _set_browse_root(configured)
    assert fs_root() == configured.resolve()
    seen: dict = {}

    async def go():
        app = make_app(catalog_with(tmp_path), watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            screen = await _open_picker(app, pilot)
            tree = screen.query_one(FolderTree)
            seen["root"] = Path(tree.path)
            seen["children"] = [str(n.label) for n in tree.root.children]

    asyncio.run(go())
    assert seen["root"] == configured.resolve()
    assert seen["children"] == ["alpha"]
    override = tmp_path / "override"
    override.mkdir()
    monkeypatch.setenv("LOOM_FS_ROOT", str(override))
    assert fs_root() == override.resolve()


def test_the_planes_folder_list_honours_the_setting(tmp_path, monkeypatch):
    from loom_core.control import LocalControl

    configured = tmp_path / "projects"
    (configured / "alpha").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    monkeypatch.delenv("LOOM_FS_ROOT", raising=False)
    _set_browse_root(configured)
    loom = LocalControl(catalog_with(tmp_path))
    listed = loom.fs_list(None)
    assert listed["root"] == str(configured.resolve())
    assert [e["name"] for e in listed["entries"]] == ["alpha"]
    from loom_core.errors import LoomError

    try:
        loom.fs_list(str(tmp_path / "outside"))
    except LoomError as exc:
        assert exc.code == "PATH_REFUSED"
    else:
        raise AssertionError("the plane browsed outside its root")
