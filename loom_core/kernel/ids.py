"""Deterministic identifiers.

Ids minted inside a tick derive from the task's ``driver_state_id`` and the tick sequence,
so replaying the recorded events mints the very same ids.
"""

from __future__ import annotations

import hashlib
import re


class IdSource:
    def __init__(self, seed: str) -> None:
        self._seed = seed
        self._n = 0

    def hex(self, length: int = 32) -> str:
        self._n += 1
        return hashlib.sha256(f"{self._seed}/{self._n}".encode()).hexdigest()[:length]

    def mint(self, prefix: str) -> str:
        h = self.hex(32)
        return f"{prefix}-{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def slug(text: str, limit: int = 48) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return s[:limit].strip("-") or "task"


def task_id_for(day: str, text: str, prefix: str = "t", suffix: str = "") -> str:
    """``<prefix>-<day>-<slug>[-<suffix>]``. The caller (the engine, outside the kernel) passes a suffix
    minted per task, so the same text on the same day gets a new id; the id is recorded in the create
    event, so replay reproduces it without minting again."""
    base = f"{prefix}-{day}-{slug(text, 40)}"
    return f"{base}-{suffix}" if suffix else base


def task_suffix(driver_state_id: str, length: int = 6) -> str:
    """A short hex suffix derived from the task's (random, unique) driver_state_id."""
    return hashlib.sha256(driver_state_id.encode()).hexdigest()[:length]
