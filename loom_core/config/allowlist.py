"""The default-deny allowlist of projects that MCP tools and un-tokened HTTP drive routes may touch.

``<footprint>/projects.allow`` (``~/.loom/projects.allow``): one absolute path per line, ``#`` comments and
blank lines ignored. Entries and candidates are compared by realpath; an entry that no longer resolves is
skipped (kept in the file literally). A missing file denies everything. Only an operator gesture adds an
entry (``loom allowlist add``, ``loom init``, the console's or the plane's "add project"); a tool call never does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from loom_core.config.paths import atomic_write, check_regular, footprint
from loom_core.errors import LoomError

HEADER = "# Projects loom's MCP server and un-tokened HTTP routes may drive: one absolute path per line.\n"


class ProjectNotAllowed(LoomError):
    code = "PROJECT_DIR_NOT_ALLOWED"

    def __init__(self, message: str, *, reason: str, path: str) -> None:
        super().__init__(message)
        self.reason = reason  # input-path-unresolved | allowlist-missing | not-in-allowlist
        self.path = path


def allowlist_path() -> Path:
    return footprint() / "projects.allow"


def _lines(path: Path) -> list[str] | None:
    check_regular(path)
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return None


def _real(p: str | Path) -> str | None:
    try:
        return os.path.realpath(Path(p).expanduser(), strict=True)
    except OSError:
        return None


def entries(path: Path | None = None) -> list[str]:
    """The entries as written (comments and blanks dropped), in file order."""
    lines = _lines(path or allowlist_path()) or []
    return [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]


def check(project: str | Path, path: Path | None = None) -> str:
    """The project's realpath when it is allowlisted, else :class:`ProjectNotAllowed` with the reason."""
    path = path or allowlist_path()
    real = _real(project)
    if real is None:
        raise ProjectNotAllowed(f"{project} does not exist, so it cannot be allowlisted",
                                reason="input-path-unresolved", path=str(project))
    lines = _lines(path)
    if lines is None:
        raise ProjectNotAllowed(f"no project is allowlisted yet ({path} is missing); run: loom allowlist add {real}",
                                reason="allowlist-missing", path=real)
    if real not in {r for e in entries(path) if (r := _real(e))}:
        raise ProjectNotAllowed(f"{real} is not allowlisted; run: loom allowlist add {real}",
                                reason="not-in-allowlist", path=real)
    return real


def is_allowed(project: str | Path, path: Path | None = None) -> bool:
    try:
        check(project, path)
    except ProjectNotAllowed:
        return False
    return True


@dataclass(frozen=True)
class Change:
    path: str  # the realpath concerned
    changed: bool  # False: already so (or a dry run)
    file: Path
    would: bool = False  # a dry run that would have changed the file


def add(project: str | Path, *, dry_run: bool = False, path: Path | None = None) -> Change:
    """Append the project's realpath (unless an entry already resolves to it). The file is kept verbatim;
    a missing final newline is fixed; a new file starts with a header comment."""
    path = path or allowlist_path()
    real = _real(project)
    if real is None:
        raise LoomError(f"{project} does not exist; nothing was allowlisted", code="PATH_NOT_FOUND")
    if real in {r for e in entries(path) if (r := _real(e))}:
        return Change(real, False, path)
    if not dry_run:
        lines = _lines(path)
        text = HEADER if lines is None else path.read_text(encoding="utf-8")
        if text and not text.endswith("\n"):
            text += "\n"
        atomic_write(path, text + real + "\n")
    return Change(real, not dry_run, path, would=dry_run)


def remove(project: str | Path, *, dry_run: bool = False, path: Path | None = None) -> Change:
    """Drop every entry naming the project (literally, or by realpath); other lines are kept verbatim."""
    path = path or allowlist_path()
    lines = _lines(path) or []
    want = {str(project), str(Path(project).expanduser())}
    real = _real(project)

    def names_it(line: str) -> bool:
        e = line.strip()
        if not e or e.startswith("#"):
            return False
        return e in want or (real is not None and _real(e) == real)

    kept = [ln for ln in lines if not names_it(ln)]
    if len(kept) == len(lines):
        return Change(real or str(project), False, path)
    if not dry_run:
        atomic_write(path, "".join(ln + "\n" for ln in kept))
    return Change(real or str(project), not dry_run, path, would=dry_run)


def ensure_file(path: Path | None = None) -> Path:
    """Create an empty allowlist (header only) if none exists; never adds entries (the MCP server's start)."""
    path = path or allowlist_path()
    if _lines(path) is None:
        atomic_write(path, HEADER)
    return path
