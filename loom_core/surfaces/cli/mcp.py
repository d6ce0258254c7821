"""``loom mcp serve``: loom's MCP stdio server (the same server as ``loom-mcp``), for hosts such as Claude Code."""

from __future__ import annotations

import typer

mcp_app = typer.Typer(help="loom's MCP server (stdio) for Claude Code and other MCP hosts.", no_args_is_help=True,
                      add_completion=False, rich_markup_mode=None)


@mcp_app.command("serve")
def serve() -> None:
    """Serve the pipeline_* tools over stdio (what `loom setup` registers as `loom-mcp`)."""
    from loom_core.surfaces.mcp import main

    main()
