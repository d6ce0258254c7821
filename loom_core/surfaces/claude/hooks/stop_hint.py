"""Claude Code ``Stop`` hook (spec §8.5): never blocks; when the project has a loom task, prints one hint
(``{"systemMessage": …}``) about where it stands — finished, waiting at a gate, agents in flight, or paused
mid-flight long enough that the transport probably dropped. A best-effort read through loom's facade:
any failure prints nothing.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

DROPPED_AFTER_S = 50 * 60


def hint(status: dict[str, Any]) -> str | None:
    """The one line for a project's status (``loom status --json``), or None without a task."""
    task = status.get("task_id")
    if not task:
        return None
    if status.get("state") != "in_progress":
        return f"loom: task {task} finished ({status.get('verdict') or status.get('state')}) — /done shows it " \
               "and archives it"
    if status.get("gate"):
        return f"loom: task {task} waits at gate {status['gate']} — answer it with /proceed"
    pending = status.get("pending") or []
    oldest = max((p.get("age_s") or 0 for p in pending), default=0)
    if pending and oldest >= DROPPED_AFTER_S:
        return f"loom: task {task} paused mid-flight ~{int(oldest // 60)} min — likely a dropped transport; " \
               "resume with /proceed"
    if pending:
        return f"loom: task {task} in flight ({len(pending)} agent{'s' if len(pending) != 1 else ''}) — " \
               "/proceed resumes it if this session ends"
    return f"loom: task {task} in progress — /proceed continues it"


def main() -> int:
    try:
        doc = json.load(sys.stdin)
    except ValueError:
        doc = {}
    where = Path((doc.get("cwd") if isinstance(doc, dict) else None) or os.environ.get("CLAUDE_PROJECT_DIR")
                 or os.getcwd())
    if not (where / ".loom" / "state.db").is_file():
        return 0  # no loom task here: stay silent (and import nothing heavy)
    try:
        from loom_core.control import LocalControl

        line = hint(LocalControl().status(where))
    except Exception:  # advisory: never in the way
        return 0
    if line:
        print(json.dumps({"systemMessage": line}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
