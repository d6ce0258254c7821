"""The facade every surface goes through (console, CLI, plain mode; later the HTTP plane, Telegram, MCP).

Surfaces import names from here only (an import-linter contract holds them to it). Names load lazily,
so ``loom --help`` does not pay for the engine.
"""

from __future__ import annotations

import importlib

_WHERE = {
    # the protocol and its in-process implementation
    "ControlClient": "loom_core.control.client", "ProjectRef": "loom_core.control.client",
    "DECISIONS": "loom_core.control.client", "RECOVERIES": "loom_core.control.client",
    "LocalControl": "loom_core.control.local",
    # LocalControl().status / history_index / verify for a directory, without building the facade
    "read_status": "loom_core.control.reading", "read_history": "loom_core.control.reading",
    "read_verify": "loom_core.control.reading",
    "Catalog": "loom_core.control.catalog", "Project": "loom_core.control.catalog",
    # what a surface passes in and gets back
    "RunOptions": "loom_core.engine.options", "RunResult": "loom_core.engine.options",
    "ProjectBusy": "loom_core.engine.lock", "demo_task": "loom_core.engine.runner",
    "in_place_warning": "loom_core.engine.runner", "in_place_refusal": "loom_core.engine.runner",
    "EngineEvent": "loom_core.engine.events", "EventSink": "loom_core.engine.events",
    "NullSink": "loom_core.engine.events",
    "Clock": "loom_core.engine.clock", "SystemClock": "loom_core.engine.clock", "FixedClock": "loom_core.engine.clock",
    "sequential_ids": "loom_core.engine.engine",  # a fixed id source (the screenshot scenes)
    "create_demo_project": "loom_core.agents.executors.demo_project",
    "pin_durations": "loom_core.store.pin",  # the screenshot scenes: measured run times pinned for the pictures
    "load_invariants": "loom_core.control.housekeeping",
    "UsageTotal": "loom_core.engine.drive",
    # names a surface offers (import-light: the CLI's help reads them)
    "ConfigVerbs": "loom_core.control.config", "backend_names": "loom_core.control.config",
    "backend_help": "loom_core.control.config", "policy_names": "loom_core.control.config",
    "complexity_names": "loom_core.control.config",
    "fs_root": "loom_core.control.plane_verbs",  # the folder pickers' root (console and plane)
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
