"""The debug log: ``--debug`` / ``LOOM_DEBUG=1`` write ``$XDG_STATE_HOME/loom/loom-debug.log``.

One file for every loom process (CLI, plane, daemon), each line stamped with its pid; it rotates at
5 MB, keeping three old files (``loom-debug.log.1`` … ``.3``). Everything loom logs under the ``loom``
logger goes there at DEBUG level: engine steps, agent spawns and exits, errors with their tracebacks.
Without the flag nothing is configured and no file is made. ``logging`` is imported only here, when asked.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from loom_core.config.paths import state_dir

LOG_NAME = "loom-debug.log"
MAX_BYTES = 5 * 1024 * 1024
BACKUPS = 3
_OFF = {"", "0", "false", "no", "off"}
_enabled: Path | None = None


def wanted() -> bool:
    """``LOOM_DEBUG`` is set to anything but empty / 0 / false / no / off."""
    return os.environ.get("LOOM_DEBUG", "").strip().lower() not in _OFF


def log_path() -> Path:
    return state_dir() / LOG_NAME


def enable(*, announce: bool = True) -> Path | None:
    """Start writing the debug log (once per process) and say where on stderr; the path, or None when the
    file cannot be written (said on stderr too; loom carries on without it). Child processes inherit
    ``LOOM_DEBUG=1`` so a plane or daemon started from here logs to the same file."""
    global _enabled
    if _enabled is not None:
        return _enabled
    import logging
    from logging.handlers import RotatingFileHandler

    path = log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        handler = RotatingFileHandler(path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8")
    except OSError as exc:
        print(f"loom: cannot write the debug log {path}: {exc.strerror or exc}; carrying on without it",
              file=sys.stderr)
        return None
    handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"))
    logger = logging.getLogger("loom")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").addHandler(handler)
    os.environ["LOOM_DEBUG"] = "1"
    _enabled = path
    from loom_core import __version__

    command = _command(sys.argv[1:])
    logger.debug("loom %s started: %s (pid %d, python %s)", __version__, f"loom {command}".strip(), os.getpid(),
                 sys.version.split()[0])
    if announce:
        print(f"loom: debug log: {path}", file=sys.stderr)
    return path


def _command(args: list[str]) -> str:
    """The command word of ``args`` (never a value: a value may be a secret, like ``--token``'s)."""
    skip = False
    for a in args:
        if skip:
            skip = False
        elif a in ("--server", "--token"):  # the global options that take a value
            skip = True
        elif not a.startswith("-"):
            return a
    return ""


def record_error(exc: BaseException, what: str = "error") -> None:
    """Write ``exc`` with its traceback to the debug log when it is on (nothing otherwise)."""
    if _enabled is None:
        return
    import logging

    logging.getLogger("loom.cli").debug("%s: %s: %s", what, type(exc).__name__, exc, exc_info=exc)
