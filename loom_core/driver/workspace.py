"""Where agents work: an isolated copy-on-write copy of a git project, or the project itself.

Spec §9. A **git project** (a repository whose working directory is the project or one of its
parents) gets a full copy — tracked, untracked *and* ignored files, ``.git`` included, symlinks
preserved — at ``<tmpdir>/loom-<uid>/wt-<16 hex of sha1(repo root)>``. Agents work in the copy;
``merge_back`` commits the copy's changes and fetches that commit into the user's repository as
``refs/heads/loom/<task_id>``, the only thing it ever changes there (HEAD, the checked-out branch,
the index and the working tree are never touched, dirty or not).

The **baseline** is the project's HEAD at provision (the empty-tree sha for a repository without
commits). Uncommitted changes the user had when the copy was taken are part of the copy, so they
show up in ``delta()`` / ``diff_text()`` and end up on the ``loom/<task>`` branch too.

A **non-git directory** is not isolated (§9.2, honest degradation): agents work in the project itself,
``warning`` says so, there is no baseline, no ``diff.txt`` and no branch. A file manifest
(``{path: [size, sha256]}``) recorded at provision keeps ``delta()`` honest.

All git work goes through pygit2 (libgit2): no hooks run, nothing is signed, and the user's git
configuration cannot redirect anything.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pygit2

from ..errors import SandboxError

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
LOOM_DIR = ".loom"
WORK_DIR = ".loom/work"
DIFF_CAP_BYTES = 256 * 1024
DIFF_LINES_PER_FILE = 300
# Loom's own state, stripped from a freshly made copy (§9.1).
_STATE_FILES = ("state.db", "state.db-wal", "state.db-shm", "state.db-journal", "task-exec.json")
_STATE_DIRS = ("history", "transcripts", "daemon", "work")
# Skipped by the non-git manifest, at any depth.
_MANIFEST_SKIP = frozenset({".loom", ".git", "node_modules", ".venv", "__pycache__"})
_SIGNATURE = ("loom", "loom@localhost")


@dataclass
class MergeResult:
    status: str  # "merged" | "no-changes" | "not-git"
    branch: str | None  # "loom/<task_id>"
    commit: str | None  # sha of the branch head in the user's repository
    files: list[str]  # repo-relative paths changed by the commit (against the baseline)
    message: str  # one human line


@dataclass
class Workspace:
    """A provisioned place for agents to work. Build it with :meth:`provision`."""

    project: Path  # the user's project dir (resolved)
    root: Path  # where agents work: the sandbox copy, or the project itself when not isolated
    isolated: bool
    baseline: str | None  # project HEAD sha at provision; empty-tree sha without commits; None non-git
    warning: str | None = None  # set when not isolated
    notice: str | None = None  # e.g. "heavy copy" when the copy could not be copy-on-write
    repo_root: Path | None = None  # the user's repository working directory (git projects)
    copy_root: Path | None = None  # the copy of repo_root (isolated only)
    prefix: str = ""  # project dir relative to repo_root, posix ("" when they are the same)
    reused: bool = field(default=False)  # an existing copy was reused untouched

    # ------------------------------------------------------------------ provisioning

    @classmethod
    def sandbox_path(cls, project: Path, base_dir: Path | None = None) -> Path:
        """Where the copy of ``project``'s repository lives (no filesystem change)."""
        project = Path(project).resolve()
        found = _discover(project)
        key = found[0] if found else project
        return _base(base_dir) / f"wt-{hashlib.sha1(str(key).encode()).hexdigest()[:16]}"

    @classmethod
    def provision(cls, project: Path, *, fresh: bool, base_dir: Path | None = None) -> Workspace:
        """Make (``fresh`` or missing) or reuse the copy of a git project; degrade for non-git.

        ``fresh=True`` deletes any existing copy, copies again and strips loom state from the copy's
        ``.loom/``; ``fresh=False`` reuses an existing copy untouched. Copy failure on a git project
        raises ``SandboxError`` (``SANDBOX_PROVISION_FAILED``) — never a fallback to the live tree.
        """
        project = Path(project).resolve()
        if not project.is_dir():
            raise SandboxError(f"project directory not found: {project}")
        found = _discover(project)
        if found is None:
            return cls._provision_plain(project, fresh=fresh)
        repo_root, src = found
        prefix = project.relative_to(repo_root).as_posix() if project != repo_root else ""
        base = _ensure_base(base_dir)
        dst = base / f"wt-{hashlib.sha1(str(repo_root).encode()).hexdigest()[:16]}"
        if _is_inside(dst, repo_root):
            raise SandboxError(f"sandbox {dst} would be inside the project it copies ({repo_root})")
        ws = cls(project=project, root=dst / prefix if prefix else dst, isolated=True, baseline=None,
                 repo_root=repo_root, copy_root=dst, prefix=prefix)
        if fresh and os.path.lexists(dst):
            _rmtree(dst)
        if not fresh and dst.is_dir() and not dst.is_symlink():
            ws.reused = True
            ws.baseline = ws._read_baseline(src)
            return ws
        baseline = _head_sha(src)
        ws.notice = _copy_tree(repo_root, dst, base)
        try:
            _make_standalone(dst, src)
            _check_copy(dst)
            ws._strip_loom_state()
        except SandboxError:
            _rmtree(dst)
            raise
        except (OSError, pygit2.GitError, ValueError) as exc:
            _rmtree(dst)
            raise SandboxError(f"could not prepare the sandbox copy of {repo_root}: {exc}") from exc
        ws.baseline = baseline
        _write_json(ws.root / WORK_DIR / "baseline.json",
                    {"baseline": baseline, "project": str(project), "repo_root": str(repo_root)})
        return ws

    @classmethod
    def _provision_plain(cls, project: Path, *, fresh: bool) -> Workspace:
        ws = cls(project=project, root=project, isolated=False, baseline=None,
                 warning=f"not a git repository: agents work directly in {project} (no isolation, no branch)")
        path = ws._manifest_path()
        if fresh or _read_json(path) is None:
            _write_json(path, _manifest(project))
        return ws

    def _read_baseline(self, src: pygit2.Repository) -> str:
        """The baseline of a reused copy: from ``baseline.json``, else (lost) the project's HEAD."""
        data = _read_json(self.root / WORK_DIR / "baseline.json") or {}
        sha = data.get("baseline") if isinstance(data, dict) else None
        repo = self._copy_repo()
        if isinstance(sha, str) and _resolves(repo, sha):
            return sha
        sha = _head_sha(src)
        if not _resolves(repo, sha):
            sha = _head_sha(repo)
        _write_json(self.root / WORK_DIR / "baseline.json",
                    {"baseline": sha, "project": str(self.project), "repo_root": str(self.repo_root)})
        return sha

    def _strip_loom_state(self) -> None:
        loom = self.root / LOOM_DIR
        if loom.is_symlink():  # never follow a link out of the copy (into the live project)
            loom.unlink()
        elif loom.is_dir():
            for name in _STATE_FILES:
                p = loom / name
                if os.path.lexists(p):
                    _remove(p)
            for name in _STATE_DIRS:
                p = loom / name
                if os.path.lexists(p):
                    _remove(p)
        lock = Path(self._copy_repo().path) / "index.lock"
        if lock.exists():
            lock.unlink()

    # ------------------------------------------------------------------ inspection

    def delta(self) -> tuple[list[str], list[str]]:
        """``(modified, created)``: sorted posix paths relative to ``root``, ``.loom/`` and ``.git/`` excluded.

        Git: ``modified`` differ from the baseline tree (committed or uncommitted edits, deletions,
        files added to git); ``created`` are untracked, non-ignored files. Non-git: compared with the
        provision-time manifest (``modified`` = content changed or deleted).
        """
        if not self.isolated:
            return self._plain_delta()
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
            files: list[tuple[str, str, int, int, bool]] = []
            for i, d in enumerate(diff.deltas):
                path = d.new_file.path if d.status_char() != "D" else d.old_file.path
                if self._rel(path) is None:
                    continue
                patch = diff[i]
                if patch is None:
                    continue
                _, adds, dels = patch.line_stats
                files.append((path, patch.data.decode("utf-8", "replace"), adds, dels, patch.delta.is_binary))
        except (pygit2.GitError, KeyError, ValueError) as exc:
            raise SandboxError(f"git diff failed in {self.root}: {exc}", code="SANDBOX_GIT_FAILED") from exc
        text = "".join(body for _, body, *_ in files)
        if len(text.encode("utf-8")) > cap_bytes:
            parts = [_truncate_patch(body, DIFF_LINES_PER_FILE) for _, body, *_ in files]
            parts.append(f"\n# diff truncated (over {cap_bytes} bytes): first {DIFF_LINES_PER_FILE} changed "
                         f"lines per file kept; full per-file changes:\n")
            parts.extend(f"+{a}/-{d} {p}{' (binary)' if b else ''}\n" for p, _, a, d, b in files)
            text = "".join(parts)
        out = self.root / WORK_DIR / "diff.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        return text

    # ------------------------------------------------------------------ merge-back and cleanup

    def merge_back(self, task_id: str) -> MergeResult:
        """Commit the copy (everything but ``.loom/``) and fetch it into ``refs/heads/loom/<task_id>``.

        Identity ``loom <loom@localhost>``, message ``loom: <task_id>``, no hooks. A tree equal to the
        baseline's is ``no-changes`` (no branch). Idempotent: a second call without new edits makes
        no new commit and leaves the branch where it is. Only ``refs/heads/loom/<task_id>`` changes in
        the user's repository (``FETCH_HEAD`` is restored after the fetch).
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
                commit_id = repo.create_commit("HEAD", sig, sig, f"loom: {task_id}\n", tree_id,
                                               [head.id] if head is not None else [])
            repo.references.create(refname, commit_id, force=True)
            files = sorted({p for d in base_tree.diff_to_tree(repo[tree_id]).deltas
                            for p in (d.old_file.path, d.new_file.path)})
        except (pygit2.GitError, KeyError, ValueError, OSError) as exc:
            raise SandboxError(f"could not commit the sandbox for {task_id}: {exc}",
                               code="SANDBOX_MERGE_FAILED") from exc
        self._fetch_into_project(refname, commit_id)
        return MergeResult("merged", branch, str(commit_id), files,
                           f"changes committed to branch {branch} ({len(files)} file(s))")

    def _fetch_into_project(self, refname: str, commit_id: pygit2.Oid) -> None:
        try:
            user = pygit2.Repository(str(self.repo_root))
            existing = user.branches.local.get(refname.removeprefix("refs/heads/"))
            if existing is not None and existing.is_checked_out():
                raise SandboxError(f"branch {refname.removeprefix('refs/heads/')} is checked out in "
                                   f"{self.repo_root}; not moving it", code="SANDBOX_MERGE_FAILED")
            saved = {p: (p.read_bytes() if p.exists() else None) for p in _fetch_head_paths(user)}
            try:
                user.remotes.create_anonymous(str(self.copy_root)).fetch([f"+{refname}:{refname}"])
            finally:
                for p, data in saved.items():
                    if data is None:
                        p.unlink(missing_ok=True)
                    else:
                        p.write_bytes(data)
            got = user.references.get(refname)
            if got is None or got.target != commit_id:
                raise SandboxError(f"fetch did not update {refname} in {self.repo_root}",
                                   code="SANDBOX_MERGE_FAILED")
        except (pygit2.GitError, KeyError, ValueError, OSError) as exc:
            raise SandboxError(f"could not fetch the sandbox into {self.repo_root}: {exc}",
                               code="SANDBOX_MERGE_FAILED") from exc

    def discard(self) -> None:
        """Delete the sandbox copy. Never touches the project (a no-op when not isolated)."""
        if not self.isolated or self.copy_root is None:
            return
        dst = self.copy_root
        if (not dst.name.startswith("wt-") or _is_inside(self.project, dst)
                or (self.repo_root is not None and _is_inside(self.repo_root, dst))):
            raise SandboxError(f"refusing to delete {dst}: not a sandbox copy")
        if os.path.lexists(dst):
            _rmtree(dst)

    # ------------------------------------------------------------------ helpers

    def _copy_repo(self) -> pygit2.Repository:
        return pygit2.Repository(str(self.copy_root))

    def _pathspecs(self) -> list[str]:
        # libgit2 pathspecs: a negative spec must come before the positive one to win.
        specs = [f"!{LOOM_DIR}"]
        if self.prefix:
            specs.append(f"!{self.prefix}/{LOOM_DIR}")
        return [*specs, "*"]

    def _staged_tree(self, repo: pygit2.Repository) -> pygit2.Oid:
        """The tree ``git add -A`` (minus ``.loom/``) would commit; the index file is not written."""
        index = repo.index
        index.add_all(self._pathspecs())
        return index.write_tree()

    def _rel(self, repo_path: str) -> str | None:
        """Repo-relative path -> root-relative, or None when outside root or loom's own."""
        p = repo_path
        if self.prefix:
            if not p.startswith(self.prefix + "/"):
                return None
            p = p[len(self.prefix) + 1:]
        if p in (LOOM_DIR, ".git") or p.startswith((LOOM_DIR + "/", ".git/")):
            return None
        return p

    def _manifest_path(self) -> Path:
        return self.project / WORK_DIR / "manifest.json"

    def _plain_delta(self) -> tuple[list[str], list[str]]:
        old = _read_json(self._manifest_path())
        if not isinstance(old, dict):
            raise SandboxError(f"no file manifest for {self.project}; provision the workspace first")
        modified, created, seen = [], [], set()
        for path, (size, digest) in _walk(self.project):
            seen.add(path)
            prev = old.get(path)
            if prev is None:
                created.append(path)
            elif prev[0] != size or prev[1] != digest():
                modified.append(path)
        modified.extend(p for p in old if p not in seen)
        return sorted(modified), sorted(created)


# ---------------------------------------------------------------------- module helpers


def _discover(project: Path) -> tuple[Path, pygit2.Repository] | None:
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
    if not _is_inside(project, root):
        return None
    return root, repo


def _base(base_dir: Path | None) -> Path:
    owner = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    return Path(base_dir if base_dir is not None else tempfile.gettempdir()) / f"loom-{owner}"


def _ensure_base(base_dir: Path | None) -> Path:
    """Create ``loom-<uid>`` 0700; refuse a symlink, a non-directory or someone else's directory."""
    base = _base(base_dir)
    try:
        base.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(base, 0o700)
        except FileExistsError:
            pass
        st = os.lstat(base)
    except OSError as exc:
        raise SandboxError(f"cannot create the sandbox root {base}: {exc}") from exc
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise SandboxError(f"sandbox root {base} is not a real directory", code="SANDBOX_ROOT_UNSAFE")
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise SandboxError(f"sandbox root {base} is owned by uid {st.st_uid}, not by you",
                           code="SANDBOX_ROOT_UNSAFE")
    if st.st_mode & 0o077:
        os.chmod(base, 0o700)
    return base


def _copy_tree(src: Path, dst: Path, base: Path) -> str | None:
    """Copy ``src`` to ``dst`` (via a temporary sibling, renamed at the end). Returns a notice or None."""
    tmp = base / f"{dst.name}.partial-{os.getpid()}"
    if os.path.lexists(tmp):
        _rmtree(tmp)
    notice = None
    try:
        if sys.platform.startswith("linux") and shutil.which("cp"):
            if not _reflink_works(src, base):
                notice = f"heavy copy: copy-on-write unavailable, the sandbox is a full copy of {src}"
            proc = subprocess.run(["cp", "--reflink=auto", "-a", "--", str(src), str(tmp)],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                raise OSError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else
                              f"cp exited {proc.returncode}")
        else:
            notice = f"heavy copy: the sandbox is a full copy of {src}"
            shutil.copytree(src, tmp, symlinks=True)
        os.rename(tmp, dst)
    except (OSError, shutil.Error) as exc:
        if os.path.lexists(tmp):
            _rmtree(tmp)
        raise SandboxError(f"could not copy {src} to the sandbox {dst}: {exc}") from exc
    return notice


def _reflink_works(src: Path, base: Path) -> bool:
    probe_src = next((p for p in (src / ".git" / "HEAD", src / ".git") if p.is_file() and not p.is_symlink()), None)
    if probe_src is None:
        return False
    probe = base / f".reflink-probe-{os.getpid()}"
    try:
        return subprocess.run(["cp", "--reflink=always", str(probe_src), str(probe)],
                              capture_output=True).returncode == 0
    finally:
        probe.unlink(missing_ok=True)


def _make_standalone(dst: Path, src: pygit2.Repository) -> None:
    """A linked worktree or submodule has a ``.git`` *file* pointing at the user's git dir; give the
    copy its own repository (objects borrowed read-only through ``alternates``) so nothing the agents
    do in the copy reaches the user's HEAD, index or refs."""
    gitfile = dst / ".git"
    if gitfile.is_symlink() or not gitfile.is_file():
        return
    gitdir = Path(src.path)
    common = gitdir
    if (gitdir / "commondir").is_file():
        common = (gitdir / (gitdir / "commondir").read_text().strip()).resolve()
    gitfile.unlink()
    repo = pygit2.init_repository(str(dst), bare=False)
    newdir = Path(repo.path)
    (newdir / "objects" / "info").mkdir(parents=True, exist_ok=True)
    (newdir / "objects" / "info" / "alternates").write_text(f"{common / 'objects'}\n")
    for rel in ("info/exclude",):
        if (common / rel).is_file():
            (newdir / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(common / rel, newdir / rel)
    if (gitdir / "index").is_file():
        shutil.copyfile(gitdir / "index", newdir / "index")
    try:
        src_cfg = pygit2.Config(str(common / "config"))
        for entry in src_cfg:
            name = entry.name.lower()
            if name.startswith("core.") and name not in ("core.worktree", "core.bare", "core.repositoryformatversion"):
                repo.config[entry.name] = entry.value
    except (pygit2.GitError, OSError, KeyError):
        pass
    repo = pygit2.Repository(str(dst))
    if src.head_is_detached:
        repo.set_head(src.head.target)
    else:
        target = src.references["HEAD"].target
        if not src.head_is_unborn:
            repo.references.create(target, src.head.target, force=True)
        repo.references["HEAD"].set_target(target)


def _check_copy(dst: Path) -> None:
    """The copy's repository must live in the copy and work on the copy (no core.worktree escape)."""
    repo = pygit2.Repository(str(dst))
    if repo.workdir is None or Path(repo.workdir).resolve() != dst.resolve() \
            or not _is_inside(Path(repo.path).resolve(), dst.resolve()):
        raise SandboxError(f"the sandbox copy's repository points outside the copy ({repo.path})")


def _head_sha(repo: pygit2.Repository) -> str:
    if repo.head_is_unborn:
        return EMPTY_TREE
    return str(repo.head.peel(pygit2.Commit).id)


def _resolves(repo: pygit2.Repository, sha: str) -> bool:
    try:
        _tree(repo, sha)
        return True
    except (KeyError, ValueError, pygit2.GitError):
        return False


def _tree(repo: pygit2.Repository, sha: str) -> pygit2.Tree:
    return repo[sha].peel(pygit2.Tree)


def _fetch_head_paths(repo: pygit2.Repository) -> list[Path]:
    gitdir = Path(repo.path)
    paths = [gitdir / "FETCH_HEAD"]
    if (gitdir / "commondir").is_file():
        paths.append((gitdir / (gitdir / "commondir").read_text().strip()).resolve() / "FETCH_HEAD")
    return paths


def _truncate_patch(body: str, max_changed: int) -> str:
    out: list[str] = []
    changed = 0
    in_hunks = False
    dropped = 0
    for line in body.splitlines(keepends=True):
        if line.startswith("@@"):
            in_hunks = True
        elif in_hunks and line[:1] in ("+", "-"):
            changed += 1
            if changed > max_changed:
                dropped += 1
                continue
        if changed > max_changed:
            continue
        out.append(line)
    if dropped:
        if out and not out[-1].endswith("\n"):
            out.append("\n")
        out.append(f"# ... {dropped} more changed line(s) in this file not shown\n")
    return "".join(out)


def _walk(root: Path):
    """Yield ``(posix path, (size, digest-thunk))`` for the non-git manifest, skipping _MANIFEST_SKIP."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _MANIFEST_SKIP)
        here = Path(dirpath)
        links = [d for d in dirnames if (here / d).is_symlink()]
        dirnames[:] = [d for d in dirnames if d not in links]
        for name in sorted(filenames + links):
            full = here / name
            rel = full.relative_to(root).as_posix()
            try:
                if full.is_symlink():
                    target = os.readlink(full).encode("utf-8", "surrogateescape")
                    yield rel, (len(target), _const(hashlib.sha256(b"symlink:" + target).hexdigest()))
                elif full.is_file():
                    yield rel, (full.stat().st_size, _hasher(full))
            except OSError:
                continue


def _const(value: str):
    return lambda: value


def _hasher(path: Path):
    def digest() -> str:
        h = hashlib.sha256()
        try:
            with open(path, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
        except OSError:
            return ""
        return h.hexdigest()

    return digest


def _manifest(root: Path) -> dict[str, list]:
    return {path: [size, digest()] for path, (size, digest) in _walk(root)}


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _is_inside(path: Path, parent: Path) -> bool:
    try:
        path.resolve().relative_to(parent.resolve())
        return True
    except ValueError:
        return False


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        _rmtree(p)
    else:
        p.unlink()


def _rmtree(p: Path) -> None:
    if p.is_symlink() or not p.is_dir():
        p.unlink(missing_ok=True)
        return

    def retry(func, path, _exc):  # read-only dirs (e.g. module caches) block deletion
        try:
            os.chmod(os.path.dirname(path), 0o700)
            if os.path.isdir(path) and not os.path.islink(path):
                os.chmod(path, 0o700)
            func(path)
        except OSError:
            pass

    if sys.version_info >= (3, 12):
        shutil.rmtree(p, onexc=retry)
    else:
        shutil.rmtree(p, onerror=retry)
