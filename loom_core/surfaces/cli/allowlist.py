"""``loom allowlist add [path] [--dry-run] | list | remove [path]``: the default-deny list of projects the MCP
server (``/task`` inside Claude Code) and an un-tokened plane may drive (spec §3.10).

Only the standard library and :mod:`loom_core.config.allowlist` are imported: no store, no engine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

allowlist_app = typer.Typer(help="Projects the MCP server (/task in Claude Code) and an un-tokened plane may drive.",
                            no_args_is_help=True)

PathArg = Annotated[Path | None, typer.Argument(help="Project directory (default: current directory).")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Show what would change; write nothing.")]


def enroll(path: Path, *, dry_run: bool = False) -> None:
    """Allowlist one project and say so (shared by ``allowlist add`` and ``init``); a missing path is an error."""
    from loom_core.config import allowlist

    change = allowlist.add(path, dry_run=dry_run)
    if change.changed:
        typer.echo(f"allowlisted: {change.path}  ({change.file})")
    elif change.would:
        typer.echo(f"would allowlist: {change.path}  ({change.file})")
    else:
        typer.echo(f"already allowlisted: {change.path}")


@allowlist_app.command("add")
def allowlist_add(path: PathArg = None, dry_run: DryRunOpt = False) -> None:
    """Allow loom's MCP tools to drive this project (its real path is appended to ~/.loom/projects.allow)."""
    enroll(path or Path.cwd(), dry_run=dry_run)


@allowlist_app.command("list")
def allowlist_list() -> None:
    """The allowlisted projects, as written (an entry that no longer exists is marked)."""
    from loom_core.config import allowlist

    rows = allowlist.entries()
    if not rows:
        typer.echo(f"no projects allowlisted ({allowlist.allowlist_path()})")
        return
    for e in rows:
        typer.echo(e if Path(e).expanduser().exists() else f"{e}  (missing: skipped)")


@allowlist_app.command("remove")
def allowlist_remove(path: PathArg = None, dry_run: DryRunOpt = False) -> None:
    """Stop allowing a project (every entry naming it, literally or by real path, is dropped)."""
    from loom_core.config import allowlist

    change = allowlist.remove(path or Path.cwd(), dry_run=dry_run)
    if change.changed:
        typer.echo(f"removed from the allowlist: {change.path}  ({change.file})")
    elif change.would:
        typer.echo(f"would remove from the allowlist: {change.path}  ({change.file})")
    else:
        typer.echo(f"not allowlisted: {change.path}")
