"""Edits to a finished store for the console's reference pictures (``loom_tui/scenes.py``)."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def pin_durations(path: Path) -> None:
    """Replace the measured duration of every transcript (it varies from run to run) with one derived
    from the agent's name, and fold the log into the file. Nothing happens without a store."""
    path = Path(path)
    if not path.exists():
        return
    conn = sqlite3.connect(path)
    try:
        conn.execute("UPDATE transcripts SET duration_ms = 1200 + (length(agent) * 137) % 4000")
        conn.commit()
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
