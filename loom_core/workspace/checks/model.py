"""The checks runner's data: what to run (:class:`CheckSpec`) and what came of it (:class:`CheckResult`)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

CHECK_NAMES: tuple[str, ...] = ("typecheck", "lint", "test")

HEAD_BYTES = 32 * 1024
TAIL_BYTES = 16 * 1024
FAILURE_TAIL_CHARS = 8 * 1024
MAX_LOCATIONS = 20
MESSAGE_CHARS = 200
MAX_KEYS = 20000  # failure keys kept per run (the rest make the run "not comparable")
MAX_LINES = 5000  # normalised output lines kept for a whole-run comparison
FAILURES_FILE = Path(".loom") / "work" / "check-failures.txt"

SKIP_REASON = {"typecheck": "no typecheck command found", "lint": "no lint command found",
               "test": "no test command found"}

STATUSES = ("ok", "fail", "preexisting", "unverified", "skipped")


@dataclass
class CheckSpec:
    name: str  # "test" | "lint" | "typecheck"
    argv: list[str] | None  # exact argv, or None when `shell` is used
    shell: str | None = None  # a configured command string, run via /bin/sh -c
    reason: str = ""  # why this command was chosen (e.g. "pytest (.venv): tests/ found")
    tool: str | None = None  # "pytest" | "ruff" | "mypy" | ... when loom picked the tool (scoping knows how)
    imports_project: bool = False  # runs the project's Python code: needs a proven environment
    skip: str | None = None  # set: the check does not run, and this is why
    scope: str = "full"  # "full" | "changed" | "related"
    files: list[str] | None = None  # the file arguments of a scoped run (the argv ends with them)

    @property
    def command(self) -> str:
        if self.shell is not None:
            return self.shell
        return shlex.join(self.argv or [])


@dataclass
class Location:
    file: str
    line: int | None
    message: str


@dataclass
class CheckResult:
    name: str
    status: str  # one of STATUSES
    command: str
    exit_code: int | None
    output_head: str
    output_tail: str
    reason: str = ""
    locations: list[Location] = field(default_factory=list)
    duration_ms: int = 0
    new_failures: list[str] = field(default_factory=list)
    preexisting: list[str] = field(default_factory=list)
    scope: str = "full"
    cached: bool = False
    expected: bool = False  # skipped although the project has this check (e.g. its tool is not installed)
    # what the comparison with the baseline works from (not part of the envelope)
    keys: list[str] = field(default_factory=list)  # failure keys (test ids / "file: message")
    whole_run: bool = False  # the failure cannot be split into keys (collection error, unparsed output)
    collection_error: bool = False  # pytest could not collect a test module
    lines: list[str] | None = None  # normalised output lines (None: too many to compare)
    stopped: str | None = None  # "timeout" | "cancelled" when loom cut the run short
