"""Drive one spec-bundle task under a cost budget, answering every gate 'accept'; every spawn is billed
(a line appended and fsynced to a bill file, as a provider bills when the request arrives) before it
works for ``delay`` seconds and reports that cost.

``python -m tests.support.budget_drive <project> <bill file> <budget USD> <cost per spawn> <delay s>``;
prints ``billed <agent>`` when a spawn is billed and the outcome as JSON at the end. Safe to re-run
after a kill at any point: the task is resumed.
"""

from __future__ import annotations

import json
import os
import sys
import time

from loom_core.agents.executors import ExecResult, ScriptedExecutor, Usage
from loom_core.bundles.spec import BUNDLE
from loom_core.engine.budget import Limits
from loom_core.engine.drive import DriveOptions, Driver
from loom_core.engine.engine import Engine
from loom_core.engine.lock import ProjectLock
from tests.support import scripts


def main(project: str, bill: str, budget: str, cost: str, delay: str) -> int:
    def billed(intent):
        with open(bill, "a", encoding="utf-8") as fh:
            fh.write(f"{intent.agent} {cost}\n")
            fh.flush()
            os.fsync(fh.fileno())
        print("billed", intent.agent, flush=True)
        time.sleep(float(delay))
        return ExecResult(output=scripts.one_rework(intent), usage=Usage(tokens_in=900, tokens_out=100,
                                                                         cost_usd=float(cost)))

    with ProjectLock(project):
        engine = Engine(project, bundle=BUNDLE)
        driver = Driver(engine, ScriptedExecutor(billed), options=DriveOptions(budget=Limits(float(budget))))
        if engine.state().exists:
            outcome = driver.resume()
        else:
            outcome = driver.start("write a spec for rate limiting on login", client_key="budget-drive")
        while outcome.kind == "paused":
            outcome = driver.run(engine.answer(outcome.gate_event_id, "accept"))
        print(json.dumps({"kind": outcome.kind, "code": outcome.code, "verdict": outcome.verdict}), flush=True)
        engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
