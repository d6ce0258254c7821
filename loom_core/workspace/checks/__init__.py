"""Checks runner: run a repository's typecheck / lint / test commands on the task's sandbox.

One job per module: :mod:`.detect` (which command), :mod:`.pyenv` and :mod:`.layout` (which
interpreter, proven to import the sandbox's code), :mod:`.run` (one command, bounded),
:mod:`.locations` (locations and failure keys), :mod:`.scope` (changed files, related tests
first), :mod:`.baseline` (the same check on the unchanged tree), :mod:`.treesnap` (nothing a
check changes survives), :mod:`.report` (the envelope), :mod:`.executor` (the ``checks`` step).
"""

from loom_core.workspace.checks.detect import detect_checks
from loom_core.workspace.checks.locations import parse_locations
from loom_core.workspace.checks.model import CHECK_NAMES, CheckResult, CheckSpec, Location
from loom_core.workspace.checks.pyenv import PyEnv, resolve_env
from loom_core.workspace.checks.report import envelope, write_failures
from loom_core.workspace.checks.run import run_checks
from loom_core.workspace.checks.step import ChecksStep, checks_text, sandbox_info
from loom_core.workspace.checks.treesnap import TreeSnapshot

__all__ = ["CHECK_NAMES", "CheckResult", "CheckSpec", "ChecksStep", "Location", "PyEnv", "TreeSnapshot",
           "checks_text", "detect_checks", "envelope", "parse_locations", "resolve_env", "run_checks", "sandbox_info",
           "write_failures"]
