"""Real git repositories for tests (pygit2), and facts about the user's side of them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pygit2

SIG = pygit2.Signature("Test User", "user@example.invalid")


def make_repo(root: Path, files: dict[str, str]) -> pygit2.Repository:
    root.mkdir(parents=True, exist_ok=True)
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    repo = pygit2.init_repository(str(root), initial_head="main")
    repo.index.add_all()
    repo.index.write()
    repo.create_commit("HEAD", SIG, SIG, "initial", repo.index.write_tree(), [])
    return repo


def user_side(root: Path) -> dict:
    """HEAD, checked-out branch, index bytes and working-tree contents: what loom must never touch."""
    repo = pygit2.Repository(str(root))
    tree = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and not rel.startswith((".git/", ".loom/")):
            tree[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return {"head": str(repo.head.target), "branch": repo.head.shorthand,
            "index": hashlib.sha256((root / ".git" / "index").read_bytes()).hexdigest(), "tree": tree}


def branch_files(root: Path, branch: str) -> dict[str, str]:
    repo = pygit2.Repository(str(root))
    commit = repo.revparse_single(f"refs/heads/{branch}")
    out = {}

    def walk(tree, prefix=""):
        for e in tree:
            if e.type_str == "tree":
                walk(repo[e.id], prefix + e.name + "/")
            else:
                out[prefix + e.name] = repo[e.id].data.decode("utf-8", "replace")

    walk(commit.peel(pygit2.Tree))
    return out
