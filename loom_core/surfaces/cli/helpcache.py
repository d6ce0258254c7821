"""The top-level help kept as text under ``$XDG_CACHE_HOME/loom``, so ``loom --help`` prints it without
importing typer or building a command.

One file per help width (click wraps help to the terminal, at most 78 columns). Its first line is the key:
loom's version, the width and the size and modification time of the modules the root help is made of
and of typer's (an edit to any of them, an upgrade or a new version makes the entry stale; the next
``--help`` renders and stores it again). The help is plain text (no colour: the CLI renders help without rich), so the width is the
only thing about the terminal it depends on. Any error reading or writing the cache is ignored: the help
is then rendered as usual.
"""

from __future__ import annotations

import os
import sys

from loom_core.config import cachefile
from loom_core.config.cachefile import stamps

# the root help is made of the root callback and options (app.py), the command table and how the group
# lists it (lazy.py), this package's __init__ and typer (which formats it and adds the completion options)
SOURCES = ("__init__.py", "app.py", "table.py", "lazy.py", "helpcache.py")


def width() -> int:
    """The width click wraps help to (its HelpFormatter's default)."""
    import shutil

    return max(min(shutil.get_terminal_size().columns, 80) - 2, 50)


def _key(cols: int) -> str:
    from importlib.util import find_spec

    from loom_core import __version__

    here = os.path.dirname(os.path.abspath(__file__))
    typer = find_spec("typer")  # located, not imported
    files = [os.path.join(here, name) for name in SOURCES] + [typer.origin if typer else ""]
    return f"loom {__version__} width {cols} {' '.join(stamps(files))}"


def _path(cols: int) -> str:
    from loom_core.config.paths import cache_dir

    return os.path.join(cache_dir(), f"help-{cols}.txt")


def show() -> bool:
    """Print the cached top-level help if it is current; False when there is none (render it then)."""
    try:
        cols = width()
        with open(_path(cols), encoding="utf-8") as fh:
            key, _, text = fh.read().partition("\n")
        if key != _key(cols) or not text:
            return False
    except (OSError, ValueError):
        return False
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
    return True


def store(text: str) -> None:
    """Keep ``text`` as the top-level help for this width (written whole, then renamed into place)."""
    try:
        cols = width()
        cachefile.write(_path(cols), f"{_key(cols)}\n{text}")
    except (OSError, ValueError):
        pass
