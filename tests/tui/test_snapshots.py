"""SVG snapshots of every console view at 80x24 and 120x36 (scenes from loom_tui/scenes.py), among them a task
whose agent runs (its clock ticking in the chain).

Review the report before accepting changes: `pytest tests/tui/test_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

import time

import pytest

from loom_tui.scenes import ROOT, SCENES, build, environment, make, stop_drives

SIZES = [(80, 24), (120, 36)]
# the scenes live at one fixed path (so paths in the pictures are stable): one xdist worker runs them all
pytestmark = pytest.mark.xdist_group("loom-scenes")


@pytest.fixture(autouse=True)
def _utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("scene", list(SCENES))
def test_view(snap_compare, scene, size, monkeypatch):
    empty, before = SCENES[scene]
    for key, value in environment(ROOT).items():  # recorded first, so the test restores them
        monkeypatch.setenv(key, value)
    catalog = build(ROOT, empty=empty)
    app = make(catalog)
    try:
        assert snap_compare(app, terminal_size=size, run_before=before)
    finally:
        stop_drives(app)  # the "running" scene leaves a slowed agent running
