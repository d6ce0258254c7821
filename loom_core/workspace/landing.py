"""Landing accepted work as a recorded, idempotent sequence: commit the sandbox → record the commit →
copy objects → create ``loom/<task>`` → record it landed → remove the sandbox.

The record is ``.loom/landing.json`` in the project (written atomically, keyed by task id). A run that
resumes after a kill reads it: once the sandbox commit is recorded it never commits again — it only
finishes the copy and the branch from the recorded commit and removes the sandbox, whatever state the
sandbox was left in (``.git`` gone, files missing).
"""

from __future__ import annotations

import os
from pathlib import Path

import pygit2

from loom_core.errors import SandboxError
from loom_core.store import loomdir
from loom_core.workspace import fs
from loom_core.workspace.sandbox import MergeResult, Workspace, discover, remove_sandbox

RECORD = "landing.json"


def record_path(project: Path) -> Path:
    return Path(project) / ".loom" / RECORD


def read(project: Path, task_id: str) -> dict | None:
    data = fs.read_json(record_path(project))
    return data if isinstance(data, dict) and data.get("task_id") == task_id else None


def write(project: Path, record: dict) -> None:
    loomdir.ensure(Path(project) / ".loom")
    fs.write_json(record_path(project), record)


def result_of(record: dict) -> MergeResult:
    if record.get("status") == "no-changes":
        return MergeResult("no-changes", None, None, [], "no changes to merge back")
    files = list(record.get("files") or [])
    branch = f"loom/{record['task_id']}"
    return MergeResult("merged", branch, record.get("commit"), files,
                       f"changes committed to branch {branch} ({len(files)} file(s))", int(record.get("objects") or 0))


def land(project: Path, task_id: str, ws: Workspace | None = None,
         trailers: dict[str, str] | None = None) -> MergeResult | None:
    """Land ``task_id``'s accepted work and remove its sandbox; None when there is nothing to land (no
    sandbox and no record: a non-git project, or work landed before records existed)."""
    project = Path(project).resolve()
    sandbox = Workspace.sandbox_path(project)
    record = read(project, task_id)
    if record is None:
        if ws is None:
            if not os.path.lexists(sandbox):
                return None
            ws = Workspace.provision(project, fresh=False)  # a damaged sandbox without a record: clear error
        if not ws.isolated:
            return ws.merge_back(task_id)
        base = {"task_id": task_id, "repo_root": str(ws.repo_root), "baseline": ws.baseline}

        def committed(sha: str, files: list[str]) -> None:
            write(project, {**base, "status": "merged", "stage": "committed", "commit": sha, "files": files})

        merge = ws.merge_back(task_id, on_commit=committed, trailers=trailers)
        record = {**base, "status": merge.status, "commit": merge.commit, "files": list(merge.files),
                  "objects": merge.objects}
    elif record.get("stage") != "landed" and record.get("status") == "merged":
        _finish_recorded(project, record, sandbox, ws)
    write(project, {**record, "stage": "landed"})
    remove_sandbox(sandbox)
    return result_of(record)


def _finish_recorded(project: Path, record: dict, sandbox: Path, ws: Workspace | None) -> None:
    """The recorded commit onto ``loom/<task>``, copying objects from the sandbox only if the user's
    repository lacks them — never a new commit."""
    found = discover(project)
    if found is None:
        raise SandboxError(f"{project} is no longer in a git repository; cannot land {record['task_id']}",
                           code="SANDBOX_MERGE_FAILED")
    repo_root, user = found
    handle = ws or Workspace(project=project, root=sandbox, isolated=True, baseline=record.get("baseline"),
                             repo_root=repo_root, copy_root=sandbox)
    commit = pygit2.Oid(hex=record["commit"])
    repo = None
    if commit not in user.odb:
        try:
            repo = pygit2.Repository(str(sandbox), flags=pygit2.enums.RepositoryOpenFlag.NO_SEARCH)
            repo[commit]
        except (pygit2.GitError, KeyError, ValueError) as exc:
            raise SandboxError(f"the commit of {record['task_id']} ({record['commit'][:12]}) is neither in "
                               f"{repo_root} nor in a readable sandbox ({exc})", code="SANDBOX_MERGE_FAILED") from exc
    record["objects"] = handle.land_commit(record["task_id"], repo, commit)
