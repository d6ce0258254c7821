"""Fixtures the Claude Code integration tests share."""

from tests.support.claude_cli import claude_bin  # noqa: F401  (the real Claude Code CLI, installed once)
