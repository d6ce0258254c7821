"""Answers for shell completion: small, read-only, and quick enough for every Tab (plain sqlite3 and the
history index; no engine, no ORM, no settings model)."""

from __future__ import annotations

from typing import Any


class CompletionVerbs:
    def task_refs(self, ref: Any) -> list[dict[str, str]]:
        """The task ids ``loom replay`` and ``loom verify --task`` accept: the live task's first (if there is
        one), then the archived ones, newest first. Each ``{"ref", "label"}``."""
        from loom_core.store import db as dbmod
        from loom_core.store.archive import history
        from loom_core.store.read import task_id

        proj = self._path(ref)  # type: ignore[attr-defined]
        out = []
        live = dbmod.state_path(proj)
        tid = task_id(live) if live.is_file() else None
        if tid:
            out.append({"ref": tid, "label": "the live task"})
        for entry in reversed(history(proj)):
            if "raw" in entry or not entry.get("ref"):
                continue
            words = [f"{entry.get('status')}/{entry.get('verdict')}", str(entry.get("task_short") or "")]
            out.append({"ref": str(entry["ref"]), "label": " ".join(w for w in words if w)})
        return out
