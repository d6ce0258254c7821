"""A task on a repository shaped like a user's, through the real runner, sandbox and checks.

The project is a ``src/``-layout package installed *editable* into the project's own ``.venv``
(setuptools and hatchling), with a pytest suite (one test already failing), ``[tool.ruff] fix =
true`` with one lint error already there, and an ignored ``.env``. Only the agents are scripted;
everything else is loom's: the sandbox shares the user's objects and links the ``.venv``, the checks
pick the project's interpreter, prove the package resolves inside the sandbox, compare failures
with the unchanged tree, and the final gate is decided by the real policy.
"""

from __future__ import annotations

import subprocess
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import pygit2
import pytest

from loom_core.agents.executors import ExecResult
from loom_core.engine.runner import RunOptions, TaskRunner
from loom_core.kernel.types import Intent
from tests.support.code_agents import CodeAgents
from tests.support.git import user_side
from tests.support.pyprojects import CORE, editable_factory, make_project, make_venv

SECRET = "sk-test-do-not-leak-0123456789"


@pytest.fixture(scope="module")
def editable(tmp_path_factory):
    return editable_factory(tmp_path_factory)


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")  # the project's pytest runs without our plugins
    base = tmp_path / "tmpdir"
    base.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(base))  # sandboxes and check caches under this test


class ScriptedBackend:
    """The agents of :class:`CodeAgents`, with an implementer that really edits the sandbox."""

    name = backend = "scripted"
    label = "scripted agents"
    idempotent = True

    def __init__(self, implement: Callable[[Path, int], None]) -> None:
        self.agents = CodeAgents()
        self.rounds = 0
        self.agents.on["implementer"] = self.agents.on["implementer-escalated"] = self._implement
        self._implement_fn = implement

    def _implement(self, intent: Intent) -> ExecResult:
        self.rounds += 1
        self._implement_fn(Path(intent.extras["workdir"]), self.rounds)
        return ExecResult(output=f"## Report\nround {self.rounds}: edited src/pkgx/core.py")

    def execute(self, intent: Intent, cancel: threading.Event, log) -> ExecResult:
        out = self.agents(intent)
        return out if isinstance(out, ExecResult) else ExecResult(output=out)


def run_task(project: Path, backend: ScriptedBackend, *, replace: bool = False):
    runner = TaskRunner(project, RunOptions(policy="auto", replace=replace))
    runner._resolved = backend  # the agents are scripted; sandbox, checks, gates and merge-back are real
    return runner.start("add a sub function to pkgx.core")


def loom_branches(project: Path) -> list[str]:
    return [b for b in pygit2.Repository(str(project)).branches.local if b.startswith("loom/")]


def branch_file(project: Path, branch: str, rel: str) -> str | None:
    repo = pygit2.Repository(str(project))
    tree = repo.branches.local[branch].peel(pygit2.Commit).tree
    try:
        return repo[tree[rel].id].data.decode()
    except KeyError:
        return None


def branch_paths(project: Path, branch: str) -> list[str]:
    out = subprocess.run(["git", "ls-tree", "-r", "--name-only", branch], cwd=project, capture_output=True,
                         text=True, check=True).stdout
    return out.split()


def break_package(root: Path, n: int) -> None:
    init = root / "src" / "pkgx" / "__init__.py"
    init.write_text(f"raise RuntimeError('broken by the agent, round {n}')\nfrom .core import add\n")


def correct_change(root: Path, n: int) -> None:
    core = root / "src" / "pkgx" / "core.py"
    core.write_text(core.read_text() + "\n\ndef sub(a, b):\n    return a - b\n")


@pytest.mark.parametrize("build", ["setuptools", "hatchling"])
def test_checks_judge_the_agents_tree_not_the_users(editable, build):
    project = editable(build)
    (project / ".env").write_text(f"API_KEY={SECRET}\n")  # ignored, never the agent's
    with open(project / ".gitignore", "a") as fh:
        fh.write(".env\n")
    subprocess.run(["git", "commit", "-qam", "ignore .env", "--author", "t <t@t>"], cwd=project, check=True,
                   env={"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin"})
    before = user_side(project)

    # 1. an agent breaks the package: in the user's .venv the editable install points at the user's
    #    src/, yet the checks run the sandbox's code — they fail, and auto never accepts it
    breaking = ScriptedBackend(break_package)
    result = run_task(project, breaking)
    assert result.outcome.verdict != "accepted", result.outcome
    assert result.outcome.kind == "paused" and result.outcome.gate == "gate-final"
    assert loom_branches(project) == []
    from loom_core.engine.engine import Engine

    engine = Engine(project, create=False)
    st = engine.state()
    test_run = st.bundle_state["test_run"]
    assert test_run["status"] == "fail", test_run
    assert "broken by the agent" in test_run["output_tail"]  # it ran the sandbox's package, not the user's
    assert st.bundle_state["checks_meta"]["verified"] is True
    assert st.bundle_state["checks_meta"]["interpreter"] == str(project.resolve() / ".venv" / "bin" / "python")
    assert any(f["category"] == "failed-check" and f["severity"] == "blocking" for f in st.findings.values())
    engine.close()
    assert user_side(project) == before

    # 2. a correct change is accepted: the lint error and the failing test that were already there are
    #    listed but do not block, and the file ruff (`fix = true`) would have rewritten is untouched
    correct = ScriptedBackend(correct_change)
    result = run_task(project, correct, replace=True)
    assert result.outcome.kind == "complete" and result.outcome.verdict == "accepted", result.outcome
    assert result.merge is not None and result.merge.status == "merged"
    branch = result.merge.branch
    engine = Engine(project, create=False)
    st = engine.state()
    lint, tests = st.bundle_state["lint_result"], st.bundle_state["test_run"]
    assert lint["status"] == "preexisting"
    assert "src/pkgx/core.py: F401 [*] `os` imported but unused" in lint["preexisting"]
    assert tests["status"] == "preexisting" and tests["preexisting"] == ["tests/test_core.py::test_known_bug"]
    assert any(f["category"] == "pre-existing-failure" and f["severity"] == "info" for f in st.findings.values())
    engine.close()
    core = branch_file(project, branch, "src/pkgx/core.py")
    assert core == CORE + "\n\ndef sub(a, b):\n    return a - b\n"  # `import os` kept: no check rewrote it
    paths = branch_paths(project, branch)
    assert not [p for p in paths if p.startswith((".venv", ".loom")) or p == ".env"], paths
    assert user_side(project) == before  # the user's branch, index and tree are as they were
    assert SECRET not in subprocess.run(["git", "log", "-p", branch], cwd=project, capture_output=True,
                                        text=True).stdout


def test_no_pytest_in_the_projects_environment_means_a_person_decides(tmp_path):
    project = make_project(tmp_path / "proj", "setuptools")
    make_venv(project / ".venv", system=False)  # a real venv, without pytest
    result = run_task(project, ScriptedBackend(correct_change))
    assert result.outcome.kind == "paused" and result.outcome.gate == "gate-final", result.outcome
    assert "pytest is not installed in" in result.outcome.message
    assert "a person decides" in result.outcome.message
    assert loom_branches(project) == []
