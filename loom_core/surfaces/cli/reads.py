"""Commands that read (and gc, which only removes orphan sandboxes): status, gc, history, verify, replay."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from loom_core.surfaces.cli.common import JsonOpt, ProjectOpt, control, echo_json, project_dir, size
from loom_core.surfaces.cli.readview import STALL_HELP, show_history, show_status, show_verify


def status(project: ProjectOpt = None, as_json: JsonOpt = False,
           stall_minutes: Annotated[float | None, typer.Option(help=STALL_HELP)] = None) -> None:
    """Show the project's task: status, phase, flow, pending gate, spawns, tokens, cost, elapsed."""
    show_status(project, as_json, stall_minutes)  # (the plainest calls skip typer and come there directly)


def gc(dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be removed, remove nothing.")]
       = False, as_json: JsonOpt = False) -> None:
    """Remove orphan sandboxes: their project is gone or has no task in progress (a finished, accepted
    task whose branch is not there yet keeps its sandbox), and leftovers of interrupted provisioning."""
    removed = control().gc(dry_run=dry_run)
    total = sum(b for _, b in removed)
    if as_json:
        echo_json({"dry_run": dry_run, "removed": [{"path": str(p), "bytes": b} for p, b in removed],
                   "bytes": total})
        return
    verb = "would remove" if dry_run else "removed"
    for path, n in removed:
        typer.echo(f"{verb} {path} ({size(n)})")
    typer.echo(f"{verb} {len(removed)} sandbox(es), {size(total)}" if removed else "no orphan sandboxes")


def history(project: ProjectOpt = None, as_json: JsonOpt = False) -> None:
    """List archived tasks of the project."""
    show_history(project, as_json)  # (the plainest calls skip typer and come there directly)


def verify(project: ProjectOpt = None,
           task: Annotated[str | None, typer.Option("--task", help="An archived task id (default: the live store).")]
           = None) -> None:
    """Check the tamper-evident audit chain of the live store or an archived task: the chain, its anchors,
    the state tables against the last tick, the history index entry, and the audit head on loom/<task>."""
    raise typer.Exit(show_verify(project, task))  # (the plainest calls skip typer and come there directly)


def replay(task_id: Annotated[str, typer.Argument(help="Task id (archived, or the live task).")],
           project: ProjectOpt = None,
           invariants: Annotated[str | None, typer.Option(
               "--invariants", help="module:attr naming an Invariant or a list of them to add to the rules.")] = None,
           as_json: JsonOpt = False) -> None:
    """Re-run a recorded task through the kernel; report whether it is identical, or where
    a changed rule set would have stopped it."""
    from loom_core.control import load_invariants

    proj = project_dir(project)
    extra = load_invariants(invariants, Path.cwd()) if invariants else []
    report = control().replay(proj, task_id, extra_invariants=extra)
    if as_json:
        echo_json({"ticks": report.ticks, "replayed": report.replayed, "identical": report.identical,
                   "divergence": report.divergence, "stopped": report.stopped})
    else:
        for line in report.lines():
            typer.echo(line)
    if report.stopped:
        raise typer.Exit(1)
    raise typer.Exit(0 if report.identical else 1)
