"""Secrets (API keys, tokens): never in the config file, which holds only ``secret:<name>``
references.

Values go to the OS keyring when a usable backend exists (with a names-only index file next to
the config, since keyrings cannot list), otherwise to ``<loom home>/secrets.json`` written with
mode 0600 — a headless server usually has no keyring.

The keyring is touched only to store a secret or to read one the index says it holds: probing the
backends costs ~100 ms and spawns ``ldconfig``/``gcc`` on Linux, so listing names, reading file secrets
and an ordinary run never do it. Where each secret went is remembered by the index and the file. Every
value resolved in this process is remembered too (:func:`resolved_values`), so redaction covers the
secrets loom actually handed out without reading the keyring for the rest.
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loom_core.config import paths
from loom_core.errors import ConfigError

SERVICE = "loom"
NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
REF_PREFIX = "secret:"


_listeners: list[Callable[[str], None]] = []
_resolved: set[str] = set()


def resolved_values() -> frozenset[str]:
    """Every secret value this process has resolved or stored (for redaction)."""
    return frozenset(_resolved)


def resolved_count() -> int:
    """How many values :func:`resolved_values` holds (it only grows): a cheap "anything new?" check."""
    return len(_resolved)


def on_notice(fn: Callable[[str], None]) -> Callable[[], None]:
    """Route the store's notices (e.g. a secrets file made private again) to ``fn`` instead of stderr;
    returns the function that removes ``fn``."""
    _listeners.append(fn)
    return lambda: _listeners.remove(fn) if fn in _listeners else None


def _notice(message: str) -> None:
    if _listeners:
        for fn in list(_listeners):
            fn(message)
    else:
        print(f"loom: notice: {message}", file=sys.stderr)


def private(path: Path) -> None:
    """A secrets file readable by anyone but its owner is made 0600 again, with a notice (on every read:
    a backup restore or an editor may have widened it); one that cannot be fixed is refused."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return
    if not mode & 0o077:
        return
    try:
        os.chmod(path, 0o600)
    except OSError as exc:
        raise ConfigError(f"{path} is readable by other users (mode {mode:04o}) and loom cannot make it private "
                          f"({exc.strerror or exc}); run: chmod 600 {path}") from None
    _notice(f"{path} was readable by other users (mode {mode:04o}); loom made it private (0600). If others could "
            "read it, rotate the keys it holds.")


def mask(value: str | None) -> str:
    """At most the last 4 characters: ≤4 chars → all stars; else max(4, len-4) stars + last 4."""
    if not value:
        return ""
    if len(value) <= 4:
        return "*" * len(value)
    return "*" * max(4, len(value) - 4) + value[-4:]


def usable_keyring(backend: Any = None) -> Any | None:
    """The active keyring backend if it can actually store secrets, else None."""
    try:
        import keyring
        from keyring.backends import chainer, fail
    except Exception:  # pragma: no cover - keyring is a dependency, but stay usable without it
        return None
    kr = backend if backend is not None else keyring.get_keyring()
    if isinstance(kr, fail.Keyring):
        return None
    try:
        from keyring.backends import null

        if isinstance(kr, null.Keyring):
            return None
    except ImportError:  # pragma: no cover
        pass
    if isinstance(kr, chainer.ChainerBackend) and not kr.backends:
        return None
    return kr


def _check_name(name: str) -> str:
    if not NAME.match(name or ""):
        raise ConfigError(f"secret name '{name}' is not valid: use letters, digits, '.', '_' or '-' (max 64)",
                          code="USAGE")
    return name


class SecretStore:
    """``set`` / ``get`` / ``unset`` / ``names`` over the keyring or a 0600 file."""

    def __init__(self, home: Path | None = None, *, keyring_backend: Any = None, use_keyring: bool = True) -> None:
        self.home = Path(home) if home is not None else paths.loom_home()
        self._backend = keyring_backend
        self._use_keyring = use_keyring

    @property
    def _kr(self) -> Any | None:
        """The usable keyring backend, probed on first need (keyring itself loads its backends once per
        process and remembers the choice)."""
        if not self._use_keyring:
            return None
        return usable_keyring(self._backend)

    # ------------------------------------------------------------------ where
    @property
    def file_path(self) -> Path:
        return self.home / "secrets.json"

    @property
    def index_path(self) -> Path:
        return self.home / "secrets-index.json"

    @property
    def uses_keyring(self) -> bool:
        return self._kr is not None

    def describe(self) -> str:
        """Where the secrets are (from the index and the file when they say; else where a new one would go)."""
        if self._index():
            return "OS keyring" + (f" and file {self.file_path} (mode 0600)" if self._file() else "")
        if self._file():
            return f"file {self.file_path} (mode 0600)"
        if self._kr is not None:
            return f"OS keyring ({type(self._kr).__name__})"
        return f"file {self.file_path} (mode 0600)"

    # ------------------------------------------------------------------ files
    def _read_json(self, path: Path, default: Any) -> Any:
        if not path.exists():
            return default
        paths.check_regular(path)
        private(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path} is not valid JSON ({type(exc).__name__}); fix or remove it") from None
        if not isinstance(data, type(default)):
            raise ConfigError(f"{path} has an unexpected shape; fix or remove it")
        return data

    def _file(self) -> dict[str, str]:
        return self._read_json(self.file_path, {})

    def _write_file(self, data: dict[str, str]) -> None:
        paths.atomic_write(self.file_path, json.dumps(data, indent=2, sort_keys=True) + "\n", mode=0o600)

    def _index(self) -> list[str]:
        return self._read_json(self.index_path, [])

    def _write_index(self, names: list[str]) -> None:
        paths.atomic_write(self.index_path, json.dumps(sorted(set(names)), indent=2) + "\n", mode=0o600)

    # ------------------------------------------------------------------ verbs
    def set(self, name: str, value: str) -> None:
        _check_name(name)
        if not value:
            raise ConfigError(f"the value for secret '{name}' is empty; use unset to remove it", code="USAGE")
        if self._kr is not None:
            try:
                self._kr.set_password(SERVICE, name, value)
            except Exception as exc:
                raise ConfigError(f"the keyring refused to store '{name}': {exc}") from None
            self._write_index(self._index() + [name])
            self._drop_from_file(name)  # one place per name: the newest
        else:
            data = self._file()
            data[name] = value
            self._write_file(data)
        _resolved.add(value)

    def get(self, name: str) -> str | None:
        """The stored value: from the file, or from the keyring when the index lists the name there."""
        _check_name(name)
        value = self._file().get(name)
        if value is None and name in self._index() and (kr := self._kr) is not None:
            try:
                value = kr.get_password(SERVICE, name)
            except Exception as exc:
                raise ConfigError(f"the keyring could not read '{name}': {exc}") from None
        return value

    def _drop_from_file(self, name: str) -> bool:
        data = self._file()
        if name not in data:
            return False
        del data[name]
        self._write_file(data)
        return True

    def unset(self, name: str) -> bool:
        _check_name(name)
        had = self._drop_from_file(name)
        if name in self._index():
            had = True
            if (kr := self._kr) is not None:
                try:
                    kr.delete_password(SERVICE, name)
                except Exception:
                    pass
            self._write_index([n for n in self._index() if n != name])
        return had

    def file_secrets(self) -> dict[str, str]:
        """The secrets kept in the 0600 file (cheap: no keyring)."""
        return dict(self._file())

    def names(self) -> list[str]:
        return sorted(set(self._index()) | set(self._file()))

    def masked(self) -> list[tuple[str, str]]:
        """(name, mask) for every stored secret; the values themselves never leave."""
        return [(n, mask(self.get(n) or "")) for n in self.names()]

    def resolve(self, ref: str | None) -> str | None:
        """``secret:<name>`` → the stored value, else the environment variable of that name;
        a literal passes through; empty → None."""
        if not ref:
            return None
        if not ref.startswith(REF_PREFIX):
            return ref
        name = ref[len(REF_PREFIX):]
        value = self.get(name) if NAME.match(name) else None
        if not value:
            value = os.environ.get(name) or None
        if value:
            _resolved.add(value)
        return value


__all__ = ["SecretStore", "mask", "resolved_values", "usable_keyring"]
