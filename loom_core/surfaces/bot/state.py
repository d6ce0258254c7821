"""The bot's state file, ``<loom home>/bot/telegram.json`` (spec §7): per chat the active project, the gates and
terminal states already announced, the project picker, the task waiting for its complexity and the rejection
waiting for its note. Written atomically after every change; a corrupt file is set aside and the bot starts
empty, with a notice (it never refuses to start over its own memory)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from loom_core.config import paths

log = logging.getLogger("loom.bot")

PROMPTED_CAP = 200  # gate ids remembered per chat (a cursor, oldest dropped)


def default_path() -> Path:
    return paths.loom_home() / "bot" / "telegram.json"


def _empty_chat() -> dict[str, Any]:
    return {"active_project": None, "prompted_gates": [], "announced_terminal": {}, "picker": [],
            "pending_task": None, "awaiting_reason": None}


class BotState:
    """The chats the bot knows, keyed by chat id (as text, as JSON keeps it)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path else default_path()
        self.notice: str | None = None  # why the file was set aside, once
        self.chats: dict[str, dict[str, Any]] = self._load()

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            self._corrupt(f"cannot be read ({exc.strerror or exc})")
            return {}
        try:
            doc = json.loads(raw.decode("utf-8"))  # not UTF-8: a ValueError too
            chats = doc["chats"]
            if not isinstance(chats, dict) or not all(isinstance(v, dict) for v in chats.values()):
                raise ValueError("chats is not an object of objects")
        except (ValueError, KeyError, TypeError) as exc:
            self._corrupt(f"is not a valid state file ({exc})")
            return {}
        return {str(k): {**_empty_chat(), **v} for k, v in chats.items()}

    def _corrupt(self, why: str) -> None:
        aside = self.path.with_name(self.path.name + ".corrupt")
        try:
            self.path.replace(aside)
            kept = f"; kept as {aside}"
        except OSError:
            kept = ""
        self.notice = f"the bot state file {self.path} {why}: starting empty{kept}"
        log.warning(self.notice)

    def chat(self, chat_id: int | str) -> dict[str, Any]:
        """The chat's state (created empty on first use)."""
        return self.chats.setdefault(str(chat_id), _empty_chat())

    def save(self) -> None:
        paths.atomic_write(self.path, json.dumps({"version": 1, "chats": self.chats}, indent=1, sort_keys=True))

    # ---------------------------------------------------------------- the dedup cursors
    def gate_project(self, chat_id: int | str, gate_event_id: str) -> str | None:
        """The project of a gate announced in this chat (``None`` when never announced here)."""
        for geid, pid in self.chat(chat_id)["prompted_gates"]:
            if geid == gate_event_id:
                return pid
        return None

    def mark_gate(self, chat_id: int | str, gate_event_id: str, project_id: str) -> bool:
        """Remember an announced gate; ``False`` when it already was (nothing changes)."""
        chat = self.chat(chat_id)
        if any(geid == gate_event_id for geid, _ in chat["prompted_gates"]):
            return False
        chat["prompted_gates"] = [*chat["prompted_gates"], [gate_event_id, project_id]][-PROMPTED_CAP:]
        return True

    def mark_terminal(self, chat_id: int | str, project_id: str, key: str) -> bool:
        """Remember a project's announced end (``<status>:<task_id>``); ``False`` when it already was."""
        done = self.chat(chat_id)["announced_terminal"]
        if done.get(project_id) == key:
            return False
        done[project_id] = key
        return True
