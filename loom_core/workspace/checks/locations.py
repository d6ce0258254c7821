"""Reading check output: ``path:line`` locations under the root, and failure keys for the baseline.

Locations (at most 20, deduplicated) point the next implementer at files. Failure keys name each
failure so the same check on the unchanged tree can be compared: pytest test ids from the
``FAILED``/``ERROR`` summary lines, ``"file: message"`` for linters and type checkers (the line
number dropped: it shifts with any edit above). Every line also goes, normalised, into a bounded
list used when a failure cannot be split into keys (a collection error, output loom cannot parse).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from loom_core.workspace.checks.model import MAX_KEYS, MAX_LINES, MAX_LOCATIONS, MESSAGE_CHARS, Location

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_P = r"[\w.@+\-/\\]+"
_ARROW = re.compile(rf"^\s*-->\s*(?P<path>{_P}):(?P<line>\d+)(?::\d+)?")
_PYTB = re.compile(r'^\s*File "(?P<path>[^"]+)", line (?P<line>\d+)(?:, in (?P<msg>.*))?')
_TSC = re.compile(rf"(?:^|(?<=[\s'\"(\[]))(?P<path>{_P})\((?P<line>\d+),\d+\):\s*(?P<msg>.*)")
_GENERIC = re.compile(rf"(?:^|(?<=[\s'\"(\[]))(?P<path>{_P}):(?P<line>\d+)(?::\d+)?(?=:|\s|$):?\s*(?P<msg>.*)")


class _LocationParser:
    """Streams output lines into at most MAX_LOCATIONS deduplicated locations under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        try:
            self.root_resolved = root.resolve()
        except OSError:
            self.root_resolved = root
        self.locations: list[Location] = []
        self._seen: set[tuple[str, int | None, str]] = set()
        self._paths: dict[str, str | None] = {}
        self._prev = ""

    @property
    def full(self) -> bool:
        return len(self.locations) >= MAX_LOCATIONS

    def _rel(self, raw: str) -> str | None:
        if raw in self._paths:
            return self._paths[raw]
        if len(self._paths) >= 4096:  # bounded work on pathological output
            return None
        rel: str | None = None
        p = raw
        while p.startswith("./"):
            p = p[2:]
        if p and not p.isdigit():
            full = Path(p) if os.path.isabs(p) else self.root / p
            try:
                resolved = full.resolve()
                r = resolved.relative_to(self.root_resolved)
                if resolved.is_file():
                    rel = r.as_posix()
            except (OSError, ValueError, RuntimeError):
                rel = None
        self._paths[raw] = rel
        return rel

    def _add(self, raw: str, line: str, msg: str) -> bool:
        rel = self._rel(raw)
        if rel is None:
            return False
        loc = Location(rel, int(line), msg.strip()[:MESSAGE_CHARS])
        key = (loc.file, loc.line, loc.message)  # two rules on one line are two locations
        if key not in self._seen:
            self._seen.add(key)
            self.locations.append(loc)
        return True

    def feed_line(self, text: str) -> None:
        if self.full:
            return
        line = _ANSI.sub("", text).rstrip("\r\n")
        if len(line) > 2000:
            line = line[:2000]
        stripped = line.strip()
        m = _ARROW.match(line)
        if m:  # rust / ruff "full" format: the message is the line above
            self._add(m["path"], m["line"], self._prev)
            return
        if (m := _PYTB.match(line)) and self._add(m["path"], m["line"], f"in {m['msg']}" if m["msg"] else stripped):
            self._prev = stripped
            return
        for rx in (_GENERIC, _TSC):
            for m in rx.finditer(line):
                if self._add(m["path"], m["line"], m["msg"] or stripped):
                    self._prev = stripped
                    return
        if stripped:
            self._prev = stripped


def parse_locations(root: Path, text: str) -> list[Location]:
    """``path:line[:col]`` references in ``text`` to files under ``root`` (deduplicated, at most 20)."""
    parser = _LocationParser(Path(root))
    for line in text.splitlines():
        parser.feed_line(line)
    return parser.locations


_PYTEST_SUMMARY = re.compile(r"^(?P<kind>FAILED|ERROR) (?P<id>.+?)(?: - .*)?$")
_DIGITS = re.compile(r"\d+")


class KeyCollector:
    """Failure keys and normalised lines of one run, streamed line by line.

    ``style`` is ``"pytest"`` (summary lines) or ``"lint"`` (``path:line[:col]: message``). Paths are
    made relative to ``root`` and the root's own path is masked in messages, so a run in the sandbox
    and one in the baseline checkout give equal keys for equal failures."""

    def __init__(self, root: Path, style: str) -> None:
        self.style = style
        self.roots = sorted({str(root), _resolved(root)}, key=len, reverse=True)
        self.keys: dict[str, None] = {}
        self.lines: dict[str, None] = {}
        self.collection_error = False
        self.overflow = False

    def _mask(self, text: str) -> str:
        for r in self.roots:
            text = text.replace(r + os.sep, "").replace(r, "<root>")
        return text

    def feed_line(self, text: str) -> None:
        line = self._mask(_ANSI.sub("", text).rstrip("\r\n"))[:2000]
        stripped = line.strip()
        if not stripped:
            return
        if len(self.lines) < MAX_LINES:
            self.lines[_DIGITS.sub("#", stripped)] = None
        else:
            self.overflow = True
        key = self._key(stripped)
        if key is not None:
            if len(self.keys) < MAX_KEYS:
                self.keys[key] = None
            else:
                self.overflow = True

    def _key(self, line: str) -> str | None:
        if self.style == "pytest":
            m = _PYTEST_SUMMARY.match(line)
            if not m:
                return None
            test_id = m["id"].strip()
            if "::" not in test_id:  # an error collecting a whole module
                self.collection_error = True
                return None
            return test_id
        m = _GENERIC.search(line)
        if not m or m["path"].isdigit():
            return None
        path = m["path"]
        while path.startswith("./"):
            path = path[2:]
        return f"{path}: {m['msg'].strip()}"[:MESSAGE_CHARS * 2]


def _resolved(root: Path) -> str:
    try:
        return str(root.resolve())
    except OSError:
        return str(root)
