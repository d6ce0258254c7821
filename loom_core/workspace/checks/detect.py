"""Which command runs each check of a tree.

Per check (typecheck, lint, test): a configured command string runs verbatim via ``/bin/sh -c``
(``{python}`` = the checks interpreter); else a ``package.json`` script of that exact name runs as
``<pm> run <name>`` (pm by lockfile); else a conservatively detected Python / Go / Rust tool; else
the check is skipped, which is never a failure. Python tools that import the project's code
(pytest, mypy) come only from the checks environment (:mod:`.pyenv`): when it lacks them the
check is skipped with the reason, never run with loom's own interpreter. ruff imports nothing of
the project, so the project's, PATH's (outside shims) or loom's own ruff will do; it always runs
check-only (``--no-fix``), whatever the project's ``fix = true`` says.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import shutil
import subprocess
from functools import cached_property
from pathlib import Path
from typing import Any

from loom_core.workspace.checks.layout import read_tool
from loom_core.workspace.checks.model import CHECK_NAMES, CheckSpec
from loom_core.workspace.checks.pyenv import PyEnv, loom_tool, path_tool, resolve_env, venv_tool

PYTEST_ARGS = ("-q", "-rfE", "-p", "no:cacheprovider")
RUFF_ARGS = ("check", "--no-fix", "--no-cache", "--output-format", "concise")

_WALK_SKIP = {".git", ".hg", ".svn", ".loom", "node_modules", ".venv", "venv", "env", ".env", ".tox", ".nox",
              "__pycache__", "site-packages", "target", "dist", "build", ".mypy_cache", ".ruff_cache",
              ".pytest_cache", "vendor"}


@functools.lru_cache(maxsize=64)
def _tool_runs(argv: tuple[str, ...]) -> bool:
    """True when ``argv`` (a ``--version`` style probe) starts and exits 0. Guards against PATH
    shims and proxies (pyenv, rustup) that exist but cannot run the tool."""
    try:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return r.returncode == 0


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _ini_section(text: str, section: str) -> str | None:
    """The body of ``[section]`` in an ini-style text, or None when absent."""
    m = re.search(rf"^\[{re.escape(section)}\]\s*$", text, re.M)
    if not m:
        return None
    nxt = re.search(r"^\[", text[m.end():], re.M)
    return text[m.end(): m.end() + nxt.start()] if nxt else text[m.end():]


class _Repo:
    """What a root contains, read once per detection."""

    def __init__(self, root: Path, env: PyEnv | None, project: Path | None) -> None:
        self.root = root
        self._env = env
        self._project = project
        self.pyproject_text = _read(root / "pyproject.toml") if (root / "pyproject.toml").is_file() else ""
        self.tool: dict[str, Any] = read_tool(root) if self.pyproject_text else {}
        if self.pyproject_text and not self.tool:  # unparsable: spot the table headers
            for key in ("pytest", "ruff", "mypy", "pyright"):
                if re.search(rf"^\s*\[tool\.{key}[.\]]", self.pyproject_text, re.M):
                    self.tool[key] = {}
        self._py_files_cache: bool | None = None

    @cached_property
    def env(self) -> PyEnv:
        return self._env if self._env is not None else resolve_env(self.root, self._project)

    # -- python evidence
    def pytest_evidence(self) -> str | None:
        if "pytest" in self.tool:
            return "[tool.pytest] in pyproject.toml"
        if (self.root / "pytest.ini").is_file():
            return "pytest.ini found"
        if (self.root / "conftest.py").is_file():
            return "conftest.py found"
        if _ini_section(_read(self.root / "setup.cfg"), "tool:pytest") is not None:
            return "[tool:pytest] in setup.cfg"
        if _ini_section(_read(self.root / "tox.ini"), "pytest") is not None:
            return "[pytest] in tox.ini"
        for d in ("tests", "test"):
            if (self.root / d).is_dir() and any((self.root / d).rglob("*.py")):
                return f"{d}/ found"
        if self.has_python_test_files():
            return "test files found"
        return None

    def has_python_test_files(self, max_entries: int = 20000, max_depth: int = 6) -> bool:
        if self._py_files_cache is not None:
            return self._py_files_cache
        seen = 0
        base_depth = len(self.root.parts)
        found = False
        for dirpath, dirnames, filenames in os.walk(self.root):
            depth = len(Path(dirpath).parts) - base_depth
            dirnames[:] = [] if depth >= max_depth else [
                d for d in dirnames if d not in _WALK_SKIP and not d.startswith(".")]
            seen += len(filenames) + len(dirnames)
            if any(f.endswith(".py") and (f.startswith("test_") or f.endswith("_test.py")) for f in filenames):
                found = True
                break
            if seen > max_entries:
                break
        self._py_files_cache = found
        return found

    def ruff_evidence(self) -> str | None:
        if "ruff" in self.tool:
            return "[tool.ruff] in pyproject.toml"
        for n in ("ruff.toml", ".ruff.toml"):
            if (self.root / n).is_file():
                return f"{n} found"
        return None

    def mypy_config(self) -> tuple[str, bool] | None:
        """(evidence, config names the files to check) or None when mypy is not configured."""
        if "mypy" in self.tool:
            cfg = self.tool["mypy"]
            return "[tool.mypy] in pyproject.toml", isinstance(cfg, dict) and bool(cfg.get("files"))
        for n in ("mypy.ini", ".mypy.ini"):
            if (self.root / n).is_file():
                body = _ini_section(_read(self.root / n), "mypy") or ""
                return f"{n} found", re.search(r"^\s*files\s*=", body, re.M) is not None
        body = _ini_section(_read(self.root / "setup.cfg"), "mypy")
        if body is not None:
            return "[mypy] in setup.cfg", re.search(r"^\s*files\s*=", body, re.M) is not None
        return None

    def pyright_evidence(self) -> str | None:
        if (self.root / "pyrightconfig.json").is_file():
            return "pyrightconfig.json found"
        if "pyright" in self.tool:
            return "[tool.pyright] in pyproject.toml"
        return None

    # -- node
    def node_script(self, name: str) -> tuple[list[str], str] | None:
        pkg = self.root / "package.json"
        if not pkg.is_file():
            return None
        try:
            data = json.loads(_read(pkg))
        except ValueError:
            return None
        scripts = data.get("scripts") if isinstance(data, dict) else None
        body = scripts.get(name) if isinstance(scripts, dict) else None
        if not isinstance(body, str) or not body.strip():
            return None
        if name == "test" and "no test specified" in body:  # `npm init`'s placeholder always exits 1
            return None
        if (self.root / "pnpm-lock.yaml").is_file():
            pm = "pnpm"
        elif (self.root / "yarn.lock").is_file():
            pm = "yarn"
        elif (self.root / "bun.lockb").is_file() or (self.root / "bun.lock").is_file():
            pm = "bun"
        else:
            pm = "npm"
        if not shutil.which(pm):
            return None
        return [pm, "run", name], f"package.json script '{name}' ({pm})"


def _env_tool(repo: _Repo, name: str, module: str, evidence: str) -> CheckSpec:
    """A spec running ``python -m <module>`` in the checks environment, or skipped saying why."""
    env = repo.env
    if env.python is None or env.version is None:  # none found, or it did not answer the probe
        return CheckSpec(name, None, tool=module, imports_project=True,
                         skip=f"{module} cannot run: {env.problem or 'no Python interpreter found'}")
    if not env.has(module):
        return CheckSpec(name, None, tool=module, imports_project=True,
                         skip=f"{module} is not installed in {env.where}")
    return CheckSpec(name, [env.python, "-m", module], reason=f"{module} ({env.source}): {evidence}",
                     tool=module, imports_project=True)


def _ruff(repo: _Repo) -> tuple[list[str], str] | None:
    env = repo.env if repo.env.venv is not None else None
    found = venv_tool(env, "ruff") if env else None
    if found:
        return [found], env.source if env else ""
    found = path_tool("ruff", repo.root)
    if found and _tool_runs((found, "--version")):
        return [found], "PATH"
    argv = loom_tool("ruff")
    return (argv, "loom's environment") if argv else None


def _detect_python(repo: _Repo, name: str) -> CheckSpec | None:
    if name == "test":
        evidence = repo.pytest_evidence()
        if evidence:
            spec = _env_tool(repo, "test", "pytest", evidence)
            if spec.argv:
                spec.argv += list(PYTEST_ARGS)
            return spec
    elif name == "lint":
        evidence = repo.ruff_evidence()
        tool = _ruff(repo) if evidence else None
        if tool:
            argv, how = tool
            return CheckSpec("lint", [*argv, *RUFF_ARGS, "."], reason=f"ruff ({how}): {evidence}", tool="ruff")
    elif name == "typecheck":
        mypy = repo.mypy_config()
        if mypy:
            evidence, has_files = mypy
            spec = _env_tool(repo, "typecheck", "mypy", evidence)
            if spec.argv:
                spec.argv += [] if has_files else ["."]
                spec.tool = "mypy-files" if has_files else "mypy"
            return spec
        evidence = repo.pyright_evidence()
        path = (venv_tool(repo.env, "pyright") or path_tool("pyright", repo.root)) if evidence else None
        if path and _tool_runs((path, "--version")):
            return CheckSpec("typecheck", [path], reason=f"pyright: {evidence}", tool="pyright")
    return None


def _detect_go(repo: _Repo, name: str) -> CheckSpec | None:
    if not (repo.root / "go.mod").is_file() or not shutil.which("go"):
        return None
    if name == "test":
        return CheckSpec("test", ["go", "test", "./..."], reason="go: go.mod found")
    if name == "lint":
        return CheckSpec("lint", ["go", "vet", "./..."], reason="go vet: go.mod found")
    return None


def _detect_rust(repo: _Repo, name: str) -> CheckSpec | None:
    if not (repo.root / "Cargo.toml").is_file() or not shutil.which("cargo"):
        return None
    if name == "test":
        return CheckSpec("test", ["cargo", "test"], reason="cargo: Cargo.toml found")
    if name == "lint" and _tool_runs(("cargo", "clippy", "--version")):
        return CheckSpec("lint", ["cargo", "clippy", "-q"], reason="cargo clippy: Cargo.toml found")
    return None


def _configured(repo: _Repo, name: str, cmd: str) -> CheckSpec:
    spec = CheckSpec(name, None, shell=cmd, reason=f"configured: checks.{name}",
                     imports_project=name in ("test", "typecheck"))
    if "{python}" in cmd:
        if repo.env.python is None:
            spec.skip = f"no Python interpreter for {{python}}: {repo.env.problem or 'none found'}"
        else:
            spec.shell = cmd.replace("{python}", shlex.quote(repo.env.python))
    return spec


def detect_checks(root: Path, configured: dict[str, str] | None = None, *, env: PyEnv | None = None,
                  project: Path | None = None) -> dict[str, CheckSpec | None]:
    """For each of typecheck, lint, test (in that order): the configured command string wins; else
    detect by what the repo contains; None = skipped (with no failure). An empty configured string
    counts as not configured. ``env`` is the checks environment (resolved here when not given,
    looking for a project environment in ``root`` and ``project``)."""
    root = Path(root)
    configured = configured or {}
    repo = _Repo(root, env, Path(project) if project else None)
    out: dict[str, CheckSpec | None] = {}
    for name in CHECK_NAMES:
        cmd = configured.get(name)
        if isinstance(cmd, str) and cmd.strip():
            out[name] = _configured(repo, name, cmd)
            continue
        spec: CheckSpec | None = None
        node = repo.node_script(name)
        if node:
            spec = CheckSpec(name, node[0], reason=node[1])
        for detect in (_detect_python, _detect_go, _detect_rust):
            if spec is not None:
                break
            spec = detect(repo, name)
        out[name] = spec
    return out
