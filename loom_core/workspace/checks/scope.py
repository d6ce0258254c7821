"""How much of the tree each check looks at.

Every check runs in stages, a failing stage ends it (fast feedback during rework), and a check
whose scoped stages pass runs in full — so the last run before the final gate is always the whole
configured check, with its failures compared against the unchanged tree (pre-existing ones are
listed, not blocking). Linters and type checkers that take file arguments (ruff, mypy without a
``files`` setting) first check only the changed Python files, unless a configuration file
changed. Tests first run the tests related to the change (changed or new test files, and test
files named after a changed module: ``src/pkg/core.py`` → ``test_core.py``).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from loom_core.workspace.checks.model import CheckSpec

# a change to one of these can change any file's result
CONFIG_FILES = frozenset({"pyproject.toml", "setup.cfg", "tox.ini", "ruff.toml", ".ruff.toml", "mypy.ini",
                          ".mypy.ini", "pytest.ini", "setup.py"})
_WALK_SKIP = frozenset({".git", ".loom", "node_modules", ".venv", "venv", "env", ".env", ".tox", ".nox",
                        "__pycache__", "site-packages", "build", "dist"})
MAX_WALK = 50000


def is_test_file(rel: str) -> bool:
    name = Path(rel).name
    return name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py"))


def related_tests(root: Path, changed: list[str]) -> list[str]:
    """Test files (relative to ``root``) related to the changed files, sorted."""
    found = {c for c in changed if is_test_file(c) and (root / c).is_file()}
    stems: set[str] = set()
    for c in changed:
        p = Path(c)
        if p.suffix != ".py" or is_test_file(c) or p.name == "conftest.py":
            continue
        stems.add(p.parent.name if p.stem == "__init__" else p.stem)
    stems.discard("")
    if stems:
        wanted = {f"test_{s}.py" for s in stems} | {f"{s}_test.py" for s in stems}
        seen = 0
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d not in _WALK_SKIP and not d.startswith(".")]
            seen += len(filenames)
            for f in filenames:
                if f in wanted:
                    found.add((Path(dirpath) / f).relative_to(root).as_posix())
            if seen > MAX_WALK:
                break
    return sorted(found)


def stages(spec: CheckSpec | None, root: Path, changed: list[str] | None) -> list[CheckSpec | None]:
    """The specs to run for one check, in order; a failing stage ends the check."""
    if spec is None or spec.skip or spec.argv is None or not changed:
        return [spec]
    config_changed = any(Path(c).name in CONFIG_FILES for c in changed)
    if spec.tool in ("ruff", "mypy") and not config_changed:
        py = [c for c in changed if c.endswith((".py", ".pyi")) and (root / c).is_file()]
        if py:
            return [scoped(spec, py, "changed"), spec]
        return [spec]
    if spec.tool == "pytest":
        related = related_tests(root, changed)
        if related:
            return [scoped(spec, related, "related"), spec]
    return [spec]


def scoped(spec: CheckSpec, files: list[str], scope: str) -> CheckSpec:
    """``spec`` limited to ``files`` (its trailing ``.`` replaced by them)."""
    argv = list(spec.argv or [])
    if argv and argv[-1] == ".":
        argv = argv[:-1]
    return replace(spec, argv=[*argv, *files], scope=scope, files=list(files))
