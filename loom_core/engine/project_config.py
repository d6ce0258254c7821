"""Moved to :mod:`loom_core.config.project` (below the engine, so agents may read it too)."""

from loom_core.config.project import CHECK_COMMANDS, configured_checks, project_config

__all__ = ["CHECK_COMMANDS", "configured_checks", "project_config"]
