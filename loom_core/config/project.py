"""A project's own settings (``.loom/loom.json``) and the check commands that follow from them and the
user's settings. Below the engine and the agents: the run and an agent's ``run_checks`` tool read the
same commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from loom_core.config.paths import check_regular
from loom_core.config.settings import load_settings
from loom_core.errors import ConfigError

CHECK_COMMANDS = ("test", "lint", "typecheck")


def project_config(project: Path) -> dict[str, Any]:
    path = Path(project) / ".loom" / "loom.json"
    if not path.exists():
        return {}
    check_regular(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a JSON object")
    return data


def configured_checks(project: Path) -> dict[str, str] | str:
    """Check commands: the project's `.loom/loom.json` wins over the user's settings. The string
    ``"none"`` there (``{"checks": "none"}``) opts the project out: no check runs, on purpose.
    ``{python}`` in a command stands for the checks interpreter (the project's environment)."""
    own = project_config(project).get("checks")
    if own == "none":
        return "none"
    if own is not None and not isinstance(own, dict):
        raise ConfigError("'checks' in .loom/loom.json must map test/lint/typecheck to commands, or be \"none\"")
    user = {k: v for k, v in load_settings().checks.model_dump().items() if k in CHECK_COMMANDS and v}
    checks = {**user, **(own or {})}
    return {k: str(v) for k, v in checks.items() if v}
