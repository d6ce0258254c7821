"""``loom verify``: one store's chain, anchors and state digest (read in one snapshot), its entry in
the history index, and the audit head the task's ``loom/<task>`` branch carries as a commit trailer.

The trailer is the anchor outside the file: an editor who rewrites the store and recomputes every hash
cannot make the chain hold the head that was committed to the user's repository when the work landed.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from loom_core.store import db as dbmod
from loom_core.store import read
from loom_core.store.audit import GENESIS, ChainReport

TRAILER = "Loom-Audit-Head"
MAC_TRAILER = "Loom-Audit-Mac"
KEY_FILE = "audit.key"
INDEX_FIELDS = read.TASK_FIELDS
_TRAILER_RE = re.compile(rf"^{TRAILER}:\s*([0-9a-f]{{64}})\s*$", re.MULTILINE)
_MAC_RE = re.compile(rf"^{MAC_TRAILER}:\s*([0-9a-f]{{64}})\s*$", re.MULTILINE)
MAX_WALK = 500


def audit_head(project: Path) -> str | None:
    """The live store's audit head (for the trailer of the branch commit), None without a chain."""
    return read.head(dbmod.state_path(Path(project)))


def _key(create: bool) -> bytes | None:
    """This user's audit key (``<loom home>/audit.key``, 0600), made on first use when ``create``."""
    import os
    import secrets

    from loom_core.config.paths import loom_home

    path = loom_home() / KEY_FILE
    try:
        if create and not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(secrets.token_hex(32) + "\n")
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)  # a key others can read proves nothing; keep it private
        key = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return key.encode("ascii") if len(key) == 64 else None


def mac(key: bytes, task_id: str, head: str) -> str:
    import hashlib
    import hmac

    return hmac.new(key, f"{task_id}:{head}".encode(), hashlib.sha256).hexdigest()


def trailers(project: Path) -> dict[str, str]:
    """The trailers of the task's branch commit: the audit head, and its HMAC with this user's key (an
    editor who rewrites the store and the commit cannot sign the new head)."""
    head = audit_head(project)
    if not head:
        return {}
    out = {TRAILER: head}
    task = read.task_id(dbmod.state_path(Path(project)))
    key = _key(create=True)
    if key and task:
        out[MAC_TRAILER] = mac(key, task, head)
    return out


def _index_problem(project: Path, path: Path, info: dict[str, Any] | None) -> str | None:
    from loom_core.store.archive import history

    try:
        target = path.resolve()
    except OSError:
        return None
    for entry in history(project):
        if not entry.get("db_file") or (Path(project) / entry["db_file"]).resolve() != target:
            continue
        if info is None:
            return "the history index lists this archive but it holds no task"
        for key in INDEX_FIELDS:
            if key in entry and entry[key] != info[key]:
                return (f"the history index says {key} {entry[key]!r} but the archive records {info[key]!r} "
                        "(index.jsonl edited)")
    return None


def branch_head(project: Path, task_id: str) -> tuple[str | None, str | None, str | None]:
    """``(branch, audit head, its mac)`` from ``loom/<task_id>`` in the project's repository: the newest
    commit on the branch with a ``Loom-Audit-Head`` trailer (the user may have committed on top).
    ``(None, None, None)`` when there is no such branch."""
    import pygit2

    try:
        found = pygit2.discover_repository(str(project))
        if not found:
            return None, None, None
        repo = pygit2.Repository(found)
        ref = repo.references.get(f"refs/heads/loom/{task_id}")
        if ref is None:
            return None, None, None
        commit = ref.peel(pygit2.Commit)
        for i, c in enumerate(repo.walk(commit.id, pygit2.enums.SortMode.TOPOLOGICAL)):
            m = _TRAILER_RE.search(c.message)
            if m:
                signed = _MAC_RE.search(c.message)
                return f"loom/{task_id}", m.group(1), signed.group(1) if signed else None
            if i >= MAX_WALK:
                break
        return f"loom/{task_id}", None, None
    except (pygit2.GitError, KeyError, ValueError, OSError):
        return None, None, None


def verify(project: Path, path: Path) -> ChainReport:
    got = read.verify_facts(path)
    if got is None:
        return ChainReport(True, 0, GENESIS)
    report, info, hashes = got.report, got.task, got.hashes
    if not report.ok:
        return report
    problem = _index_problem(project, path, info)
    if problem:
        return replace(report, ok=False, broken_row=None, reason=problem)
    if not info or info.get("verdict") != "accepted":
        return report
    branch, head, signed = branch_head(project, info["task_id"])
    if branch is None:
        return report
    if head is None:
        return replace(report, notes=(f"{branch} carries no audit head to cross-check",))
    key = _key(create=False)
    if key and not signed:
        return replace(report, ok=False, broken_row=None,
                       reason=f"the audit head on {branch} carries no {MAC_TRAILER} although this user signs "
                              "every head (the commit was rewritten)")
    if signed and key and signed != mac(key, info["task_id"], head):
        return replace(report, ok=False, broken_row=None,
                       reason=f"the audit head on {branch} is not signed with this user's audit key "
                              "(the commit was rewritten, or it was made by another user)")
    if head not in hashes:
        return replace(report, ok=False, broken_row=None,
                       reason=f"{branch} was committed at audit head {head[:16]}, which this chain does not hold "
                              "(the store was rewritten)")
    how = "signed " if signed and key else ""
    return replace(report, notes=(f"matches the {how}audit head on {branch}",))
