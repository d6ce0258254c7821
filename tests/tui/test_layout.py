"""The console at 80 and 120 columns, its running clocks and its toasts, as a user sees them: pilots over real
demo projects, reading what is drawn on the screen."""

from __future__ import annotations

import io
import re
import time

import pytest
from rich.console import Console
from textual.widgets import Button
from textual.widgets._footer import FooterKey
from textual.widgets._toast import Toast

from loom_core.agents.executors.demo_project import create_demo_project
from loom_core.engine.runner import RunOptions, TaskRunner, demo_task
from loom_tui.app import make_app
from loom_tui.screens.confirm import ConfirmDialog
from loom_tui.screens.fleet import FleetScreen, FleetTable, cells
from loom_tui.screens.gate import GateDialog
from loom_tui.screens.project import ProjectScreen
from loom_tui.widgets.agent_chain import AgentChain
from loom_tui.widgets.footer import LoomFooter
from tests.tui.conftest import catalog_with
from tests.tui.test_console_safety import wait_for
from tests.tui.test_project_gate import is_screen, settle

pytestmark = pytest.mark.anyio
CLOCK = re.compile(r"(\d+):(\d\d)$")


def screen_lines(app) -> list[str]:
    """The screen as drawn, one string per line."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), record=True, color_system=None,
                      force_terminal=True, legacy_windows=False)
    console.print(app.screen._compositor.render_update(full=True))
    return console.export_text(styles=False).splitlines()


def assert_footer_whole(app) -> None:
    """Every key on show in the footer is drawn whole, left of the palette key."""
    footer = app.screen.query_one(LoomFooter)
    line = screen_lines(app)[footer.region.y]
    keys = list(footer.query(FooterKey))
    assert keys
    palette = [k for k in keys if k.has_class("-command-palette")]
    edge = palette[0].region.x if palette else footer.region.right
    for key in keys:
        label = f"{key.key_display} {key.description}".strip()
        assert label in line, (label, line)
        if key not in palette:
            assert key.region.right <= edge, (label, key.region, edge)


def seconds(clock_text: str) -> int:
    m = CLOCK.search(clock_text.strip())
    assert m, clock_text
    return int(m.group(1)) * 60 + int(m.group(2))


async def wait_rows(pilot, pid, until, timeout: float = 30.0) -> dict:
    """Poll the fleet (the app's own worker) until project ``pid``'s row satisfies ``until``."""
    app = pilot.app
    deadline = time.monotonic() + timeout
    while True:
        row = app.rows.get(pid) or {}
        if until(row):
            return row
        assert time.monotonic() < deadline, f"row never got there: {row.get('status')}"
        app.refresh_rows()
        await pilot.pause(0.1)


@pytest.fixture
def two(tmp_path):
    """``shop`` parked at its plan gate and ``billing`` accepted."""
    shop, billing = tmp_path / "shop", tmp_path / "billing"
    create_demo_project(shop)
    create_demo_project(billing)
    assert TaskRunner(shop, RunOptions(backend="demo", policy="demo-gates")).start(demo_task()).outcome.kind == "paused"
    assert TaskRunner(billing, RunOptions(backend="demo", policy="auto")).start(demo_task()).outcome.verdict == "accepted"
    cat, pids = catalog_with(tmp_path, shop, billing)
    return cat, pids


async def test_at_80_columns_status_words_stay_whole_cost_shows_and_no_footer_key_is_cut(two):
    cat, (shop, billing) = two
    app = make_app(cat, watch=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, lambda: is_screen(app, FleetScreen) and len(app.rows) == 2)
        app.cancel_task(shop)  # "abandoned" replaces "parked: gate-plan" in place, next to "accepted"
        await wait_rows(pilot, shop, lambda r: r.get("status") == "abandoned")
        await settle(pilot)
        lines = screen_lines(app)
        table = app.screen.query_one(FleetTable)
        header = lines[table.region.y]
        assert header.split()[-1] == "cost"  # the last column on show is the cost, whole
        for pid in (shop, billing):
            label = cells(app.rows[pid])["status"].plain
            line = next(ln for ln in lines if ln.split() and ln.split()[0] == app.rows[pid]["name"])
            assert re.search(rf"\s{re.escape(label)}\s", line), (label, line)
        assert "abandoned" in "\n".join(lines)
        assert app.screen._ticker is None  # nothing runs: no clock timer
        assert_footer_whole(app)


async def test_the_task_column_widens_at_120_columns(two):
    cat, (shop, _billing) = two
    app = make_app(cat, watch=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, lambda: is_screen(app, FleetScreen) and len(app.rows) == 2)
        table = app.screen.query_one(FleetTable)
        narrow = table.columns["task"].width
        assert "tokens" not in [c.label.plain for c in table.columns.values()]  # dropped whole at 80
        await pilot.resize_terminal(120, 36)
        await settle(pilot)
        await pilot.pause(0.2)
        wide = table.columns["task"].width
        assert wide > narrow + 20, (narrow, wide)
        header = screen_lines(app)[table.region.y].split()
        assert header[-2:] == ["tokens", "cost"]
        assert_footer_whole(app)


async def test_the_project_view_and_the_gate_dialog_fit_80_columns(two):
    cat, (shop, billing) = two
    app = make_app(cat, watch=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, lambda: is_screen(app, FleetScreen) and len(app.rows) == 2)
        app.open_project(billing)
        await settle(pilot, lambda: is_screen(app, ProjectScreen) and app.screen.query_one(AgentChain).keys)
        assert app.screen._clock is None  # a finished task: nothing ticks
        assert_footer_whole(app)
        app.pop_screen()
        await settle(pilot, lambda: is_screen(app, FleetScreen))
        app.open_project(shop)
        await settle(pilot, lambda: is_screen(app, ProjectScreen) and app.screen.query_one(AgentChain).keys)
        chain = app.screen.query_one(AgentChain)
        header = screen_lines(app)[chain.region.y]
        labels = [c.label.plain for c in chain.columns.values()]
        assert header.split() == labels  # every column on show is labelled whole; none runs off the edge
        assert sum(c.get_render_width(chain) for c in chain.columns.values()) <= chain.size.width
        assert chain._ticker is None  # a parked task: no agent runs, no clock timer
        assert app.screen._clock is not None  # but it is in progress: its age in the title moves
        assert_footer_whole(app)
        await pilot.press("g")
        await settle(pilot, lambda: is_screen(app, GateDialog))
        assert_footer_whole(app)


async def test_a_running_agents_clock_ticks_in_the_fleet_and_the_chain_and_stops_with_the_drive(tmp_path):
    proj = tmp_path / "shop"
    create_demo_project(proj)
    cat, (pid,) = catalog_with(tmp_path, proj)
    app = make_app(cat, watch=False)
    try:
        await _clock_ticks(app, pid)
    finally:
        app.control.pause(pid)  # a slowed agent is cancelled at once
        app.control.wait_stopped(pid, timeout_s=30)


async def _clock_ticks(app, pid) -> None:
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot, lambda: is_screen(app, FleetScreen))
        fleet = app.screen
        app.submit_task(pid, demo_task(), RunOptions(backend="demo", policy="auto", demo_delay_s=30))
        row = await wait_rows(pilot, pid, lambda r: r.get("status") == "running" and r.get("pending"))
        agent = row["pending"][0]["agent"]
        await pilot.pause(0.2)
        first = fleet._cells[pid]["status"].plain
        assert first.split(" · ")[0].endswith(agent), first
        await pilot.pause(2.2)
        later = fleet._cells[pid]["status"].plain
        assert seconds(later) > seconds(first), (first, later)
        assert later in "\n".join(screen_lines(app))  # drawn, not only kept

        app.open_project(pid)
        await wait_for(pilot, lambda: is_screen(app, ProjectScreen) and any(
            r.get("state") == "running" for c in app.screen.query(AgentChain) for r in c._runs), timeout=30)
        chain = app.screen.query_one(AgentChain)
        key = next(r["agent_run_id"] for r in chain._runs if r.get("state") == "running")
        first = chain.get_cell(key, "duration").plain
        await pilot.pause(2.2)
        later = chain.get_cell(key, "duration").plain
        assert seconds(later) > seconds(first), (first, later)
        assert chain._ticker is not None

        app.control.pause(pid)  # the drive stops: no live driver, so the clocks stop and their timers go
        assert app.control.wait_stopped(pid, timeout_s=30)
        await wait_rows(pilot, pid, lambda r: r.get("status") != "running")
        await wait_for(pilot, lambda: chain._ticker is None)
        assert not any(CLOCK.search(chain.get_cell(k, "duration").plain) for k in chain.keys)
        app.pop_screen()
        await wait_for(pilot, lambda: fleet._ticker is None)


def notices(app) -> list[tuple[str, str]]:
    """Every (title, message) the app toasts, kept."""
    seen: list[tuple[str, str]] = []
    real = app.notify

    def notify(message, *args, title: str = "", **kw):
        seen.append((title, str(message)))
        return real(message, *args, title=title, **kw)

    app.notify = notify
    return seen


async def test_no_parked_toast_over_the_projects_own_view_or_its_gate_dialog(tmp_path):
    shop, billing = tmp_path / "shop", tmp_path / "billing"
    create_demo_project(shop)
    create_demo_project(billing)
    cat, (a, b) = catalog_with(tmp_path, shop, billing)
    app = make_app(cat, watch=False)
    seen = notices(app)
    gates = RunOptions(backend="demo", policy="demo-gates")
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot, lambda: is_screen(app, FleetScreen))
        app.open_project(a)
        await settle(pilot, lambda: is_screen(app, ProjectScreen))
        app.submit_task(a, demo_task(), gates)  # parks: the project view opens its gate dialog itself
        await settle(pilot, lambda: is_screen(app, GateDialog), timeout=60)
        app.submit_task(b, demo_task(), gates)  # another project parks while the dialog is open: told
        await settle(pilot, lambda: any(t == "billing" for t, _ in seen), timeout=60)
        parked = [(t, m) for t, m in seen if "parked at gate" in m]
        assert parked == [("billing", "parked at gate 'gate-plan' — press g in the project to answer")]
        assert is_screen(app, GateDialog) and app.screen.pid == a
        toasts = [t for t in app.screen.query(Toast)]
        assert toasts and all("press g" not in str(t.render()) or "billing" in str(t.render()) for t in toasts)
        app.control.pause(b)
        app.control.wait_stopped(b, timeout_s=30)


def covered(app, region) -> list[str]:
    """The cells of ``region`` a toast is drawn over."""
    hits = []
    for y in range(region.y, region.bottom):
        for x in range(region.x, region.right):
            widget, _ = app.screen.get_widget_at(x, y)
            if any(isinstance(w, Toast) for w in (widget, *widget.ancestors)):
                hits.append(f"{x},{y}")
    return hits


async def test_toasts_over_a_dialog_stay_clear_of_its_buttons_and_answer_keys(two):
    cat, (shop, _billing) = two
    app = make_app(cat, watch=False)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot, lambda: is_screen(app, FleetScreen) and len(app.rows) == 2)
        app.confirm("Cancel the task?", "The task is abandoned: the drive stops.", "Abandon", lambda _: None)
        await settle(pilot, lambda: is_screen(app, ConfirmDialog))
        for i in range(4):
            app.notify(f"something happened elsewhere, number {i}", title=f"project {i}", timeout=30)
        await settle(pilot)
        await pilot.pause(0.3)
        assert app.screen.query(Toast)  # shown, over the dialog
        buttons = list(app.screen.query(Button))
        box = next(w for w in buttons[0].ancestors_with_self if w.parent is app.screen)  # the whole dialog
        assert buttons and not covered(app, box.region)
        await pilot.press("escape")
        await settle(pilot, lambda: is_screen(app, FleetScreen))
        app.open_gate(shop)
        await settle(pilot, lambda: is_screen(app, GateDialog))
        for i in range(4):
            app.notify(f"something else, number {i}", title=f"project {i}", timeout=30)
        await settle(pilot)
        await pilot.pause(0.3)
        assert app.screen.query(Toast)
        assert not covered(app, app.screen.query_one(LoomFooter).region)
