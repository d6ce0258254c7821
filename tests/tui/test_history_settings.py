"""History + replay, settings (config form, secrets) and the first-run wizard, driven by pilots
at 80x24 over real stores in tmp_path."""

from __future__ import annotations

import asyncio
import stat
import tempfile
import tomllib
from pathlib import Path

import pytest

from loom_core.agents.executors.demo_project import create_demo_project
from loom_core.config import paths
from loom_core.control import views as readmodel
from loom_core.control.catalog import Catalog
from loom_core.engine.engine import Engine
from loom_core.engine.runner import RunOptions, TaskRunner, demo_task
from loom_tui.app import make_app

SIZE = (80, 24)
SECRET = "sk-ant-TOPSECRET-value-98765"


@pytest.fixture(scope="module")
def history_project(tmp_path_factory):
    """A demo project with two finished (auto-policy) tasks, both archived."""
    base = tmp_path_factory.mktemp("hist")
    mp = pytest.MonkeyPatch()
    mp.setenv("TMPDIR", str(base / "tmp"))
    (base / "tmp").mkdir()
    mp.setattr(tempfile, "tempdir", None)
    try:
        project = base / "shop"
        create_demo_project(project)
        for _ in range(2):
            result = TaskRunner(project, RunOptions(backend="demo", policy="auto")).start(demo_task())
            assert result.outcome.kind == "complete" and result.outcome.verdict == "accepted"
        engine = Engine(project, create=False)
        engine.rotate(reason="auto-rotate")  # the second one too (the first was rotated by the second start)
        engine.close()
    finally:
        mp.undo()
    assert len(readmodel.archived(project)) == 2
    return project


async def settle(app, pilot, rounds: int = 4) -> None:
    """Let workers finish and messages land (the DirectoryTree's loader runs for as long as the tree)."""
    for _ in range(rounds):
        busy = [w for w in app.workers if w.name != "_loader"]
        if busy:  # (an empty list would mean "all workers")
            await app.workers.wait_for_complete(busy)
        await pilot.pause()


def catalog_with(tmp_path: Path, *dirs: Path) -> Catalog:
    cat = Catalog([], tmp_path / "workspace.json")
    for d in dirs:
        cat.add(d)
    return cat


def run(coro):
    return asyncio.run(coro)


# ---------------------------------------------------------------------- history + replay
def test_history_lists_archived_tasks(history_project, tmp_path):
    from loom_tui.screens.history import HistoryScreen, HistoryTable

    cat = catalog_with(tmp_path, history_project)
    pid = cat.projects[0].id

    async def go():
        app = make_app(cat, watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            app.push_screen(HistoryScreen(pid))
            await settle(app, pilot)
            screen = app.screen
            assert isinstance(screen, HistoryScreen)
            table = screen.query_one(HistoryTable)
            assert table.row_count == 2
            rows = [table.get_row_at(i) for i in range(2)]
            assert all(str(r[1]) == "accepted" for r in rows)
            assert all("reject-discount" in r[0] for r in rows)
            assert all(r[2] != "—" and r[3] != "—" for r in rows)  # elapsed, archived time

    run(go())


def test_history_enter_opens_the_archived_task_read_only(history_project, tmp_path):
    from loom_tui.screens.history import HistoryScreen
    from loom_tui.screens.project import ProjectScreen

    cat = catalog_with(tmp_path, history_project)
    pid = cat.projects[0].id
    newest = readmodel.archived(history_project)[0]["task_id"]

    async def go():
        app = make_app(cat, watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            app.push_screen(HistoryScreen(pid))
            await settle(app, pilot)
            await pilot.press("enter")
            await settle(app, pilot)
            assert isinstance(app.screen, ProjectScreen)
            assert app.screen.pid == pid and app.screen.task_id == newest

    run(go())


def test_replay_steps_through_ticks_and_shows_the_gate_decision(history_project, tmp_path):
    from loom_tui.screens.history import HistoryScreen
    from loom_tui.screens.replay import ReplayScreen, TickTable

    cat = catalog_with(tmp_path, history_project)
    pid = cat.projects[0].id
    path = history_project / readmodel.archived(history_project)[0]["db_file"]
    ticks = readmodel.ticks(path)
    gate_seq = next(t["seq"] for t in ticks for n in t["notes"]
                    if n.get("type") == "gate-decided" and n.get("gate") == "gate-plan")
    assert gate_seq > 1

    async def go():
        app = make_app(cat, watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            app.push_screen(HistoryScreen(pid))
            await settle(app, pilot)
            await pilot.press("p")
            await settle(app, pilot)
            screen = app.screen
            assert isinstance(screen, ReplayScreen)
            assert screen.query_one(TickTable).row_count == len(ticks)
            assert screen.shown_seq == 1 and f"tick 1 of {len(ticks)}" in screen.shown_plain
            assert "gate-plan" not in screen.shown_plain
            for _ in range(gate_seq - 2):
                await pilot.press("right")
            await settle(app, pilot, 1)
            assert screen.shown_seq == gate_seq - 1
            assert "gate-plan" not in screen.shown_plain  # not decided yet one tick before
            await pilot.press("j")
            await settle(app, pilot, 1)
            assert screen.shown_seq == gate_seq
            line = next(x for x in screen.shown_plain.splitlines() if "gate-plan" in x)
            assert "auto-approved" in line and "← this tick" in line
            assert "agents run (" in screen.shown_plain and "phases" in screen.shown_plain
            await pilot.press("left")
            await settle(app, pilot, 1)
            assert screen.shown_seq == gate_seq - 1 and "gate-plan" not in screen.shown_plain
            await pilot.press("end")
            await settle(app, pilot, 1)
            assert screen.shown_seq == len(ticks) and "[accepted]" in screen.shown_plain
            # verify: audit chain + replay against the record
            await pilot.press("v")
            await settle(app, pilot)
            assert "audit chain intact · replay identical" in screen.verify_line
            await pilot.press("escape")
            await settle(app, pilot, 1)
            assert isinstance(app.screen, HistoryScreen)

    run(go())


def test_replay_state_at_matches_the_archived_store(history_project):
    from loom_core.engine.replay import state_at

    path = history_project / readmodel.archived(history_project)[0]["db_file"]
    last = readmodel.ticks(path)[-1]["seq"]
    final = state_at(path, last)
    assert final["pipeline"]["verdict"] == "accepted"
    assert {g["name"] for g in readmodel.chain(path)["gates"]} == set(final["gates"])
    assert state_at(path, 1)["gates"] == {}


# ---------------------------------------------------------------------- settings
def test_settings_form_shows_help_rejects_a_bad_number_and_saves_a_good_one(tmp_path, monkeypatch):
    from textual.widgets import Input, Static

    from loom_tui.screens.settings import SettingsScreen

    monkeypatch.setenv("LOOM_HOME", str(tmp_path / "home"))
    cfg = paths.config_path()
    cfg.parent.mkdir(parents=True)
    before = '[models]\nplanner = "fast"\n\n[fallbacks]\nplanner = ["anthropic:claude-x"]\n'
    cfg.write_text(before)

    async def go():
        app = make_app(catalog_with(tmp_path, tmp_path), watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            await pilot.press("s")
            await settle(app, pilot)
            screen = app.screen
            assert isinstance(screen, SettingsScreen)
            help_text = str(screen.query_one("#cfg-general--max_spawns-help", Static).render())
            assert "Most agent runs one task may start" in help_text
            spawns = screen.query_one("#cfg-general--max_spawns", Input)
            assert spawns.value == "40"
            spawns.value = "-3"
            await pilot.press("ctrl+s")
            await settle(app, pilot)
            err = screen.query_one("#cfg-general--max_spawns-error", Static)
            assert err.has_class("-shown") and "greater than or equal to 0" in str(err.render())
            assert "not saved" in str(screen.query_one("#config-status", Static).render())
            assert cfg.read_text() == before  # nothing written
            spawns.value = "12"
            screen.query_one("#cfg-checks--test", Input).value = "pytest -q"
            await pilot.press("ctrl+s")
            await settle(app, pilot)
            assert not err.has_class("-shown")
            data = tomllib.loads(cfg.read_text())
            assert data["general"] == {"max_spawns": 12} and data["checks"] == {"test": "pytest -q"}
            assert data["models"] == {"planner": "fast"}  # maps the form does not edit are kept
            assert data["fallbacks"] == {"planner": ["anthropic:claude-x"]}
            assert "backend" not in data  # defaults stay out of the file

    run(go())


def test_secrets_tab_never_shows_a_value(tmp_path, monkeypatch, no_keyring):
    from textual.widgets import Input

    from loom_core.config.secrets import SecretStore
    from loom_tui.screens.settings import SecretsTable, SettingsScreen

    monkeypatch.setenv("LOOM_HOME", str(tmp_path / "home"))

    async def go():
        app = make_app(catalog_with(tmp_path, tmp_path), watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            app.push_screen(SettingsScreen(tab="secrets"))
            await settle(app, pilot)
            screen = app.screen
            name = screen.query_one("#secret-name", Input)
            value = screen.query_one("#secret-value", Input)
            assert value.password
            name.focus()
            await pilot.press(*"anthropic", "enter")
            assert value.has_focus
            await pilot.press(*SECRET)
            shot = app.export_screenshot()
            assert "TOPSECRET" not in shot
            await pilot.press("enter")
            await settle(app, pilot)
            assert value.value == ""
            table = screen.query_one(SecretsTable)
            assert table.row_count == 1
            row = table.get_row_at(0)
            assert row[0] == "anthropic" and row[1].endswith("8765") and "TOPSECRET" not in row[1]
            assert "TOPSECRET" not in app.export_screenshot()

    run(go())
    store = SecretStore()
    assert store.get("anthropic") == SECRET
    assert stat.S_IMODE(store.file_path.stat().st_mode) == 0o600
    assert not paths.config_path().exists() or "TOPSECRET" not in paths.config_path().read_text()


def test_models_tab_sets_and_clears_an_override(tmp_path, monkeypatch):
    from textual.widgets import Input, Static

    from loom_tui.screens.settings import ModelsTable, SettingsScreen

    monkeypatch.setenv("LOOM_HOME", str(tmp_path / "home"))

    async def go():
        app = make_app(catalog_with(tmp_path, tmp_path), watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            app.push_screen(SettingsScreen(tab="models"))
            await settle(app, pilot)
            screen = app.screen
            table = screen.query_one(ModelsTable)
            table.focus()
            row = next(i for i in range(table.row_count) if table.get_row_at(i)[0] == "planner")
            table.move_cursor(row=row)
            await pilot.press("enter")
            ref = screen.query_one("#model-ref", Input)
            assert ref.has_focus
            ref.value = "acme:big"
            await pilot.press("enter")
            await settle(app, pilot)
            assert "unknown provider" in str(screen.query_one("#model-error", Static).render())
            assert not paths.config_path().exists()
            ref.value = "anthropic:claude-opus-4"
            await pilot.press("enter")
            await settle(app, pilot)
            assert tomllib.loads(paths.config_path().read_text())["models"] == {"planner": "anthropic:claude-opus-4"}
            cells = table.get_row_at(row)
            assert str(cells[2]) == "anthropic:claude-opus-4" and cells[3] == "claude-opus-4"
            assert table.has_focus
            await pilot.press("x")  # back to the bundle default
            await settle(app, pilot)
            assert "models" not in tomllib.loads(paths.config_path().read_text())
            assert str(table.get_row_at(row)[2]) == "—"

    run(go())


def test_projects_tab_removes_from_the_catalog_after_confirmation(tmp_path):
    from loom_tui.screens.fleet import FleetScreen
    from loom_tui.screens.settings import ProjectsTable, SettingsScreen

    a, b = tmp_path / "alpha", tmp_path / "beta"
    a.mkdir()
    b.mkdir()
    cat = catalog_with(tmp_path, a, b)

    async def go():
        app = make_app(cat, watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            app.push_screen(SettingsScreen(tab="projects"))
            await settle(app, pilot)
            table = app.screen.query_one(ProjectsTable)
            assert table.row_count == 2
            table.focus()
            await pilot.press("x")
            await settle(app, pilot)
            await pilot.press("n")  # declined: nothing changes
            await settle(app, pilot)
            assert table.row_count == 2
            await pilot.press("x")
            await settle(app, pilot)
            await pilot.press("y")
            await settle(app, pilot)
            assert table.row_count == 1 and table.get_row_at(0)[1] == "beta"
            await pilot.press("escape")
            await settle(app, pilot)
            assert isinstance(app.screen, FleetScreen)
            assert app.screen.query_one("#fleet-table").row_count == 1

    run(go())
    assert [p.dir for p in Catalog.load(tmp_path / "workspace.json").projects] == [str(b)]
    assert a.is_dir()  # nothing on disk changed


# ---------------------------------------------------------------------- wizard
def test_wizard_demo_backend_and_a_new_empty_folder(tmp_path, monkeypatch):
    from loom_tui.screens.fleet import FleetScreen, FleetTable
    from loom_tui.screens.wizard import AddProjectScreen, WizardScreen

    monkeypatch.setenv("LOOM_HOME", str(tmp_path / "home"))
    root = tmp_path / "root"
    root.mkdir()
    monkeypatch.setenv("LOOM_FS_ROOT", str(root))
    cat = Catalog([], tmp_path / "workspace.json")

    async def go():
        app = make_app(cat, watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            assert isinstance(app.screen, WizardScreen)
            await pilot.press("enter")  # the first choice: the offline demo
            await settle(app, pilot)
            assert isinstance(app.screen, AddProjectScreen)
            await pilot.press(*"fresh-project", "enter")
            await settle(app, pilot)
            await pilot.press("y")  # create the new folder
            await settle(app, pilot, 6)
            assert isinstance(app.screen, FleetScreen)
            table = app.screen.query_one(FleetTable)
            assert table.row_count == 1
            assert str(table.get_row_at(0)[0]) == "fresh-project"

    run(go())
    assert (root / "fresh-project").is_dir()
    assert [p.dir for p in Catalog.load(tmp_path / "workspace.json").projects] == [str(root / "fresh-project")]
    assert tomllib.loads(paths.config_path().read_text())["backend"] == "demo"
    from loom_core.config import allowlist

    assert allowlist.is_allowed(root / "fresh-project")  # adding a project enrolls it for /task (spec §3.10)


def test_add_project_refuses_a_file(tmp_path, monkeypatch):
    """(A typed folder outside the root is accepted: tests/tui/test_add_project_paths.py.)"""
    from textual.widgets import Input, Static

    from loom_tui.screens.wizard import AddProjectScreen

    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "a-file").write_text("x")
    monkeypatch.setenv("LOOM_FS_ROOT", str(root))

    async def go():
        app = make_app(catalog_with(tmp_path, tmp_path), watch=False)
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            app.push_screen(AddProjectScreen())
            await settle(app, pilot)
            screen = app.screen
            screen.query_one("#add-path", Input).value = str(tmp_path / "a-file")
            await pilot.press("ctrl+s")
            await settle(app, pilot)
            assert isinstance(app.screen, AddProjectScreen)
            assert "is a file, not a folder" in str(screen.query_one("#add-status", Static).render())

    run(go())
