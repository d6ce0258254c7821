"""``loom setup [--user|--project] [--dry-run] [--force] [--hooks]``: register loom's MCP server and its
``/task`` ``/proceed`` ``/done`` commands with Claude Code (spec §8.4; the work is in
:mod:`loom_core.surfaces.claude.setup`). No store, no engine: only the standard library is imported."""

from __future__ import annotations

from typing import Annotated

import typer


def setup(user: Annotated[bool, typer.Option("--user", help="For every project: ~/.claude.json and "
                                             "~/.claude/commands/ (the default).")] = False,
          project: Annotated[bool, typer.Option("--project", help="For this project only: ./.mcp.json and "
                                                "./.claude/commands/ (commit them to share); the sandbox folder "
                                                "goes to your own ./.claude/settings.local.json.")] = False,
          dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would change; write nothing.")] = False,
          force: Annotated[bool, typer.Option("--force", help="Replace a different server entry or an edited "
                                              "command file.")] = False,
          hooks: Annotated[bool, typer.Option("--hooks", help="Also register the advisory hooks: a guard that "
                                              "denies shell commands deleting .loom/state.db, and a hint when a "
                                              "session stops with a task open.")] = False) -> None:
    """Use loom inside Claude Code: register the `loom` MCP server, install /task, /proceed, /done, and let
    its sub-agents edit loom's sandbox copies (permissions.additionalDirectories)."""
    from loom_core.surfaces.claude.setup import setup as run_setup

    if user and project:
        typer.echo("loom: choose one scope: --user or --project", err=True)
        raise typer.Exit(1)
    for line in run_setup("project" if project else "user", dry_run=dry_run, force=force, hooks=hooks):
        typer.echo(line)
