"""GET /fs/list (spec §5.2, §5.4 "Folder browser") over real HTTP on a real folder tree: the root, the
children, and every refusal."""

from __future__ import annotations

import os

import pytest

from loom_core.control import fs_root
from tests.plane.conftest import TOKEN, client, envelope


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """root/{alpha/{inner}, beta, .hidden, file.txt, link-in -> alpha, link-out -> outside}; LOOM_FS_ROOT=root
    given through a symlink (the root is realpath'ed)."""
    real = tmp_path / "real-root"
    for d in ("alpha/inner", "beta", ".hidden", "zeta"):
        (real / d).mkdir(parents=True)
    (real / "file.txt").write_text("x")
    outside = tmp_path / "outside"
    (outside / "secret").mkdir(parents=True)
    (real / "link-in").symlink_to(real / "alpha")
    (real / "link-out").symlink_to(outside)
    (tmp_path / "root-link").symlink_to(real)
    monkeypatch.setenv("LOOM_FS_ROOT", str(tmp_path / "root-link"))
    return real.resolve(), outside.resolve()


def test_the_root_its_children_and_a_child(start_plane, tree):
    root, _ = tree
    assert fs_root() == root  # the console's picker and the plane share one root
    with client(start_plane()) as c:
        top = c.get("/fs/list").json()
        assert top == {"root": str(root), "path": str(root), "parent": None,
                       "entries": [{"name": n, "path": str(root / n)} for n in ("alpha", "beta", "link-in", "zeta")]}
        assert c.get("/fs/list", params={"path": ""}).json() == top
        alpha = c.get("/fs/list", params={"path": str(root / "alpha")}).json()
        assert alpha["parent"] == str(root) and alpha["entries"] == [{"name": "inner", "path": str(root / "alpha/inner")}]
        inner = c.get("/fs/list", params={"path": str(root / "alpha" / "inner")}).json()
        assert inner["entries"] == [] and inner["parent"] == str(root / "alpha")  # an empty folder is a valid pick
        # a symlink inside the root is followed to its canonical folder; a relative path is under the root
        assert c.get("/fs/list", params={"path": str(root / "link-in")}).json()["path"] == str(root / "alpha")
        assert c.get("/fs/list", params={"path": "beta"}).json()["path"] == str(root / "beta")
        assert c.get("/fs/list", params={"path": str(root / "alpha" / ".." / "beta")}).json()["path"] == str(root / "beta")


def test_refusals(start_plane, tree, monkeypatch):
    root, outside = tree
    with client(start_plane(token=TOKEN), TOKEN) as c:
        for path in ("..", str(root / ".."), str(root / "alpha" / ".." / ".."), "/etc", str(outside),
                     str(root / "link-out"), str(root / "link-out" / "secret"), str(root / "link-out" / "nope"),
                     str(root / "../outside/missing")):
            envelope(c.get("/fs/list", params={"path": path}), 403, "PATH_REFUSED")
        envelope(c.get("/fs/list", params={"path": str(root / "nope")}), 404, "DIR_NOT_FOUND")
        envelope(c.get("/fs/list", params={"path": str(root / "nope" / "deeper")}), 404, "DIR_NOT_FOUND")
        envelope(c.get("/fs/list", params={"path": str(root / "file.txt")}), 400, "NOT_A_DIRECTORY")

        locked = root / "beta"
        if os.geteuid() == 0:  # root reads a 0000 folder: make the listing itself fail as it would for a user
            import loom_core.control.plane_verbs as pv

            real_scandir = os.scandir

            def scandir(p):
                if os.fspath(p) == str(locked):
                    raise PermissionError(13, "Permission denied")
                return real_scandir(p)

            monkeypatch.setattr(pv.os, "scandir", scandir)
        locked.chmod(0)
        try:
            envelope(c.get("/fs/list", params={"path": str(locked)}), 403, "DIR_UNREADABLE")
        finally:
            locked.chmod(0o755)


def test_credential_stores_are_refused(start_plane, tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / "code").mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("LOOM_HOME", str(home / "code" / "loomhome"))
    (home / "code" / "loomhome").mkdir()
    monkeypatch.delenv("LOOM_FS_ROOT", raising=False)
    with client(start_plane()) as c:
        top = c.get("/fs/list").json()
        assert top["root"] == str(home.resolve()) and [e["name"] for e in top["entries"]] == ["code"]
        assert c.get("/fs/list", params={"path": str(home / "code")}).json()["entries"] == []  # loom's home left out
        envelope(c.get("/fs/list", params={"path": str(home / ".ssh")}), 403, "PATH_REFUSED")
        envelope(c.get("/fs/list", params={"path": str(home / "code" / "loomhome")}), 403, "PATH_REFUSED")
