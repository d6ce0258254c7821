"""The read side of the store: typed, read-only reads of a task's store for every surface (the
console, the CLI, replay and verify). Each read opens the store with ``db.read_snapshot`` — read-only,
never created or migrated, one consistent snapshot — and returns frozen dataclasses. The names load lazily
(``loom status`` needs the status read only, not the audit and run reads)."""

import importlib

_WHERE = {
    **dict.fromkeys(("Recording", "Tick", "VerifyFacts", "chain_report", "head", "recording", "task_id", "ticks",
                     "verify_facts"), "loom_core.store.read.audit"),
    "TASK_FIELDS": "loom_core.store.read.fields",
    **dict.fromkeys(("Blocker", "Chain", "ChainRun", "Gate", "GateFacts", "RunDetail", "RunFinding",
                     "RunVerdict", "TaskSummary", "chain", "gate", "run"), "loom_core.store.read.runs"),
    **dict.fromkeys(("Activity", "StatusFacts", "Usage", "activity", "status_facts"), "loom_core.store.read.status"),
}


def __getattr__(name: str) -> object:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)


__all__ = [
    "TASK_FIELDS", "Activity", "Blocker", "Chain", "ChainRun", "Gate", "GateFacts", "Recording", "RunDetail", "RunFinding",
    "RunVerdict", "StatusFacts", "TaskSummary", "Tick", "Usage", "VerifyFacts", "activity", "chain", "chain_report",
    "gate", "head", "recording", "run", "status_facts", "task_id", "ticks", "verify_facts",
]
