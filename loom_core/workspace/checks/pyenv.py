"""Which Python runs the checks, and proof that it sees the sandbox's code.

The interpreter, in order: the project's own environment — a ``.venv`` / ``venv`` / ``env`` /
``.env`` folder holding ``pyvenv.cfg`` in the sandbox root or the user's project folder (a ``uv``
project is ``uv.lock`` + ``.venv``), ``poetry env info -p``, ``hatch env find``, ``$VIRTUAL_ENV`` —
then the first ``python3`` / ``python`` on ``PATH`` outside version-manager shim folders (a pyenv /
asdf shim is resolved to the real interpreter it would pick for the project). Never loom's own.

Checks run with the sandbox's source roots first on ``PYTHONPATH``: that wins over the ``.pth``
entries and editable finders (setuptools, hatchling/editables, flit, pdm, uv) an editable install
leaves in the environment, which point at the user's tree. The probe then proves it: with the same
interpreter and environment, ``importlib.util.find_spec`` (which locates without importing) must
place every top-level package of the project inside the sandbox.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from loom_core.config.paths import cache_dir
from loom_core.workspace.checks.layout import Layout, project_layout, read_tool

VENV_DIRS = (".venv", "venv", "env", ".env")
PROBE_TIMEOUT_S = 30.0
TOOL_TIMEOUT_S = 20.0

_PROBE = r"""
import importlib.util, json, sys
out = {"version": sys.version.split()[0], "prefix": sys.prefix, "modules": {}, "specs": {}}
for m in ("pytest", "mypy", "ruff"):
    try:
        out["modules"][m] = importlib.util.find_spec(m) is not None
    except Exception:
        out["modules"][m] = False
for name in sys.argv[1:]:
    try:
        s = importlib.util.find_spec(name)
    except Exception as exc:
        out["specs"][name] = {"error": repr(exc)[:300]}
        continue
    out["specs"][name] = None if s is None else {
        "origin": s.origin, "locations": list(s.submodule_search_locations or [])}
print("LOOM-PROBE " + json.dumps(out))
"""


@dataclass
class PyEnv:
    """The Python environment the checks of one tree run in."""

    root: Path  # the tree the checks run in (sandbox, or a baseline checkout)
    python: str | None  # interpreter path; None when there is none
    source: str  # ".venv", "uv (.venv)", "poetry", "hatch", "$VIRTUAL_ENV", "PATH", "PATH (pyenv)", "none"
    venv: Path | None = None  # the project environment, when the interpreter is one
    layout: Layout = field(default_factory=Layout)
    version: str | None = None
    modules: dict[str, bool] = field(default_factory=dict)  # pytest / mypy / ruff importable
    verified: bool | None = None
    resolution: dict[str, str] = field(default_factory=dict)
    problem: str | None = None

    @property
    def where(self) -> str:
        """Where the environment is, for "pytest is not installed in …"."""
        return str(self.venv) if self.venv else (self.python or "no interpreter")

    def has(self, module: str) -> bool:
        return bool(self.modules.get(module))

    def env_vars(self) -> dict[str, str]:
        """Variables every check of this tree runs with."""
        roots = [str(r) for r in self.layout.roots]
        old = os.environ.get("PYTHONPATH")
        out = {"PYTHONDONTWRITEBYTECODE": "1", "MYPY_CACHE_DIR": str(cache_root() / "mypy" / _key(self.root))}
        if roots:
            out["PYTHONPATH"] = os.pathsep.join(roots + ([old] if old else []))
        if self.venv is not None:  # configured commands (`pytest`, `python -m …`) find the venv's first
            out["VIRTUAL_ENV"] = str(self.venv)
            out["PATH"] = os.pathsep.join([str(self.venv / "bin"), os.environ.get("PATH", "")])
        return out

    def fingerprint(self) -> str:
        """Changes when the interpreter or what is installed in it changes."""
        parts = [self.python or "", self.version or "", self.source]
        for p in (self.python, self.venv / "pyvenv.cfg" if self.venv else None, _site_packages(self.venv)):
            try:
                parts.append(str(os.stat(p).st_mtime_ns) if p else "")
            except OSError:
                parts.append("?")
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:24]

    def for_tree(self, root: Path) -> PyEnv:
        """The same interpreter for another tree (a baseline checkout), with that tree's source roots."""
        return PyEnv(root, self.python, self.source, self.venv, project_layout(root), self.version,
                     dict(self.modules))

    def describe(self) -> str:
        if self.python is None:
            return f"checks interpreter: none ({self.problem or 'no Python interpreter found'})"
        return f"checks interpreter: {self.python} ({self.source})"

    def to_json(self) -> dict:
        return {"interpreter": self.python, "source": self.source, "verified": self.verified,
                "resolution": dict(self.resolution), "problem": self.problem}


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/loom/checks`` (default ``~/.cache/loom/checks``): what the checks keep between runs
    (baseline results, checked-out baseline trees, mypy's cache), outside any tree; safe to delete."""
    home = cache_dir()
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        pass
    return home / "checks"


def _key(root: Path) -> str:
    return hashlib.sha1(str(root).encode()).hexdigest()[:16]


def _site_packages(venv: Path | None) -> Path | None:
    if venv is None:
        return None
    found = sorted((venv / "lib").glob("python*/site-packages"))
    return found[0] if found else None


# --------------------------------------------------------------------------- finding the interpreter
def _is_shim_dir(d: str) -> bool:
    return "shims" in Path(d).parts


def _venv_python(venv: Path) -> str | None:
    for name in ("python", "python3"):
        p = venv / "bin" / name
        if p.exists() and os.access(p, os.X_OK):
            return str(p)
    return None


def _quiet(argv: list[str], cwd: Path, timeout: float = TOOL_TIMEOUT_S) -> str | None:
    """stdout of ``argv`` when it exits 0 in time, else None."""
    try:
        r = subprocess.run(argv, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout if r.returncode == 0 else None


def _shim_target(shim_dir: str, name: str, cwd: Path) -> str | None:
    """The real program a pyenv / asdf shim would run for ``cwd`` (honours ``.python-version``)."""
    base = Path(shim_dir).parent
    for manager in (base / "bin" / "pyenv", base / "libexec" / "pyenv", base / "bin" / "asdf"):
        if manager.is_file() and os.access(manager, os.X_OK):
            out = _quiet([str(manager), "which", name], cwd, timeout=10)
            path = out.strip().splitlines()[0] if out and out.strip() else ""
            if path and Path(path).is_file() and not _is_shim_dir(str(Path(path).parent)):
                return path
    return None


def which_real(names: tuple[str, ...], cwd: Path) -> tuple[str, bool] | None:
    """First of ``names`` on PATH that is not a version-manager shim, resolving shims to their
    target: ``(path, came_from_a_shim)``."""
    for d in os.environ.get("PATH", "").split(os.pathsep):
        if not d:
            continue
        for name in names:
            p = Path(d) / name
            if not (p.is_file() and os.access(p, os.X_OK)):
                continue
            if not _is_shim_dir(d):
                return str(p), False
            target = _shim_target(d, name, cwd)
            if target:
                return target, True
    return None


def _env_from_tool(argv: list[str], cwd: Path) -> Path | None:
    out = _quiet(argv, cwd)
    line = out.strip().splitlines()[-1].strip() if out and out.strip() else ""
    return Path(line) if line and Path(line).is_dir() else None


def find_interpreter(root: Path, project: Path | None) -> tuple[str | None, str, Path | None]:
    """``(python, source, venv)`` for the checks of ``root`` (see the module docstring)."""
    bases = list(dict.fromkeys(p for p in (root, project) if p is not None))
    for base in bases:
        for name in VENV_DIRS:
            d = base / name
            if (d / "pyvenv.cfg").is_file():
                venv = d.resolve()
                py = _venv_python(venv)
                if py:
                    uv = name == ".venv" and (base / "uv.lock").is_file()
                    return py, "uv (.venv)" if uv else name, venv
    home = project or root
    tool = read_tool(home)
    finders = []
    if "poetry" in tool:
        finders.append(("poetry", ["env", "info", "-p"]))
    if "hatch" in tool or (home / "hatch.toml").is_file():
        finders.append(("hatch", ["env", "find"]))
    for exe, args in finders:
        found = which_real((exe,), home)
        venv = _env_from_tool([found[0], *args], home) if found else None
        py = _venv_python(venv) if venv else None
        if venv and py:
            return py, exe, venv
    active = os.environ.get("VIRTUAL_ENV")
    if active and (Path(active) / "pyvenv.cfg").is_file():
        py = _venv_python(Path(active))
        if py:
            return py, "$VIRTUAL_ENV", Path(active)
    found = which_real(("python3", "python"), home)
    if found:
        return found[0], "PATH (pyenv)" if found[1] else "PATH", None
    return None, "none", None


# --------------------------------------------------------------------------- the probe
def _inside(path: str, root: Path) -> bool:
    try:
        p = Path(path).resolve()
        p.relative_to(root.resolve())
    except (OSError, ValueError):
        return False
    return not ({"site-packages", "dist-packages"} & set(p.parts))


def probe(env: PyEnv, extra_env: dict[str, str]) -> None:
    """Run the interpreter once (tools available, version, where each package resolves) and set
    ``verified`` / ``resolution`` / ``problem``."""
    if env.python is None:
        env.verified = False if env.layout.packages else None
        env.problem = "no Python interpreter found (no project environment, none on PATH outside shims)"
        return
    try:
        r = subprocess.run([env.python, "-c", _PROBE, *env.layout.packages], cwd=env.root,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S,
                           env={**os.environ, **extra_env}, check=False)
        line = next((x for x in r.stdout.splitlines() if x.startswith("LOOM-PROBE ")), None)
        data = json.loads(line[len("LOOM-PROBE "):]) if line else None
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        data, r = None, None
        err = str(exc)
    else:
        err = (r.stderr or r.stdout).strip()[-300:] or f"exit {r.returncode}"
    if not isinstance(data, dict):
        env.verified = False
        env.problem = f"interpreter {env.python} could not run: {err}"
        return
    env.version = data.get("version")
    env.modules = {k: bool(v) for k, v in (data.get("modules") or {}).items()}
    if not env.layout.packages:
        env.verified = None
        return
    bad: list[str] = []
    for name in env.layout.packages:
        spec = (data.get("specs") or {}).get(name)
        if not isinstance(spec, dict) or spec.get("error"):
            why = spec.get("error") if isinstance(spec, dict) else "not found"
            bad.append(f"{name} cannot be located ({why})")
            continue
        origin = spec.get("origin") if spec.get("origin") not in (None, "namespace") else None
        places = ([origin] if origin else []) + list(spec.get("locations") or [])
        if not places:
            bad.append(f"{name} has no location")
            continue
        env.resolution[name] = str(places[0])
        outside = [p for p in places if not _inside(p, env.root)]
        if outside:
            bad.append(f"{name} resolves to {outside[0]}, outside {env.root}")
    env.verified = not bad
    env.problem = "; ".join(bad) or None


def resolve_env(root: Path, project: Path | None = None, *, layout: Layout | None = None) -> PyEnv:
    """The environment for the checks of ``root`` (``project`` = the user's folder, where a
    project environment may live when the sandbox has none), probed and verified."""
    root = Path(root)
    layout = layout or project_layout(root)
    if not layout.python:
        return PyEnv(root, None, "none", layout=layout)
    python, source, venv = find_interpreter(root, Path(project) if project else None)
    env = PyEnv(root, python, source, venv, layout)
    probe(env, env.env_vars())
    return env


def loom_tool(module: str) -> list[str] | None:
    """A tool that does not import project code (ruff) from loom's own environment."""
    exe = Path(sys.executable).parent / module
    if exe.is_file() and os.access(exe, os.X_OK):
        return [str(exe)]
    import importlib.util

    if importlib.util.find_spec(module) is not None:
        return [sys.executable, "-m", module]
    return None


def venv_tool(env: PyEnv, name: str) -> str | None:
    """``<venv>/bin/<name>`` when the project environment has it."""
    if env.venv is None:
        return None
    p = env.venv / "bin" / name
    return str(p) if p.is_file() and os.access(p, os.X_OK) else None


def path_tool(name: str, cwd: Path) -> str | None:
    found = which_real((name,), cwd)
    return found[0] if found else None

