"""Facade tests: real demo projects, real stores; sandboxes stay inside the test's tmp dir."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from loom_core.control import Catalog, LocalControl, RunOptions, create_demo_project, demo_task


@pytest.fixture(autouse=True)
def _sandboxes_in_tmp(tmp_path, monkeypatch):
    base = tmp_path / "tmp"
    base.mkdir()
    monkeypatch.setenv("TMPDIR", str(base))
    monkeypatch.setattr(tempfile, "tempdir", str(base))


@pytest.fixture
def parked_control(tmp_path) -> tuple[LocalControl, str, Path]:
    """A LocalControl over a catalog with one demo project, its task parked at gate-plan."""
    proj = tmp_path / "shop"
    create_demo_project(proj)
    control = LocalControl(Catalog([], tmp_path / "workspace.json"))
    pid = control.add_project(proj).id
    res = control.submit(pid, demo_task(), RunOptions(backend="demo", policy="demo-gates"))
    assert res.outcome.kind == "paused" and res.outcome.gate == "gate-plan"
    return control, pid, proj
