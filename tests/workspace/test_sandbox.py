"""The sandbox at scale: linked heavy folders, object-only merge-back, one sandbox per project folder,
``.loom/`` never committed, clean-up (``gc``, ``loom gc``, ``loom status``)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from loom_core.errors import SandboxError
from loom_core.workspace import Workspace, disk_usage_of, gc, read_meta
from tests.conftest import run_loom
from tests.workspace.test_workspace import git, refs, user_state, write


def tree_paths(repo_dir: Path, commit: str) -> set[str]:
    return set(git(repo_dir, "ls-tree", "-r", "--name-only", commit).splitlines())


def objects_bytes(repo_dir: Path) -> int:
    return disk_usage_of(repo_dir / ".git" / "objects")


@pytest.fixture
def sandboxes(tmp_path) -> Path:
    return tmp_path / "sandboxes"


@pytest.fixture
def heavy(tmp_path) -> Path:
    """A repository with ignored folders of every kind beside its tracked code."""
    proj = tmp_path / "heavy"
    proj.mkdir()
    git(proj, "init", "-q", "-b", "main")
    write(proj / ".gitignore", ".venv/\nnode_modules/\n__pycache__/\nbig-data/\nsmall-gen/\n*.log\n")
    write(proj / "pkg" / "core.py", "VALUE = 1\n")
    git(proj, "add", "-A")
    git(proj, "commit", "-q", "-m", "init")
    write(proj / ".venv" / "pyvenv.cfg", "home = /usr/bin\n")
    (proj / ".venv" / "lib").mkdir()
    (proj / ".venv" / "lib" / "blob.bin").write_bytes(os.urandom(2_000_000))
    write(proj / "node_modules" / "dep" / "index.js", "module.exports = 1\n")
    write(proj / "pkg" / "__pycache__" / "core.cpython-311.pyc", "pyc")
    for i in range(1100):  # over the file-count limit: linked whatever its name
        write(proj / "big-data" / f"f{i}.txt", f"{i}\n")
    write(proj / "small-gen" / "gen.py", "GEN = 1\n")  # small: copied
    write(proj / "debug.log", "log\n")
    return proj


def test_heavy_ignored_folders_are_linked_and_never_surface(heavy, sandboxes):
    before = user_state(heavy)
    ws = Workspace.provision(heavy, fresh=True, base_dir=sandboxes)
    assert ws.linked == [".venv", "big-data", "node_modules"]
    for rel in ws.linked:
        assert (ws.root / rel).is_symlink() and os.readlink(ws.root / rel) == str(heavy / rel)
    assert (ws.root / ".venv" / "pyvenv.cfg").read_text() == "home = /usr/bin\n"  # usable through the link
    assert (ws.root / "small-gen").is_dir() and not (ws.root / "small-gen").is_symlink()
    assert (ws.root / "small-gen" / "gen.py").read_text() == "GEN = 1\n"
    assert (ws.root / "debug.log").read_text() == "log\n"
    assert not (ws.root / "pkg" / "__pycache__").exists()  # a tool cache: rebuilt in the sandbox, not shared
    assert ws.disk_usage() < 1_000_000  # the 2 MB in .venv is not held (nor counted) by the sandbox
    assert read_meta(ws.copy_root)["linked"] == ws.linked
    assert Workspace.provision(heavy, fresh=False, base_dir=sandboxes).linked == ws.linked

    write(ws.root / "pkg" / "core.py", "VALUE = 2\n")
    assert ws.delta() == (["pkg/core.py"], [])
    text = ws.diff_text()
    assert "+VALUE = 2" in text
    assert not any(name in text for name in (".venv", "node_modules", "big-data", "pyvenv"))
    assert git(ws.root, "status", "--porcelain") == "M pkg/core.py"
    res = ws.merge_back("t-heavy")
    assert res.files == ["pkg/core.py"]
    assert tree_paths(heavy, res.commit) == {".gitignore", "pkg/core.py"}

    ws.discard()
    assert not ws.copy_root.exists()
    after = user_state(heavy)
    assert after.pop("refs") == {**before["refs"], "refs/heads/loom/t-heavy": res.commit}
    assert after == {k: v for k, v in before.items() if k != "refs"}  # .venv & co. intact, byte for byte


@pytest.fixture(scope="session")
def history_repo(tmp_path_factory) -> Path:
    """60 commits rewriting 200 KB of incompressible data each (~12 MB of packed history)."""
    proj = tmp_path_factory.mktemp("hist") / "proj"
    proj.mkdir()
    git(proj, "init", "-q", "-b", "main")
    rng = random.Random(3)
    stream = bytearray()
    for n in range(60):
        msg = f"c{n}\n".encode()
        stream += b"commit refs/heads/main\ncommitter T <t@t> %d +0000\ndata %d\n%s" % (1_600_000_000 + n, len(msg),
                                                                                        msg)
        files = {f"src/m{i}.py": f"x = {n}\n".encode() for i in range(50)} if n == 0 else {}
        files[f"data/blob{n % 10}.bin"] = rng.randbytes(200_000)
        for path, data in files.items():
            stream += b"M 100644 inline %s\ndata %d\n%s\n" % (path.encode(), len(data), data)
        stream += b"\n"
    subprocess.run(["git", "fast-import", "--quiet"], cwd=proj, input=bytes(stream), check=True)
    git(proj, "checkout", "-q", "-f", "main")
    return proj


def test_merge_back_writes_only_the_new_objects(history_repo, sandboxes):
    history = objects_bytes(history_repo)
    assert history > 10_000_000
    ws = Workspace.provision(history_repo, fresh=True, base_dir=sandboxes)
    assert ws.disk_usage() < history / 2  # the history is borrowed, not copied
    write(ws.root / "src" / "m7.py", "x = 0\ny = 1\n")
    loose_before = {p for p in (history_repo / ".git" / "objects").rglob("*") if p.is_file()}

    res = ws.merge_back("t-objects")
    assert res.status == "merged" and res.files == ["src/m7.py"]
    assert res.objects == 4  # commit, root tree, src/ tree, one blob
    loose_after = {p for p in (history_repo / ".git" / "objects").rglob("*") if p.is_file()}
    assert len(loose_after - loose_before) == 4
    assert objects_bytes(history_repo) - history < 64 * 1024 < history / 100
    assert git(history_repo, "show", "loom/t-objects:src/m7.py") == "x = 0\ny = 1"
    git(history_repo, "fsck", "--connectivity-only", "--no-dangling")  # a complete, connected branch
    git(history_repo, "branch", "-q", "-D", "loom/t-objects")
    ws.discard()


def test_an_existing_branch_elsewhere_is_never_moved(history_repo, sandboxes):
    ws = Workspace.provision(history_repo, fresh=True, base_dir=sandboxes)
    git(history_repo, "branch", "loom/t-taken", "HEAD~3")
    taken = refs(history_repo)["refs/heads/loom/t-taken"]
    write(ws.root / "new.py", "n = 1\n")
    with pytest.raises(SandboxError) as err:
        ws.merge_back("t-taken")
    assert err.value.code == "SANDBOX_BRANCH_EXISTS" and "not moving" in str(err.value)
    assert refs(history_repo)["refs/heads/loom/t-taken"] == taken
    assert (ws.root / "new.py").read_text() == "n = 1\n"  # the work stays in the sandbox

    git(history_repo, "branch", "-q", "-D", "loom/t-taken")
    res = ws.merge_back("t-taken")
    assert res.status == "merged" and refs(history_repo)["refs/heads/loom/t-taken"] == res.commit
    assert ws.merge_back("t-taken").commit == res.commit  # same commit again: idempotent
    git(history_repo, "branch", "-q", "-D", "loom/t-taken")
    ws.discard()


def test_subproject_loom_folders_are_never_committed(tmp_path, sandboxes):
    top = tmp_path / "mono"
    top.mkdir()
    git(top, "init", "-q", "-b", "main")
    write(top / "svc" / "app.py", "app = 1\n")
    git(top, "add", "-A")
    git(top, "commit", "-q", "-m", "init")
    write(top / "svc" / ".loom" / "state.db", "db")
    write(top / "svc" / ".loom" / "loom.json", "{}")
    ws = Workspace.provision(top, fresh=True, base_dir=sandboxes)
    assert not (ws.root / "svc" / ".loom" / "state.db").exists()  # loom state never enters a sandbox
    write(ws.root / "svc" / ".loom" / "work" / "plan.md", "plan\n")
    write(ws.root / "deep" / "er" / ".loom" / "x.txt", "x\n")
    write(ws.root / "svc" / "app.py", "app = 2\n")
    assert ws.delta() == (["svc/app.py"], [])
    assert ".loom" not in ws.diff_text()
    res = ws.merge_back("t-sub")
    assert tree_paths(top, res.commit) == {"svc/app.py"}


def test_repo_root_and_subfolder_projects_get_their_own_sandboxes(tmp_path, sandboxes):
    top = tmp_path / "mono"
    top.mkdir()
    git(top, "init", "-q", "-b", "main")
    write(top / "root.txt", "r\n")
    write(top / "svc" / "app.py", "app = 1\n")
    git(top, "add", "-A")
    git(top, "commit", "-q", "-m", "init")
    outer = Workspace.provision(top, fresh=True, base_dir=sandboxes)
    inner = Workspace.provision(top / "svc", fresh=True, base_dir=sandboxes)
    assert outer.copy_root != inner.copy_root
    assert inner.root == inner.copy_root / "svc" and (inner.copy_root / "root.txt").is_file()
    write(inner.root / "app.py", "app = 2\n")
    write(outer.root / "root.txt", "changed\n")
    assert inner.delta() == (["app.py"], []) and outer.delta() == (["root.txt"], [])
    inner.discard()
    assert outer.root.is_dir() and Workspace.provision(top, fresh=False, base_dir=sandboxes).reused


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_gc_removes_orphans_and_dead_partials_only(tmp_path, sandboxes):
    keep_me = tmp_path / "keep"
    gone = tmp_path / "gone"
    idle = tmp_path / "idle"
    for p in (keep_me, gone, idle):
        p.mkdir()
        git(p, "init", "-q", "-b", "main")
        write(p / "f.txt", "f\n")
        git(p, "add", "-A")
        git(p, "commit", "-q", "-m", "init")
    kept = Workspace.provision(keep_me, fresh=True, base_dir=sandboxes)
    orphan = Workspace.provision(gone, fresh=True, base_dir=sandboxes)
    unwanted = Workspace.provision(idle, fresh=True, base_dir=sandboxes)
    subprocess.run(["rm", "-rf", str(gone)], check=True)
    base = kept.copy_root.parent
    dead = base / f"{kept.copy_root.name}.partial-{_dead_pid()}"
    live = base / f"{kept.copy_root.name}.partial-{os.getpid()}"
    for d in (dead, live):
        write(d / "x", "partial\n")

    keep = {keep_me.resolve()}.__contains__
    planned = gc(sandboxes, keep=keep, dry_run=True)
    assert sorted(p for p, _ in planned) == sorted([orphan.copy_root, unwanted.copy_root, dead])
    assert all(b > 0 for _, b in planned) and orphan.copy_root.exists()  # a dry run removes nothing

    removed = gc(sandboxes, keep=keep)
    assert [p for p, _ in removed] == [p for p, _ in planned]
    assert not orphan.copy_root.exists() and not unwanted.copy_root.exists() and not dead.exists()
    assert kept.copy_root.is_dir() and live.is_dir()
    assert gc(sandboxes) == []  # the owner of the kept one still exists


def test_loom_status_and_gc_keep_a_parked_task_s_sandbox(tmp_path):
    from loom_core.agents.executors.demo_project import create_demo_project

    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    env = {"TMPDIR": str(tmpdir)}  # the CLI's sandboxes go to <tmpdir>/loom-<uid>
    proj = tmp_path / "app"
    create_demo_project(proj)
    proc = run_loom("run", "reject", "bad", "discounts", "--backend", "demo", "--policy", "human", cwd=proj, env=env)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    parked = Workspace.sandbox_path(proj, base_dir=tmpdir)
    assert parked.is_dir() and read_meta(parked)["task_id"]

    st = json.loads(run_loom("status", "--json", cwd=proj, env=env).stdout)
    assert st["status"] == "parked" and st["sandbox"] == str(parked)
    assert st["sandbox_bytes"] == disk_usage_of(parked) > 0
    text = run_loom("status", cwd=proj, env=env).stdout
    assert f"sandbox: {st['sandbox_bytes'] / 1000:.1f} KB at {parked}" in text

    other = tmp_path / "other"
    other.mkdir()
    git(other, "init", "-q", "-b", "main")
    write(other / "f.txt", "f\n")
    git(other, "add", "-A")
    git(other, "commit", "-q", "-m", "init")
    orphan = Workspace.provision(other, fresh=True, base_dir=tmpdir).copy_root  # no task at all: an orphan

    dry = run_loom("gc", "--dry-run", "--json", cwd=tmp_path, env=env)
    assert dry.returncode == 0, dry.stderr
    out = json.loads(dry.stdout)
    assert out["dry_run"] and [r["path"] for r in out["removed"]] == [str(orphan)]
    assert orphan.is_dir() and parked.is_dir()
    done = run_loom("gc", cwd=tmp_path, env=env)
    assert done.returncode == 0 and f"removed {orphan}" in done.stdout
    assert not orphan.exists() and parked.is_dir()

    # abandoning the task ends it, and its sandbox with it
    assert run_loom("answer", "accept", cwd=proj, env=env).returncode == 0
    assert run_loom("proceed", cwd=proj, env=env).returncode == 3  # parked at the plan gate
    assert parked.is_dir()
    ended = run_loom("answer", "abandon", cwd=proj, env=env)
    assert ended.returncode == 0 and "the task ended" in ended.stdout, ended.stdout + ended.stderr
    assert not parked.exists()
    assert "sandbox:" not in run_loom("status", cwd=proj, env=env).stdout


def test_an_ignored_loom_folder_is_copied_without_state_never_linked(tmp_path, sandboxes):
    proj = tmp_path / "p"
    proj.mkdir()
    git(proj, "init", "-q", "-b", "main")
    write(proj / ".gitignore", ".loom/\n")
    write(proj / "a.txt", "a\n")
    git(proj, "add", "-A")
    git(proj, "commit", "-q", "-m", "init")
    for i in range(1100):  # a long history: over the link limit, but loom's folder is never shared
        write(proj / ".loom" / "history" / f"t{i}.db", "old\n")
    write(proj / ".loom" / "state.db", "db")
    write(proj / ".loom" / "loom.json", "{}")
    ws = Workspace.provision(proj, fresh=True, base_dir=sandboxes)
    loom = ws.root / ".loom"
    assert ws.linked == [] and loom.is_dir() and not loom.is_symlink()
    assert (loom / "loom.json").read_text() == "{}"
    assert not (loom / "history").exists() and not (loom / "state.db").exists()
