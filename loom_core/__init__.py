"""loom: a replay-deterministic orchestrator for multi-step LLM-agent work."""

__version__ = "0.1.0"
