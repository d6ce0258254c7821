"""Where loom keeps its user-level files: ``$LOOM_HOME`` › ``$XDG_CONFIG_HOME/loom`` › ``~/.config/loom``."""

from __future__ import annotations

import os
from pathlib import Path


def loom_home() -> Path:
    env = os.environ.get("LOOM_HOME", "").strip()
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CONFIG_HOME", "").strip()
    return (Path(xdg).expanduser() if xdg else Path.home() / ".config") / "loom"


def footprint() -> Path:
    """The user's second loom folder (``$LOOM_USER_DIR`` › ``~/.loom``): the MCP allowlist, the plane's
    server state. Kept apart from the config home because Claude Code users look for it beside ``~/.claude``."""
    env = os.environ.get("LOOM_USER_DIR", "").strip()
    return Path(env).expanduser() if env else Path.home() / ".loom"


def state_dir() -> Path:
    """Logs and other files loom can lose (``$XDG_STATE_HOME/loom`` › ``~/.local/state/loom``)."""
    xdg = os.environ.get("XDG_STATE_HOME", "").strip()
    return (Path(xdg).expanduser() if xdg else Path.home() / ".local" / "state") / "loom"


def cache_dir() -> Path:
    """Files loom can rebuild (``$XDG_CACHE_HOME/loom`` › ``~/.cache/loom``)."""
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "loom"


def catalog_path() -> Path:
    return loom_home() / "workspace.json"


def config_path() -> Path:
    return loom_home() / "config.toml"


def check_regular(path: Path) -> None:
    """Refuse anything at ``path`` but a regular file (or nothing), by ``stat`` alone: opening a FIFO would
    block, a directory or device cannot be read as text."""
    import stat

    from loom_core.errors import ConfigError

    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "a FIFO, device or socket"
        raise ConfigError(f"{path} is {kind}, not a file; remove it (nothing was read)")


def atomic_write(path: Path, text: str, mode: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        if mode is not None:
            os.chmod(tmp, mode)
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
