"""The task columns every read of a task's summary selects (a module of its own: the history index and
the audit's verify read them without loading the run reads)."""

TASK_FIELDS = ("task_id", "task", "task_short", "status", "verdict", "started_at", "ended_at")
