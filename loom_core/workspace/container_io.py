"""The sandbox copy on its way into and out of an agent container.

Two ways, chosen per run (``docker.bind_mounts``): the copy is bind-mounted at ``/workspace`` (a local
engine), or it is shipped in as a tar archive before the container starts and read back from it after
(a remote engine, where a host path means nothing; ``put_archive`` / ``get_archive`` of the SDK).

Either way the agent's uid must be able to write the copy: :func:`share` opens it up when loom is root
and the agent runs as someone else (owners never change: git on the host refuses a repository owned by
another user, and git in the container is told the copy is safe through ``GIT_CONFIG_*``).
"""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from loom_core.errors import LoomError

WORKSPACE = "/workspace"


@dataclass
class Layout:
    """What a container gets of the folder an agent works in."""

    top: Path  # what /workspace holds: the sandbox's repository (or the folder itself when it is no sandbox)
    prefix: str = ""  # the agent's folder relative to ``top`` (a project in a subfolder of its repository)
    stores: list[Path] = field(default_factory=list)  # object stores the sandbox borrows (git alternates)
    linked: list[Path] = field(default_factory=list)  # the user's heavy folders the sandbox links to

    @property
    def workdir(self) -> str:
        return f"{WORKSPACE}/{self.prefix}" if self.prefix else WORKSPACE


def layout(root: Path) -> Layout:
    """The sandbox holding ``root`` (its repository, the prefix, and the host folders it points at, which a
    container sees read-only at the same paths), or ``root`` alone when it is in no sandbox."""
    from loom_core.workspace.sandbox import read_meta

    root = Path(root)
    for top in (root, *root.parents[:8]):
        meta = read_meta(top) if (top / ".git").is_dir() else None
        if meta is None:
            continue
        prefix = str(meta.get("prefix") or "")
        if top / prefix != root:
            break
        alternates = top / ".git" / "objects" / "info" / "alternates"
        stores = [Path(ln.strip()) for ln in (alternates.read_text(encoding="utf-8").splitlines()
                                              if alternates.is_file() else []) if ln.strip().startswith("/")]
        linked = []
        for rel in meta.get("linked") or []:
            link = top / str(rel)
            if link.is_symlink() and os.path.isabs(target := os.readlink(link)) and os.path.isdir(target):
                linked.append(Path(target))
        return Layout(top, prefix, [s for s in stores if s.is_dir()], linked)
    return Layout(root)


def share(top: Path, uid: int) -> None:
    """Let ``uid`` write the copy at ``top``: a root loom whose copy belongs to someone else opens its
    folders and files to everyone (``a+rwX``; the sandbox base is private to loom's user, 0700). Owners
    stay as they are, so git on the host keeps opening the repository while containers run, and
    containers running side by side never undo each other. Nothing to do for a non-root loom: its
    containers run as its own uid."""
    if os.geteuid() != 0 or top.stat().st_uid == uid:
        return

    def open_up(path: str, extra: int) -> None:
        mode = os.lstat(path).st_mode
        if not (mode & 0o170000 == 0o120000) and (mode & extra) != extra:  # symlinks keep theirs
            os.chmod(path, (mode & 0o7777) | extra)

    open_up(str(top), 0o777)
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames:
            open_up(os.path.join(dirpath, name), 0o777)
        for name in filenames:
            open_up(os.path.join(dirpath, name), 0o666)


def pack(root: Path, uid: int, gid: int, stores: Iterable[Path] = ()) -> bytes:
    """``root`` as a tar archive whose top folder is ``workspace/``, every member owned by ``uid:gid``
    (what the agent in the container runs as), for ``put_archive(path="/")``; the borrowed object
    ``stores`` go along at their own paths (so git in the container finds every object)."""
    def owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid, info.gid, info.uname, info.gname = uid, gid, "", ""
        return info

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(str(root), arcname=WORKSPACE.strip("/"), recursive=True, filter=owned)
        for store in stores:
            tar.add(str(store), arcname=str(store).lstrip("/"), recursive=True, filter=owned)
    return buf.getvalue()


class _Chunks(io.RawIOBase):
    """A file over the byte chunks ``get_archive`` streams (so the tar is never held whole in memory)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it = iter(chunks)
        self._left = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while not self._left:
            try:
                self._left = next(self._it)
            except StopIteration:
                return 0
        n = min(len(b), len(self._left))
        b[:n] = self._left[:n]
        self._left = self._left[n:]
        return n


def unpack(chunks: Iterable[bytes], root: Path) -> None:
    """Make ``root`` hold what the archive of ``/workspace`` holds: changed and new files are written,
    files the agent deleted go, everything else is left alone (an agent that changed nothing changes
    nothing here, even while others work on the same copy). Extracted next to ``root`` first, so a broken
    archive leaves the copy as it was; members are owned by ``root``'s owner and may not leave the folder
    (tarfile's ``tar`` filter)."""
    st = root.stat()
    stage = Path(tempfile.mkdtemp(prefix=".loom-unpack-", dir=root.parent))
    try:
        def owned(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
            member = tarfile.tar_filter(member, dest)
            return member.replace(uid=st.st_uid, gid=st.st_gid, uname="", gname="", deep=False)

        with tarfile.open(fileobj=io.BufferedReader(_Chunks(chunks), 1 << 16), mode="r|") as tar:
            tar.extractall(stage, filter=owned)
        top = stage / WORKSPACE.strip("/")
        if not top.is_dir():
            raise LoomError(f"the container's archive of {WORKSPACE} held no {WORKSPACE} folder",
                            code="CONTAINER_ARCHIVE_INVALID")
        _sync(top, root)
    except tarfile.TarError as exc:
        raise LoomError(f"the container's archive of {WORKSPACE} cannot be read: {exc}",
                        code="CONTAINER_ARCHIVE_INVALID") from exc
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _same(a: Path, b: Path) -> bool:
    """Whether ``b`` already is what ``a`` is (kind, symlink target, executable bit, bytes)."""
    sa, sb = os.lstat(a), os.lstat(b)
    if (sa.st_mode & 0o170000) != (sb.st_mode & 0o170000):
        return False
    if os.path.islink(a):
        return os.readlink(a) == os.readlink(b)
    if os.path.isdir(a):
        return True
    if (sa.st_mode & 0o111) != (sb.st_mode & 0o111) or sa.st_size != sb.st_size:
        return False
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(1 << 16), fb.read(1 << 16)
            if x != y:
                return False
            if not x:
                return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def _sync(src: Path, dst: Path) -> None:
    """``dst`` made like ``src``, touching only what differs (``src`` is consumed)."""
    wanted = set(os.listdir(src))
    for name in os.listdir(dst):
        if name not in wanted:
            _remove(dst / name)
    for name in sorted(wanted):
        a, b = src / name, dst / name
        if os.path.lexists(b) and _same(a, b):
            if a.is_dir() and not a.is_symlink():
                _sync(a, b)
            continue
        if os.path.lexists(b):
            _remove(b)
        os.replace(a, b)
