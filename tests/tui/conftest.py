"""Shared console-test fixtures: pilots run on asyncio, sandboxes stay inside the test's tmp dir."""

from __future__ import annotations

import tempfile

import pytest


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture(autouse=True)
def _sandboxes_in_tmp(tmp_path, monkeypatch):
    base = tmp_path / "tmp"
    base.mkdir()
    monkeypatch.setenv("TMPDIR", str(base))
    monkeypatch.setattr(tempfile, "tempdir", str(base))  # gettempdir() caches; the sandbox base uses it
