"""The sandbox agents work in (spec §9): provisioning, self-diff, merge-back, clean-up.

Names load lazily, so ``loom status`` can size a sandbox (``fs``) without importing pygit2.
"""

from __future__ import annotations

import importlib

_WHERE = {"DIFF_CAP_BYTES": "diff", "DIFF_LINES_PER_FILE": "diff", "disk_usage_of": "fs", "gc": "cleanup",
          "owner_of": "cleanup", "clear_partials": "cleanup", "land": "landing", "sandboxes": "cleanup",
          "EMPTY_TREE": "provision", "LOOM_DIR": "provision",
          "WORK_DIR": "sandbox", "MergeResult": "sandbox", "Workspace": "sandbox", "discover": "sandbox",
          "read_meta": "sandbox", "remove_sandbox": "sandbox"}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
