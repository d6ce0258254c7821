"""The user's pager and editor, as git and lazygit pick them, for reading a gate's plan and diff.

Pager: ``$LOOM_PAGER``, then ``$PAGER``, then ``less -R`` (``more`` when less is not installed).
Editor: ``$VISUAL``, then ``$EDITOR``, then ``vi``. A value may carry arguments (``code --wait``).

:func:`open_text` writes the text to a temporary file (``.md`` for a plan, ``.diff`` for a diff), runs
the program on it in the foreground, waits and deletes the file. The text is a copy: what the user
changes in the editor goes nowhere (a plan is changed by rejecting the gate with a note).

Stdlib only: both plain mode and the console import it (the console inside ``App.suspend()``).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from loom_core.errors import LoomError

PAGER_VARS = ("LOOM_PAGER", "PAGER")
EDITOR_VARS = ("VISUAL", "EDITOR")
PAGER_FALLBACKS = (["less", "-R"], ["more"])
EDITOR_FALLBACKS = (["vi"],)


class ProgramNotFound(LoomError):
    """The pager or editor to run is not installed (or its variable names no program)."""

    code = "PROGRAM_NOT_FOUND"


@dataclass(frozen=True)
class Opened:
    returncode: int
    changed: bool  # the user edited the copy (the edit is discarded)


@dataclass(frozen=True)
class Program:
    kind: str  # "pager" | "editor"
    argv: list[str]  # argv[0] resolved to a path
    source: str  # "$PAGER", "default", …


def _pick(kind: str, names: tuple[str, ...], fallbacks: tuple[list[str], ...], env: Mapping[str, str]) -> Program:
    for var in names:
        value = (env.get(var) or "").strip()
        if not value:
            continue
        try:
            argv = shlex.split(value)
        except ValueError as exc:
            raise ProgramNotFound(f"${var} cannot be read as a command ({exc}): {value!r}") from None
        path = shutil.which(argv[0], path=env.get("PATH")) if argv else None
        if path is None:
            shown = argv[0] if argv else value
            raise ProgramNotFound(f"the {kind} '{shown}' (from ${var}) was not found; "
                                  f"set ${var} to a program that is installed")
        return Program(kind, [path, *argv[1:]], f"${var}")
    for argv in fallbacks:
        path = shutil.which(argv[0], path=env.get("PATH"))
        if path:
            return Program(kind, [path, *argv[1:]], "default")
    tried = " or ".join(a[0] for a in fallbacks)
    raise ProgramNotFound(f"no {kind} found: set ${names[0]} or ${names[-1]} ({tried} is not installed)")


def pager(env: Mapping[str, str] | None = None) -> Program:
    """The pager to run (raises :class:`ProgramNotFound` when there is none)."""
    return _pick("pager", PAGER_VARS, PAGER_FALLBACKS, os.environ if env is None else env)


def editor(env: Mapping[str, str] | None = None) -> Program:
    """The editor to run (raises :class:`ProgramNotFound` when there is none)."""
    return _pick("editor", EDITOR_VARS, EDITOR_FALLBACKS, os.environ if env is None else env)


def open_text(program: Program, text: str, *, suffix: str, name: str = "loom") -> Opened:
    """Run ``program`` on a temporary copy of ``text`` in the foreground and wait for it.
    The copy is deleted afterwards, whatever happens."""
    fd, path = tempfile.mkstemp(prefix=f"{name}-", suffix=suffix)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="replace", newline="") as f:
            f.write(text)
        try:
            with _interrupts_to_the_program():
                rc = subprocess.run([*program.argv, path], check=False).returncode
        except OSError as exc:  # not executable, vanished since it was found
            raise ProgramNotFound(f"could not run the {program.kind} {program.argv[0]}: {exc.strerror or exc}") from None
        try:
            with open(path, encoding="utf-8", errors="replace", newline="") as f:
                changed = f.read() != text
        except OSError:  # the editor removed or renamed it
            changed = True
        return Opened(rc, changed)
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass


@contextlib.contextmanager
def _interrupts_to_the_program() -> Iterator[None]:
    """Ctrl+C / Ctrl+\\ in the pager or editor are the program's (less and vi use them), not a reason for
    loom to stop, as git does. A no-op handler, not SIG_IGN: the child starts with the default again."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGINT, signal.SIGQUIT)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def what_to_open(which: str, env: Mapping[str, str] | None = None) -> tuple[Program, str]:
    """``"plan"`` → (the editor, ``.md``); ``"diff"`` → (the pager, ``.diff``)."""
    if which == "plan":
        return editor(env), ".md"
    if which == "diff":
        return pager(env), ".diff"
    raise LoomError(f"expected plan or diff, got {which!r}", code="USAGE")
