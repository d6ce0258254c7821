"""The stdio server ``loom`` (tools appear in Claude Code as ``mcp__loom__pipeline_*``).

On start it makes sure ``~/.loom/projects.allow`` exists (empty: it never adds an entry). Tools are plain
functions returning one JSON text; the SDK runs them on worker threads, so a long tool call (a checks run)
never blocks the transport.
"""

from __future__ import annotations

from typing import Any

from loom_core import __version__

NAME = "loom"
INSTRUCTIONS = ("loom runs a task as a replay-deterministic chain of agents (classify, plan, implement, review, "
                "checks, final gate). Start with pipeline_run_task; then loop on the response: spawn-agent → run "
                "a sub-agent with the given prompt/model and deliver its output with pipeline_continue_task; "
                "ask-user → show the message and valid_answers verbatim and deliver the user's pick; complete → "
                "summarise. Never edit .loom/state.db yourself.")


def build() -> Any:
    from mcp.server.mcpserver import MCPServer

    from loom_core.surfaces.mcp import reads, tasks

    server = MCPServer(NAME, version=__version__, instructions=INSTRUCTIONS, log_level="WARNING")
    for fn in (*reads.TOOLS, *tasks.TOOLS):
        server.add_tool(fn, name=fn.__name__, structured_output=False)
    return server


def serve() -> None:
    from loom_core.config import allowlist

    allowlist.ensure_file()
    build().run("stdio")
