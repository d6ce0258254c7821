"""Checks test the sandbox's code: real venvs with real editable installs of a src-layout package
(setuptools, hatchling), a sandbox from ``Workspace.provision`` (the project's ``.venv`` linked, not
copied), the baseline comparison, and the Python environment rules."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from loom_core.agents.executors.checks import ChecksExecutor
from loom_core.workspace import Workspace
from loom_core.workspace.checks.layout import project_layout
from loom_core.workspace.checks.pyenv import find_interpreter
from tests.support.pyprojects import (
    CORE,
    commit_all,
    editable_factory,
    make_project,
    make_venv,
    write,
)


@pytest.fixture(autouse=True)
def _quiet_pytest(monkeypatch):
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")  # inner runs skip this env's plugins


@pytest.fixture(scope="session")
def editable(tmp_path_factory):
    """backend -> a user project whose own .venv holds an editable install of its src/ package."""
    return editable_factory(tmp_path_factory)


def sandbox(project: Path, tmp_path: Path) -> Workspace:
    return Workspace.provision(project, fresh=True, base_dir=tmp_path / "sandboxes")


def run(ex: ChecksExecutor) -> tuple[dict, list[str]]:
    logs: list[str] = []
    data = json.loads(ex.run(threading.Event(), logs.append))
    return data, logs


def by_name(data: dict) -> dict[str, dict]:
    return {c["name"]: c for c in data["checks"]}


def find_spec_origin(python: Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Where ``pkgx`` resolves for a program that does not put ``cwd`` on sys.path (a console script
    such as ``pytest``)."""
    script = Path(cwd).parent / "where_is_pkgx.py"
    script.write_text("import importlib.util\nprint(importlib.util.find_spec('pkgx').origin)\n")
    return subprocess.run([str(python), str(script)], cwd=cwd, capture_output=True, text=True, check=True,
                          env={**os.environ, **(env or {})}).stdout.strip()


# ------------------------------------------------------------------ 1. the sandbox's code, provably
@pytest.mark.parametrize("backend", ["setuptools", "hatchling", "setuptools-flat", "flit", "pdm"])
def test_breaking_the_sandbox_package_fails_with_a_verified_environment(backend, editable, tmp_path):
    project = editable(backend)
    ws = sandbox(project, tmp_path)
    assert (ws.root / ".venv").is_symlink()
    venv_python = project / ".venv" / "bin" / "python"
    pkg = "pkgx" if backend.endswith("-flat") else "src/pkgx"
    # the bug this guards against: the editable install sends `import pkgx` to the user's tree
    assert find_spec_origin(venv_python, ws.root) == str(project / pkg / "__init__.py")
    site = next((project / ".venv" / "lib").glob("python*/site-packages"))
    if backend == "setuptools-flat":  # setuptools' import hook, not a path entry
        assert list(site.glob("__editable___pkgx_*finder.py"))

    write(ws.root, f"{pkg}/__init__.py", "raise RuntimeError('broken by the agent')\n")
    data, logs = run(ChecksExecutor(lambda: ws.root, {}, 120, workspace=ws))
    test = by_name(data)["test"]
    assert test["status"] == "fail" and test["exit_code"] not in (0, None)
    assert "broken by the agent" in test["output_head"] + test["output_tail"]
    env = data["environment"]
    assert env["verified"] is True and env["source"] == ".venv"
    assert env["interpreter"] == str(project.resolve() / ".venv" / "bin" / "python")
    assert env["resolution"]["pkgx"] == str(ws.root.resolve() / pkg / "__init__.py")
    assert f"checks interpreter: {env['interpreter']} (.venv)" in logs


def test_preexisting_failures_do_not_block_new_ones_do(editable, tmp_path):
    project = editable("setuptools")
    ws = sandbox(project, tmp_path)
    ex = ChecksExecutor(lambda: ws.root, {}, 120, workspace=ws)
    # a correct change: the lint error and the failing test that were already there are listed, not blocking
    write(ws.root, "src/pkgx/core.py", CORE + "\n\ndef mul(a, b):\n    return a * b\n")
    write(ws.root, "tests/test_mul.py", "from pkgx.core import mul\n\n\ndef test_mul():\n    assert mul(2, 3) == 6\n")
    data, logs = run(ex)
    checks = by_name(data)
    lint, test = checks["lint"], checks["test"]
    assert lint["status"] == "preexisting" and lint["scope"] == "full" and lint["new_failures"] == []
    assert "src/pkgx/core.py: F401 [*] `os` imported but unused" in lint["preexisting"]  # the full run lists all
    assert "--no-fix" in lint["command"]
    assert (ws.root / "src/pkgx/core.py").read_text().startswith("import os\n")  # `fix = true` not applied
    assert data["tree_changes"] == []
    assert test["status"] == "preexisting" and test["scope"] == "full"
    assert test["preexisting"] == ["tests/test_core.py::test_known_bug"] and test["new_failures"] == []
    assert any(line.startswith("running test (related): ") for line in logs)

    # a breaking change: only what is new blocks; the related tests fail, so the full suite does not run
    write(ws.root, "src/pkgx/core.py", "import os\nimport sys\n\n\ndef add(a, b):\n    return a - b\n\n\n"
                                       "def mul(a, b):\n    return a * b\n")
    data, logs = run(ex)
    checks = by_name(data)
    lint, test = checks["lint"], checks["test"]
    assert lint["status"] == "fail" and lint["scope"] == "changed"  # the scoped stage failed: no full run
    assert lint["new_failures"] == ["src/pkgx/core.py: F401 [*] `sys` imported but unused"]
    assert lint["preexisting"] == ["src/pkgx/core.py: F401 [*] `os` imported but unused"]
    assert test["status"] == "fail" and test["scope"] == "related"
    assert test["new_failures"] == ["tests/test_core.py::test_add"]
    assert test["preexisting"] == ["tests/test_core.py::test_known_bug"]
    assert not any(line.startswith("running test: ") for line in logs)
    failures = (ws.root / ".loom/work/check-failures.txt").read_text()
    assert "new failures (not failing before the change):\n  tests/test_core.py::test_add" in failures


# ------------------------------------------------------------------ 2. an environment that cannot be trusted
def test_project_venv_without_pytest_skips_the_tests(tmp_path):
    project = make_project(tmp_path / "proj", "setuptools")
    make_venv(project / ".venv", system=False)
    ws = sandbox(project, tmp_path)
    data, logs = run(ChecksExecutor(lambda: ws.root, {}, 60, workspace=ws))
    test = by_name(data)["test"]
    assert test["status"] == "skipped" and test["exit_code"] is None
    assert test["reason"] == f"pytest is not installed in {(project / '.venv').resolve()}"
    assert not any(line.startswith("running test") for line in logs)  # not with loom's interpreter either


def test_unprovable_resolution_is_unverified(tmp_path):
    project = make_project(tmp_path / "proj", "setuptools")
    py = make_venv(project / ".venv", system=True)
    site = next((project / ".venv" / "lib").glob("python*/site-packages"))
    # an old-style path hook that puts the user's tree before anything else: PYTHONPATH cannot win
    (site / "zz_user_first.pth").write_text(f"import sys; sys.path.insert(0, {str(project / 'src')!r})\n")
    ws = sandbox(project, tmp_path)
    assert find_spec_origin(py, ws.root, {"PYTHONPATH": str(ws.root / "src")}).startswith(str(project))
    data, _logs = run(ChecksExecutor(lambda: ws.root, {}, 60, workspace=ws))
    env, test = data["environment"], by_name(data)["test"]
    assert env["verified"] is False and f"pkgx resolves to {project / 'src' / 'pkgx' / '__init__.py'}" in env["problem"]
    assert test["status"] == "unverified" and "pkgx resolves to" in test["reason"]
    assert test["exit_code"] == 1 and "test_known_bug" in test["output_tail"]  # still run, output shown


# ------------------------------------------------------------------ 3. interpreter and layout rules
def test_shims_on_path_are_skipped(tmp_path, monkeypatch):
    shims = tmp_path / "pyenv" / "shims"
    real = tmp_path / "real" / "bin"
    for d in (shims, real):
        d.mkdir(parents=True)
    (shims / "python3").write_text("#!/bin/sh\nexit 1\n")
    (shims / "python3").chmod(0o755)
    (real / "python3").symlink_to(sys.executable)
    monkeypatch.setenv("PATH", f"{shims}:{real}")
    monkeypatch.delenv("VIRTUAL_ENV", raising=False)
    write(tmp_path, "proj/pyproject.toml", "[project]\nname = 'x'\n")
    assert find_interpreter(tmp_path / "proj", None) == (str(real / "python3"), "PATH", None)


@pytest.mark.parametrize("config, roots, packages", [
    ("[tool.setuptools.packages.find]\nwhere = ['lib']\n", ["lib"], ["alpha"]),
    ("[tool.hatch.build.targets.wheel]\npackages = ['lib/alpha']\n", ["lib"], ["alpha"]),
    ("[tool.poetry]\npackages = [{include = 'alpha', from = 'lib'}]\n", ["lib"], ["alpha"]),
    ("[tool.flit.module]\nname = 'beta'\n", ["."], ["beta"]),
    ("", ["src"], ["gamma", "solo"]),
])
def test_source_roots_and_packages(tmp_path, config, roots, packages):
    write(tmp_path, "pyproject.toml", "[project]\nname = 'x'\n\n" + config)
    write(tmp_path, "lib/alpha/__init__.py", "")
    write(tmp_path, "beta/__init__.py", "")
    write(tmp_path, "tests/__init__.py", "")
    if not config:
        write(tmp_path, "src/gamma/__init__.py", "")
        write(tmp_path, "src/solo.py", "")
    layout = project_layout(tmp_path)
    assert layout.roots == [(tmp_path / r).resolve() for r in roots]
    assert layout.packages[: len(packages)] == packages and "tests" not in layout.packages


# ------------------------------------------------------------------ 4. the tree, the cache, scope, opt-out
def git_project(root: Path) -> str:
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    write(root, "a.txt", "original\n")
    write(root, ".gitignore", "*.log\n")
    return commit_all(root)


def test_changes_a_check_makes_are_reverted_and_reported(tmp_path):
    root = tmp_path / "proj"
    base = git_project(root)
    write(root, "agent.txt", "the agent's work\n")
    cmd = "echo extra >> a.txt; rm agent.txt; echo junk > junk.txt; mkdir -p out && echo x > out/o.txt; echo l > x.log"
    data, logs = run(ChecksExecutor(lambda: root, {"lint": cmd}, 30, baseline=base))
    assert by_name(data)["lint"]["status"] == "ok"
    assert data["tree_changes"] == ["a.txt", "agent.txt", "junk.txt", "out/o.txt"]
    assert (root / "a.txt").read_text() == "original\n"
    assert (root / "agent.txt").read_text() == "the agent's work\n"
    assert not (root / "junk.txt").exists() and not (root / "out").exists()
    assert (root / "x.log").exists()  # ignored: never lands on the branch, left alone
    assert any("reverted: " in line for line in logs)


def test_identical_tree_is_answered_from_the_cache(tmp_path):
    root = tmp_path / "proj"
    base = git_project(root)
    counter = tmp_path / "counter"
    ex = ChecksExecutor(lambda: root, {"test": f"echo ran >> {counter}"}, 30, baseline=base)
    first, _ = run(ex)
    second, logs = run(ex)
    assert by_name(first)["test"]["cached"] is False and by_name(second)["test"]["cached"] is True
    assert by_name(second)["test"]["status"] == "ok"
    assert counter.read_text() == "ran\n" and any("cached" in line for line in logs)
    write(root, "a.txt", "changed\n")
    third, _ = run(ex)
    assert by_name(third)["test"]["cached"] is False and counter.read_text() == "ran\nran\n"


def test_related_tests_first_then_the_full_suite(tmp_path, monkeypatch):
    root = tmp_path / "proj"
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    write(root, "pyproject.toml", "[project]\nname = 'pkgy'\n\n[tool.pytest.ini_options]\n")
    write(root, "src/pkgy/__init__.py", "")
    write(root, "src/pkgy/core.py", "def one():\n    return 1\n")
    write(root, "tests/test_core.py", "from pkgy.core import one\n\n\ndef test_one():\n    assert one() == 1\n")
    marker = tmp_path / "other-ran"
    write(root, "tests/test_other.py", f"def test_other():\n    open({str(marker)!r}, 'a').write('x')\n")
    base = commit_all(root)
    ex = ChecksExecutor(lambda: root, {}, 60, baseline=base)
    write(root, "src/pkgy/core.py", "def one():\n    return 2\n")
    data, _ = run(ex)
    test = by_name(data)["test"]
    assert test["status"] == "fail" and test["scope"] == "related" and not marker.exists()
    assert test["command"].endswith(" tests/test_core.py")
    write(root, "src/pkgy/core.py", "def one():\n    return 1  # same\n")
    data, _ = run(ex)
    test = by_name(data)["test"]
    assert test["status"] == "ok" and test["scope"] == "full" and marker.exists()
    assert data["environment"]["verified"] is True


def test_checks_none_disables_everything(tmp_path):
    from loom_core.engine.runner import configured_checks
    from loom_core.errors import ConfigError

    write(tmp_path, ".loom/loom.json", json.dumps({"checks": "none"}))
    assert configured_checks(tmp_path) == "none"
    data, logs = run(ChecksExecutor(lambda: tmp_path, configured_checks(tmp_path)))
    assert data["checks"] == [] and data["disabled"] is True and data["tree_changes"] == []
    assert any("disabled" in line for line in logs)
    write(tmp_path, ".loom/loom.json", json.dumps({"checks": 3}))
    with pytest.raises(ConfigError):
        configured_checks(tmp_path)


def test_test_timeout_is_its_own(tmp_path):
    data, _ = run(ChecksExecutor(lambda: tmp_path, {"lint": "sleep 0.6", "test": "sleep 5"}, 30,
                                 test_timeout_s=0.3))
    checks = by_name(data)
    assert checks["lint"]["status"] == "ok"
    assert checks["test"]["status"] == "fail" and "timed out after 0.3 s" in checks["test"]["reason"]


def test_no_git_tree_is_still_reverted(tmp_path):
    write(tmp_path, "keep.txt", "before\n")
    data, _ = run(ChecksExecutor(lambda: tmp_path, {"lint": "echo after > keep.txt; echo n > new.txt"}, 30))
    assert data["tree_changes"] == ["keep.txt", "new.txt"]
    assert (tmp_path / "keep.txt").read_text() == "before\n" and not (tmp_path / "new.txt").exists()
    assert shutil.which("git")  # (git exists here; the tree is simply not a repository)


def test_broken_project_interpreter_is_unverified_not_loom_s(tmp_path):
    project = make_project(tmp_path / "proj", "setuptools")
    make_venv(project / ".venv", system=True)
    python = project / ".venv" / "bin" / "python"
    python.unlink()
    python.write_text("#!/bin/sh\necho 'this interpreter is broken' >&2\nexit 3\n")
    python.chmod(0o755)
    data, logs = run(ChecksExecutor(lambda: tmp_path / "proj", {}, 30))
    env, test = data["environment"], by_name(data)["test"]
    assert env["interpreter"] == str(python) and env["verified"] is False
    assert "could not run" in env["problem"] and "this interpreter is broken" in env["problem"]
    assert test["status"] == "unverified" and test["exit_code"] is None
    assert not any(line.startswith("running test") for line in logs)


def test_the_implementers_run_checks_and_the_checks_step_share_one_run(editable, tmp_path):
    """The agent's `run_checks` tool finds the user's project and the baseline from the sandbox itself,
    so the checks step right after it, on the same tree, answers from the cache instead of running the
    whole suite a second time."""
    from loom_core.agents.backends import _checks_text
    from loom_core.engine.runner import configured_checks
    from loom_core.workspace.checks import sandbox_info

    project = editable("setuptools")
    ws = sandbox(project, tmp_path)
    assert sandbox_info(ws.root) == (project.resolve(), ws.baseline)
    assert sandbox_info(tmp_path) == (None, None)
    write(ws.root, "src/pkgx/core.py", CORE + "\n\ndef mul(a, b):\n    return a * b\n")
    tool = {c["name"]: c for c in json.loads(_checks_text(ws.root))["checks"]}
    assert tool["test"]["status"] == "preexisting" and not tool["test"]["cached"]
    data, logs = run(ChecksExecutor(lambda: ws.root, configured_checks(project), 120, workspace=ws))
    ran = [c for c in data["checks"] if c["status"] != "skipped"]
    assert ran and all(c["cached"] for c in ran), [(c["name"], c["cached"]) for c in data["checks"]]
    from loom_core.workspace.checks.treesnap import TreeSnapshot

    assert data["tree"] == TreeSnapshot.take(ws.root).id  # the envelope names the tree the checks saw
    assert not any(line.startswith("running test") for line in logs)
