"""What ``loom status``, ``loom history``, ``loom verify`` and ``loom config get`` print, without typer, so
their plainest calls need not import it (typer's import is a quarter of these commands' start-up).

Such a call — the command with ``-C/--project DIR`` and its own few options, each at most once, values that
convert — is answered here directly (:func:`quick`). Anything else (``--help``, an unknown option, a value
that does not convert, a project directory that does not exist) goes to typer as usual, which prints its
usual message. The typer commands (:mod:`.reads`) print through the same ``show_…`` functions, so both say
the same (tests/cli/test_quick_status.py runs both).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

STALL_HELP = "Minutes without progress that count as stalled (default 50, env LOOM_STALL_MINUTES)."


def size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def _control() -> Any:
    from loom_core.control import LocalControl

    return LocalControl()


def show_status(project: Path | None, as_json: bool, stall_minutes: float | None) -> None:
    if stall_minutes is not None and not 0 < stall_minutes < 1e6:
        from loom_core.errors import ConfigError

        raise ConfigError(f"--stall-minutes must be more than 0, got {stall_minutes:g}", code="USAGE")
    from loom_core.control import read_status  # LocalControl().status, without loading the whole facade

    st = read_status((project or Path.cwd()).resolve(), stall_after_min=stall_minutes, with_sandbox=True)
    _write(json.dumps(st, indent=2, sort_keys=True, default=str) if as_json else status_text(st))


def status_text(st: dict[str, Any]) -> str:
    if not st["task_id"]:
        return f"LOST: {st['lost']}" if st.get("lost") else f"no active task in {st['project']}"
    lines = [f"project: {st['name']}  ({st['project']})",
             f"task:    {st['task_id']} — {st['task_short'] or st['task']}"]
    if st["state"] != "in_progress":
        from loom_core.control import words

        lines.append(f"status:  ended — {words.ended_line(st['state'], st['verdict'], st['work_result'])}")
        lines.append("next:    start another task, or 'loom reset' to archive this one")
    else:
        shown = {"stopped": "stopped — not driven", "over-budget": "over budget — stopped before a spawn",
                 "host-driven": st.get("driven_by") or "driven elsewhere"}.get(st["status"], st["status"])
        lines.append(f"status:  {shown}   flow: {st['flow']} @ step {st['step']}   phase: {st['phase'] or '-'}")
        if st["gate"]:
            lines.append(f"paused:  awaiting your answer at gate '{st['gate']}' (loom answer accept|reject)")
        elif st["pending"]:
            for p in st["pending"]:
                if st["status"] == "over-budget":
                    lines.append(f"next:    {p['agent']} ({p['phase']}), not started: over budget")
                elif st["status"] == "stopped":
                    lines.append(f"interrupted: {p['agent']} ({p['phase']}) started {int(p['age_s'])}s ago, "
                                 "never delivered")
                else:
                    lines.append(f"pending: {p['agent']} ({p['phase']}) for {int(p['age_s'])}s")
        if st["status"] == "stopped":
            lines.append(f"next:    {st['resume']}   (no loom process is driving this task)")
        if st.get("host"):
            lines.append(f"driven:  from {st['host']['label']}, which runs its agents — continue there with "
                         "/proceed, or here with 'loom proceed --take-over'")
        if st["stalled"]:
            lines.append(f"STALLED: {st['stalled']}")
        if st["status"] == "over-budget":
            lines.append(f"BUDGET_EXCEEDED: {st['stopped']}")
        if st.get("sandbox"):
            lines.append(f"sandbox: {size(st['sandbox_bytes'])} at {st['sandbox']}")
    t = st["tokens"]
    cost = f"${st['cost_usd']:.4f}" if st["cost_usd"] is not None else "n/a"
    failed = f" (+{st['failed_attempts']} failed attempt(s))" if st.get("failed_attempts") else ""
    lines.append(f"spawns:  {st['spawns']}{failed}   tokens: {t['in']} in / {t['out']} out / {t['cached']} cached   "
                 f"turns: {st.get('turns', 0)}   cost: {cost}   elapsed: {st['elapsed']}")
    if st.get("budget"):
        lines.append(f"budget:  {st['budget']['text']} spent")
    return "\n".join(lines)


def show_history(project: Path | None, as_json: bool) -> None:
    from loom_core.control import read_history  # LocalControl().history_index, without the whole facade

    proj = (project or Path.cwd()).resolve()
    rows = read_history(proj)
    if as_json:
        _write(json.dumps(rows, indent=2, sort_keys=True, default=str))
    elif not rows:
        _write(f"no archived tasks in {proj}")
    else:
        from loom_core.control import words

        lines = []
        for r in rows:
            if "raw" in r:
                lines.append(r["raw"])
                continue
            label = str(r.get("task_short") or r.get("task") or "")[:72]
            lines.append(f"{r.get('archived_at')}  {r.get('ref') or r.get('task_id')}  "
                         f"{words.ended(r.get('status'), r.get('verdict')):<12}  {label}")
        _write("\n".join(lines))


def show_verify(project: Path | None, task: str | None) -> int:
    """Print the verdict; the exit code (0 intact, 1 not)."""
    from loom_core.control import read_verify  # LocalControl().verify and .store_of, without the whole facade

    proj = (project or Path.cwd()).resolve()
    report, path = read_verify(proj, task)
    path = path or proj
    _write(report.line(str(path.relative_to(proj)) if path.is_relative_to(proj) else str(path)))
    return 0 if report.ok else 1


def show_config(key: str | None, as_json: bool, source: bool = False) -> None:
    """``loom config get [KEY] [--json] [--source]`` (``--source`` needs a key: the typer command checks)."""
    loom = _control()
    if key is None:
        _write(json.dumps(loom.config(), indent=2, sort_keys=True, default=str) if as_json else loom.config_text())
        return
    value = loom.config_get(key)
    where = loom.config_source(key) if source else None
    if as_json:
        _write(json.dumps({"key": key, "value": value, "source": where} if source else value, indent=2,
                          sort_keys=True, default=str))
        return
    _write(f"{key} = {value if value is not None else '(unset)'}" + (f"  ({where})" if where else ""))


def _quick_config(args: list[str]) -> Callable[[], int] | None:
    """``config get [KEY] [--json]``: a key that does not look like an option, each at most once."""
    key, as_json = None, False
    for word in args:
        if word == "--json" and not as_json:
            as_json = True
        elif key is None and word and not word.startswith("-"):
            key = word
        else:
            return None
    return lambda: show_config(key, as_json) or 0


def _write(text: str) -> None:
    sys.stdout.write(text + "\n")  # one write, as typer.echo makes it (a reader that stops early gets no error)
    sys.stdout.flush()


# each command's options: the flags, and the options that take a value (option → parameter)
OPTIONS = {"status": ({"--json"}, {"-C": "project", "--project": "project", "--stall-minutes": "stall"}),
           "history": ({"--json"}, {"-C": "project", "--project": "project"}),
           "verify": (set(), {"-C": "project", "--project": "project", "--task": "task"})}


def quick(args: list[str]) -> Callable[[], int] | None:
    """``loom ARGS`` answered here when it is one of these commands with plain, well-formed options (each at
    most once), else None (typer then parses them and says what is wrong). Values convert as typer's do."""
    if args[:2] == ["config", "get"]:
        return _quick_config(args[2:])
    if not args or args[0] not in OPTIONS:
        return None
    flags, valued = OPTIONS[args[0]]
    seen: set[str] = set()
    opts: dict[str, str] = {}
    rest = args[1:]
    while rest:
        word = rest.pop(0)
        name, eq, value = word.partition("=") if word.startswith("--") else (word, "", "")
        if name in flags and not eq and name not in seen:
            seen.add(name)
            continue
        key = valued.get(name)
        if key is None or key in opts:
            return None
        if not eq:
            if not rest or rest[0].startswith("-"):
                return None
            value = rest.pop(0)
        opts[key] = value
    project = None
    if "project" in opts:
        if not opts["project"]:
            return None
        project = Path(opts["project"]).resolve()
        if not project.is_dir():
            return None  # typer says "does not exist" / "is a file"
    as_json = "--json" in seen
    if args[0] == "history":
        return lambda: show_history(project, as_json) or 0
    if args[0] == "verify":
        return lambda: show_verify(project, opts.get("task"))
    stall = None
    if "stall" in opts:
        try:
            stall = float(opts["stall"])
        except ValueError:
            return None  # typer says "'soon' is not a valid number"
    return lambda: show_status(project, as_json, stall) or 0
