"""What the checks step answers: the JSON envelope, and ``check-failures.txt`` for the implementer."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from loom_core.workspace.checks.model import FAILURE_TAIL_CHARS, FAILURES_FILE, CheckResult

MAX_LISTED = 50


def result_dict(r: CheckResult) -> dict[str, Any]:
    return {"name": r.name, "status": r.status, "exit_code": r.exit_code, "command": r.command,
            "output_head": r.output_head, "output_tail": r.output_tail, "reason": r.reason,
            "locations": [{"file": loc.file, "line": loc.line, "message": loc.message} for loc in r.locations],
            "new_failures": list(r.new_failures), "preexisting": list(r.preexisting), "scope": r.scope,
            "cached": r.cached, "expected": r.expected}


def envelope(results: list[CheckResult], *, environment: dict[str, Any] | None = None,
             tree_changes: Iterable[str] = (), disabled: bool = False, tree: str | None = None) -> str:
    """The executor's output text (the checks envelope of the helpers' brief): ``{"checks": [...],
    "environment": {...}, "tree_changes": [...], "disabled": bool}``, plus ``tree``, the id of the
    sandbox tree the checks ran on, when it is known."""
    env = environment or {"interpreter": None, "source": "none", "verified": None, "resolution": {},
                          "problem": None}
    data: dict[str, Any] = {"checks": [result_dict(r) for r in results], "environment": env,
                            "tree_changes": list(tree_changes), "disabled": disabled}
    if tree is not None:
        data["tree"] = tree
    return json.dumps(data, ensure_ascii=False)


def _failure_block(r: CheckResult) -> str:
    exit_text = str(r.exit_code) if r.exit_code is not None else "none"
    lines = [f"== {r.name}: FAILED ==", f"command: {r.command}", f"exit: {exit_text}"]
    if r.reason:
        lines.append(f"reason: {r.reason}")
    if r.new_failures:
        lines.append("new failures (not failing before the change):")
        lines += [f"  {k}" for k in r.new_failures[:MAX_LISTED]]
        if len(r.new_failures) > MAX_LISTED:
            lines.append(f"  … and {len(r.new_failures) - MAX_LISTED} more")
    if r.preexisting:
        lines.append(f"failing before the change too (not blocking): {len(r.preexisting)}")
    if r.locations:
        lines.append("locations:")
        lines += [f"  {loc.file}:{loc.line}: {loc.message}" if loc.line is not None else f"  {loc.file}: {loc.message}"
                  for loc in r.locations]
    lines.append("--- output (head) ---")
    lines.append(r.output_head.rstrip("\n"))
    tail = r.output_tail[-FAILURE_TAIL_CHARS:]
    if tail and not r.output_head.endswith(tail):  # the head already holds a short output whole
        lines.append(f"--- output (last {len(tail.encode()) // 1024 or 1} KB) ---")
        lines.append(tail.rstrip("\n"))
    return "\n".join(lines) + "\n"


def write_failures(root: Path, results: Iterable[CheckResult]) -> None:
    """Write ``<root>/.loom/work/check-failures.txt`` for the next implementer (per failed check: name,
    command, exit, new failures, head + <=8 KB tail), or delete it when nothing failed."""
    path = Path(root) / FAILURES_FILE
    failed = [r for r in results if r.status == "fail"]
    if not failed:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    text = ("# Checks that failed on the last run (loom checks runner). Fix them; the checks run again.\n\n"
            + "\n".join(_failure_block(r) for r in failed))
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
