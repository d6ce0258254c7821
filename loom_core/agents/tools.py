"""Loom's own sandboxed file tools, for providers without an agentic CLI (spec §8).

A direct-API provider (Anthropic, OpenAI-style) gets these tools instead of a shell:

* ``read_file(path, offset=1, limit=400)``: numbered lines, says when it stopped early;
* ``write_file(path, content)``: creates or replaces a file, making parent directories inside the root;
* ``edit_file(path, old_string, new_string, replace_all=False)``: exact-string replacement, refusing a
  missing or ambiguous ``old_string``;
* ``list_files(pattern="**/*")``: files under the root matching a glob (``**/`` spans directories,
  ``*`` and ``?`` do not), sorted POSIX paths, at most 500;
* ``grep(pattern, glob="**/*")``: Python regex over text files, ``path:line:text`` sorted by path then
  line, the tail kept above 4 000 bytes;
* ``run_checks()``: only when the caller supplies a checks runner.

``read_only=True`` (reviewers, planners and other agents that judge or describe but do not edit)
offers only ``read_file``, ``list_files`` and ``grep``; a write tool named anyway is refused
(``refused: read-only: …``) and nothing is written.

Every path goes through :func:`~loom_core.agents.pathguard.resolve_safe_path` (writes with
``for_write=True``); a refusal is ``refused: <reason>``. The guard hands back a canonical path with no
symlink in it, and the tools then open it one component at a time from the root with ``O_NOFOLLOW``
(``openat``), so a symlink that appears between the check and the use fails the call instead of being
followed out of the root. Writes go to a temporary file renamed over the target, so a hard link to a
file elsewhere is broken rather than written through. There is no shell tool (no real process
sandbox here). ``call`` never raises; ``audit`` receives one payload per call.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loom_core.agents.pathguard import canonical_root, resolve_safe_path

MAX_READ_BYTES = 2 * 1024 * 1024
BINARY_SNIFF = 8192
LIST_CAP = 500
GREP_LIMIT = 4000  # bytes of grep output before the head is dropped
GREP_KEEP = 2000  # bytes of tail kept
GREP_LINE_CHARS = 300
READ_LINE_CHARS = 2000
SKIP_DIRS = frozenset({".git", "node_modules", "dist", ".loom", "__pycache__", ".venv"})
READ_TOOLS = ("read_file", "list_files", "grep")

_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_DIRFD = os.open in os.supports_dir_fd and os.mkdir in os.supports_dir_fd and bool(_O_NOFOLLOW)


@dataclass
class ToolOutcome:
    ok: bool
    content: str
    refused: bool = False


class _BadArgs(Exception):
    pass


class _Refused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Failed(Exception):
    """A tool-level failure with a message meant for the model."""


# name -> (description, {param: (json type, description, default or _REQUIRED)})
_REQUIRED = object()
_TOOLS: dict[str, tuple[str, dict[str, tuple[str, str, Any]]]] = {
    "read_file": (
        "Read a text file in the project. Returns numbered lines (`number<TAB>text`) starting at `offset` "
        "(1-based), at most `limit` lines, and says when the file continues.",
        {
            "path": ("string", "File path relative to the project root.", _REQUIRED),
            "offset": ("integer", "First line to return (1-based).", 1),
            "limit": ("integer", "Maximum number of lines to return.", 400),
        },
    ),
    "write_file": (
        "Create or overwrite a file in the project with `content`. Parent directories are created.",
        {
            "path": ("string", "File path relative to the project root.", _REQUIRED),
            "content": ("string", "The complete new file content.", _REQUIRED),
        },
    ),
    "edit_file": (
        "Replace an exact string in a file. `old_string` must occur exactly once unless `replace_all` is "
        "true; include enough surrounding context to make it unique.",
        {
            "path": ("string", "File path relative to the project root.", _REQUIRED),
            "old_string": ("string", "The exact text to replace.", _REQUIRED),
            "new_string": ("string", "The replacement text.", _REQUIRED),
            "replace_all": ("boolean", "Replace every occurrence instead of exactly one.", False),
        },
    ),
    "list_files": (
        "List project files matching a glob, as sorted paths relative to the project root. `**/` spans "
        "directories, `*` and `?` do not. Skips .git, node_modules, dist, .loom, __pycache__, .venv.",
        {"pattern": ("string", "Glob pattern, e.g. `**/*.py` or `src/*`.", "**/*")},
    ),
    "grep": (
        "Search project text files with a Python regular expression. Returns `path:line:text` lines sorted "
        "by path then line; long results keep only the last matches.",
        {
            "pattern": ("string", "Python regular expression searched in each line.", _REQUIRED),
            "glob": ("string", "Only search files matching this glob.", "**/*"),
        },
    ),
    "run_checks": (
        "Run the project's configured checks (typecheck, lint, test) and return their report.",
        {},
    ),
}
_JSON_TYPES = {"string": str, "integer": int, "boolean": bool}


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


class SandboxTools:
    """The tool set bound to one sandbox root. ``changed`` collects repo-relative paths written."""

    def __init__(self, root: Path, *, run_checks: Callable[[], str] | None = None,
                 audit: Callable[[dict], None] | None = None, max_output: int = 12_000,
                 extra_dirs: tuple[str, ...] = (), extra_files: tuple[str, ...] = (),
                 read_only: bool = False) -> None:
        self.read_only = read_only
        self.root = Path(canonical_root(root))
        self._root_s = os.fspath(self.root)
        self._run_checks = run_checks
        self._audit = audit
        self.max_output = max(200, int(max_output))
        self._extra_dirs = tuple(extra_dirs)
        self._extra_files = tuple(extra_files)
        self.changed: set[str] = set()

    # ------------------------------------------------------------------ definitions

    def _available(self) -> list[str]:
        if self.read_only:
            return list(READ_TOOLS)
        return [n for n in _TOOLS if n != "run_checks" or self._run_checks is not None]

    @staticmethod
    def _schema(params: dict[str, tuple[str, str, Any]]) -> dict:
        props: dict[str, Any] = {}
        required: list[str] = []
        for pname, (jtype, desc, default) in params.items():
            prop: dict[str, Any] = {"type": jtype, "description": desc}
            if default is _REQUIRED:
                required.append(pname)
            else:
                prop["default"] = default
            if jtype == "integer":
                prop["minimum"] = 1
            props[pname] = prop
        return {"type": "object", "properties": props, "required": required, "additionalProperties": False}

    def specs(self) -> list[dict]:
        """Anthropic tool definitions."""
        return [{"name": n, "description": _TOOLS[n][0], "input_schema": self._schema(_TOOLS[n][1])}
                for n in self._available()]

    def openai_specs(self) -> list[dict]:
        """The same tools as OpenAI-style function tools."""
        return [{"type": "function", "function": {"name": s["name"], "description": s["description"],
                                                  "parameters": s["input_schema"]}}
                for s in self.specs()]

    # ------------------------------------------------------------------ dispatch

    def call(self, name: str, args: dict) -> ToolOutcome:
        """Run one tool call. Never raises."""
        record: dict[str, Any] = {"tool": name if isinstance(name, str) else repr(name)}
        try:
            if self.read_only and isinstance(name, str) and name in _TOOLS and name not in READ_TOOLS:
                raise _Refused(f"read-only: {name} is not available to this agent; "
                               f"it may only use {', '.join(READ_TOOLS)}")
            if not isinstance(name, str) or name not in self._available():
                known = ", ".join(self._available())
                raise _BadArgs(f"unknown tool {name!r}; available tools: {known}")
            kwargs = self._check_args(name, args)
            if "path" in kwargs:
                record["path"] = kwargs["path"]
            content = getattr(self, f"_t_{name}")(**kwargs)
            outcome = ToolOutcome(True, content)
            record["result"] = "ok"
        except _Refused as r:
            outcome = ToolOutcome(False, f"refused: {r.reason}", refused=True)
            record.update(result="refused", reason=r.reason, error_class="sandbox-violation")
        except (_BadArgs, _Failed) as e:
            outcome = ToolOutcome(False, f"error: {e}")
            record.update(result="error", reason=str(e)[:300])
        except Exception as e:  # noqa: BLE001 - a tool never raises into the model loop
            msg = _os_message(e)
            outcome = ToolOutcome(False, f"error: {msg}")
            record.update(result="error", reason=msg[:300])
        if self._audit is not None:
            try:
                self._audit(record)
            except Exception:  # noqa: BLE001, S110 - auditing must not break the tool call
                pass
        return outcome

    def _check_args(self, name: str, args: Any) -> dict[str, Any]:
        if args is None:
            args = {}
        if not isinstance(args, dict):
            raise _BadArgs(f"{name}: arguments must be an object, got {type(args).__name__}")
        params = _TOOLS[name][1]
        extra = sorted(str(k) for k in args if k not in params)
        if extra:
            raise _BadArgs(f"{name}: unexpected argument(s): {', '.join(extra)}; "
                           f"accepted: {', '.join(params) or 'none'}")
        out: dict[str, Any] = {}
        for pname, (jtype, _desc, default) in params.items():
            if pname not in args or args[pname] is None:
                if default is _REQUIRED:
                    raise _BadArgs(f"{name}: missing required argument '{pname}'")
                out[pname] = default
                continue
            value = args[pname]
            want = _JSON_TYPES[jtype]
            if want is int and isinstance(value, float) and value.is_integer():
                value = int(value)
            if not isinstance(value, want) or (want is int and isinstance(value, bool)):
                article = "an" if jtype[0] in "aeiou" else "a"
                raise _BadArgs(f"{name}: argument '{pname}' must be {article} {jtype}, got {type(value).__name__}")
            if jtype == "integer" and value < 1:
                raise _BadArgs(f"{name}: argument '{pname}' must be at least 1")
            out[pname] = value
        return out

    # ------------------------------------------------------------------ path plumbing

    def _guard(self, raw: str, *, for_write: bool = False) -> tuple[Path, list[str]]:
        res = resolve_safe_path(raw, self.root, for_write=for_write, extra_dirs=self._extra_dirs,
                                extra_files=self._extra_files)
        if not res.ok or res.path is None:
            raise _Refused(res.reason or "invalid-path")
        path_s = os.fspath(res.path)
        rest = path_s[len(self._root_s):].lstrip(os.sep) if path_s != self._root_s else ""
        return res.path, [p for p in rest.split(os.sep) if p]

    def _rel(self, parts: list[str]) -> str:
        return "/".join(parts) or "."

    def _open_dir(self, parts: list[str], *, create: bool) -> int:
        """An fd of the directory ``root/parts...``, each component opened without following symlinks."""
        fd = os.open(self._root_s, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)
        try:
            for part in parts:
                flags = os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | _O_CLOEXEC
                try:
                    nfd = os.open(part, flags, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    try:
                        os.mkdir(part, 0o777, dir_fd=fd)
                    except FileExistsError:
                        pass
                    nfd = os.open(part, flags, dir_fd=fd)
                os.close(fd)
                fd = nfd
            return fd
        except BaseException:
            os.close(fd)
            raise

    def _verify_fd(self, fd: int) -> None:
        """Fallback check (no openat): the opened file must really be inside the root."""
        real: str | None = None
        try:
            real = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            try:
                import fcntl
            except ImportError:  # no /proc and no fcntl: nothing more to check with
                return
            if hasattr(fcntl, "F_GETPATH"):
                real = fcntl.fcntl(fd, fcntl.F_GETPATH, b"\0" * 1024).rstrip(b"\0").decode(
                    "utf-8", "surrogateescape")
        if real is not None:
            prefix = self._root_s.rstrip(os.sep) + os.sep
            if real != self._root_s and not real.startswith(prefix):
                raise _Refused("path-escapes-project")

    def _open_read(self, parts: list[str]) -> int:
        if not parts:
            raise IsADirectoryError(errno.EISDIR, "is a directory")
        flags = os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC | _O_NONBLOCK
        if _DIRFD:
            dfd = self._open_dir(parts[:-1], create=False)
            try:
                fd = os.open(parts[-1], flags, dir_fd=dfd)
            finally:
                os.close(dfd)
        else:
            fd = os.open(os.path.join(self._root_s, *parts), flags)
            try:
                self._verify_fd(fd)
            except BaseException:
                os.close(fd)
                raise
        return fd

    def _read_bytes(self, parts: list[str]) -> bytes:
        """Whole content of a regular text-sized file (for edit / grep)."""
        fd = self._open_read(parts)
        st = _fstat_regular(fd)
        with os.fdopen(fd, "rb") as fh:
            if st.st_size > MAX_READ_BYTES:
                raise _Failed(f"{self._rel(parts)} is {st.st_size} bytes (over 2 MB); not read whole")
            return fh.read(MAX_READ_BYTES + 1)

    def _write_bytes(self, parts: list[str], data: bytes) -> bool:
        """Replace ``root/parts`` with ``data`` via a temporary file and a rename. True when created."""
        if not parts:
            raise IsADirectoryError(errno.EISDIR, "is a directory")
        name = parts[-1]
        tmp = f".{name[:80]}.loom-tmp-{secrets.token_hex(6)}"
        if not _DIRFD:
            return self._write_bytes_plain(parts, data, tmp)
        dfd = self._open_dir(parts[:-1], create=True)
        try:
            mode = None
            try:
                st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            except FileNotFoundError:
                st = None
            if st is not None:
                if stat.S_ISDIR(st.st_mode):
                    raise IsADirectoryError(errno.EISDIR, "is a directory")
                if not stat.S_ISREG(st.st_mode):
                    raise _Failed(f"{self._rel(parts)} is not a regular file")
                mode = stat.S_IMODE(st.st_mode)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC
            fd = os.open(tmp, flags, 0o666, dir_fd=dfd)
            try:
                try:
                    if mode is not None:
                        os.fchmod(fd, mode)
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view):]
                finally:
                    os.close(fd)
                os.replace(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
            except BaseException:
                try:
                    os.unlink(tmp, dir_fd=dfd)
                except OSError:
                    pass
                raise
            return st is None
        finally:
            os.close(dfd)

    def _write_bytes_plain(self, parts: list[str], data: bytes, tmp: str) -> bool:
        target = os.path.join(self._root_s, *parts)
        parent = os.path.dirname(target)
        os.makedirs(parent, exist_ok=True)
        if os.path.realpath(parent) != parent:
            raise _Refused("path-escapes-project")
        created = not os.path.lexists(target)
        if not created and not os.path.isfile(target):
            raise _Failed(f"{self._rel(parts)} is not a regular file")
        tmp_path = os.path.join(parent, tmp)
        fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC, 0o666)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp_path, target)
        except BaseException:
            try:
                os.unlink(tmp_path)
            except OSError:
                pass
            raise
        return created

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
            except _Refused:
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

    # ------------------------------------------------------------------ the tools

    def _t_read_file(self, path: str, offset: int, limit: int) -> str:
        _, parts = self._guard(path)
        rel = self._rel(parts)
        try:
            fd = self._open_read(parts)
        except FileNotFoundError:
            raise _Failed(f"no such file: {rel}") from None
        except IsADirectoryError:
            raise _Failed(f"{rel} is a directory; use list_files") from None
        try:
            st = _fstat_regular(fd)
        except IsADirectoryError:
            raise _Failed(f"{rel} is a directory; use list_files") from None
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
            raise _Failed(f"{rel} is a directory") from None
        except NotADirectoryError:
            raise _Failed(f"a parent of {rel} is not a directory") from None
        self.changed.add(rel)
        return f"{'created' if created else 'wrote'} {rel} ({len(data)} bytes)"

    def _t_edit_file(self, path: str, old_string: str, new_string: str, replace_all: bool) -> str:
        _, parts = self._guard(path, for_write=True)
        rel = self._rel(parts)
        if old_string == "":
            raise _Failed("old_string must not be empty (use write_file to create a file)")
        if old_string == new_string:
            raise _Failed("old_string and new_string are identical; nothing to change")
        try:
            data = self._read_bytes(parts)
        except FileNotFoundError:
            raise _Failed(f"no such file: {rel}") from None
        except IsADirectoryError:
            raise _Failed(f"{rel} is a directory") from None
        if b"\x00" in data[:BINARY_SNIFF]:
            raise _Failed(f"{rel} is a binary file; not editing it")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise _Failed(f"{rel} is not valid UTF-8; not editing it") from None
        count = text.count(old_string)
        if count == 0:
            raise _Failed(f"old_string not found in {rel}")
        if count > 1 and not replace_all:
            raise _Failed(f"old_string matches {count} times in {rel}; add surrounding context to make it "
                          f"unique, or pass replace_all=true")
        new_text = text.replace(old_string, new_string) if replace_all else text.replace(old_string, new_string, 1)
        self._write_bytes(parts, new_text.encode("utf-8", "replace"))
        self.changed.add(rel)
        n = count if replace_all else 1
        return f"edited {rel}: {n} replacement{'s' if n != 1 else ''}"

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
            raise _Failed(f"invalid regular expression {pattern!r}: {e}") from None
        hits, _hidden = self._matching(glob)
        out: list[str] = []
        skipped = 0
        for rel, parts in hits:
            try:
                data = self._read_bytes(parts)
            except (OSError, _Failed):
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

    def _t_run_checks(self) -> str:
        assert self._run_checks is not None
        text = self._run_checks()
        text = text if isinstance(text, str) else str(text)
        if len(text) > self.max_output:  # a checks report ends with what matters: keep head and tail
            half = self.max_output // 2
            text = text[:half] + f"\n… {len(text) - 2 * half} characters omitted …\n" + text[-half:]
        return text or "(no output)"


def _fstat_regular(fd: int) -> os.stat_result:
    """``fstat`` of a file opened for reading; closes ``fd`` and raises unless it is a regular file."""
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise _Failed("not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return st


def _os_message(e: BaseException) -> str:
    if isinstance(e, OSError):
        if e.errno == errno.ELOOP:
            return "a path component is a symlink that changed after the check; not followed"
        return f"{e.strerror or type(e).__name__}" + (f" ({e.errno})" if e.errno else "")
    return f"{type(e).__name__}: {e}"


__all__ = ["READ_TOOLS", "SKIP_DIRS", "SandboxTools", "ToolOutcome", "glob_regex"]
