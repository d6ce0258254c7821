"""The ``checks`` step: run the project's checks on the sandbox, provably, without changing it.

One run: snapshot the tree (:mod:`.treesnap`); establish and prove the Python environment
(:mod:`.pyenv`); detect the commands (:mod:`.detect`); per check run the stages of its scope
(:mod:`.scope`) — an identical check on an identical tree is answered from the task's cache
(``.loom/work/checks-cache.json``) — compare a failure with the unchanged tree (:mod:`.baseline`);
after each check revert whatever it changed in the tree. Answers the checks envelope
(:func:`.report.envelope`) and writes ``check-failures.txt`` for the next implementer.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from loom_core.errors import ExecutorError
from loom_core.workspace.checks.baseline import Baseline, compare
from loom_core.workspace.checks.detect import detect_checks
from loom_core.workspace.checks.model import CheckResult, CheckSpec, Location
from loom_core.workspace.checks.pyenv import resolve_env
from loom_core.workspace.checks.report import envelope, write_failures
from loom_core.workspace.checks.run import Log, base_env, run_one, safe_log, skipped
from loom_core.workspace.checks.scope import stages
from loom_core.workspace.checks.treesnap import TreeSnapshot

CACHE_FILE = Path(".loom") / "work" / "checks-cache.json"
CACHE_ENTRIES = 64
DISABLED = "none"


class ChecksStep:
    """The deterministic ``checks`` step (the agents' executor seam wraps it: ``agents.executors.checks``). ``root_for()`` is the tree the checks run in
    (the task's sandbox); ``project`` the user's folder (where a project environment may live);
    ``workspace`` gives both plus the baseline commit the failures are compared with.
    ``configured`` maps check names to commands, or is ``"none"``: the project opted out and
    nothing runs. A cancel raises ExecutorError (code CHECKS_CANCELLED) so a cut-short run is
    never recorded as a result."""

    def __init__(self, root_for: Callable[[], Path], configured: dict[str, str] | str | None = None,
                 timeout_s: float = 600, *, project: Path | None = None, workspace: Any = None,
                 baseline: str | None = None, test_timeout_s: float | None = None) -> None:
        self.root_for = root_for
        self.disabled = configured == DISABLED
        self.configured = dict(configured) if isinstance(configured, dict) else {}
        self.timeout_s = timeout_s
        self.test_timeout_s = test_timeout_s
        self.workspace = workspace
        self.project = Path(project) if project else (Path(workspace.project) if workspace is not None else None)
        self._baseline = baseline

    def timeout_for(self, name: str) -> float:
        return self.test_timeout_s if name == "test" and self.test_timeout_s else self.timeout_s

    def run(self, cancel: threading.Event | None = None, log: Log | None = None) -> str:
        """Run the checks once and answer the envelope text."""
        root = Path(self.root_for())
        if not root.is_dir():
            raise ExecutorError(f"checks: root {root} is not a directory", code="CHECKS_ROOT_MISSING")
        if self.disabled:
            safe_log(log, "checks: disabled by the project (.loom/loom.json: \"checks\": \"none\")")
            return envelope([], environment={"interpreter": None, "source": "disabled", "verified": None,
                                             "resolution": {}, "problem": None}, disabled=True)
        return _Run(self, root, cancel, log).go()


class _Run:
    """One checks run over one tree."""

    def __init__(self, ex: ChecksStep, root: Path, cancel: threading.Event | None, log: Log | None) -> None:
        self.ex, self.root, self.cancel, self.log = ex, root, cancel, log
        self.tree_changes: list[str] = []
        self.cache = _TaskCache(root / CACHE_FILE)

    def cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()

    def go(self) -> str:
        ex, root, log = self.ex, self.root, self.log
        snap = self._snapshot()
        env = resolve_env(root, ex.project)
        self.env = env
        safe_log(log, env.describe())
        if env.verified is True:
            where = ", ".join(f"{k} → {v}" for k, v in env.resolution.items())
            safe_log(log, f"checks environment verified: {where}")
        elif env.verified is False:
            safe_log(log, f"checks environment NOT verified: {env.problem}")
        self.full_env = base_env(env.env_vars())
        specs = detect_checks(root, ex.configured, env=env, project=ex.project)
        commit = ex._baseline or (getattr(ex.workspace, "baseline", None) if ex.workspace is not None else None)
        changed = snap.changed_since(commit) if snap is not None else None
        repo = snap.repo() if snap is not None else None
        self.baseline = Baseline(root, repo, commit, snap.prefix if snap is not None else "", env, log)
        self.snap = snap
        self.key_base = "\0".join([snap.id if snap else "", env.fingerprint(), str(env.verified), commit or ""])
        results: list[CheckResult] = []
        for name, spec in specs.items():
            if self.cancelled():
                results.append(skipped(name, spec.command if spec else "", "cancelled before it ran"))
                continue
            results.append(self._check(name, spec, changed))
        if snap is not None:
            snap.close()
        if self.cancelled():
            raise ExecutorError("checks cancelled", code="CHECKS_CANCELLED")
        self.cache.save()
        write_failures(root, results)
        # the tree they ran on: the snapshot taken first (whatever a check changed was put back)
        return envelope(results, environment=env.to_json(), tree_changes=sorted(set(self.tree_changes)),
                        tree=snap.id if snap is not None else None)

    def _snapshot(self) -> TreeSnapshot | None:
        try:
            return TreeSnapshot.take(self.root)
        except Exception as exc:  # pygit2 / filesystem trouble: run the checks, say the tree is unguarded
            safe_log(self.log, f"checks: could not snapshot the tree ({exc}); changes checks make are not reverted")
            return None

    def _check(self, name: str, spec: CheckSpec | None, changed: list[str] | None) -> CheckResult:
        res: CheckResult | None = None
        for st in stages(spec, self.root, changed):
            if st is None or st.skip:
                reason = st.skip if st is not None and st.skip else f"no {name} command found"
                res = skipped(name, st.command if st else "", reason, st.scope if st else "full",
                              expected=st is not None)
                if st is not None and st.imports_project and self.env.verified is False and self.env.version is None:
                    res.status = "unverified"  # the interpreter itself is broken: not a quiet skip
                safe_log(self.log, f"{name}: {res.status} ({reason})")
                return res
            res = self._stage(st)
            if res.status in ("fail", "unverified") or self.cancelled():
                break
        assert res is not None
        return res

    def _stage(self, spec: CheckSpec) -> CheckResult:
        label = spec.name if spec.scope == "full" else f"{spec.name} ({spec.scope})"
        key = hashlib.sha256("\0".join([self.key_base, spec.name, spec.scope, spec.command]).encode()).hexdigest()
        hit = self.cache.get(key)
        if hit is not None:
            safe_log(self.log, f"{label}: {hit.status} (cached: same check on the same tree)")
            return hit
        timeout = self.ex.timeout_for(spec.name)
        res = run_one(self.root, spec, timeout, self.cancel, self.full_env, self.log, label=label)
        self._revert(label)
        if self.cancelled():
            return res
        if spec.imports_project and self.env.verified is False and res.status in ("ok", "fail"):
            ran = "passed" if res.status == "ok" else f"failed, exit {res.exit_code}"
            res.status = "unverified"
            res.reason = f"not proven to test the sandbox's code ({ran}): {self.env.problem}"
            safe_log(self.log, f"{label}: UNVERIFIED ({self.env.problem})")
        elif res.status == "fail":
            compare(res, self.baseline.result(spec, timeout, self.cancel))
            if res.status == "preexisting":
                safe_log(self.log, f"{label}: pre-existing failures only ({len(res.preexisting)}), not blocking")
            else:
                safe_log(self.log, f"{label}: {len(res.new_failures)} new failure(s)")
        if res.stopped is None and res.status != "skipped":
            self.cache.put(key, res)
        return res

    def _revert(self, label: str) -> None:
        if self.snap is None:
            return
        try:
            changed, failed = self.snap.revert()
        except Exception as exc:
            safe_log(self.log, f"{label}: could not check the tree for changes ({exc})")
            return
        if changed:
            self.tree_changes += changed
            safe_log(self.log, f"{label} changed {len(changed)} file(s) in the sandbox; reverted: "
                               + ", ".join(changed[:10]))
        if failed:
            safe_log(self.log, f"{label}: could not restore " + ", ".join(failed[:10]))


class _TaskCache:
    """Results by (tree snapshot, environment, check, command), kept in the sandbox's ``.loom/work``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            self.data: dict[str, dict] = data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            self.data = {}
        self.dirty = False

    def get(self, key: str) -> CheckResult | None:
        raw = self.data.get(key)
        if not isinstance(raw, dict):
            return None
        try:
            raw = dict(raw)
            raw["locations"] = [Location(**loc) for loc in raw.get("locations") or []]
            res = CheckResult(**raw)
        except TypeError:
            return None
        res.cached = True
        return res

    def put(self, key: str, res: CheckResult) -> None:
        data = asdict(res)
        data["lines"] = None
        self.data.pop(key, None)
        self.data[key] = data
        while len(self.data) > CACHE_ENTRIES:
            self.data.pop(next(iter(self.data)))
        self.dirty = True

    def save(self) -> None:
        if not self.dirty:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text(json.dumps(self.data), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError:
            pass


def sandbox_info(root: Path) -> tuple[Path | None, str | None]:
    """``(user's project, baseline commit)`` of the sandbox holding ``root``, from the metadata the
    sandbox keeps in its repository (``.git/loom-sandbox.json``); ``(None, None)`` elsewhere."""
    from loom_core.workspace.sandbox import read_meta

    here = Path(root)
    for candidate in (here, *here.parents[:8]):
        meta = read_meta(candidate) if (candidate / ".git").is_dir() else None
        if meta is None:
            continue
        if candidate / (meta.get("prefix") or "") != here:
            return None, None  # a sandbox, but not of this folder
        project, baseline = meta.get("project"), meta.get("baseline")
        return (Path(project) if isinstance(project, str) and project else None,
                baseline if isinstance(baseline, str) else None)
    return None, None


def checks_text(root: Path, configured: dict[str, str] | str | None = None, *, timeout_s: float = 600,
                test_timeout_s: float | None = None) -> str:
    """The envelope for an agent's ``run_checks`` tool call in ``root``: the same machinery as the
    checks step, with the user's project and the baseline from :func:`sandbox_info`."""
    project, baseline = sandbox_info(root)
    ex = ChecksStep(lambda: Path(root), configured, timeout_s, project=project, baseline=baseline,
                        test_timeout_s=test_timeout_s)
    return ex.run()
