"""Where agents work: a sandbox of a git project sharing the user's object store, or the project itself.

Spec §9. A **git project** (a repository whose working directory is the project or one of its parents)
gets a sandbox at ``<tmpdir>/loom-<uid>/wt-<16 hex of sha1(project dir)>``: its own repository whose
``objects/info/alternates`` borrows the user's object store, the user's HEAD checked out, then the user's
small ignored files copied over (``.env``, generated files). The user's uncommitted edits and untracked
files are not brought in — they are the user's, not the agents' — and ``left_out`` lists them so the user
is told. Heavy ignored folders (``.venv``,
``node_modules``, build output, anything above 1000 files or 32 MB) are symlinks to the user's folders
(``linked``), tool caches are left out; neither ever shows in ``delta()``, ``diff_text()`` or the branch.
Agents work in ``root`` (``copy_root/prefix`` for a project in a subfolder of its repository).

The **baseline** is the project's HEAD at provision (the empty-tree sha for a repository without
commits), which is also what the sandbox starts from: ``delta()``, ``diff_text()`` and the branch hold
only what agents changed. ``merge_back`` commits the sandbox, writes only the objects the user's repository lacks
and creates ``refs/heads/loom/<task_id>`` — the only thing it changes there (HEAD, the checked-out
branch, the index and the working tree are never touched, dirty or not). ``.loom/`` folders at any depth
are never committed.

A **non-git directory** is not isolated (§9.2, honest degradation): agents work in the project itself,
``warning`` says so, there is no baseline, no ``diff.txt`` and no branch; a file manifest recorded at
provision keeps ``delta()`` honest.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pygit2

from loom_core.crash import crashpoint
from loom_core.errors import SandboxError
from loom_core.store import loomdir
from loom_core.workspace import fs, manifest, provision, transfer
from loom_core.workspace.diff import DIFF_CAP_BYTES, render_diff
from loom_core.workspace.provision import EMPTY_TREE, LOOM_DIR

WORK_DIR = ".loom/work"
_SIGNATURE = ("loom", "loom@localhost")


@dataclass
class MergeResult:
    status: str  # "merged" | "no-changes" | "not-git"
    branch: str | None  # "loom/<task_id>"
    commit: str | None  # sha of the branch head in the user's repository
    files: list[str]  # repo-relative paths changed by the commit (against the baseline)
    message: str  # one human line
    objects: int = 0  # objects written into the user's repository


@dataclass
class Workspace:
    """A provisioned place for agents to work. Build it with :meth:`provision`."""

    project: Path  # the user's project dir (resolved)
    root: Path  # where agents work: the sandbox, or the project itself when not isolated
    isolated: bool
    baseline: str | None  # project HEAD sha at provision; empty-tree sha without commits; None non-git
    warning: str | None = None  # set when not isolated
    notice: str | None = None  # one informative line about the sandbox (e.g. what was linked)
    repo_root: Path | None = None  # the user's repository working directory (git projects)
    copy_root: Path | None = None  # the sandbox of repo_root (isolated only)
    prefix: str = ""  # project dir relative to repo_root, posix ("" when they are the same)
    reused: bool = field(default=False)  # an existing sandbox was reused untouched
    linked: list[str] = field(default_factory=list)  # repo-relative folders linked to the user's, not copied
    left_out: list[str] = field(default_factory=list)  # the user's uncommitted/untracked paths not brought in

    # ------------------------------------------------------------------ provisioning

    @classmethod
    def sandbox_path(cls, project: Path, base_dir: Path | None = None) -> Path:
        """The sandbox directory (``copy_root``) of ``project`` (no filesystem change)."""
        return fs.base_dir_of(base_dir) / fs.sandbox_name(Path(project).resolve())

    @classmethod
    def provision(cls, project: Path, *, fresh: bool, base_dir: Path | None = None) -> Workspace:
        """Make (``fresh`` or missing) or reuse the sandbox of a git project; degrade for non-git.

        ``fresh=True`` deletes any existing sandbox and builds it again; ``fresh=False`` reuses an
        existing one untouched. Failure on a git project raises ``SandboxError``
        (``SANDBOX_PROVISION_FAILED``) — never a fallback to the live tree.
        """
        project = Path(project).resolve()
        if not project.is_dir():
            raise SandboxError(f"project directory not found: {project}")
        found = discover(project)
        if found is None:
            return cls._provision_plain(project, fresh=fresh)
        repo_root, user = found
        prefix = project.relative_to(repo_root).as_posix() if project != repo_root else ""
        base = fs.ensure_base(base_dir)
        dst = base / fs.sandbox_name(project)
        if fs.is_inside(dst, repo_root):
            raise SandboxError(f"sandbox {dst} would be inside the project it copies ({repo_root})")
        ws = cls(project=project, root=dst / prefix if prefix else dst, isolated=True, baseline=None,
                 repo_root=repo_root, copy_root=dst, prefix=prefix)
        if fresh and os.path.lexists(dst):
            fs.rmtree(dst)
        if not fresh and dst.is_dir() and not dst.is_symlink():
            ws.reused = True
            try:
                ws._load_meta(user)
            except (pygit2.GitError, OSError, KeyError, ValueError) as exc:
                raise SandboxError(f"the sandbox {dst} is damaged ({exc}); its work cannot be resumed — "
                                   f"start a fresh task (or 'loom reset')") from exc
            return ws
        tmp = base / f"{dst.name}.partial-{os.getpid()}"
        if os.path.lexists(tmp):
            fs.rmtree(tmp)
        try:
            ws.baseline, ws.linked, ws.left_out = provision.build(repo_root, user, tmp)
            _check_sandbox(tmp)
            fs.write_json(tmp / ".git" / fs.META_NAME, ws._meta())
            os.rename(tmp, dst)
        except SandboxError:
            fs.rmtree(tmp)
            raise
        except (OSError, pygit2.GitError, ValueError) as exc:
            fs.rmtree(tmp)
            raise SandboxError(f"could not prepare the sandbox of {repo_root}: {exc}") from exc
        if ws.linked:
            ws.notice = f"reusing {', '.join(ws.linked)} from {repo_root} read-only (linked, not copied)"
        return ws

    @classmethod
    def _provision_plain(cls, project: Path, *, fresh: bool) -> Workspace:
        ws = cls(project=project, root=project, isolated=False, baseline=None,
                 warning=f"not a git repository: agents work directly in {project} (no isolation, no branch)")
        path = ws._manifest_path()
        loomdir.ensure(project / LOOM_DIR)
        if fresh or fs.read_json(path) is None:
            fs.write_json(path, manifest.manifest(project))
        return ws

    def left_out_notice(self, shown: int = 5) -> str | None:
        """One line naming the user's uncommitted and untracked files the sandbox does not have."""
        if not self.left_out:
            return None
        names = ", ".join(self.left_out[:shown])
        more = f" (+{len(self.left_out) - shown} more)" if len(self.left_out) > shown else ""
        if self.baseline == EMPTY_TREE:
            return (f"the repository has no commit yet, so the sandbox starts empty; your files are not in it: "
                    f"{names}{more} — commit them first if the task needs them")
        return (f"the sandbox starts from your last commit ({(self.baseline or '')[:12]}); your uncommitted or "
                f"untracked changes are not in it and stay untouched: {names}{more} — commit them first if the "
                f"task needs them")

    def _meta(self) -> dict:
        return {"version": 1, "project": str(self.project), "repo_root": str(self.repo_root),
                "prefix": self.prefix, "baseline": self.baseline, "linked": self.linked,
                "created": time.time(), "pid": os.getpid(), "task_id": None}

    def _load_meta(self, user: pygit2.Repository) -> None:
        """Baseline and links of a reused sandbox; a lost baseline falls back to the project's HEAD."""
        meta = read_meta(self.copy_root) or {}
        sha = meta.get("baseline")
        self.linked = [p for p in meta.get("linked") or [] if isinstance(p, str)]
        repo = self._copy_repo()
        if isinstance(sha, str) and _resolves(repo, sha):
            self.baseline = sha
            return
        sha = provision.head_sha(user)
        self.baseline = sha if _resolves(repo, sha) else provision.head_sha(repo)
        fs.write_json(Path(repo.path) / fs.META_NAME, {**meta, **self._meta(), "created": meta.get("created")})

    def note_task(self, task_id: str) -> None:
        """Record the task the sandbox serves in its metadata (for ``loom gc`` and ``loom status``)."""
        if self.isolated and self.copy_root is not None and (self.copy_root / ".git").is_dir():
            meta = read_meta(self.copy_root) or self._meta()
            fs.write_json(self.copy_root / ".git" / fs.META_NAME, {**meta, "task_id": task_id})

    # ------------------------------------------------------------------ inspection

    def delta(self) -> tuple[list[str], list[str]]:
        """``(modified, created)``: sorted posix paths relative to ``root``; ``.loom/``, ``.git/`` and
        linked folders excluded.

        Git: ``modified`` differ from the baseline tree (committed or uncommitted edits, deletions,
        files added to git); ``created`` are untracked, non-ignored files. Non-git: compared with the
        provision-time manifest (``modified`` = content changed or deleted).
        """
        if not self.isolated:
            old = fs.read_json(self._manifest_path())
            if not isinstance(old, dict):
                raise SandboxError(f"no file manifest for {self.project}; provision the workspace first")
            return manifest.plain_delta(self.project, old)
        try:
            repo = self._copy_repo()
            base_tree = _tree(repo, self.baseline or EMPTY_TREE)
            # status first: staging below changes this Repository's (shared, in-memory) index
            untracked = {p for p, flags in repo.status(untracked_files="all", ignored=False).items()
                         if flags & pygit2.enums.FileStatus.WT_NEW
                         and not flags & pygit2.enums.FileStatus.INDEX_NEW}
            tree = repo[self._staged_tree(repo)]
            changed = set()
            for d in base_tree.diff_to_tree(tree).deltas:
                changed.add(d.old_file.path)
                changed.add(d.new_file.path)
        except (pygit2.GitError, KeyError, ValueError) as exc:
            raise SandboxError(f"git delta failed in {self.root}: {exc}", code="SANDBOX_GIT_FAILED") from exc
        modified = sorted(filter(None, (self._rel(p) for p in changed - untracked)))
        created = sorted(filter(None, (self._rel(p) for p in untracked)))
        return modified, created

    def diff_text(self, cap_bytes: int = DIFF_CAP_BYTES) -> str:
        """Unified diff of the sandbox against the baseline (untracked files as add-only hunks).

        Above ``cap_bytes`` each file keeps its first 300 changed lines and a full per-file
        ``+N/-M`` list is appended. Written to ``<root>/.loom/work/diff.txt`` when isolated;
        a non-git workspace has no textual diff and returns "".
        """
        if not self.isolated:
            return ""
        try:
            repo = self._copy_repo()
            base_tree = _tree(repo, self.baseline or EMPTY_TREE)
            diff = base_tree.diff_to_tree(repo[self._staged_tree(repo)], context_lines=3, interhunk_lines=0)
            text = render_diff(diff, self._rel, cap_bytes)
        except (pygit2.GitError, KeyError, ValueError) as exc:
            raise SandboxError(f"git diff failed in {self.root}: {exc}", code="SANDBOX_GIT_FAILED") from exc
        out = self.root / WORK_DIR / "diff.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        return text

    def disk_usage(self) -> int:
        """Bytes the sandbox holds on disk (linked folders are not followed; 0 when not isolated)."""
        if not self.isolated or self.copy_root is None:
            return 0
        return fs.disk_usage_of(self.copy_root)

    # ------------------------------------------------------------------ merge-back and cleanup

    def merge_back(self, task_id: str, on_commit: Callable[[str, list[str]], None] | None = None,
                   trailers: dict[str, str] | None = None) -> MergeResult:
        """Commit the sandbox (everything but ``.loom/`` and linked folders) and create
        ``refs/heads/loom/<task_id>`` in the user's repository with only the objects it lacks.

        Identity ``loom <loom@localhost>``, message ``loom: <task_id>``, no hooks. A tree equal to the
        baseline's is ``no-changes`` (no branch). Idempotent: a second call without new edits makes
        no new commit and leaves the branch where it is. An existing ``loom/<task_id>`` elsewhere is
        never moved (``SANDBOX_BRANCH_EXISTS``; the work stays in the sandbox). ``on_commit(sha, files)``
        runs once the sandbox commit exists, before anything is written to the user's repository (the
        runner records it there, so a resumed run never commits again).
        """
        if not self.isolated:
            return MergeResult("not-git", None, None, [],
                               f"not a git repository: nothing to merge; changes were made directly in {self.project}")
        branch = f"loom/{task_id}"
        refname = f"refs/heads/{branch}"
        if not task_id or not pygit2.reference_is_valid_name(refname):
            raise SandboxError(f"invalid task id for a branch name: {task_id!r}", code="SANDBOX_MERGE_FAILED")
        try:
            repo = self._copy_repo()
            base_tree = _tree(repo, self.baseline or EMPTY_TREE)
            index = repo.index
            index.add_all(self._pathspecs())
            tree_id = index.write_tree()
            if tree_id == base_tree.id:
                return MergeResult("no-changes", None, None, [], "no changes to merge back")
            head = None if repo.head_is_unborn else repo.head.peel(pygit2.Commit)
            if head is not None and head.tree_id == tree_id:
                commit_id = head.id
            else:
                index.write()
                sig = pygit2.Signature(*_SIGNATURE)
                message = f"loom: {task_id}\n" + ("\n" + "".join(f"{k}: {v}\n" for k, v in trailers.items())
                                                   if trailers else "")  # e.g. Loom-Audit-Head (loom verify)
                commit_id = repo.create_commit("HEAD", sig, sig, message, tree_id,
                                               [head.id] if head is not None else [])
                crashpoint("merge-sandbox-commit")
            files = sorted({p for d in base_tree.diff_to_tree(repo[tree_id]).deltas
                            for p in (d.old_file.path, d.new_file.path)})
        except (pygit2.GitError, KeyError, ValueError, OSError) as exc:
            raise SandboxError(f"could not commit the sandbox for {task_id}: {exc}",
                               code="SANDBOX_MERGE_FAILED") from exc
        if on_commit is not None:
            on_commit(str(commit_id), files)
        written = self.land_commit(task_id, repo, commit_id)
        self.note_task(task_id)
        return MergeResult("merged", branch, str(commit_id), files,
                           f"changes committed to branch {branch} ({len(files)} file(s))", written)

    def land_commit(self, task_id: str, repo: pygit2.Repository | None, commit_id: pygit2.Oid) -> int:
        """Copy ``commit_id``'s missing objects from the sandbox's repository (``repo``; None when the
        user's repository already has them) and create ``loom/<task_id>`` there; returns objects written."""
        refname = f"refs/heads/loom/{task_id}"
        try:
            user = pygit2.Repository(str(self.repo_root))
            written = 0
            if commit_id not in user.odb:
                if repo is None:
                    raise SandboxError(f"the sandbox's commit {str(commit_id)[:12]} for {task_id} never reached "
                                       f"{self.repo_root} and the sandbox is gone", code="SANDBOX_MERGE_FAILED")
                written = transfer.copy_objects(repo, user, commit_id)
            crashpoint("merge-objects-written")
            transfer.create_branch(user, refname, commit_id, str(self.repo_root))
            crashpoint("merge-ref-created")
        except (pygit2.GitError, KeyError, ValueError, OSError) as exc:
            raise SandboxError(f"could not write the sandbox's commit into {self.repo_root}: {exc}",
                               code="SANDBOX_MERGE_FAILED") from exc
        return written

    def discard(self) -> None:
        """Delete the sandbox (links are removed, never followed). A no-op when not isolated."""
        if not self.isolated or self.copy_root is None:
            return
        dst = self.copy_root
        if (not dst.name.startswith("wt-") or fs.is_inside(self.project, dst)
                or (self.repo_root is not None and fs.is_inside(self.repo_root, dst))):
            raise SandboxError(f"refusing to delete {dst}: not a sandbox")
        remove_sandbox(dst)

    # ------------------------------------------------------------------ helpers

    def _copy_repo(self) -> pygit2.Repository:
        return _open_sandbox(self.copy_root)

    def _pathspecs(self) -> list[str]:
        # libgit2 pathspecs: a negative spec must come before the positive one to win; `*` crosses `/`.
        return [f"!{LOOM_DIR}", f"!*/{LOOM_DIR}/*", *(f"!{p}" for p in self.linked), "*"]

    def _staged_tree(self, repo: pygit2.Repository) -> pygit2.Oid:
        """The tree ``git add -A`` (minus ``.loom/``) would commit; the index file is not written."""
        index = repo.index
        index.add_all(self._pathspecs())
        return index.write_tree()

    def _rel(self, repo_path: str) -> str | None:
        """Repo-relative path -> root-relative, or None when outside root, loom's own or linked."""
        p = repo_path
        parts = p.split("/")
        if LOOM_DIR in parts or ".git" in parts:
            return None
        if any(p == link or p.startswith(link + "/") for link in self.linked):
            return None
        if self.prefix:
            if not p.startswith(self.prefix + "/"):
                return None
            p = p[len(self.prefix) + 1:]
        return p

    def _manifest_path(self) -> Path:
        return self.project / WORK_DIR / "manifest.json"


# ---------------------------------------------------------------------- module helpers


def discover(project: Path) -> tuple[Path, pygit2.Repository] | None:
    """(repository working directory, repository) when ``project`` is inside a non-bare repo."""
    try:
        gitdir = pygit2.discover_repository(str(project))
        if not gitdir:
            return None
        repo = pygit2.Repository(gitdir)
    except pygit2.GitError:
        return None
    if repo.is_bare or not repo.workdir:
        return None
    root = Path(repo.workdir).resolve()
    if not fs.is_inside(project, root):
        return None
    return root, repo


def remove_sandbox(path: Path) -> None:
    """Delete a sandbox so that a kill at any moment leaves either the whole sandbox or none: it is first
    renamed to ``<name>.partial-<pid>`` (which ``gc`` and the next run remove once this process is gone)."""
    if not os.path.lexists(path):
        return
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
        return
    trash = path.with_name(f"{path.name}.partial-{os.getpid()}")
    if os.path.lexists(trash):
        fs.rmtree(trash)
    os.rename(path, trash)
    for i, name in enumerate(sorted(os.listdir(trash))):
        fs.remove(trash / name)
        if i == 0:
            crashpoint("sandbox-rmtree")
    fs.rmtree(trash)


def read_meta(copy_root: Path) -> dict | None:
    data = fs.read_json(Path(copy_root) / ".git" / fs.META_NAME)
    return data if isinstance(data, dict) else None


def _check_sandbox(dst: Path) -> None:
    """The sandbox's repository must live in the sandbox and work on it (no core.worktree escape)."""
    repo = _open_sandbox(dst)
    if repo.workdir is None or Path(repo.workdir).resolve() != dst.resolve() \
            or not fs.is_inside(Path(repo.path).resolve(), dst.resolve()):
        raise SandboxError(f"the sandbox's repository points outside the sandbox ({repo.path})")


def _open_sandbox(path: Path) -> pygit2.Repository:
    """The sandbox's own repository — never one found above it."""
    return pygit2.Repository(str(path), flags=pygit2.enums.RepositoryOpenFlag.NO_SEARCH)


def _resolves(repo: pygit2.Repository, sha: str) -> bool:
    try:
        _tree(repo, sha)
        return True
    except (KeyError, ValueError, pygit2.GitError):
        return False


def _tree(repo: pygit2.Repository, sha: str) -> pygit2.Tree:
    return repo[sha].peel(pygit2.Tree)
