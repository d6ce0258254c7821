"""The path guard for loom's own file tools (spec §8).

:func:`resolve_safe_path` turns a path an agent asked for into a canonical absolute path inside the
project root, or says why not. It never raises.

1. the root is canonicalised (symlinks resolved); a relative input is joined to it, an absolute input is
   taken as it is and then judged like any other;
2. the **longest existing ancestor** of the candidate is canonicalised and the missing tail is
   re-appended, so a symlinked directory is judged by its real target even for a file that does not
   exist yet (a dangling symlink is judged by where it points). A ``..`` in the missing tail is
   normalised and the walk goes on, since the normalised path can run through an existing symlink.
   This is done one component at a time rather than with ``os.path.realpath``, which returns a path
   still running through symlinks when it meets a symlink loop; a loop is ``invalid-path``;
3. ``path-escapes-project`` unless the result equals the root or starts with root + separator;
4. ``sensitive-dir:.git`` for anything in a ``.git`` directory at any depth, or a ``.git`` file (a
   worktree's or submodule's pointer), read or write: git metadata is not project content and a
   remote URL in ``.git/config`` can hold a credential;
5. ``sensitive-dir:<token>`` when a credential directory (``.ssh``, ``.aws``, ``.docker``,
   ``.config/gcloud``, ...) is any part of the path relative to the root, ``sensitive-file:<pattern>``
   when the file name looks like a credential (``.env*`` except templates such as ``.env.example``,
   ``.netrc``, ``.git-credentials``, private keys, ``credentials*``, ...). Names are compared
   case-insensitively (a case-insensitive file system would treat ``.ENV`` as ``.env``);
6. for writes only: ``state-db-protected`` for loom's store (``.loom/state.db`` and its ``-wal``,
   ``-shm``, ``-journal`` companions), ``loom-state-protected`` for every other file of the
   project's ``.loom/`` (landing record, run options, lock, history, settings) except the agents'
   work area ``.loom/work/``.

This is an **anti-accident ring, not an exfiltration boundary**: it stops an agent from wandering out
of the project or into a credential file by mistake. It does not defend against a hostile process
racing the file system between the check and the use (the tools narrow that window by opening every
component with ``O_NOFOLLOW``), against hard links to files outside the root, or against anything a
real process sandbox is for.
"""

from __future__ import annotations

import fnmatch
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

SENSITIVE_DIRS: tuple[str, ...] = (
    ".ssh", ".gnupg", ".aws", ".azure", ".gcp", ".config/gcloud", ".config/git", ".kube", ".docker",
    ".config/gh",
)
SENSITIVE_FILES: tuple[str, ...] = (
    ".env", ".env.*", ".envrc", ".netrc", "_netrc", ".pgpass", ".git-credentials", ".htpasswd",
    "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore",
    "credentials*", "*secret*", "service-account*.json",
    ".npmrc", ".pypirc", ".dockercfg", ".s3cfg", ".boto", "*.tfvars", "*.tfstate",
)
STATE_DB_FILES: tuple[str, ...] = (
    ".loom/state.db", ".loom/state.db-wal", ".loom/state.db-shm", ".loom/state.db-journal",
)

ESCAPES = "path-escapes-project"
INVALID = "invalid-path"
STATE_DB = "state-db-protected"
LOOM_STATE = "loom-state-protected"


@dataclass(frozen=True)
class Resolved:
    ok: bool
    path: Path | None  # canonical absolute path when ok
    reason: str | None  # "path-escapes-project" | "sensitive-dir:<token>" | "sensitive-file:<pattern>"
    #                     | "state-db-protected" | "invalid-path"


def _refuse(reason: str) -> Resolved:
    return Resolved(False, None, reason)


def canonical_root(root: Path | str) -> str:
    """The canonical root (every symlink resolved), falling back to a lexical absolute path."""
    absolute = os.path.abspath(os.fspath(root))
    try:
        return _canonicalise(absolute)
    except (OSError, ValueError):
        return os.path.normpath(absolute)


MAX_SYMLINKS = 40  # like the kernel's limit; more means a loop


def _canonicalise(path: str) -> str:
    """Physically resolve the absolute ``path``: every existing component is canonicalised (symlinks
    followed, relative targets against their directory), components that do not exist are re-appended
    as they are, and a later ``..`` steps back over them before the walk goes on, so
    ``root/missing/../link/x`` is judged through ``link``. A dangling symlink is judged by where it
    points. This is ``realpath`` of the longest existing ancestor plus the normalised tail, re-judged,
    done one component at a time: ``os.path.realpath`` (non-strict) gives up on a symlink loop and
    returns the rest of the path unresolved, e.g. a link to ``loop/../out`` comes back as ``root/out``
    with ``out`` still a symlink out of the root. A loop raises ``ValueError`` here.

    The path built so far never contains a symlink, so ``..`` is its plain parent.
    """
    pending = path.split(os.sep)
    pending.reverse()
    resolved = os.sep
    followed = 0
    while pending:
        name = pending.pop()
        if name in ("", "."):
            continue
        if name == "..":
            resolved = os.path.dirname(resolved)
            continue
        candidate = os.path.join(resolved, name)
        try:
            st = os.lstat(candidate)
        except OSError:  # missing, a file used as a directory, unreadable: kept lexically
            resolved = candidate
            continue
        if not stat.S_ISLNK(st.st_mode):
            resolved = candidate
            continue
        followed += 1
        if followed > MAX_SYMLINKS:
            raise ValueError("symlink loop")
        target = os.readlink(candidate)
        if os.path.isabs(target):
            resolved = os.sep
        parts = target.split(os.sep)
        parts.reverse()
        pending.extend(parts)
    return resolved


def _inside(path: str, root: str) -> bool:
    if path == root:
        return True
    prefix = root if root.endswith(os.sep) else root + os.sep
    return path.startswith(prefix)


def _relative_parts(path: str, root: str) -> list[str]:
    if path == root:
        return []
    rest = path[len(root):].lstrip(os.sep)
    return [p for p in rest.split(os.sep) if p]


def _dir_hit(parts: list[str], tokens: Iterable[str]) -> str | None:
    folded = [p.casefold() for p in parts]
    for token in tokens:
        want = [t.casefold() for t in token.strip("/").split("/") if t]
        if not want:
            continue
        n = len(want)
        for i in range(len(folded) - n + 1):
            if folded[i:i + n] == want:
                return token
    return None


# templates, public keys and source code that merely talk about secrets are ordinary project files
SAFE_TEMPLATES = (".env.example", ".env.sample", ".env.template", ".env.dist")
SAFE_SUFFIXES = (".example", ".sample", ".template", ".dist", ".pub")
SOURCE_EXT = (".py", ".pyi", ".ts", ".tsx", ".js", ".jsx", ".mjs", ".go", ".rs", ".java", ".kt", ".rb", ".php",
              ".cs", ".c", ".h", ".cpp", ".swift", ".md", ".rst", ".txt", ".html", ".css")
BROAD = ("credentials*", "*secret*")


def _file_hit(name: str, patterns: Iterable[str]) -> str | None:
    folded = name.casefold()
    if folded in SAFE_TEMPLATES or folded.endswith(SAFE_SUFFIXES):
        return None
    for pattern in patterns:
        if pattern in BROAD and folded.endswith(SOURCE_EXT):
            continue
        if fnmatch.fnmatchcase(folded, pattern.casefold()):
            return pattern
    return None


def resolve_safe_path(raw: str, root: Path, *, for_write: bool = False, extra_dirs: Iterable[str] = (),
                      extra_files: Iterable[str] = ()) -> Resolved:
    """Judge ``raw`` against the project ``root``; see the module docstring. Never raises."""
    try:
        if not isinstance(raw, str) or not raw or "\x00" in raw:
            return _refuse(INVALID)
        os.fsencode(raw)  # a lone surrogate cannot name a file: UnicodeEncodeError -> invalid-path
        root_s = canonical_root(root)
        candidate = raw if os.path.isabs(raw) else os.path.join(root_s, raw)
        path = _canonicalise(candidate)
        if not _inside(path, root_s):
            return _refuse(ESCAPES)
        parts = _relative_parts(path, root_s)
        rel = "/".join(parts)
        if any(p.casefold() == ".git" for p in parts):
            return _refuse("sensitive-dir:.git")
        if for_write and rel.casefold() in STATE_DB_FILES:
            return _refuse(STATE_DB)
        if for_write and parts and parts[0].casefold() == ".loom" and \
                not (len(parts) > 2 and parts[1].casefold() == "work"):
            return _refuse(LOOM_STATE)
        token = _dir_hit(parts, (*SENSITIVE_DIRS, *extra_dirs))
        if token is not None:
            return _refuse(f"sensitive-dir:{token}")
        if parts:
            pattern = _file_hit(parts[-1], (*SENSITIVE_FILES, *extra_files))
            if pattern is not None:
                return _refuse(f"sensitive-file:{pattern}")
        return Resolved(True, Path(path), None)
    except Exception:  # noqa: BLE001 - the guard never raises; anything odd is an invalid path
        return _refuse(INVALID)
