"""Guarded file access under one sandbox root: every path goes through the path guard, then is opened
one component at a time from the root with ``O_NOFOLLOW`` (``openat``); writes go through a temporary
file renamed over the target."""

from __future__ import annotations

import errno
import os
import secrets
import stat
from pathlib import Path

from loom_core.agents.pathguard import canonical_root, resolve_safe_path
from loom_core.agents.tools.registry import Failed, Refused

MAX_READ_BYTES = 2 * 1024 * 1024
BINARY_SNIFF = 8192

_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_DIRFD = os.open in os.supports_dir_fd and os.mkdir in os.supports_dir_fd and bool(_O_NOFOLLOW)


class SandboxFS:
    """File access bound to one sandbox root. ``changed`` collects repo-relative paths written."""

    def __init__(self, root: Path, *, max_output: int = 12_000, extra_dirs: tuple[str, ...] = (),
                 extra_files: tuple[str, ...] = ()) -> None:
        self.root = Path(canonical_root(root))
        self._root_s = os.fspath(self.root)
        self.max_output = max(200, int(max_output))
        self._extra_dirs = tuple(extra_dirs)
        self._extra_files = tuple(extra_files)
        self.changed: set[str] = set()

    def _guard(self, raw: str, *, for_write: bool = False) -> tuple[Path, list[str]]:
        res = resolve_safe_path(raw, self.root, for_write=for_write, extra_dirs=self._extra_dirs,
                                extra_files=self._extra_files)
        if not res.ok or res.path is None:
            raise Refused(res.reason or "invalid-path")
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
                raise Refused("path-escapes-project")

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
        st = fstat_regular(fd)
        with os.fdopen(fd, "rb") as fh:
            if st.st_size > MAX_READ_BYTES:
                raise Failed(f"{self._rel(parts)} is {st.st_size} bytes (over 2 MB); not read whole")
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
                    raise Failed(f"{self._rel(parts)} is not a regular file")
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
            raise Refused("path-escapes-project")
        created = not os.path.lexists(target)
        if not created and not os.path.isfile(target):
            raise Failed(f"{self._rel(parts)} is not a regular file")
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


def fstat_regular(fd: int) -> os.stat_result:
    """``fstat`` of a file opened for reading; closes ``fd`` and raises unless it is a regular file."""
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise Failed("not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return st


def os_message(e: BaseException) -> str:
    if isinstance(e, OSError):
        if e.errno == errno.ELOOP:
            return "a path component is a symlink that changed after the check; not followed"
        return f"{e.strerror or type(e).__name__}" + (f" ({e.errno})" if e.errno else "")
    return f"{type(e).__name__}: {e}"

