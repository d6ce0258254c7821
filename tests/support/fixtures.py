"""Build finished or parked spec tasks in a project directory (real store, scripted agents)."""

from __future__ import annotations

from pathlib import Path

from loom_core.agents.executors import ScriptedExecutor
from loom_core.bundles.spec import BUNDLE
from loom_core.engine.clock import FixedClock
from loom_core.engine.drive import Driver, Outcome
from loom_core.engine.engine import Engine
from tests.support import scripts


def finished_task(project: Path, script: str = "one_rework", task: str = "spec the login limiter",
                  clock: FixedClock | None = None) -> Outcome:
    engine = Engine(project, bundle=BUNDLE, clock=clock or FixedClock())
    driver = Driver(engine, ScriptedExecutor(getattr(scripts, script)))
    outcome = driver.start(task)
    while outcome.kind == "paused":
        outcome = driver.run(engine.answer(outcome.gate_event_id, "accept"))
    engine.close()
    return outcome


def parked_task(project: Path, clock: FixedClock | None = None) -> Outcome:
    engine = Engine(project, bundle=BUNDLE, clock=clock or FixedClock())
    outcome = Driver(engine, ScriptedExecutor(scripts.happy)).start("spec the login limiter")
    engine.close()
    return outcome
