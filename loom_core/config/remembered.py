"""``loom config get [KEY]`` without loading the settings model each time (pydantic and the model cost ~0.3 s).

The first read loads the settings as usual and keeps their effective values (``model_dump(mode="json")``,
what :func:`~loom_core.config.settings.get_key` walks) in ``$XDG_CACHE_HOME/loom/settings.json`` (0600),
with what they were made from: the settings file's identity (device, inode, size, modification and change
times), the size and time of every loom module the loading process had imported (the model, its
validators, loom's version), and the model's key list. A later read uses them only when all of that is
unchanged and no settings variable (``LOOM_<FIELD>…`` or a short one such as ``LOOM_MAX_SPAWNS``) is set;
otherwise it loads the model (which also reports a bad file or value with its usual error) and, when the
environment played no part, remembers again. An unreadable or damaged cache is ignored.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from loom_core.config import cachefile, paths
from loom_core.config.cachefile import stamps

NAME = "settings.json"


def _file_id(path: Any) -> list[int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _env_names(fields: list[str], short: list[str]) -> list[str]:
    """The settings variables set in this environment (any letter case, as the model reads them)."""
    tops = ["LOOM_" + f.upper() for f in fields]
    return [n for n in os.environ if n.upper() in short or any(n.upper() == t or n.upper().startswith(t + "__")
                                                              for t in tops)]


def walk(dump: Any, parts: list[str]) -> Any:
    """The value at ``parts`` in a settings dump (None where the path ends early); settings.get_key too."""
    for p in parts:
        dump = dump.get(p) if isinstance(dump, dict) else None
    return dump


def key_parts(dotted: str, keys: list[str], maps: Any) -> list[str] | None:
    """A dotted key's path (``[map, entry]`` for a map section, the split key for one of ``keys``), or None
    for a key the settings refuse; settings._check_key checks keys with it."""
    head, _, rest = dotted.partition(".")
    if head in maps and rest and (head == "keymap" or "." not in rest):
        return [head, rest]
    return dotted.split(".") if dotted in keys else None


def _memo() -> dict[str, Any] | None:
    """The remembered settings if they still hold here and now, else None."""
    try:
        with open(os.path.join(paths.cache_dir(), NAME), encoding="utf-8") as fh:
            memo = json.load(fh)
        if memo["config"] != [str(paths.config_path()), _file_id(paths.config_path())]:
            return None
        if stamps(memo["files"]) != memo["stamps"] or _env_names(memo["fields"], memo["short"]):
            return None
        return memo if isinstance(memo["dump"], dict) else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _recall(dotted: str) -> tuple[bool, Any]:
    memo = _memo()
    try:
        parts = key_parts(dotted, memo["keys"], memo["maps"]) if memo else None
    except (KeyError, TypeError, AttributeError):
        parts = None
    return (True, walk(memo["dump"], parts)) if memo and parts is not None else (False, None)


def _remember() -> None:
    from loom_core.config import settings as cfg

    config = [str(paths.config_path()), _file_id(paths.config_path())]
    fields = list(cfg.LoomSettings.model_fields)
    short = [n.upper() for n in cfg.SHORT_ENV]
    if _env_names(fields, short):
        return  # the environment shaped these values (and may hold credentials): never written down
    dump = cfg.load_settings().model_dump(mode="json")
    files = sorted({f for name, m in list(sys.modules.items()) if name.split(".")[0] == "loom_core"
                    and (f := getattr(m, "__file__", None))})
    memo = {"config": config, "files": files, "stamps": stamps(files), "fields": fields, "short": short,
            "keys": cfg.valid_keys(), "maps": list(cfg.MAPS), "dump": dump}
    if [str(paths.config_path()), _file_id(paths.config_path())] != config:
        return  # the file changed while it was read
    cachefile.write(os.path.join(paths.cache_dir(), NAME), json.dumps(memo))


def effective() -> dict[str, Any]:
    """Every effective setting (``load_settings().model_dump(mode="json")``), remembered like :func:`get_key`."""
    memo = _memo()
    if memo is not None:
        return memo["dump"]
    from loom_core.config.settings import load_settings

    dump = load_settings().model_dump(mode="json")  # a bad file or value raises here, as always
    try:
        _remember()
    except (OSError, ValueError, TypeError):
        pass
    return dump


def get_key(dotted: str) -> Any:
    """The effective value of a dotted key, as :func:`loom_core.config.settings.get_key` gives it."""
    known, value = _recall(dotted)
    if known:
        return value
    from loom_core.config.settings import get_key as slow

    value = slow(dotted)  # an unknown key or a bad file / value raises here, as always
    try:
        _remember()
    except (OSError, ValueError, TypeError):
        pass  # no cache: the next read loads the model again
    return value
