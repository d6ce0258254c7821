"""The tamper-evident audit chain: row.hash = SHA-256(prev_hash || canonical content)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64


_CANONICAL = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str)  # one, not one per call


def canonical(value: Any) -> str:
    """Compact JSON. Key order is the (deterministic) construction order; hashes are always
    computed over the stored text itself, so verification never re-serialises."""
    return _CANONICAL.encode(value)


def row_hash(prev_hash: str, ts: str, type_: str, task_id: str | None, driver_state_id: str | None,
             payload_text: str, verdict: str, error_class: str | None) -> str:
    content = canonical([ts, type_, task_id, driver_state_id, payload_text, verdict, error_class])
    return hashlib.sha256((prev_hash + content).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    rows: int
    head: str
    broken_row: int | None = None
    reason: str = ""
    notes: tuple[str, ...] = ()

    def line(self, where: str) -> str:
        if self.ok:
            extra = "".join(f"; {n}" for n in self.notes)
            return f"audit chain intact: {self.rows} row(s), head {self.head[:16]}{extra} ({where})"
        at = f" at row {self.broken_row}" if self.broken_row is not None else ""
        return f"audit chain BROKEN{at}: {self.reason} ({where})"


def verify_rows(rows: list[tuple], head: str | None, count: int | None) -> ChainReport:
    """rows: (id, ts, type, task_id, driver_state_id, payload, verdict, error_class, prev_hash, hash)
    in id order. ``head``/``count`` are the anchors kept in driver_state."""
    prev = GENESIS
    last_id = 0
    for row in rows:
        rid, ts, type_, task_id, dsid, payload, verdict, error_class, prev_hash, h = row
        if prev_hash != prev:
            if rid != last_id + 1:
                why = f"row(s) {last_id + 1}..{rid - 1} are missing (deleted)"
            else:
                why = "its link to the previous row does not match (previous row edited or a row inserted)"
            return ChainReport(False, len(rows), prev, rid, why)
        if row_hash(prev_hash, ts, type_, task_id, dsid, payload, verdict, error_class) != h:
            return ChainReport(False, len(rows), prev, rid, "its content does not match its hash (row edited)")
        prev = h
        last_id = rid
    if count is not None and count != len(rows):
        return ChainReport(False, len(rows), prev, last_id + 1 if count > len(rows) else last_id,
                           f"the store records {count} audit row(s) but {len(rows)} are present (rows deleted at the end)")
    if head is not None and head != (prev if rows else head) and rows:
        return ChainReport(False, len(rows), prev, last_id, "the chain head recorded in driver_state does not match")
    return ChainReport(True, len(rows), prev)
