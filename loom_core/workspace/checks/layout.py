"""Where a Python project keeps its importable code: source roots and top-level package names.

Read from ``pyproject.toml`` when the build backend says so (setuptools ``packages.find.where`` /
``package-dir`` / ``packages`` / ``py-modules``, hatch wheel ``packages``, flit ``module``, poetry
``packages``, pdm ``package-dir``), else ``src/`` when it holds packages, else the root itself.
Roots are what the checks put first on ``PYTHONPATH``; packages are what the environment probe
proves resolve inside the sandbox.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# top-level folders that hold a project's tests and tooling, not its importable code
_NOT_PACKAGES = frozenset({"tests", "test", "testing", "docs", "doc", "examples", "example", "benchmarks",
                           "bench", "scripts", "tools", "build", "dist", "site-packages", "node_modules"})
_NOT_MODULES = frozenset({"setup", "conftest", "noxfile", "fabfile", "tasks", "manage"})
_IDENT = re.compile(r"^[A-Za-z_]\w*$")


@dataclass
class Layout:
    roots: list[Path] = field(default_factory=list)  # absolute source roots, first on PYTHONPATH
    packages: list[str] = field(default_factory=list)  # top-level importable names of the project
    python: bool = False  # the tree is a Python project at all (pyproject / setup.py / .py code)


def read_tool(root: Path) -> dict[str, Any]:
    """The ``[tool]`` table of ``root/pyproject.toml`` ({} when absent or unparsable)."""
    path = root / "pyproject.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    tool = data.get("tool") if isinstance(data, dict) else None
    return tool if isinstance(tool, dict) else {}


def _table(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def _strs(v: Any) -> list[str]:
    if isinstance(v, str):
        return [v]
    return [x for x in v if isinstance(x, str)] if isinstance(v, list) else []


def _configured(root: Path, tool: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(relative roots, package names) the build configuration names."""
    roots: list[str] = []
    names: list[str] = []
    st = tool.get("setuptools") if isinstance(tool.get("setuptools"), dict) else {}
    roots += _strs(_table(st, "packages", "find", "where"))
    pkg_dir = st.get("package-dir")
    if isinstance(pkg_dir, dict):
        for name, where in pkg_dir.items():
            if not isinstance(where, str):
                continue
            if name == "":
                roots.append(where)
            elif Path(where).name == name:  # {"pkg": "lib/pkg"}: its parent is a root
                roots.append(str(Path(where).parent))
    names += [p.split(".")[0] for p in _strs(st.get("packages"))]
    names += _strs(st.get("py-modules"))
    for wheel in (_table(tool, "hatch", "build", "targets", "wheel", "packages"),
                  _table(tool, "hatch", "build", "packages")):
        for p in _strs(wheel):
            roots.append(str(Path(p).parent))
            names.append(Path(p).name)
    flit = _table(tool, "flit", "module", "name")
    if isinstance(flit, str):
        top = flit.split(".")[0]
        names.append(top)
        roots.append("src" if (root / "src" / top).exists() else ".")
    for entry in _table(tool, "poetry", "packages") or []:
        if isinstance(entry, dict) and isinstance(entry.get("include"), str):
            include = entry["include"]
            if not any(ch in include for ch in "*?["):
                names.append(Path(include).name.removesuffix(".py"))
                roots.append(entry.get("from") if isinstance(entry.get("from"), str) else ".")
    for pdm in (_table(tool, "pdm", "build", "package-dir"), _table(tool, "pdm", "package-dir")):
        roots += _strs(pdm)
    return roots, names


def _scan(root: Path, *, modules: bool) -> list[str]:
    """Top-level packages (folders with ``__init__.py``) and, when ``modules``, ``.py`` modules."""
    found: list[str] = []
    try:
        entries = sorted(root.iterdir())
    except OSError:
        return found
    for p in entries:
        name = p.name
        if name.startswith(".") or name in _NOT_PACKAGES:
            continue
        if p.is_dir() and not p.is_symlink() and _IDENT.match(name) and (p / "__init__.py").is_file():
            found.append(name)
        elif modules and p.suffix == ".py" and p.is_file() and _IDENT.match(p.stem) and p.stem not in _NOT_MODULES:
            found.append(p.stem)
    return found


def _has_py(d: Path) -> bool:
    try:
        return any(p.suffix == ".py" for p in d.iterdir())
    except OSError:
        return False


def _under(root: Path, rel: str) -> Path | None:
    p = (root / rel).resolve() if rel not in ("", ".") else root.resolve()
    try:
        p.relative_to(root.resolve())
    except ValueError:  # a configured root outside the project is not the sandbox's code
        return None
    return p


def project_layout(root: Path) -> Layout:
    """The source roots and top-level packages of the Python project at ``root``."""
    root = Path(root)
    tool = read_tool(root)
    rel_roots, names = _configured(root, tool)
    roots: list[Path] = []
    for rel in rel_roots:
        p = _under(root, rel)
        if p is not None and p not in roots:
            roots.append(p)
    if not roots:
        src = root / "src"
        roots = [src.resolve()] if src.is_dir() and _scan(src, modules=True) else [root.resolve()]
    packages = list(dict.fromkeys(n for n in names if _IDENT.match(n)))
    for r in roots:
        for name in _scan(r, modules=r != root.resolve()):
            if name not in packages:
                packages.append(name)
    python = bool(packages) or any((root / n).is_file() for n in ("pyproject.toml", "setup.py", "setup.cfg")) \
        or any(_has_py(d) for d in (root, root / "tests", root / "test"))
    return Layout(roots=roots, packages=packages, python=python)
