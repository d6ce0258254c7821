"""Shared console-test fixtures: pilots run on asyncio, sandboxes stay inside the test's tmp dir."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from loom_core.agents.executors.demo_project import create_demo_project
from loom_core.control.catalog import Catalog
from loom_core.engine.runner import RunOptions, TaskRunner, demo_task


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(autouse=True)
def _sandboxes_in_tmp(tmp_path, monkeypatch):
    base = tmp_path / "tmp"
    base.mkdir()
    monkeypatch.setenv("TMPDIR", str(base))
    monkeypatch.setattr(tempfile, "tempdir", str(base))  # gettempdir() caches; the sandbox base uses it


def catalog_with(tmp_path: Path, *projects: Path) -> tuple[Catalog, list[str]]:
    cat = Catalog([], tmp_path / "workspace.json")
    return cat, [cat.add(p).id for p in projects]


@pytest.fixture
def parked(tmp_path):
    """A demo project parked at gate-plan."""
    proj = tmp_path / "shop"
    create_demo_project(proj)
    res = TaskRunner(proj, RunOptions(backend="demo", policy="demo-gates")).start(demo_task())
    assert res.outcome.kind == "paused" and res.outcome.gate == "gate-plan"
    cat, (pid,) = catalog_with(tmp_path, proj)
    return cat, pid, proj
