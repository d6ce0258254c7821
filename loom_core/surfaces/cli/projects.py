"""``loom projects``: the catalog the console shows (add, list, remove)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from loom_core.surfaces.cli.common import JsonOpt, control, echo_json

projects_app = typer.Typer(help="The project catalog the console shows (add, list, remove).", no_args_is_help=True)


@projects_app.command("add")
def projects_add(path: Annotated[Path | None, typer.Argument(help="Project directory (default: current).")] = None,
                 label: Annotated[str | None, typer.Option("--label", help="Display name (default: the folder "
                                                           "name).")] = None) -> None:
    """Add a project to the catalog (re-adding keeps it and updates the label)."""
    proj = control().add_project(path or Path.cwd(), label=label)
    typer.echo(f"added {proj.id}  {proj.dir}" + (f"  ({proj.label})" if proj.label else ""))


@projects_app.command("list")
def projects_list(as_json: JsonOpt = False) -> None:
    """List catalog projects with their task status."""
    from loom_core.errors import LoomError

    loom = control()
    rows = []
    for p in loom.projects():
        try:
            st = loom.status(p.path)
        except LoomError as exc:
            st = {"status": "unavailable", "error": str(exc)}
        rows.append({"id": p.id, "dir": p.dir, "name": p.name, "label": p.label, **{
            k: st.get(k) for k in ("status", "task_id", "state", "verdict", "flow", "step", "gate", "error")}})
    if as_json:
        echo_json(rows)
        return
    if not rows:
        typer.echo("no projects in the catalog (add one with 'loom projects add [path]')")
        return
    for r in rows:
        label = f"  ({r['label']})" if r["label"] else ""
        typer.echo(f"{r['id']}  {r['dir']}{label}")
        if r.get("error"):
            typer.echo(f"    status: unavailable ({r['error']})")
        elif not r.get("task_id"):
            typer.echo("    status: LOST (see loom status)" if r["status"] == "lost" else "    status: no active task")
        else:
            from loom_core.control.words import ended

            extra = f"  parked at gate {r['gate']}" if r.get("gate") else ""
            state = "in progress" if r["state"] == "in_progress" else f"ended — {ended(r['state'], r['verdict'])}"
            typer.echo(f"    task: {r['task_id']}  {state}  flow {r['flow']} step {r['step']}{extra}"
                       + {"stalled": "  STALLED", "stopped": "  STOPPED (not driven: loom proceed)",
                          "over-budget": "  OVER BUDGET (loom status)",
                          "host-driven": f"  {(r.get('driven_by') or 'driven elsewhere').upper()}"}.get(r["status"], ""))


@projects_app.command("remove")
def projects_remove(ref: Annotated[str, typer.Argument(help="Project id or path.")]) -> None:
    """Remove a project from the catalog (nothing on disk is touched)."""
    from loom_core.errors import LoomError

    try:
        proj = control().remove_project(ref)
    except LoomError as exc:
        if exc.code != "NOT_IN_CATALOG":
            raise
        typer.echo(f"no catalog entry for '{ref}'")
        return
    typer.echo(f"removed {proj.id}")
