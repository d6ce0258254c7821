"""Read one plain setting without loading the settings model (pydantic costs ~60 ms a process).

For the quick read commands (``loom status`` wants only ``general.stall_minutes``). The sources and their
order are the model's: ``LOOM_<SECTION>__<FIELD>`` › the short variable › the TOML file › the default. A value
that does not parse falls back to :func:`~loom_core.config.settings.load_settings`, so a bad value gets the
very same error as everywhere else.
"""

from __future__ import annotations

import os

from loom_core.config import paths

STALL_MINUTES = 50.0  # general.stall_minutes' default (the model uses this constant)


def _raw(section: str, field: str, short: str | None) -> object | None:
    for env in (f"LOOM_{section}__{field}".upper(), short):
        if env and os.environ.get(env, "").strip():
            return os.environ[env].strip()
    path = paths.config_path()
    if not os.path.lexists(path):
        return None  # no settings file (tomllib not even imported)
    import tomllib

    try:
        paths.check_regular(path)
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except FileNotFoundError:
        return None
    except (OSError, tomllib.TOMLDecodeError, ValueError):
        return _slow  # let the model say what is wrong with the file
    value = doc.get(section, {}).get(field) if isinstance(doc.get(section), dict) else None
    return value


_slow = object()


def positive_number(section: str, field: str, default: float, *, short: str | None = None) -> float:
    raw = _raw(section, field, short)
    if raw is None:
        return default
    if raw is not _slow and not isinstance(raw, bool):
        try:
            value = float(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            value = 0.0
        if value > 0 and value == value and value != float("inf"):
            return value
    from loom_core.config.settings import load_settings  # the model's own error for a bad value

    return float(getattr(getattr(load_settings(), section), field))


def stall_minutes() -> float:
    return positive_number("general", "stall_minutes", STALL_MINUTES, short="LOOM_STALL_MINUTES")
