"""Messages from engine threads to the UI (the only way engine work reaches widgets)."""

from __future__ import annotations

from typing import Any

from textual.message import Message

from loom_core.control import EngineEvent


class EngineUpdate(Message):
    """One engine event for a project (phase, spawn start/end, verdicts, findings, gate, merge…)."""

    def __init__(self, project_id: str, event: EngineEvent) -> None:
        super().__init__()
        self.project_id = project_id
        self.event = event


class LogLines(Message):
    """A batch of log lines for a project (batched so a flood never stalls input)."""

    def __init__(self, project_id: str, lines: list[str]) -> None:
        super().__init__()
        self.project_id = project_id
        self.lines = lines


class FleetRows(Message):
    """Fresh status rows for the fleet (read in a worker)."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        super().__init__()
        self.rows = rows


class RunFinished(Message):
    """A drive ended (complete, paused, parked, error) or failed to start."""

    def __init__(self, project_id: str, outcome: Any = None, error: str | None = None) -> None:
        super().__init__()
        self.project_id = project_id
        self.outcome = outcome
        self.error = error
