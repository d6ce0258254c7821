"""The search tools: ``list_files`` and ``grep``, over a walk of the root that skips the usual
directories, with loom's own glob (``**/`` spans directories, ``*`` and ``?`` do not)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

from loom_core.agents.tools.fsio import BINARY_SNIFF, SandboxFS
from loom_core.agents.tools.registry import Failed, Refused

LIST_CAP = 500
GREP_LIMIT = 4000  # bytes of grep output before the head is dropped
GREP_KEEP = 2000  # bytes of tail kept
GREP_LINE_CHARS = 300
SKIP_DIRS = frozenset({".git", "node_modules", "dist", ".loom", "__pycache__", ".venv"})


def glob_regex(pattern: str) -> re.Pattern[str]:
    """Compile a glob: ``**/`` spans zero or more directories, ``**`` at the end anything, ``*``/``?``
    stay inside one path component, ``[...]`` is a character class (``[!...]`` negated)."""
    pat = pattern.replace("\\", "/")
    while pat.startswith("./"):
        pat = pat[2:]
    out: list[str] = []
    i, n = 0, len(pat)
    while i < n:
        c = pat[i]
        if pat.startswith("**/", i):
            out.append("(?:[^/]*/)*")
            i += 3
        elif pat.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            j = pat.find("]", i + 2 if pat.startswith("[!", i) or pat.startswith("[]", i) else i + 1)
            if j < 0:
                out.append(re.escape(c))
                i += 1
                continue
            body = pat[i + 1:j]
            neg = body.startswith("!")
            if neg:
                body = body[1:]
            body = body.replace("\\", "\\\\").replace("^", "\\^").replace("[", "\\[").replace("/", "")
            out.append(f"[{'^/' if neg else ''}{body}]" if body else "(?!)")
            i = j + 1
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("".join(out) + r"\Z", re.DOTALL)


class SearchTools(SandboxFS):
    """Find files by glob and lines by regular expression."""

    def _walk(self) -> Iterator[str]:
        """Relative POSIX paths of files (and file symlinks) under the root, skipping the usual dirs."""
        stack = [""]
        while stack:
            rel = stack.pop()
            try:
                entries = list(os.scandir(os.path.join(self._root_s, rel) if rel else self._root_s))
            except OSError:
                continue
            for entry in entries:
                child = f"{rel}/{entry.name}" if rel else entry.name
                try:
                    if entry.is_dir(follow_symlinks=False):
                        if entry.name not in SKIP_DIRS:
                            stack.append(child)
                    elif entry.is_symlink():
                        if not entry.is_dir():  # directory symlinks are never walked or listed
                            yield child
                    elif entry.is_file(follow_symlinks=False):
                        yield child
                except OSError:
                    continue

    def _matching(self, pattern: str) -> tuple[list[tuple[str, list[str]]], int]:
        """Guarded files matching ``pattern``: sorted ``(shown path, canonical parts)`` and a hidden count."""
        rx = glob_regex(pattern)
        hits: list[tuple[str, list[str]]] = []
        hidden = 0
        for rel in sorted(self._walk()):
            if not rx.match(rel):
                continue
            try:
                path, parts = self._guard(rel)
            except Refused:
                hidden += 1
                continue
            if not path.is_file():
                continue
            hits.append((rel, parts))
        return hits, hidden

    def _cap(self, text: str) -> str:
        if len(text) <= self.max_output:
            return text
        cut = text.rfind("\n", 0, self.max_output)
        cut = cut if cut > self.max_output // 2 else self.max_output
        return text[:cut] + f"\n… output truncated ({len(text) - cut} more characters)"
    def _t_list_files(self, pattern: str) -> str:
        hits, hidden = self._matching(pattern)
        paths = [rel for rel, _ in hits]
        notes: list[str] = []
        if len(paths) > LIST_CAP:
            notes.append(f"… {len(paths) - LIST_CAP} more files not shown (showing the first {LIST_CAP}); "
                         f"narrow the pattern")
            paths = paths[:LIST_CAP]
        if hidden:
            notes.append(f"({hidden} matching path{'s' if hidden != 1 else ''} hidden by the path guard)")
        if not paths:
            return "\n".join([f"no files match {pattern!r}", *notes])
        return self._cap("\n".join([*paths, *notes]))

    def _t_grep(self, pattern: str, glob: str) -> str:
        try:
            rx = re.compile(pattern)
        except re.error as e:
            raise Failed(f"invalid regular expression {pattern!r}: {e}") from None
        hits, _hidden = self._matching(glob)
        out: list[str] = []
        skipped = 0
        for rel, parts in hits:
            try:
                data = self._read_bytes(parts)
            except (OSError, Failed):
                skipped += 1
                continue
            if b"\x00" in data[:BINARY_SNIFF]:
                continue
            for i, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
                if rx.search(line):
                    if len(line) > GREP_LINE_CHARS:
                        line = line[:GREP_LINE_CHARS] + " …"
                    out.append(f"{rel}:{i}:{line}")
        tail_note = f"\n({skipped} file{'s' if skipped != 1 else ''} over 2 MB or unreadable not searched)" \
            if skipped else ""
        if not out:
            return f"no matches for {pattern!r}" + tail_note
        size = sum(len(s.encode("utf-8")) + 1 for s in out)
        if size <= GREP_LIMIT:
            return "\n".join(out) + tail_note
        kept: list[str] = []
        used = 0
        for line in reversed(out):
            cost = len(line.encode("utf-8")) + 1
            if kept and used + cost > GREP_KEEP:
                break
            kept.append(line)
            used += cost
        kept.reverse()
        omitted = len(out) - len(kept)
        return f"… {omitted} earlier matches omitted\n" + "\n".join(kept) + tail_note
