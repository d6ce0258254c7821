"""The layers are enforced: ``lint-imports`` (the contracts in pyproject.toml) and ``ruff check`` pass
on the whole tree, and every contract does catch the import it forbids."""

from __future__ import annotations

import pkgutil
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import loom_core

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = ("import sys; from importlinter.cli import lint_imports_command; "
                "sys.exit(lint_imports_command())")


def _contracts() -> list[dict]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", LINT_IMPORTS, "--no-cache", "--no-logo"], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_import_contracts_hold():
    proc = _lint_imports(ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{len(_contracts())} kept, 0 broken" in proc.stdout


def test_ruff_is_clean():
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_kernel_contract_names_every_other_module_of_loom():
    kernel = next(c for c in _contracts() if c["id"] == "kernel-is-pure")
    ours = {f"loom_core.{m.name}" for m in pkgutil.iter_modules(loom_core.__path__)}
    assert ours - {"loom_core.kernel", "loom_core.errors"} | {"loom_tui"} == set(kernel["forbidden_modules"])


# one forbidden import per contract, each in a new module of a copy of the tree
PROBES = {
    "kernel-is-pure": ("loom_core/kernel/zz_probe.py", "loom_core.store"),
    "store-below-engine": ("loom_core/store/zz_probe.py", "loom_core.engine"),
    "bundles-are-data": ("loom_core/bundles/zz_probe.py", "loom_core.agents"),
    "core-without-textual": ("loom_core/config/zz_probe.py", "textual"),
    "execution-below-engine": ("loom_core/workspace/zz_probe.py", "loom_core.control"),
    "surfaces-use-the-facade": ("loom_tui/zz_probe.py", "loom_core.kernel"),
    "layers": ("loom_core/workspace/zz_layers.py", "loom_core.agents"),  # only the stack forbids this one
}


def test_every_contract_catches_the_import_it_forbids(tmp_path):
    assert set(PROBES) == {c["id"] for c in _contracts()}
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in ("loom_core", "loom_tui"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    for path, target in PROBES.values():
        (tmp_path / path).write_text(f'"""A forbidden import."""\n\nimport {target}  # noqa: F401\n')
    proc = _lint_imports(tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert f"0 kept, {len(PROBES)} broken" in out
    for path, target in PROBES.values():
        module = path.removesuffix(".py").replace("/", ".")
        assert f"{module} -> {target} (l.3)" in out, (module, out)
