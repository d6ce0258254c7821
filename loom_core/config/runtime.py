"""Process-wide set-up every surface does when it starts (the CLI, the console)."""

from __future__ import annotations

import sys

DEEP_TREES = 10_000  # recursion limit: walking a tree nested ~1,200 deep needs more than Python's default 1,000


def allow_deep_trees() -> None:
    """Let the standard library's recursive walkers (os.walk, shutil.rmtree / copytree, Path.rglob) handle
    directory trees nested deeper than Python's default recursion limit allows."""
    sys.setrecursionlimit(max(sys.getrecursionlimit(), DEEP_TREES))
