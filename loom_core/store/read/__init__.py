"""The read side of the store: typed, read-only reads of a task's store for every surface (the
console, the CLI, replay and verify). Each read opens the store with ``db.read_snapshot`` — read-only,
never created or migrated, one consistent snapshot — and returns frozen dataclasses."""

from loom_core.store.read.audit import (
    Recording,
    Tick,
    VerifyFacts,
    chain_report,
    head,
    recording,
    task_id,
    ticks,
    verify_facts,
)
from loom_core.store.read.runs import (
    TASK_FIELDS,
    Blocker,
    Chain,
    ChainRun,
    Gate,
    GateFacts,
    RunDetail,
    RunFinding,
    RunVerdict,
    TaskSummary,
    chain,
    gate,
    run,
)
from loom_core.store.read.status import Activity, StatusFacts, Usage, activity, status_facts

__all__ = [
    "TASK_FIELDS", "Activity", "Blocker", "Chain", "ChainRun", "Gate", "GateFacts", "Recording", "RunDetail", "RunFinding",
    "RunVerdict", "StatusFacts", "TaskSummary", "Tick", "Usage", "VerifyFacts", "activity", "chain", "chain_report",
    "gate", "head", "recording", "run", "status_facts", "task_id", "ticks", "verify_facts",
]
