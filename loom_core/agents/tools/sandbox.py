"""``SandboxTools``: the tool set bound to one sandbox root, as offered to a direct-API model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from loom_core.agents.tools.files import FileTools
from loom_core.agents.tools.fsio import os_message
from loom_core.agents.tools.registry import (
    READ_TOOLS,
    TOOLS,
    BadArgs,
    Failed,
    Refused,
    ToolOutcome,
    check_args,
    schema,
)
from loom_core.agents.tools.search import SearchTools


class SandboxTools(FileTools, SearchTools):
    """The tool set bound to one sandbox root. ``changed`` collects repo-relative paths written."""

    def __init__(self, root: Path, *, run_checks: Callable[[], str] | None = None,
                 audit: Callable[[dict], None] | None = None, max_output: int = 12_000,
                 extra_dirs: tuple[str, ...] = (), extra_files: tuple[str, ...] = (),
                 read_only: bool = False) -> None:
        super().__init__(root, max_output=max_output, extra_dirs=extra_dirs, extra_files=extra_files)
        self.read_only = read_only
        self._run_checks = run_checks
        self._audit = audit

    # ------------------------------------------------------------------ definitions

    def _available(self) -> list[str]:
        if self.read_only:
            return list(READ_TOOLS)
        return [n for n in TOOLS if n != "run_checks" or self._run_checks is not None]

    def specs(self) -> list[dict]:
        """Anthropic tool definitions."""
        return [{"name": n, "description": TOOLS[n][0], "input_schema": schema(TOOLS[n][1])}
                for n in self._available()]

    def openai_specs(self) -> list[dict]:
        """The same tools as OpenAI-style function tools."""
        return [{"type": "function", "function": {"name": s["name"], "description": s["description"],
                                                  "parameters": s["input_schema"]}}
                for s in self.specs()]

    # ------------------------------------------------------------------ dispatch

    def call(self, name: str, args: dict) -> ToolOutcome:
        """Run one tool call. Never raises."""
        record: dict[str, Any] = {"tool": name if isinstance(name, str) else repr(name)}
        try:
            if self.read_only and isinstance(name, str) and name in TOOLS and name not in READ_TOOLS:
                raise Refused(f"read-only: {name} is not available to this agent; "
                              f"it may only use {', '.join(READ_TOOLS)}")
            if not isinstance(name, str) or name not in self._available():
                known = ", ".join(self._available())
                raise BadArgs(f"unknown tool {name!r}; available tools: {known}")
            kwargs = check_args(name, args)
            if "path" in kwargs:
                record["path"] = kwargs["path"]
            content = getattr(self, f"_t_{name}")(**kwargs)
            outcome = ToolOutcome(True, content)
            record["result"] = "ok"
        except Refused as r:
            outcome = ToolOutcome(False, f"refused: {r.reason}", refused=True)
            record.update(result="refused", reason=r.reason, error_class="sandbox-violation")
        except (BadArgs, Failed) as e:
            outcome = ToolOutcome(False, f"error: {e}")
            record.update(result="error", reason=str(e)[:300])
        except Exception as e:  # noqa: BLE001 - a tool never raises into the model loop
            msg = os_message(e)
            outcome = ToolOutcome(False, f"error: {msg}")
            record.update(result="error", reason=msg[:300])
        if self._audit is not None:
            try:
                self._audit(record)
            except Exception:  # noqa: BLE001, S110 - auditing must not break the tool call
                pass
        return outcome

    def _t_run_checks(self) -> str:
        assert self._run_checks is not None
        text = self._run_checks()
        text = text if isinstance(text, str) else str(text)
        if len(text) > self.max_output:  # a checks report ends with what matters: keep head and tail
            half = self.max_output // 2
            text = text[:half] + f"\n… {len(text) - 2 * half} characters omitted …\n" + text[-half:]
        return text or "(no output)"

