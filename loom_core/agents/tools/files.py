"""The file tools: ``read_file``, ``write_file`` and ``edit_file``."""

from __future__ import annotations

import os

from loom_core.agents.tools.fsio import BINARY_SNIFF, MAX_READ_BYTES, SandboxFS, fstat_regular
from loom_core.agents.tools.registry import Failed

READ_LINE_CHARS = 2000


class FileTools(SandboxFS):
    """Read, write and edit one file at a time."""

    def _t_read_file(self, path: str, offset: int, limit: int) -> str:
        _, parts = self._guard(path)
        rel = self._rel(parts)
        try:
            fd = self._open_read(parts)
        except FileNotFoundError:
            raise Failed(f"no such file: {rel}") from None
        except IsADirectoryError:
            raise Failed(f"{rel} is a directory; use list_files") from None
        try:
            st = fstat_regular(fd)
        except IsADirectoryError:
            raise Failed(f"{rel} is a directory; use list_files") from None
        with os.fdopen(fd, "rb") as fh:
            size = st.st_size
            if b"\x00" in fh.read(BINARY_SNIFF):
                return f"binary file, {size} bytes"
            fh.seek(0)
            large = size > MAX_READ_BYTES
            lines: list[str] = []
            total = 0
            more = False
            for raw in fh:
                total += 1
                if total < offset:
                    continue
                if len(lines) >= limit:
                    more = True
                    if large:
                        break
                    continue
                text = raw.decode("utf-8", "replace").rstrip("\r\n")
                if len(text) > READ_LINE_CHARS:
                    text = text[:READ_LINE_CHARS] + f" … [line truncated, {len(text)} chars]"
                lines.append(f"{total:>6}\t{text}")
        if size == 0:
            return f"{rel} is empty"
        if not lines:
            return f"{rel} has {total} lines; offset {offset} is past the end"
        body = "\n".join(lines)
        first, last = offset, offset + len(lines) - 1
        notes: list[str] = []
        if large:
            notes.append(f"file is {size} bytes (over 2 MB); not read whole")
        if more:
            of = "" if large else f" of {total}"
            notes.append(f"showing lines {first}-{last}{of}; continue with offset={last + 1}")
        text = body + ("\n… " + "; ".join(notes) if notes else "")
        if len(text) > self.max_output:
            cut = body.rfind("\n", 0, self.max_output - 200)
            shown = body[:cut] if cut > 0 else body[:self.max_output - 200]
            last_shown = first + shown.count("\n")
            text = (shown + f"\n… output truncated at line {last_shown} (long lines); "
                    f"continue with offset={last_shown + 1}")
        return text

    def _t_write_file(self, path: str, content: str) -> str:
        _, parts = self._guard(path, for_write=True)
        rel = self._rel(parts)
        data = content.encode("utf-8", "replace")
        try:
            created = self._write_bytes(parts, data)
        except IsADirectoryError:
            raise Failed(f"{rel} is a directory") from None
        except NotADirectoryError:
            raise Failed(f"a parent of {rel} is not a directory") from None
        self.changed.add(rel)
        return f"{'created' if created else 'wrote'} {rel} ({len(data)} bytes)"

    def _t_edit_file(self, path: str, old_string: str, new_string: str, replace_all: bool) -> str:
        _, parts = self._guard(path, for_write=True)
        rel = self._rel(parts)
        if old_string == "":
            raise Failed("old_string must not be empty (use write_file to create a file)")
        if old_string == new_string:
            raise Failed("old_string and new_string are identical; nothing to change")
        try:
            data = self._read_bytes(parts)
        except FileNotFoundError:
            raise Failed(f"no such file: {rel}") from None
        except IsADirectoryError:
            raise Failed(f"{rel} is a directory") from None
        if b"\x00" in data[:BINARY_SNIFF]:
            raise Failed(f"{rel} is a binary file; not editing it")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise Failed(f"{rel} is not valid UTF-8; not editing it") from None
        count = text.count(old_string)
        if count == 0:
            raise Failed(f"old_string not found in {rel}")
        if count > 1 and not replace_all:
            raise Failed(f"old_string matches {count} times in {rel}; add surrounding context to make it "
                          f"unique, or pass replace_all=true")
        new_text = text.replace(old_string, new_string) if replace_all else text.replace(old_string, new_string, 1)
        self._write_bytes(parts, new_text.encode("utf-8", "replace"))
        self.changed.add(rel)
        n = count if replace_all else 1
        return f"edited {rel}: {n} replacement{'s' if n != 1 else ''}"
