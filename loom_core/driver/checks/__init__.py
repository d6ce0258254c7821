"""Checks runner: run a repository's typecheck / lint / test commands on the task's sandbox.

One job per module: :mod:`.detect` (which command), :mod:`.pyenv` and :mod:`.layout` (which
interpreter, proven to import the sandbox's code), :mod:`.run` (one command, bounded),
:mod:`.locations` (locations and failure keys), :mod:`.scope` (changed files, related tests
first), :mod:`.baseline` (the same check on the unchanged tree), :mod:`.treesnap` (nothing a
check changes survives), :mod:`.report` (the envelope), :mod:`.executor` (the ``checks`` step).
"""

from .detect import detect_checks
from .executor import ChecksExecutor, checks_text, sandbox_info
from .locations import parse_locations
from .model import CHECK_NAMES, CheckResult, CheckSpec, Location
from .pyenv import PyEnv, resolve_env
from .report import envelope, write_failures
from .run import run_checks
from .treesnap import TreeSnapshot

__all__ = ["CHECK_NAMES", "CheckResult", "CheckSpec", "ChecksExecutor", "Location", "PyEnv", "TreeSnapshot",
           "checks_text", "detect_checks", "envelope", "parse_locations", "resolve_env", "run_checks", "sandbox_info",
           "write_failures"]
