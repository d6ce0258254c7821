"""The same check on the unchanged tree, to tell new failures from failures that were already there.

Run lazily — only for a check that failed — in a checkout of the sandbox's baseline commit (the
project folder's tree, exported from the object database into
``<tmpdir>/loom-<uid>/checks-cache/trees/<tree id>``; the sandbox's own ``node_modules`` / venv
folders are linked in), with the same interpreter and that checkout's own source roots first on
``PYTHONPATH``. Results are cached on disk by (baseline tree, environment fingerprint, command).

:func:`compare` then classifies the failure: keys not failing on the baseline are new (``fail``);
none new → ``preexisting``. A failure that cannot be split into keys (collection error, timeout,
unparsed output) is ``preexisting`` only when the baseline failed the same way.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import threading
import time
import uuid
from dataclasses import asdict, replace
from pathlib import Path

import pygit2

from loom_core.workspace.checks.model import CheckResult, CheckSpec
from loom_core.workspace.checks.pyenv import PyEnv, cache_root
from loom_core.workspace.checks.run import Log, base_env, run_one, safe_log
from loom_core.workspace.checks.treesnap import subtree

KEEP_TREES = 4  # exported baseline trees kept on disk (least recently used go first)
_LINKED = ("node_modules", ".venv", "venv")
_lock = threading.Lock()


def _export(repo: pygit2.Repository, tree: pygit2.Tree, dst: Path) -> None:
    """Write ``tree``'s files under ``dst`` (no index, no checkout machinery: nothing else changes)."""
    for entry in tree:
        path = dst / entry.name
        if entry.filemode == pygit2.enums.FileMode.TREE:
            path.mkdir()
            _export(repo, repo[entry.id].peel(pygit2.Tree), path)
        elif entry.filemode == pygit2.enums.FileMode.LINK:
            os.symlink(os.fsdecode(repo[entry.id].data), path)
        elif entry.filemode in (pygit2.enums.FileMode.BLOB, pygit2.enums.FileMode.BLOB_EXECUTABLE):
            path.write_bytes(repo[entry.id].data)
            if entry.filemode == pygit2.enums.FileMode.BLOB_EXECUTABLE:
                path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        # submodules (commits) are not exported


def _prune(trees: Path, keep: Path) -> None:
    try:
        dirs = sorted((d for d in trees.iterdir() if d.is_dir() and d != keep), key=lambda d: d.stat().st_mtime)
    except OSError:
        return
    for d in dirs[: max(0, len(dirs) - (KEEP_TREES - 1))]:
        shutil.rmtree(d, ignore_errors=True)


class Baseline:
    """The unchanged tree of one checks run; exported and run only when first needed."""

    def __init__(self, sandbox: Path, repo: pygit2.Repository | None, commit: str | None, prefix: str,
                 env: PyEnv, log: Log | None) -> None:
        self.sandbox = sandbox
        self.log = log
        self.env = env
        self.repo = repo
        self.tree = subtree(repo, commit, prefix) if repo is not None and commit else None
        self._checkout: Path | None = None
        self._env: PyEnv | None = None

    @property
    def available(self) -> bool:
        return self.tree is not None

    @property
    def tree_id(self) -> str | None:
        return str(self.tree.id) if self.tree is not None else None

    def checkout(self) -> Path:
        """The exported baseline tree (made once, shared by later runs on the same tree)."""
        if self._checkout is not None:
            return self._checkout
        assert self.tree is not None and self.repo is not None
        trees = cache_root() / "trees"
        dst = trees / self.tree_id
        with _lock:
            if not (dst / ".loom-complete").exists():
                trees.mkdir(parents=True, exist_ok=True)
                tmp = trees / f".tmp-{uuid.uuid4().hex}"
                tmp.mkdir()
                try:
                    _export(self.repo, self.tree, tmp)
                    (tmp / ".loom-complete").write_text("")
                    if dst.exists():
                        shutil.rmtree(dst, ignore_errors=True)
                    os.replace(tmp, dst)
                except OSError:
                    shutil.rmtree(tmp, ignore_errors=True)
                    raise
                _prune(trees, dst)
            os.utime(dst)
            for name in _LINKED:  # the sandbox's heavy untracked folders, read-only reuse
                src, link = self.sandbox / name, dst / name
                if os.path.lexists(link) and link.is_symlink():
                    link.unlink()
                if src.exists() and not os.path.lexists(link):
                    os.symlink(src.resolve(), link)
        self._checkout = dst
        self._env = self.env.for_tree(dst)
        return dst

    def _spec(self, spec: CheckSpec, checkout: Path) -> CheckSpec | None:
        """``spec`` as it applies to the baseline: a scoped run keeps the files that exist there
        (None when none does: new files had no failures before)."""
        if not spec.files:
            return spec
        kept = [f for f in spec.files if (checkout / f).is_file()]
        if not kept:
            return None
        argv = list(spec.argv or [])[: len(spec.argv or []) - len(spec.files)]
        return replace(spec, argv=[*argv, *kept], files=kept)

    def result(self, spec: CheckSpec, timeout_s: float, cancel: threading.Event | None) -> CheckResult | None:
        """The check's result on the baseline (from the disk cache when known); None when there is
        no baseline or it could not be prepared."""
        if not self.available:
            return None
        try:
            checkout = self.checkout()
        except (OSError, KeyError, pygit2.GitError) as exc:
            safe_log(self.log, f"{spec.name}: baseline checkout failed ({exc}); failures count as new")
            return None
        bspec = self._spec(spec, checkout)
        if bspec is None:
            return CheckResult(spec.name, "ok", spec.command, 0, "", "", reason="no file of the run existed before")
        assert self._env is not None
        key = hashlib.sha256("\0".join([self.tree_id or "", self.env.fingerprint(), spec.name,
                                         bspec.command]).encode()).hexdigest()[:32]
        path = cache_root() / "baseline" / f"{key}.json"
        cached = _load(path)
        if cached is not None:
            safe_log(self.log, f"{spec.name} (baseline): {cached.status}, cached")
            return cached
        res = run_one(checkout, bspec, timeout_s, cancel, base_env(self._env.env_vars()), self.log,
                      label=f"{spec.name} (baseline)")
        if res.stopped != "cancelled":
            _store(path, res)
        return res


def _load(path: Path) -> CheckResult | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        data["locations"] = []
        return CheckResult(**data)
    except (OSError, ValueError, TypeError):
        return None


def _store(path: Path, res: CheckResult) -> None:
    data = asdict(res)
    data.update(locations=[], output_head="", output_tail=res.output_tail[-2000:])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass


def compare(res: CheckResult, base: CheckResult | None) -> None:
    """Classify a failed ``res`` against the same check on the baseline (in place)."""
    if res.status != "fail":
        return
    whole = f"{res.name}: " + ("timed out" if res.stopped == "timeout" else "collection error" if res.collection_error
                                 else f"exit {res.exit_code}")
    if base is None:
        res.new_failures = list(res.keys) or [whole]
        res.reason = _join(res.reason, "no baseline to compare with: every failure counts as new")
        return
    if res.stopped == "timeout":
        if base.stopped == "timeout":
            res.status, res.preexisting = "preexisting", [whole]
            res.reason = _join(res.reason, "timed out on the unchanged tree too")
        else:
            res.new_failures = [whole]
        return
    if not res.whole_run and base.status in ("ok", "skipped", "fail") and not (base.status == "fail" and base.whole_run):
        before = set(base.keys) if base.status == "fail" else set()
        res.new_failures = [k for k in res.keys if k not in before]
        res.preexisting = [k for k in res.keys if k in before]
    elif (base.status == "fail" and base.exit_code == res.exit_code and res.lines is not None
          and base.lines is not None and set(res.lines) <= set(base.lines)):
        res.preexisting = list(res.keys) or [whole]
    else:
        res.new_failures = list(res.keys) or [whole]
    if not res.new_failures:
        res.status = "preexisting"
        res.reason = _join(res.reason, f"{len(res.preexisting)} failure(s), all failing on the unchanged tree too")
    elif res.preexisting:
        res.reason = _join(res.reason, f"{len(res.new_failures)} new failure(s), "
                                       f"{len(res.preexisting)} failing before the change too")


def _join(a: str, b: str) -> str:
    return f"{a}; {b}" if a else b
