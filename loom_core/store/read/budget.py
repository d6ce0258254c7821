"""What a task's transcripts say it spent: the cost and tokens of every recorded attempt, failed ones too
(the budget's floor; see ``loom_core.engine.budget``)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from loom_core.store.read.opener import snapshot

SPEND_SQL = ("SELECT coalesce(sum(cost_usd), 0), "
             "coalesce(sum(coalesce(json_extract(usage, '$.tokens_in'), 0) "
             "+ coalesce(json_extract(usage, '$.tokens_out'), 0)), 0) FROM transcripts")


def spend(conn: sqlite3.Connection) -> tuple[float, int]:
    """``(cost in USD, tokens in + out)`` over every transcript row of an open store."""
    row = conn.execute(SPEND_SQL).fetchone()
    return (float(row[0] or 0.0), int(row[1] or 0)) if row else (0.0, 0)


def spend_at(path: Path) -> tuple[float, int]:
    """:func:`spend` of the store at ``path`` in one read-only snapshot; ``(0.0, 0)`` when there is none."""
    return snapshot(Path(path), spend, empty=(0.0, 0)) or (0.0, 0)
