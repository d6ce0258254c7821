"""loom's MCP server (spec surfaces §8): the stdio server ``loom`` whose ``pipeline_*`` tools let a host
such as Claude Code run a task's agents itself while loom's engine decides what runs next.

``loom-mcp`` (console script), ``python -m loom_core.surfaces.mcp`` and ``loom mcp serve`` start it.
The SDK is imported only when the server starts.
"""

from __future__ import annotations


def main() -> None:
    from loom_core.surfaces.mcp.server import serve

    serve()
