"""Sandbox, self-diff and merge-back (spec §9) against real temporary git repositories."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pygit2
import pytest

from loom_core.errors import SandboxError
from loom_core.workspace import EMPTY_TREE, Workspace

GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True,
                          capture_output=True, text=True).stdout.strip()


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def make_repo(path: Path, *, extras: bool = True) -> Path:
    """A committed repo; with ``extras`` also an untracked file and ignored build/venv files."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    write(path / "a.txt", "alpha\n")
    write(path / "b.txt", "bravo\n")
    write(path / "src" / "mod.py", "x = 1\n")
    write(path / ".gitignore", "build/\n.venv/\n")
    os.symlink("a.txt", path / "link")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "init")
    if extras:
        write(path / "notes.txt", "untracked\n")
        write(path / "build" / "gen.py", "GEN = 1\n")
        write(path / ".venv" / "marker", "venv\n")
    return path


def snapshot(root: Path) -> dict[str, str]:
    """Hash of every file under ``root`` except ``.git`` (symlinks by target)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            p = Path(dirpath, name)
            data = os.readlink(p).encode() if p.is_symlink() else p.read_bytes()
            out[p.relative_to(root).as_posix()] = hashlib.sha256(data).hexdigest()
    return out


def refs(repo_dir: Path) -> dict[str, str]:
    repo = pygit2.Repository(str(repo_dir))
    return {r.name: str(r.target) for r in repo.references.iterator()}


def user_state(proj: Path) -> dict:
    gitdir = Path(pygit2.Repository(str(proj)).path)
    index = gitdir / "index"
    return {"head": (gitdir / "HEAD").read_text(), "index": index.read_bytes() if index.exists() else None,
            "tree": snapshot(proj), "refs": refs(proj)}


@pytest.fixture
def sandboxes(tmp_path) -> Path:
    return tmp_path / "sandboxes"


def test_provision_shares_objects_and_isolates(tmp_path, sandboxes):
    proj = make_repo(tmp_path / "proj")
    user_before = user_state(proj)
    ws = Workspace.provision(proj, fresh=True, base_dir=sandboxes)
    assert ws.isolated and ws.warning is None
    assert ws.root == Workspace.sandbox_path(proj, base_dir=sandboxes)
    assert ws.root.parent == sandboxes / f"loom-{os.getuid()}"
    assert ws.root.name.startswith("wt-") and len(ws.root.name) == 19
    assert (ws.root.parent.stat().st_mode & 0o777) == 0o700
    assert ws.baseline == git(proj, "rev-parse", "HEAD")
    # its own repository, borrowing the user's objects; nothing registered or written on the user's side
    gitdir = ws.root / ".git"
    assert gitdir.is_dir() and (gitdir / "HEAD").read_text() == (proj / ".git" / "HEAD").read_text()
    assert (gitdir / "objects" / "info" / "alternates").read_text().strip() == str(proj / ".git" / "objects")
    assert not list((gitdir / "objects" / "pack").iterdir())  # no copy of the history
    assert not (proj / ".git" / "worktrees").exists()
    assert user_state(proj) == user_before
    for rel in ("a.txt", "src/mod.py", "build/gen.py", ".venv/marker"):
        assert (ws.root / rel).read_bytes() == (proj / rel).read_bytes(), rel
    assert not (ws.root / "notes.txt").exists() and ws.left_out == ["notes.txt"]  # the user's untracked file
    assert ws.linked == [".venv", "build"]  # ignored dependency/build folders: links, not copies
    assert os.readlink(ws.root / ".venv") == str(proj / ".venv")
    assert (ws.root / "link").is_symlink() and os.readlink(ws.root / "link") == "a.txt"
    assert pygit2.Repository(str(ws.root)).workdir.rstrip("/") == str(ws.root)
    assert git(ws.root, "status", "--porcelain") == ""

    before = user_state(proj)
    write(ws.root / "a.txt", "changed in sandbox\n")
    (ws.root / "b.txt").unlink()
    write(ws.root / "new.txt", "new\n")
    git(ws.root, "add", "-A")
    git(ws.root, "commit", "-q", "-m", "agent commit")
    assert user_state(proj) == before

    ws.discard()
    assert not ws.root.exists() and (proj / "a.txt").read_text() == "alpha\n"


def test_delta_and_diff_text(tmp_path, sandboxes):
    proj = make_repo(tmp_path / "proj")
    ws = Workspace.provision(proj, fresh=True, base_dir=sandboxes)
    assert ws.delta() == ([], [])  # the project's own untracked file stays out of the sandbox

    write(ws.root / "b.txt", "bravo committed\n")
    git(ws.root, "commit", "-q", "-am", "agent self-commit")  # committed work stays visible
    write(ws.root / "a.txt", "alpha\nmore\n")
    (ws.root / "src" / "mod.py").unlink()
    write(ws.root / "pkg" / "new.py", "print('hi')\n")
    write(ws.root / "build" / "gen.py", "GEN = 2\n")  # ignored
    write(ws.root / ".loom" / "work" / "plan.md", "plan\n")  # loom's own
    write(ws.root / ".loomrc", "not loom state\n")

    modified, created = ws.delta()
    assert modified == ["a.txt", "b.txt", "src/mod.py"]
    assert created == [".loomrc", "pkg/new.py"]

    text = ws.diff_text()
    assert "+more" in text and "-bravo" in text and "+bravo committed" in text
    assert "deleted file mode" in text and "-x = 1" in text
    assert "+++ b/pkg/new.py" in text and "+print('hi')" in text
    assert "plan.md" not in text and "gen.py" not in text
    assert (ws.root / ".loom" / "work" / "diff.txt").read_text() == text

    ws.diff_text()  # diff.txt itself never shows up in the delta
    assert ws.delta() == (modified, created)


def test_diff_text_cap_truncates_per_file(tmp_path, sandboxes):
    proj = make_repo(tmp_path / "proj", extras=False)
    ws = Workspace.provision(proj, fresh=True, base_dir=sandboxes)
    write(ws.root / "big.txt", "".join(f"line {i}\n" for i in range(1000)))
    write(ws.root / "a.txt", "alpha changed\n")
    text = ws.diff_text(cap_bytes=2000)
    assert "+line 299\n" in text and "+line 300\n" not in text
    assert "700 more changed line(s)" in text
    assert "+1000/-0 big.txt" in text and "+1/-1 a.txt" in text
    assert "+alpha changed" in text


def test_merge_back_creates_branch_only(tmp_path, sandboxes):
    proj = make_repo(tmp_path / "proj")
    ws = Workspace.provision(proj, fresh=True, base_dir=sandboxes)
    write(ws.root / "a.txt", "alpha from agent\n")
    write(ws.root / "added.py", "y = 2\n")
    (ws.root / "src" / "mod.py").unlink()
    write(ws.root / ".loom" / "work" / "plan.md", "plan\n")

    # the user keeps working meanwhile: dirty tree and a staged change
    write(proj / "b.txt", "user edit\n")
    git(proj, "add", "b.txt")
    write(proj / "a.txt", "user dirty\n")
    before = user_state(proj)

    res = ws.merge_back("t-1")
    assert res.status == "merged" and res.branch == "loom/t-1"
    assert res.files == ["a.txt", "added.py", "src/mod.py"]
    assert res.message == "changes committed to branch loom/t-1 (3 file(s))"

    after = user_state(proj)
    new_refs = after.pop("refs")
    assert after == {k: v for k, v in before.items() if k != "refs"}
    assert new_refs == {**before["refs"], "refs/heads/loom/t-1": res.commit}
    assert not (Path(pygit2.Repository(str(proj)).path) / "FETCH_HEAD").exists()

    repo = pygit2.Repository(str(proj))
    commit = repo[res.commit]
    assert commit.message == "loom: t-1\n"
    assert (commit.author.name, commit.author.email) == ("loom", "loom@localhost")
    assert [str(p) for p in commit.parent_ids] == [ws.baseline]
    tree = commit.tree
    assert (tree / "a.txt").data == b"alpha from agent\n"
    assert (tree / "added.py").data == b"y = 2\n"
    assert "src" not in tree and ".loom" not in tree and "build" not in tree
    assert repo.head.shorthand == "main"

    again = ws.merge_back("t-1")  # no further edits: same commit, nothing else moves
    assert (again.status, again.commit, again.files) == ("merged", res.commit, res.files)
    assert refs(proj)["refs/heads/loom/t-1"] == res.commit


def test_merge_back_no_changes(tmp_path, sandboxes):
    proj = make_repo(tmp_path / "proj", extras=False)
    ws = Workspace.provision(proj, fresh=True, base_dir=sandboxes)
    write(ws.root / ".loom" / "work" / "plan.md", "only loom state\n")
    write(ws.root / "build" / "out.o", "ignored\n")
    before = refs(proj)
    res = ws.merge_back("t-2")
    assert (res.status, res.branch, res.commit, res.files) == ("no-changes", None, None, [])
    assert refs(proj) == before


def test_merge_back_rejects_bad_task_id_and_checked_out_branch(tmp_path, sandboxes):
    proj = make_repo(tmp_path / "proj", extras=False)
    ws = Workspace.provision(proj, fresh=True, base_dir=sandboxes)
    write(ws.root / "a.txt", "changed\n")
    with pytest.raises(SandboxError) as err:
        ws.merge_back("bad..id")
    assert err.value.code == "SANDBOX_MERGE_FAILED"
    git(proj, "checkout", "-q", "-b", "loom/t-3")
    with pytest.raises(SandboxError, match="checked out"):
        ws.merge_back("t-3")
    assert refs(proj)["refs/heads/loom/t-3"] == ws.baseline


def test_fresh_strips_loom_state_and_reuse_keeps_copy(tmp_path, sandboxes):
    proj = make_repo(tmp_path / "proj", extras=False)
    write(proj / ".loom" / "state.db", "db")
    write(proj / ".loom" / "state.db-wal", "wal")
    write(proj / ".loom" / "history" / "old.db", "old")
    write(proj / ".loom" / "work" / "baseline.json", '{"baseline": "bogus"}')
    write(proj / ".loom" / "config.toml", "keep = true\n")
    write(proj / ".loom" / "landing.json", "{}")
    write(proj / ".git" / "index.lock", "")

    ws = Workspace.provision(proj, fresh=True, base_dir=sandboxes)
    loom = ws.root / ".loom"
    assert not (loom / "state.db").exists() and not (loom / "state.db-wal").exists()
    assert not (loom / "history").exists() and not (ws.root / ".git" / "index.lock").exists()
    assert not (loom / "landing.json").exists()
    assert (loom / "config.toml").exists()
    assert (proj / ".loom" / "state.db").exists() and (proj / ".git" / "index.lock").exists()
    (proj / ".git" / "index.lock").unlink()
    baseline = ws.baseline

    write(ws.root / "marker.txt", "survives\n")
    write(proj / "later.txt", "x\n")
    git(proj, "add", "later.txt")
    git(proj, "commit", "-q", "-m", "later")  # the project moves on; the reused copy keeps its baseline

    again = Workspace.provision(proj, fresh=False, base_dir=sandboxes)
    assert again.reused and again.root == ws.root and again.baseline == baseline
    assert (again.root / "marker.txt").read_text() == "survives\n"
    assert again.delta() == ([], ["marker.txt"])

    renewed = Workspace.provision(proj, fresh=True, base_dir=sandboxes)
    assert not renewed.reused and not (renewed.root / "marker.txt").exists()
    assert renewed.baseline == git(proj, "rev-parse", "HEAD") != baseline


def test_non_git_directory_degrades_honestly(tmp_path, sandboxes):
    proj = tmp_path / "plain"
    write(proj / "a.txt", "alpha\n")
    write(proj / "sub" / "b.txt", "bravo\n")
    write(proj / "same.txt", "1234\n")
    write(proj / "node_modules" / "dep.js", "dep\n")
    ws = Workspace.provision(proj, fresh=True, base_dir=sandboxes)
    assert not ws.isolated and ws.root == proj.resolve() and ws.baseline is None
    assert ws.warning and "not a git repository" in ws.warning and "no isolation" in ws.warning
    assert (proj / ".loom" / "work" / "manifest.json").exists()
    assert not sandboxes.exists()
    assert ws.delta() == ([], [])

    write(proj / "a.txt", "alpha changed\n")
    write(proj / "same.txt", "5678\n")  # same size, different content
    (proj / "sub" / "b.txt").unlink()
    write(proj / "c.txt", "new\n")
    write(proj / "node_modules" / "dep.js", "changed dep\n")
    write(proj / ".loom" / "work" / "plan.md", "plan\n")
    assert ws.delta() == (["a.txt", "same.txt", "sub/b.txt"], ["c.txt"])

    reused = Workspace.provision(proj, fresh=False, base_dir=sandboxes)
    assert reused.delta() == ws.delta()
    assert ws.diff_text() == "" and not (proj / ".loom" / "work" / "diff.txt").exists()
    res = ws.merge_back("t-9")
    assert (res.status, res.branch, res.commit) == ("not-git", None, None) and "not a git" in res.message
    ws.discard()
    assert (proj / "c.txt").exists()
    assert Workspace.provision(proj, fresh=True, base_dir=sandboxes).delta() == ([], [])


def test_repo_without_commits(tmp_path, sandboxes):
    proj = tmp_path / "empty"
    proj.mkdir()
    git(proj, "init", "-q", "-b", "main")
    write(proj / "first.txt", "one\n")
    ws = Workspace.provision(proj, fresh=True, base_dir=sandboxes)
    assert ws.baseline == EMPTY_TREE
    assert ws.left_out == ["first.txt"] and "no commit yet" in ws.left_out_notice()
    assert ws.delta() == ([], []) and not (ws.root / "first.txt").exists()  # starts from HEAD: empty
    write(ws.root / "first.txt", "one\n")
    assert ws.delta() == ([], ["first.txt"])
    assert "+one" in ws.diff_text()
    res = ws.merge_back("t-0")
    assert res.status == "merged" and res.files == ["first.txt"]
    repo = pygit2.Repository(str(proj))
    assert repo.head_is_unborn
    commit = repo.references["refs/heads/loom/t-0"].peel(pygit2.Commit)
    assert str(commit.id) == res.commit and commit.parent_ids == []
    assert (commit.tree / "first.txt").data == b"one\n"

    clean = tmp_path / "clean"
    clean.mkdir()
    git(clean, "init", "-q", "-b", "main")
    ws2 = Workspace.provision(clean, fresh=True, base_dir=sandboxes)
    assert ws2.merge_back("t-00").status == "no-changes"


def test_symlinked_base_is_refused(tmp_path, sandboxes):
    proj = make_repo(tmp_path / "proj", extras=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    sandboxes.mkdir()
    os.symlink(elsewhere, sandboxes / f"loom-{os.getuid()}")
    with pytest.raises(SandboxError) as err:
        Workspace.provision(proj, fresh=True, base_dir=sandboxes)
    assert err.value.code == "SANDBOX_ROOT_UNSAFE"
    assert list(elsewhere.iterdir()) == []


def test_project_in_subdirectory_of_repo(tmp_path, sandboxes):
    top = make_repo(tmp_path / "mono", extras=False)
    write(top / "svc" / "app.py", "app = 1\n")
    git(top, "add", "-A")
    git(top, "commit", "-q", "-m", "svc")
    ws = Workspace.provision(top / "svc", fresh=True, base_dir=sandboxes)
    assert ws.root.name == "svc" and ws.root.parent == Workspace.sandbox_path(top / "svc", base_dir=sandboxes)
    assert (ws.copy_root / "a.txt").read_text() == "alpha\n"  # a full checkout of the repository
    write(ws.root / "app.py", "app = 2\n")
    write(ws.root / "extra.py", "e\n")
    write(ws.root / ".loom" / "work" / "plan.md", "plan\n")
    assert ws.delta() == (["app.py"], ["extra.py"])
    res = ws.merge_back("t-s")
    assert res.files == ["svc/app.py", "svc/extra.py"]


def test_linked_worktree_project(tmp_path, sandboxes):
    main = make_repo(tmp_path / "main", extras=False)
    wt = tmp_path / "wt"
    git(main, "worktree", "add", "-q", "-b", "feature", str(wt))
    write(wt / "a.txt", "dirty in worktree\n")
    before_main, before_wt = user_state(main), user_state(wt)

    ws = Workspace.provision(wt, fresh=True, base_dir=sandboxes)
    assert (ws.root / ".git").is_dir()  # a standalone repository, not a pointer into the user's
    assert ws.delta() == ([], []) and ws.left_out == ["a.txt"]  # the worktree's dirty file stays the user's
    write(ws.root / "b.txt", "from agent\n")
    git(ws.root, "commit", "-q", "-am", "agent")  # must not move the user's `feature`
    res = ws.merge_back("t-w")
    assert res.status == "merged" and res.files == ["b.txt"]

    after_wt = user_state(wt)
    assert after_wt.pop("refs") == {**before_wt["refs"], "refs/heads/loom/t-w": res.commit}
    assert after_wt == {k: v for k, v in before_wt.items() if k != "refs"}
    assert user_state(main)["tree"] == before_main["tree"]
    assert git(main, "rev-parse", "feature") == ws.baseline
    assert git(main, "show", "loom/t-w:b.txt") == "from agent"


def test_damaged_sandbox_is_a_clear_error(tmp_path, sandboxes):
    proj = make_repo(tmp_path / "proj", extras=False)
    ws = Workspace.provision(proj, fresh=True, base_dir=sandboxes)
    import shutil

    shutil.rmtree(ws.root / ".git")
    with pytest.raises(SandboxError, match="damaged") as err:
        Workspace.provision(proj, fresh=False, base_dir=sandboxes)
    assert err.value.code == "SANDBOX_PROVISION_FAILED"
    assert Workspace.provision(proj, fresh=True, base_dir=sandboxes).delta() == ([], [])
