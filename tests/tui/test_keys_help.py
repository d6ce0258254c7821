"""Console keys: ? / F1 open the help screen (the screen's keys and the global ones, as remapped), Esc closes
it; the [keymap] settings remap keys, the Keys tab refuses a clash naming it; theme and fleet order persist."""

from __future__ import annotations

import asyncio
import tomllib

import pytest

from loom_core.agents.executors.demo_project import create_demo_project
from loom_core.config import paths
from loom_tui import keys
from loom_tui.app import make_app
from tests.tui.conftest import catalog_with

SIZE = (100, 30)


def run(coro):
    return asyncio.run(coro)


@pytest.fixture
def two_projects(tmp_path):
    dirs = []
    for name in ("zeta", "alpha"):
        create_demo_project(tmp_path / name)
        dirs.append(tmp_path / name)
    return catalog_with(tmp_path, *dirs)


@pytest.fixture(autouse=True)
def _no_theme_env(monkeypatch):
    monkeypatch.delenv("LOOM_THEME", raising=False)


def write_config(text: str) -> None:
    path = paths.config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def read_config() -> dict:
    path = paths.config_path()
    return tomllib.loads(path.read_text()) if path.exists() else {}


async def settle(app, pilot, rounds: int = 3) -> None:
    for _ in range(rounds):
        if app.workers:
            await app.workers.wait_for_complete()
        await pilot.pause()


def notes(app) -> list[str]:
    return [str(n.message) for n in app._notifications]


# ---------------------------------------------------------------------- help
def test_question_mark_and_f1_open_help_with_the_screens_and_global_keys(two_projects):
    from loom_tui.screens.help import HelpScreen
    from loom_tui.screens.project import ProjectScreen

    cat, (pid, _) = two_projects

    async def go():
        app = make_app(cat, watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            app.open_project(pid)
            await settle(app, pilot)
            assert isinstance(app.screen, ProjectScreen)
            for key in ("question_mark", "f1"):
                await pilot.press(key)
                await pilot.pause()
                assert isinstance(app.screen, HelpScreen), key
                sections = dict(app.screen.sections)
                here = {row[2]: row for row in sections["this screen (project)"]}
                every = {row[2]: row for row in sections["everywhere"]}
                assert here["project.pause"][:2] == ("p", "Pause")
                assert here["project.log"][3] == "project: toggle log"  # its palette name
                assert {"project.back", "project.cancel", "project.log"} <= set(here)
                assert every["app.quit"][:2] == ("q", "Quit")
                assert every["app.help"][0] == "?, f1"
                assert every["app.settings"][3] == "app: settings"
                assert "fleet.sort" not in here  # another screen's key is not listed
                await pilot.press("escape")
                await pilot.pause()
                assert isinstance(app.screen, ProjectScreen), f"esc did not close the help opened with {key}"
            await pilot.press("question_mark")
            await pilot.pause()
            await pilot.press("q")  # q closes the help, it does not quit
            await pilot.pause()
            assert isinstance(app.screen, ProjectScreen) and app.is_running

    run(go())


def test_f1_and_question_mark_open_the_help_of_a_dialog_and_esc_returns_to_it(two_projects):
    """A dialog stops the app's keys, so each dialog carries its own ? / F1: the help lists the dialog's keys."""
    from loom_tui.screens.confirm import ConfirmDialog
    from loom_tui.screens.help import HelpScreen

    cat, _ = two_projects

    async def go():
        app = make_app(cat, watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            app.confirm("Remove?", "It goes from the list.", "Remove", lambda ok: None)
            await pilot.pause()
            dialog = app.screen
            assert isinstance(dialog, ConfirmDialog)
            for key in ("f1", "question_mark"):
                await pilot.press(key)
                await pilot.pause()
                assert isinstance(app.screen, HelpScreen), key
                here = {row[2]: row for row in dict(app.screen.sections)["this screen (confirm)"]}
                assert here["confirm.yes"][:2] == ("y", "Yes") and "confirm.help" in here
                await pilot.press("escape")
                await pilot.pause()
                assert app.screen is dialog, f"esc after {key} did not return to the dialog"

    run(go())


# ---------------------------------------------------------------------- keymap
def test_keymap_entry_moves_a_key_and_help_shows_it(two_projects):
    from loom_tui.screens.fleet import FleetScreen
    from loom_tui.screens.help import HelpScreen

    cat, _ = two_projects
    write_config('[keymap]\n"fleet.sort" = "O"\n')

    async def go():
        app = make_app(cat, watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            fleet = app.screen
            assert isinstance(fleet, FleetScreen)
            assert fleet.sort_key == "attention"
            await pilot.press("o")  # the old key no longer sorts
            await settle(app, pilot)
            assert fleet.sort_key == "attention" and "sorted by name" not in notes(app)
            await pilot.press("O")
            await settle(app, pilot)
            assert fleet.sort_key == "name" and "sorted by name" in notes(app)
            await pilot.press("question_mark")
            await pilot.pause()
            assert isinstance(app.screen, HelpScreen)
            rows = {row[2]: row for row in dict(app.screen.sections)["this screen (fleet)"]}
            assert rows["fleet.sort"][0] == "O"
            assert rows["fleet.open"][0] == "enter"

    run(go())


def test_clash_or_unknown_id_in_the_file_is_a_warning_and_left_out(two_projects):
    cat, _ = two_projects
    write_config('[keymap]\n"fleet.sort" = "a"\n"fleet.nothing" = "z"\n"app.settings" = "S"\n')

    async def go():
        app = make_app(cat, watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            said = " | ".join(notes(app))
            assert "fleet.sort" in said and "a is already fleet.add" in said
            assert "unknown binding id 'fleet.nothing'" in said
            assert app.keymap_entries == {"app.settings": "S"}
            fleet = app.screen
            await pilot.press("o")  # fleet.sort kept its default key
            await settle(app, pilot)
            assert fleet.sort_key == "name"

    run(go())


def test_settings_keys_tab_refuses_a_clash_naming_it_and_saves_a_free_key(two_projects):
    from textual.widgets import Static

    from loom_tui.screens.settings import KeysPane, KeysTable, SettingsScreen

    cat, _ = two_projects

    async def go():
        app = make_app(cat, watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            app.push_screen(SettingsScreen("keys"))
            await settle(app, pilot)
            screen = app.screen
            table = screen.query_one(KeysTable)
            table.focus()
            table.move_cursor(row=table.get_row_index("fleet.sort"))
            await pilot.press("enter")
            await pilot.pause()
            await pilot.press("backspace", "a", "enter")  # a is fleet.add's
            await settle(app, pilot)
            status = str(screen.query_one("#key-status", Static).render())
            assert "not changed: a is already fleet.add" in status
            assert "keymap" not in read_config() and app.keymap_entries == {}
            await pilot.press("backspace", "O", "enter")
            await settle(app, pilot)
            assert read_config()["keymap"] == {"fleet.sort": "O"}
            assert app.keymap_entries == {"fleet.sort": "O"}
            pane = screen.query_one(KeysPane)
            assert pane.change("app.settings", "h") is False  # a global key clashes with any screen's
            assert "h is already fleet.history" in str(screen.query_one("#key-status", Static).render())
            assert pane.change("gate.accept", "s") is True  # a dialog: the app's s does not act there
            await settle(app, pilot)
            assert read_config()["keymap"] == {"fleet.sort": "O", "gate.accept": "s"}

    run(go())


def test_clash_rules():
    assert keys.clash("fleet.sort", {"fleet.sort": "enter"}) == "enter is already fleet.open"
    assert keys.clash("fleet.sort", {"fleet.sort": "j"}) == "j is already cursor_down"  # the table's j
    assert keys.clash("fleet.sort", {"fleet.sort": "q"}) == "q is already app.quit"
    assert keys.clash("fleet.sort", {"fleet.sort": "?"}) == "? is already app.help"
    assert keys.clash("fleet.sort", {"fleet.sort": "h", "fleet.history": "o"}) is None  # a swap
    assert keys.clash("project.new", {}) is None  # project.new / new_over share n by design
    good, warnings = keys.check({"fleet.sort": "z", "fleet.gate": "z"})
    assert good == {"fleet.sort": "z"} and "fleet.gate" in warnings[0] and "z is already fleet.sort" in warnings[0]


# ---------------------------------------------------------------------- kept between runs
def test_theme_and_fleet_order_survive_a_restart(two_projects):
    from loom_tui.screens.fleet import FleetScreen

    cat, _ = two_projects

    async def first():
        app = make_app(cat, watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            assert app.theme == "textual-dark"
            await pilot.press("t")
            await pilot.press("o")
            await settle(app, pilot)
            assert app.theme == "textual-light" and app.screen.sort_key == "name"

    async def second():
        app = make_app(cat, watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            assert isinstance(app.screen, FleetScreen)
            assert app.theme == "textual-light"
            assert app.screen.sort_key == "name"

    run(first())
    assert read_config()["ui"] == {"theme": "light", "sort": "name"}
    run(second())
