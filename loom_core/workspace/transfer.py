"""Merge-back's second half: copy into the user's object database only the objects it lacks, then create
``refs/heads/loom/<task>`` there — never moving a branch that already points elsewhere."""

from __future__ import annotations

import pygit2

from loom_core.errors import SandboxError

_TREE = pygit2.enums.ObjectType.TREE
_COMMIT = pygit2.enums.ObjectType.COMMIT


def missing_objects(src: pygit2.Repository, dst_odb: pygit2.Odb, tip: pygit2.Oid) -> list[pygit2.Oid]:
    """Objects reachable from ``tip`` in ``src`` that ``dst_odb`` lacks, dependencies first.

    Commits are walked back until one the destination has; a tree the destination has is not
    descended into (a repository holding a tree holds everything below it).
    """
    order: list[pygit2.Oid] = []
    seen: set[pygit2.Oid] = set()
    commits: list[pygit2.Oid] = []
    stack = [tip]
    while stack:
        oid = stack.pop()
        if oid in seen or oid in dst_odb:
            continue
        seen.add(oid)
        commits.append(oid)
        stack.extend(src[oid].parent_ids)
    for cid in reversed(commits):
        trees = [src[cid].tree_id]
        while trees:
            tid = trees.pop()
            if tid in seen or tid in dst_odb:
                continue
            seen.add(tid)
            sub_first: list[pygit2.Oid] = []
            for entry in src[tid]:
                if entry.filemode == pygit2.enums.FileMode.COMMIT:
                    continue  # a submodule's commit lives in the submodule's repository
                if entry.type == _TREE:
                    trees.append(entry.id)
                elif entry.id not in seen and entry.id not in dst_odb:
                    seen.add(entry.id)
                    sub_first.append(entry.id)
            order.extend(sub_first)
            order.append(tid)
        order.append(cid)
    return order


def copy_objects(src: pygit2.Repository, dst: pygit2.Repository, tip: pygit2.Oid) -> int:
    """Write the objects ``dst`` lacks; returns how many were written."""
    odb = dst.odb
    todo = missing_objects(src, odb, tip)
    sodb = src.odb
    for oid in todo:
        kind, data = sodb.read(oid)
        if odb.write(kind, data) != oid:
            raise SandboxError(f"object {oid} changed while copying it", code="SANDBOX_MERGE_FAILED")
    return len(todo)


def create_branch(user: pygit2.Repository, refname: str, commit: pygit2.Oid, where: str) -> None:
    """Create ``refname`` at ``commit``; idempotent when it is already there (or the user has built on it:
    the branch descends from ``commit``), refused otherwise."""
    branch = refname.removeprefix("refs/heads/")
    existing = user.references.get(refname)
    if existing is not None:
        if existing.target == commit or _descends(user, existing.target, commit):
            return
        local = user.branches.local.get(branch)
        if local is not None and local.is_checked_out():
            raise SandboxError(f"branch {branch} is checked out in {where}; not moving it",
                               code="SANDBOX_MERGE_FAILED")
        raise SandboxError(f"branch {branch} already exists in {where} at {str(existing.target)[:12]}; not moving "
                           f"it — the work stays in the sandbox: rename or delete that branch, then run "
                           f"'loom proceed'", code="SANDBOX_BRANCH_EXISTS")
    user.references.create(refname, commit)


def _descends(user: pygit2.Repository, tip: pygit2.Oid, commit: pygit2.Oid) -> bool:
    try:
        return user.descendant_of(tip, commit)
    except (pygit2.GitError, KeyError, ValueError):
        return False
