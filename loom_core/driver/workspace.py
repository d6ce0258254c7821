"""Where agents work — see :mod:`loom_core.driver.sandbox` (this module keeps the historical import path)."""

from __future__ import annotations

from .sandbox import (
    DIFF_CAP_BYTES,
    DIFF_LINES_PER_FILE,
    EMPTY_TREE,
    LOOM_DIR,
    WORK_DIR,
    MergeResult,
    Workspace,
    discover,
    disk_usage_of,
    gc,
    owner_of,
    read_meta,
    sandboxes,
)

_discover = discover  # used by the read model

__all__ = ["DIFF_CAP_BYTES", "DIFF_LINES_PER_FILE", "EMPTY_TREE", "LOOM_DIR", "WORK_DIR", "MergeResult",
           "Workspace", "discover", "disk_usage_of", "gc", "owner_of", "read_meta", "sandboxes"]
