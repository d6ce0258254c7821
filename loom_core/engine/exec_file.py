"""The exec file (``.loom/task-exec.json``): the options a project's task was started with, so that
``proceed``, ``answer`` and ``recover`` continue it the same way."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

from loom_core.engine.options import RunOptions
from loom_core.errors import ConfigError
from loom_core.store import db as dbmod
from loom_core.store import loomdir


def exec_file(project: Path) -> Path:
    return dbmod.loom_dir(project) / "task-exec.json"


def save_exec(project: Path, opts: RunOptions) -> None:
    path = exec_file(project)
    loomdir.ensure(path.parent)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(opts), indent=2), encoding="utf-8")
    os.replace(tmp, path)


def load_exec(project: Path) -> RunOptions:
    """The options the project's task was started with (``.loom/task-exec.json``); defaults when there is
    none. A damaged or wrongly typed file is refused with the field and the fix, never guessed around."""
    path = exec_file(project)
    if not path.exists():
        return RunOptions()
    from loom_core.config.paths import check_regular

    check_regular(path)
    hint = f"fix or delete {path} (then name the backend with --backend)"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise ConfigError(f"{path} cannot be read ({exc}); {hint}"[:400]) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a JSON object, not {type(data).__name__}; {hint}")
    opts = RunOptions(**{k: v for k, v in data.items() if k in RunOptions.__dataclass_fields__})
    try:
        opts.validate()
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}; {hint}") from None
    return opts
