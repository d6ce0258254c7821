"""Screens move between views through the app (``app.open_project`` …), never by importing each other."""

from __future__ import annotations

import ast
from pathlib import Path

import loom_tui.screens

VIEWS = {"fleet", "history", "project", "replay", "inspector"}
SCREENS = Path(loom_tui.screens.__file__).parent


def test_views_do_not_import_other_views():
    for name in VIEWS:
        tree = ast.parse((SCREENS / f"{name}.py").read_text(encoding="utf-8"))
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        others = {f"loom_tui.screens.{v}" for v in VIEWS - {name}}
        assert not imported & others, f"screens/{name}.py imports {sorted(imported & others)}"
