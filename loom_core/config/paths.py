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


def catalog_path() -> Path:
    return loom_home() / "workspace.json"


def config_path() -> Path:
    return loom_home() / "config.toml"


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
