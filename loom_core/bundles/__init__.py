"""Bundle registry: names map to ``module:attr`` references, imported only when used."""

from __future__ import annotations

import importlib
import os
from typing import Any

from loom_core.errors import ConfigError

BUILTIN = {
    "code": "loom_core.bundles.code:BUNDLE",
    "spec": "loom_core.bundles.spec:BUNDLE",
}


def available() -> dict[str, str]:
    """Built-ins plus ``LOOM_BUNDLES=name=module:attr,...`` (for tests and plugins)."""
    out = dict(BUILTIN)
    for item in filter(None, os.environ.get("LOOM_BUNDLES", "").split(",")):
        name, _, ref = item.partition("=")
        if name and ref:
            out[name.strip()] = ref.strip()
    return out


def load_ref(ref: str) -> Any:
    module, _, attr = ref.partition(":")
    if not module or not attr:
        raise ConfigError(f"'{ref}' is not a module:attr reference")
    try:
        obj = importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(f"cannot import '{module}': {exc}") from exc
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ConfigError(f"'{module}' has no attribute '{attr}'")
        obj = getattr(obj, part)
    return obj


def load_bundle(name: str):
    refs = available()
    if name not in refs:
        raise ConfigError(f"unknown bundle '{name}' (known: {', '.join(sorted(refs))})")
    return load_ref(refs[name])
