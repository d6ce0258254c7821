"""Drive one spec-bundle task to its end in this process, answering every gate 'accept'.

Used by the crash matrix: ``python -m tests.support.drive_spec <project> <script>``. Safe to
re-run after a crash at any point: an existing task is resumed, a missing one created with a
fixed client key (a re-create after a commit is a ledger replay).
"""

from __future__ import annotations

import json
import sys

from loom_core.agents.executors import ScriptedExecutor
from loom_core.bundles.spec import BUNDLE
from loom_core.engine.drive import Driver
from loom_core.engine.engine import Engine
from tests.support import scripts


def main(project: str, script: str = "one_rework") -> int:
    engine = Engine(project, bundle=BUNDLE)
    driver = Driver(engine, ScriptedExecutor(getattr(scripts, script)))
    if engine.state().exists:
        outcome = driver.resume()
    else:
        outcome = driver.start("write a spec for rate limiting on login", client_key="crash-matrix")
    while outcome.kind == "paused":
        outcome = driver.run(engine.answer(outcome.gate_event_id, "accept"))
    print(json.dumps({"kind": outcome.kind, "verdict": outcome.verdict}))
    engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
