"""The slash-command files (Markdown) that ``loom setup`` installs: routers to the loom MCP tools (spec §8.3)."""
