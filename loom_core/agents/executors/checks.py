"""The ``checks`` step on the executor seam: the workspace's deterministic checks run, timed, as an
:class:`~loom_core.agents.executors.ExecResult` (no model, no tokens)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from loom_core.agents.executors import ExecResult, Usage
from loom_core.kernel.types import Intent
from loom_core.workspace.checks.step import ChecksStep


class ChecksExecutor(ChecksStep):
    """A cancel raises ExecutorError (code CHECKS_CANCELLED), so a cut-short run is never recorded."""

    name = "checks"
    label = "checks (deterministic, no model)"
    idempotent = True

    def execute(self, intent: Intent, cancel: threading.Event, log: Callable[[str], None]) -> ExecResult:
        started = time.monotonic()
        text = self.run(cancel, log)
        return ExecResult(output=text, usage=Usage(duration_ms=int((time.monotonic() - started) * 1000), num_turns=0))
